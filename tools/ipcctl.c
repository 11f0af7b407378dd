/* ipcctl.c - manage an ipcfs mount with plain file operations and user.ipcfs.* xattrs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ipcfs-config.h"

/*
 * ipcctl talks to ipcfs only the way any program can: open, read, write,
 * poll, ftruncate, readdir, and the user.ipcfs.* extended attributes. It
 * links nothing from lib/ and needs no socket or private interface, so it
 * works on any mount it can reach, and doubles as an example client.
 *
 * Exit codes: 0 ok, 1 other error, 2 bad arguments or usage, 3 not found,
 * 4 permission denied, 5 timeout.
 */

enum {
	RC_OK = 0,
	RC_ERR = 1,
	RC_USAGE = 2,
	RC_NOTFOUND = 3,
	RC_PERM = 4,
	RC_TIMEOUT = 5,
};

#define XPFX "user.ipcfs."
#define IOBUF (1u << 20) /* one read: a FUSE request carries at most 1 MiB */
#define MAX_ATTRS 40

/* The command running, for messages: "ipcctl" or "ipcctl send". */
static char cmd_name[32] = "ipcctl";

static const char *const kinds[] = { "mbox", "fifo", "shm", "sem", "event", "topic" };
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const settings[] = { "framing", "max_messages", "max_bytes", "undo",
					"latched", "retain", "overflow", "value" };

/* --- messages and exit codes --- */

/* The exit code for a failure with errno err. */
static int rc_of(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return RC_NOTFOUND;
	case EACCES:
	case EPERM:
		return RC_PERM;
	case ETIMEDOUT:
		return RC_TIMEOUT;
	default:
		return RC_ERR;
	}
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "ipcctl CMD: <message>" on stderr. */
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "ipcctl CMD: <message>: <strerror(err)>"; returns err's exit code. */
static int fail(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	return rc_of(err);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a usage error and where to find help; returns RC_USAGE. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", cmd_name);
	return RC_USAGE;
}

/* --- small parsers and formatters --- */

/* A decimal number without sign or spaces, optionally followed by one of
 * K, M, G, T (powers of 1024) when suffix is true. Returns 0 or -1. */
static int parse_u64(const char *s, bool suffix, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	unsigned shift = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*p && suffix) {
		const char *units = "KMGT", *u = strchr(units, *p >= 'a' ? *p - 32 : *p);
		if (!u || !*u)
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if (*p == 'i' && p[1] == 'B')
			p += 2;
		else if (*p == 'B')
			p++;
	}
	if (*p || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}

/* Seconds as a decimal number (0.5, 3); 0 .. 10^8. Returns 0 or -1. */
static int parse_seconds(const char *s, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !(d >= 0 && d <= 1e8))
		return -1;
	*out = d;
	return 0;
}

/* Formats a byte count: 120B, 64K (exact), 1.5M (rounded). Returns buf. */
static const char *fmt_size(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "KMGTPE";
	unsigned u = 0;

	if (v < 1024) {
		snprintf(buf, size, "%" PRIu64 "B", v);
		return buf;
	}
	while (u + 1 < sizeof(units) - 1 && v >> (10 * (u + 2)))
		u++;
	if ((v & ((1ULL << (10 * (u + 1))) - 1)) == 0)
		snprintf(buf, size, "%" PRIu64 "%c", v >> (10 * (u + 1)), units[u]);
	else
		snprintf(buf, size, "%.1f%c", (double)v / (double)(1ULL << (10 * (u + 1))), units[u]);
	return buf;
}

/* Whether s names a kind of object (mbox, fifo, shm, sem, event, topic). */
static bool is_kind(const char *s)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (strcmp(s, kinds[i]) == 0)
			return true;
	return false;
}

/* Whether key is a setting (read-write) rather than a statistic. */
static bool is_setting(const char *key)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (strcmp(key, settings[i]) == 0)
			return true;
	return false;
}

/* A plain decimal number as the daemon prints one (JSON-safe). */
static bool is_number(const char *s)
{
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The user name for uid (or the number), in buf. */
static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	return buf;
}

/* The group name for gid (or the number), in buf. */
static const char *group_name(gid_t gid, char *buf, size_t size)
{
	struct group *gr = getgrgid(gid);

	if (gr)
		snprintf(buf, size, "%s", gr->gr_name);
	else
		snprintf(buf, size, "%u", (unsigned)gid);
	return buf;
}

/* Writes s as a JSON string. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* --- deadlines and waiting --- */

struct deadline {
	bool set;
	struct timespec at; /* CLOCK_MONOTONIC */
};

/* A deadline secs from now; secs < 0: none. */
static void deadline_init(struct deadline *d, double secs)
{
	d->set = secs >= 0;
	if (!d->set)
		return;
	clock_gettime(CLOCK_MONOTONIC, &d->at);
	d->at.tv_sec += (time_t)secs;
	d->at.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (d->at.tv_nsec >= 1000000000L) {
		d->at.tv_sec++;
		d->at.tv_nsec -= 1000000000L;
	}
}

/* Milliseconds left (rounded up), 0 when passed, -1 without a deadline. */
static int deadline_ms(const struct deadline *d)
{
	struct timespec now;
	int64_t ns;

	if (!d->set)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (int64_t)(d->at.tv_sec - now.tv_sec) * 1000000000 + (d->at.tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	return ns / 1000000 >= INT_MAX ? INT_MAX : (int)((ns + 999999) / 1000000);
}

/* Waits until fd is readable (or at EOF/error) or the deadline passes.
 * Returns 0, -ETIMEDOUT or -errno. */
static int wait_readable(int fd, const struct deadline *d)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, deadline_ms(d));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Reads up to size bytes from a non-blocking fd, polling while it has
 * nothing. Returns the count (0: EOF), -ETIMEDOUT or -errno. */
static ssize_t read_wait(int fd, void *buf, size_t size, const struct deadline *d)
{
	for (;;) {
		ssize_t n = read(fd, buf, size);
		int r;
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = wait_readable(fd, d);
		if (r)
			return r;
	}
}

/* Writes all of buf to fd. Returns 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Prints messages on stdout: each as it is, plus a newline if it does not
 * end in one (unless raw), so an empty message is an empty line. */
struct printer {
	bool raw;
	bool quiet;
	char last;  /* last byte printed of the current message */
	size_t len; /* bytes printed of the current message */
};

/* Prints part of a message. Returns 0 or -errno (stdout failed). */
static int pr_chunk(struct printer *p, const char *buf, size_t len)
{
	if (!len || p->quiet)
		return 0;
	p->last = buf[len - 1];
	p->len += len;
	return write_all(STDOUT_FILENO, buf, len);
}

/* Ends a message. */
static int pr_end(struct printer *p)
{
	int r = 0;

	if (!p->raw && !p->quiet && (p->len == 0 || p->last != '\n'))
		r = write_all(STDOUT_FILENO, "\n", 1);
	p->len = 0;
	return r;
}

/* --- objects: a path, its stat and its user.ipcfs.* attributes --- */

struct attr {
	char key[32];
	char val[64];
};

struct obj {
	char *path; /* as opened; owned */
	char *name; /* as shown; owned */
	struct stat st;
	char kind[16]; /* "mbox", ..., "dir" */
	struct attr a[MAX_ATTRS];
	int na;
};

/* Reads user.ipcfs.<key> of path into buf, NUL-terminated. Returns the
 * length or -errno (-ENODATA: the object has no such attribute). */
static int xget(const char *path, const char *key, char *buf, size_t size)
{
	char name[64];
	ssize_t n;

	snprintf(name, sizeof(name), XPFX "%s", key);
	n = getxattr(path, name, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/* The value of an attribute loaded into o, or NULL. */
static const char *obj_get(const struct obj *o, const char *key)
{
	for (int i = 0; i < o->na; i++)
		if (strcmp(o->a[i].key, key) == 0)
			return o->a[i].val;
	return NULL;
}

/* A numeric attribute loaded into o; 0 when it has none. */
static uint64_t obj_u64(const struct obj *o, const char *key)
{
	const char *v = obj_get(o, key);

	return v ? strtoull(v, NULL, 10) : 0;
}

/* Frees what o owns (not o itself); NULL is a no-op. */
static void obj_fini(struct obj *o)
{
	if (!o)
		return;
	free(o->path);
	free(o->name);
	o->path = o->name = NULL;
}

/* Loads path's stat and every user.ipcfs.* attribute. name is what to show
 * (NULL: the path). Returns 0, -ENODATA (not an ipcfs node) or -errno;
 * on failure o owns nothing. */
static int obj_load(struct obj *o, const char *path, const char *name)
{
	char list[4096];
	ssize_t len;
	int r;

	memset(o, 0, sizeof(*o));
	if (lstat(path, &o->st) < 0)
		return -errno;
	len = listxattr(path, list, sizeof(list));
	if (len < 0)
		return errno == ENOTSUP ? -ENODATA : -errno;
	for (char *p = list; p < list + len; p += strlen(p) + 1) {
		struct attr *a;
		if (strncmp(p, XPFX, strlen(XPFX)) != 0 || o->na == MAX_ATTRS)
			continue;
		a = &o->a[o->na];
		snprintf(a->key, sizeof(a->key), "%s", p + strlen(XPFX));
		r = xget(path, a->key, a->val, sizeof(a->val));
		if (r == -ENODATA || r == -ERANGE)
			continue;
		if (r < 0)
			return r;
		o->na++;
	}
	if (!obj_get(o, "kind"))
		return -ENODATA;
	snprintf(o->kind, sizeof(o->kind), "%s", obj_get(o, "kind"));
	o->path = strdup(path);
	o->name = strdup(name ? name : path);
	if (!o->path || !o->name) {
		obj_fini(o);
		return -ENOMEM;
	}
	return 0;
}

/* Loads an object the user named; prints why not. Returns 0 or an exit code. */
static int obj_open_arg(struct obj *o, const char *path)
{
	int r = obj_load(o, path, NULL);

	if (r == -ENODATA) {
		say("%s: not an object of an ipcfs mount", path);
		return RC_USAGE;
	}
	if (r)
		return fail(-r, "%s", path);
	return 0;
}

/* Refuses an object whose kind is not in the list (NULL-terminated). */
static int need_kind(const struct obj *o, const char *what, const char *const *ok)
{
	for (const char *const *k = ok; *k; k++)
		if (strcmp(o->kind, *k) == 0)
			return 0;
	say("%s: a %s object; %s", o->path, o->kind, what);
	return RC_USAGE;
}

/* Writes o as one JSON object on a line of its own. */
static void obj_json(FILE *f, const struct obj *o)
{
	char u[64], g[64];

	fputs("{\"path\": ", f);
	json_str(f, o->path);
	fputs(", \"name\": ", f);
	json_str(f, o->name);
	fputs(", \"kind\": ", f);
	json_str(f, o->kind);
	fprintf(f, ", \"uid\": %u, \"gid\": %u, \"owner\": ", (unsigned)o->st.st_uid,
		(unsigned)o->st.st_gid);
	json_str(f, user_name(o->st.st_uid, u, sizeof(u)));
	fputs(", \"group\": ", f);
	json_str(f, group_name(o->st.st_gid, g, sizeof(g)));
	fprintf(f, ", \"mode\": \"%04o\", \"size\": %" PRIu64 ", \"mtime\": %lld.%09ld",
		(unsigned)(o->st.st_mode & 07777), (uint64_t)o->st.st_size,
		(long long)o->st.st_mtim.tv_sec, o->st.st_mtim.tv_nsec);
	for (int pass = 0; pass < 2; pass++) {
		bool first = true;
		fputs(pass ? ", \"statistics\": {" : ", \"settings\": {", f);
		for (int i = 0; i < o->na; i++) {
			const struct attr *a = &o->a[i];
			if (strcmp(a->key, "kind") == 0 || is_setting(a->key) != !pass)
				continue;
			fputs(first ? "" : ", ", f);
			first = false;
			json_str(f, a->key);
			fputs(": ", f);
			if (is_number(a->val))
				fputs(a->val, f);
			else
				json_str(f, a->val);
		}
		fputc('}', f);
	}
	fputs("}", f);
}

/* --- walking a tree --- */

struct objlist {
	struct obj *v;
	size_t n, cap;
	int rc; /* first error met while walking (an exit code), or 0 */
};

/* Frees every object of l and its array; l may be reused. */
static void objlist_free(struct objlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		obj_fini(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Appends a loaded object (the list takes what it owns). */
static int objlist_push(struct objlist *l, struct obj *o)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct obj *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *o;
	return 0;
}

/* a/b, malloc'd; just b when a is "" or "." (names stay relative). */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s;

	if (la == 0 || !strcmp(a, "."))
		return strdup(b);
	s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

/* Adds every object under dir (shown as rel, "" for the top), depth first,
 * in name order. Errors on parts of the tree are reported and recorded in
 * l->rc; the walk goes on. Returns 0 or -ENOMEM. */
static int walk(const char *dir, const char *rel, struct objlist *l)
{
	struct dirent **ents = NULL;
	struct stat dst;
	int n, r = 0;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		int rc = fail(errno, "%s", dir);
		if (!l->rc)
			l->rc = rc;
		return 0;
	}
	if (stat(dir, &dst) < 0)
		dst.st_ino = 0;
	for (int i = 0; i < n; i++) {
		const char *e = ents[i]->d_name;
		char *path = NULL, *name = NULL;
		struct obj o;
		int lr;
		if (r || !strcmp(e, ".") || !strcmp(e, "..") ||
		    (dst.st_ino == 1 && !strcmp(e, ".ipcfs"))) /* the mount root's status dir */
			goto next;
		path = join(dir, e);
		name = join(rel, e);
		if (!path || !name) {
			r = -ENOMEM;
			goto next;
		}
		lr = obj_load(&o, path, name);
		if (lr == -ENOENT || lr == -ENODATA)
			goto next; /* removed meanwhile, or not ours */
		if (lr) {
			int rc = fail(-lr, "%s", path);
			if (!l->rc)
				l->rc = rc;
			goto next;
		}
		if (S_ISDIR(o.st.st_mode)) {
			obj_fini(&o);
			r = walk(path, name, l);
		} else if (is_kind(o.kind)) {
			r = objlist_push(l, &o);
			if (r)
				obj_fini(&o);
		} else {
			obj_fini(&o);
		}
next:
		free(path);
		free(name);
		free(ents[i]);
	}
	free(ents);
	return r;
}

/* Loads what `ls PATH` and `top` show: the objects under a directory, or
 * the one object PATH names. Returns 0 or an exit code (reported). */
static int collect(const char *path, struct objlist *l)
{
	struct obj o;
	int r = obj_open_arg(&o, path);

	if (r)
		return r;
	if (!S_ISDIR(o.st.st_mode)) {
		if (objlist_push(l, &o)) {
			obj_fini(&o);
			return fail(ENOMEM, "%s", path);
		}
		return 0;
	}
	obj_fini(&o);
	if (walk(path, "", l))
		return fail(ENOMEM, "%s", path);
	return 0;
}

/* --- the mount root --- */

/* Finds the root of the ipcfs mount that holds path (an existing
 * directory): the nearest directory upwards that contains .ipcfs and is an
 * ipcfs directory. Returns a malloc'd absolute path, or NULL with errno
 * (ENOENT: not in a mount; others from realpath). */
static char *find_root(const char *path)
{
	char *p = realpath(path, NULL), kind[16];

	if (!p)
		return NULL;
	for (;;) {
		struct stat st;
		char *status = join(p, ".ipcfs");
		bool found;
		if (!status) {
			free(p);
			errno = ENOMEM;
			return NULL;
		}
		found = stat(status, &st) == 0 && S_ISDIR(st.st_mode) &&
			xget(p, "kind", kind, sizeof(kind)) > 0 && strcmp(kind, "dir") == 0;
		free(status);
		if (found)
			return p;
		if (strcmp(p, "/") == 0)
			break;
		*strrchr(p, '/') = '\0';
		if (!*p)
			strcpy(p, "/");
	}
	free(p);
	errno = ENOENT;
	return NULL;
}

/* --- subcommands --- */

struct cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
	const char *help;
};

static const struct cmd *current;

/* Prints a subcommand's help. */
static void cmd_usage(const struct cmd *c, FILE *f)
{
	fprintf(f, "Usage: ipcctl %s %s\n\n%s", c->name, c->synopsis, c->help);
}

/* Handles -h/--help and unknown options for every subcommand; getopt_long
 * with a leading ':' in opts. Returns -1 to go on, or an exit code. */
static int common_opt(int c, char **argv)
{
	if (c == 'h') {
		cmd_usage(current, stdout);
		return RC_OK;
	}
	if (c == ':')
		return usage_error("option '%s' needs an argument", argv[optind - 1]);
	if (c == '?')
		return usage_error("unknown option '%s'", argv[optind - 1]);
	return -1;
}

/* Checks the number of operands left. */
static int operands(int argc, int min, int max)
{
	int n = argc - optind;

	if (n < min)
		return usage_error("missing operand");
	if (n > max)
		return usage_error("too many operands");
	return -1;
}

/* Splits path into its directory (returned, malloc'd; "." when there is
 * none) and its last name (*base, pointing into path; empty when path ends
 * in a slash). Returns NULL when out of memory. */
static char *parent_of(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');

	*base = slash ? slash + 1 : path;
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* create */

struct create_opt {
	const char *key;     /* the attribute */
	const char *kinds[6]; /* where it applies */
	bool set;
	char val[32];
};

/* ipcctl create KIND PATH [settings]: all settings are checked before
 * anything is made; a refused one removes the new object again. */
static int cmd_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "framing", required_argument, NULL, 'F' },
		{ "max-messages", required_argument, NULL, 'N' },
		{ "max-bytes", required_argument, NULL, 'B' },
		{ "retain", required_argument, NULL, 'R' },
		{ "overflow", required_argument, NULL, 'O' },
		{ "undo", no_argument, NULL, 'U' },
		{ "latched", no_argument, NULL, 'L' },
		{ "size", required_argument, NULL, 'S' },
		{ "value", required_argument, NULL, 'V' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* In the order they are set (max_bytes before a region's size). */
	struct create_opt so[] = {
		{ "framing", { "mbox", "topic" }, false, "" },
		{ "max_messages", { "mbox", "topic" }, false, "" },
		{ "max_bytes", { "mbox", "fifo", "shm", "event", "topic" }, false, "" },
		{ "retain", { "topic" }, false, "" },
		{ "overflow", { "topic" }, false, "" },
		{ "undo", { "sem" }, false, "" },
		{ "latched", { "event" }, false, "" },
	};
	enum { O_FRAMING, O_MAXMSG, O_MAXBYTES, O_RETAIN, O_OVERFLOW, O_UNDO, O_LATCHED };
	const char *kind, *path, *optname[] = { "--framing", "--max-messages", "--max-bytes",
						 "--retain", "--overflow", "--undo", "--latched" };
	uint64_t size = 0, value = 0, v;
	bool has_size = false, has_value = false, has_mode = false;
	unsigned long mode = 0;
	char *dir = NULL, *root = NULL, *real = NULL, *end;
	const char *base;
	int c, r, fd, rc = RC_OK;

	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		int k = -1;
		if ((r = common_opt(c, argv)) >= 0)
			return r;
		switch (c) {
		case 'F':
			if (strcmp(optarg, "open") && strcmp(optarg, "write") &&
			    strcmp(optarg, "line") && strcmp(optarg, "record"))
				return usage_error("--framing takes open, write, line or record, not '%s'",
						   optarg);
			k = O_FRAMING;
			snprintf(so[k].val, sizeof(so[k].val), "%s", optarg);
			break;
		case 'O':
			if (strcmp(optarg, "drop") && strcmp(optarg, "block"))
				return usage_error("--overflow takes drop or block, not '%s'", optarg);
			k = O_OVERFLOW;
			snprintf(so[k].val, sizeof(so[k].val), "%s", optarg);
			break;
		case 'N':
		case 'B':
		case 'R':
			k = c == 'N' ? O_MAXMSG : c == 'B' ? O_MAXBYTES : O_RETAIN;
			if (parse_u64(optarg, c == 'B', &v))
				return usage_error("%s takes a number, not '%s'", optname[k], optarg);
			snprintf(so[k].val, sizeof(so[k].val), "%" PRIu64, v);
			break;
		case 'U':
		case 'L':
			k = c == 'U' ? O_UNDO : O_LATCHED;
			snprintf(so[k].val, sizeof(so[k].val), "1");
			break;
		case 'S':
			if (parse_u64(optarg, true, &size) || size > (uint64_t)INT64_MAX)
				return usage_error("--size takes a size in bytes (K, M, G suffixes), not '%s'",
						   optarg);
			has_size = true;
			break;
		case 'V':
			if (parse_u64(optarg, false, &value) || value > 2147483647)
				return usage_error("--value takes a number from 0 to 2147483647, not '%s'",
						   optarg);
			has_value = true;
			break;
		case 'm':
			errno = 0;
			mode = strtoul(optarg, &end, 8);
			if (errno || !*optarg || *end || mode > 07777)
				return usage_error("--mode takes an octal mode like 0640, not '%s'", optarg);
			has_mode = true;
			break;
		default:
			return usage_error("unexpected option");
		}
		if (k >= 0)
			so[k].set = true;
	}
	if ((r = operands(argc, 2, 2)) >= 0)
		return r;
	kind = argv[optind];
	path = argv[optind + 1];
	if (!is_kind(kind))
		return usage_error("unknown kind '%s' (mbox, fifo, shm, sem, event or topic)", kind);
	for (size_t i = 0; i < sizeof(so) / sizeof(so[0]); i++) {
		bool ok = false;
		for (size_t j = 0; j < 6 && so[i].kinds[j]; j++)
			ok |= strcmp(so[i].kinds[j], kind) == 0;
		if (so[i].set && !ok)
			return usage_error("%s does not apply to %s objects", optname[i], kind);
	}
	if (has_size && strcmp(kind, "shm"))
		return usage_error("--size applies to shm regions only");
	if (has_value && strcmp(kind, "sem"))
		return usage_error("--value applies to sem semaphores only");

	/* PATH must name a new entry below the kind's directory of a mount. */
	dir = parent_of(path, &base);
	if (!dir)
		return fail(ENOMEM, "%s", path);
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		rc = usage_error("%s: not a name for a new object", path);
		goto out;
	}
	root = find_root(dir);
	if (!root) {
		if (errno == ENOENT && access(dir, F_OK) == 0) {
			say("%s: not inside an ipcfs mount", path);
			rc = RC_USAGE;
		} else {
			rc = fail(errno, "%s", dir);
		}
		goto out;
	}
	real = realpath(dir, NULL);
	if (!real) {
		rc = fail(errno, "%s", dir);
		goto out;
	}
	{
		/* real is root itself or below it: "/KIND" or "/KIND/..." must follow. */
		const char *rest = real + (strcmp(root, "/") ? strlen(root) : 0);
		size_t kl = strlen(kind);
		if (rest[0] != '/' || strncmp(rest + 1, kind, kl) ||
		    (rest[1 + kl] && rest[1 + kl] != '/')) {
			say("%s: %s objects must be created under %s/%s/", path, kind,
			    strcmp(root, "/") ? root : "", kind);
			rc = RC_USAGE;
			goto out;
		}
	}

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC,
		  has_mode ? (mode_t)mode : 0666);
	if (fd < 0) {
		if (errno == EEXIST)
			say("%s: already exists", path);
		rc = errno == EEXIST ? RC_ERR : fail(errno, "cannot create %s", path);
		goto out;
	}
	if (has_mode && fchmod(fd, (mode_t)mode) < 0) {
		rc = fail(errno, "%s: cannot set mode %04lo", path, mode);
		goto undo;
	}
	for (size_t i = 0; i < sizeof(so) / sizeof(so[0]); i++) {
		char name[64];
		if (!so[i].set)
			continue;
		snprintf(name, sizeof(name), XPFX "%s", so[i].key);
		if (fsetxattr(fd, name, so[i].val, strlen(so[i].val), 0) < 0) {
			if (errno == EINVAL) {
				say("%s: bad value %s for %s (out of range?)", path, so[i].val, optname[i]);
				rc = RC_USAGE;
			} else {
				rc = fail(errno, "%s: cannot set %s=%s", path, so[i].key, so[i].val);
			}
			goto undo;
		}
	}
	if (has_size && ftruncate(fd, (off_t)size) < 0) {
		rc = fail(errno, "%s: cannot set the size to %" PRIu64, path, size);
		goto undo;
	}
	if (has_value && value) {
		char num[32];
		int len = snprintf(num, sizeof(num), "%" PRIu64 "\n", value);
		r = write_all(fd, num, (size_t)len);
		if (r) {
			rc = fail(-r, "%s: cannot set the value to %" PRIu64, path, value);
			goto undo;
		}
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = fail(errno, "%s", path);
		goto undo;
	}
	goto out;
undo:
	/* Leave nothing half made behind. */
	if (fd >= 0)
		close(fd);
	if (unlink(path) < 0 && errno != ENOENT)
		say("%s: could not remove the half-made object: %s", path, strerror(errno));
out:
	free(dir);
	free(root);
	free(real);
	return rc;
}

/* ls */

/* The DEPTH column: what is queued or held, whichever applies. */
static void depth_of(const struct obj *o, char *buf, size_t size)
{
	char b[32];

	if (!strcmp(o->kind, "mbox"))
		snprintf(buf, size, "%" PRIu64 " msgs %s", obj_u64(o, "messages"),
			 fmt_size(obj_u64(o, "bytes"), b, sizeof(b)));
	else if (!strcmp(o->kind, "fifo"))
		snprintf(buf, size, "%s", fmt_size(obj_u64(o, "bytes"), b, sizeof(b)));
	else if (!strcmp(o->kind, "shm"))
		snprintf(buf, size, "%s", fmt_size(obj_u64(o, "size"), b, sizeof(b)));
	else if (!strcmp(o->kind, "sem"))
		snprintf(buf, size, "value %" PRIu64, obj_u64(o, "value"));
	else if (!strcmp(o->kind, "event"))
		snprintf(buf, size, "%s", obj_u64(o, "set") ? "set" : "clear");
	else if (!strcmp(o->kind, "topic"))
		snprintf(buf, size, "%" PRIu64 " subs %" PRIu64 " msgs", obj_u64(o, "subscribers"),
			 obj_u64(o, "messages"));
	else
		snprintf(buf, size, "-");
}

/* The LIMITS column: capacity and the settings that change behaviour. */
static void limits_of(const struct obj *o, char *buf, size_t size)
{
	char b[32];

	if (!strcmp(o->kind, "mbox"))
		snprintf(buf, size, "%" PRIu64 " msgs %s %s", obj_u64(o, "max_messages"),
			 fmt_size(obj_u64(o, "max_bytes"), b, sizeof(b)),
			 obj_get(o, "framing") ? obj_get(o, "framing") : "?");
	else if (!strcmp(o->kind, "fifo") || !strcmp(o->kind, "shm"))
		snprintf(buf, size, "%s", fmt_size(obj_u64(o, "max_bytes"), b, sizeof(b)));
	else if (!strcmp(o->kind, "sem"))
		snprintf(buf, size, "%s", obj_u64(o, "undo") ? "undo" : "-");
	else if (!strcmp(o->kind, "event"))
		snprintf(buf, size, "%s", obj_u64(o, "latched") ? "latched" : "-");
	else if (!strcmp(o->kind, "topic"))
		snprintf(buf, size, "%" PRIu64 " msgs %s %s retain %" PRIu64,
			 obj_u64(o, "max_messages"), obj_get(o, "framing") ? obj_get(o, "framing") : "?",
			 obj_get(o, "overflow") ? obj_get(o, "overflow") : "?", obj_u64(o, "retain"));
	else
		snprintf(buf, size, "-");
}

#define NCOL_MAX 8

/* A table of strings printed with aligned columns; the last is not padded. */
struct table {
	int ncol;
	char **cells; /* rows * ncol, owned */
	size_t nrows, cap;
	bool oom;
};

/* Adds a row (t->ncol strings, copied); out of memory sets t->oom. */
static void table_row(struct table *t, const char *const *cols)
{
	if (t->oom)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **c = realloc(t->cells, cap * (size_t)t->ncol * sizeof(*c));
		if (!c) {
			t->oom = true;
			return;
		}
		t->cells = c;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncol; i++) {
		t->cells[t->nrows * (size_t)t->ncol + (size_t)i] = strdup(cols[i]);
		if (!t->cells[t->nrows * (size_t)t->ncol + (size_t)i])
			t->oom = true;
	}
	t->nrows++;
}

/* Prints the table; right-aligns the columns whose bit is in right. */
static void table_print(FILE *f, const struct table *t, unsigned right)
{
	size_t w[NCOL_MAX] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncol; i++) {
			const char *s = t->cells[r * (size_t)t->ncol + (size_t)i];
			size_t l = s ? strlen(s) : 0;
			if (l > w[i])
				w[i] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int i = 0; i < t->ncol; i++) {
			const char *s = t->cells[r * (size_t)t->ncol + (size_t)i];
			bool last = i == t->ncol - 1;
			s = s ? s : "";
			if (right & (1u << i))
				fprintf(f, "%*s%s", (int)w[i], s, last ? "" : "  ");
			else if (last)
				fputs(s, f);
			else
				fprintf(f, "%-*s  ", (int)w[i], s);
		}
		fputc('\n', f);
	}
}

/* Frees the cells; t may be reused. */
static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ipcctl ls [DIR] [--json]: a table, or a JSON array, of the objects under DIR. */
static int cmd_ls(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const head[] = { "KIND", "NAME", "DEPTH", "LIMITS", "OWNER", "MODE" };
	struct objlist l = { 0 };
	bool json = false;
	const char *dir;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hj", lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
		json = true;
	}
	if ((r = operands(argc, 0, 1)) >= 0)
		return r;
	dir = optind < argc ? argv[optind] : ".";
	r = collect(dir, &l);
	if (r)
		return r;
	if (json) {
		fputs("[", stdout);
		for (size_t i = 0; i < l.n; i++) {
			fputs(i ? ",\n " : "\n ", stdout);
			obj_json(stdout, &l.v[i]);
		}
		fputs(l.n ? "\n]\n" : "]\n", stdout);
	} else if (l.n) {
		struct table t = { .ncol = 6 };
		table_row(&t, head);
		for (size_t i = 0; i < l.n; i++) {
			const struct obj *o = &l.v[i];
			char depth[64], lim[96], owner[64], mode[8];
			const char *row[6] = { o->kind, o->name, depth, lim, owner, mode };
			depth_of(o, depth, sizeof(depth));
			limits_of(o, lim, sizeof(lim));
			user_name(o->st.st_uid, owner, sizeof(owner));
			snprintf(mode, sizeof(mode), "%04o", (unsigned)(o->st.st_mode & 07777));
			table_row(&t, row);
		}
		if (t.oom)
			r = fail(ENOMEM, "%s", dir);
		else
			table_print(stdout, &t, 0);
		table_free(&t);
	}
	r = r ? r : l.rc;
	objlist_free(&l);
	if (fflush(stdout))
		return fail(errno, "stdout");
	return r;
}

/* stat */

static int cmd_stat(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	struct obj o;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hj", lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
		json = true;
	}
	if ((r = operands(argc, 1, 1)) >= 0)
		return r;
	r = obj_open_arg(&o, argv[optind]);
	if (r)
		return r;
	if (json) {
		obj_json(stdout, &o);
		fputc('\n', stdout);
	} else {
		char u[64], g[64], when[64], b[32];
		struct tm tm;
		localtime_r(&o.st.st_mtim.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
		printf("%s\n", o.path);
		printf("  %-16s %s\n", "kind", o.kind);
		printf("  %-16s %s (%u)\n", "owner", user_name(o.st.st_uid, u, sizeof(u)),
		       (unsigned)o.st.st_uid);
		printf("  %-16s %s (%u)\n", "group", group_name(o.st.st_gid, g, sizeof(g)),
		       (unsigned)o.st.st_gid);
		printf("  %-16s %04o\n", "mode", (unsigned)(o.st.st_mode & 07777));
		printf("  %-16s %s\n", "modified", when);
		for (int pass = 0; pass < 2; pass++) {
			bool any = false;
			for (int i = 0; i < o.na; i++) {
				const struct attr *a = &o.a[i];
				if (!strcmp(a->key, "kind") || is_setting(a->key) != !pass)
					continue;
				if (!any)
					printf("%s\n", pass ? "statistics" : "settings");
				any = true;
				if ((strstr(a->key, "bytes") || !strcmp(a->key, "size")) &&
				    strtoull(a->val, NULL, 10) >= 1024)
					printf("  %-16s %s (%s)\n", a->key, a->val,
					       fmt_size(strtoull(a->val, NULL, 10), b, sizeof(b)));
				else
					printf("  %-16s %s\n", a->key, a->val);
			}
		}
	}
	obj_fini(&o);
	if (fflush(stdout))
		return fail(errno, "stdout");
	return RC_OK;
}

/* set */

static int cmd_set(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path, *key, *value;
	char name[96], kind[16], tmp[64];
	int c, r, err;

	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
	}
	if ((r = operands(argc, 3, 3)) >= 0)
		return r;
	path = argv[optind];
	key = argv[optind + 1];
	value = argv[optind + 2];
	if (!strncmp(key, XPFX, strlen(XPFX)))
		key += strlen(XPFX);
	if (!*key || strlen(key) > 32 || strchr(key, '.'))
		return usage_error("bad setting name '%s'", key);
	snprintf(name, sizeof(name), XPFX "%s", key);
	/* Only ever on an ipcfs object: other file systems may take user.* too. */
	r = xget(path, "kind", kind, sizeof(kind));
	if (r == -ENODATA || r == -ENOTSUP) {
		say("%s: not an object of an ipcfs mount", path);
		return RC_USAGE;
	}
	if (r < 0)
		return fail(-r, "%s", path);
	if (setxattr(path, name, value, strlen(value), 0) == 0)
		return RC_OK;
	err = errno;
	switch (err) {
	case EINVAL:
		say("%s: bad value '%s' for %s", path, value, key);
		return RC_USAGE;
	case ENOTSUP:
	case ENODATA:
		say("%s: %s is not a setting of %s objects", path, key, kind);
		return RC_USAGE;
	case EPERM:
		if (xget(path, key, tmp, sizeof(tmp)) >= 0 && !is_setting(key)) {
			say("%s: %s is a read-only statistic", path, key);
			return RC_USAGE;
		}
		say("%s: only the owner or root may change settings", path);
		return RC_PERM;
	case EBUSY:
		if (!strcmp(key, "framing"))
			say("%s: the framing can change only while nothing is queued, written or read",
			    path);
		else
			say("%s: %s cannot change now: %s", path, key, strerror(err));
		return RC_ERR;
	default:
		return fail(err, "%s: cannot set %s", path, key);
	}
}

/* send */

/* Reads all of fd into a malloc'd buffer (at most max bytes; -EFBIG over). */
static int slurp(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;
		if (n == cap) {
			char *nb;
			if (cap >= max) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > max) {
			free(buf);
			return -EFBIG;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Explains a failed write to an object. Returns the exit code. */
static int send_error(const struct obj *o, int err)
{
	char b[32];

	if (err == EFBIG) {
		say("%s: the message is larger than this %s takes (max_bytes %s%s)", o->path, o->kind,
		    fmt_size(obj_u64(o, "max_bytes"), b, sizeof(b)),
		    obj_get(o, "framing") && !strcmp(obj_get(o, "framing"), "write")
			    ? "; write framing: 1 MiB - 4 KiB" : "");
		return RC_ERR;
	}
	if (err == EINVAL && !strcmp(o->kind, "sem")) {
		say("%s: a semaphore takes a decimal number of units", o->path);
		return RC_USAGE;
	}
	if (err == EINVAL && obj_get(o, "framing") && !strcmp(obj_get(o, "framing"), "record")) {
		say("%s: the input is not whole records ([u32 little-endian length][bytes]...)",
		    o->path);
		return RC_USAGE;
	}
	return fail(err, "%s", o->path);
}

/* ipcctl send PATH [FILE|-]: one message, written as its kind and
 * framing want it (see the command's help). */
static int cmd_send(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const ok[] = { "mbox", "fifo", "sem", "event", "topic", NULL };
	const char *input = "-", *framing;
	bool whole;
	struct obj o;
	int c, r, in = STDIN_FILENO, fd = -1, rc = RC_OK;
	char *buf = NULL;
	size_t len = 0;

	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
	}
	if ((r = operands(argc, 1, 2)) >= 0)
		return r;
	if (optind + 1 < argc)
		input = argv[optind + 1];
	r = obj_open_arg(&o, argv[optind]);
	if (r)
		return r;
	if ((rc = need_kind(&o, "send writes to mbox, fifo, sem, event and topic objects", ok)))
		goto out;
	if (strcmp(input, "-")) {
		in = open(input, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			rc = fail(errno, "%s", input);
			goto out;
		}
	}
	framing = obj_get(&o, "framing");
	/* One write(2) carries the message: write framing, events, semaphores. */
	whole = !strcmp(o.kind, "sem") || !strcmp(o.kind, "event") ||
		(framing && !strcmp(framing, "write"));
	fd = open(o.path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = send_error(&o, errno);
		goto out;
	}
	if (whole) {
		r = slurp(in, 64u << 20, &buf, &len);
		if (r) {
			rc = r == -EFBIG ? send_error(&o, EFBIG) : fail(-r, "%s", input);
			goto out;
		}
		if (len) {
			ssize_t n;
			do
				n = write(fd, buf, len);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				rc = send_error(&o, errno);
				goto out;
			}
			if ((size_t)n != len) {
				say("%s: only %zd of %zu bytes were taken", o.path, n, len);
				rc = RC_ERR;
				goto out;
			}
		}
	} else {
		/* Open framing: all of it between this open and close is one
		 * message; line, record and FIFO: the bytes as they are. */
		buf = malloc(IOBUF);
		if (!buf) {
			rc = fail(ENOMEM, "%s", o.path);
			goto out;
		}
		for (;;) {
			ssize_t k = read(in, buf, IOBUF);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				rc = fail(errno, "%s", input);
				goto out;
			}
			if (k == 0)
				break;
			r = write_all(fd, buf, (size_t)k);
			if (r) {
				rc = send_error(&o, -r);
				goto out;
			}
			len += (size_t)k;
		}
	}
	if (!len) {
		say("%s: empty input: nothing sent (ipcfs has no empty messages)", o.path);
		rc = RC_ERR;
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r < 0)
		rc = send_error(&o, errno);
out:
	if (fd >= 0)
		close(fd);
	if (in != STDIN_FILENO)
		close(in);
	free(buf);
	obj_fini(&o);
	return rc;
}

/* recv, wait, drain */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Splits a record-framing read into messages; prints them (pr may be
 * quiet). Returns the number of records, or -EPROTO. */
static int64_t print_records(struct printer *pr, const char *buf, size_t len)
{
	int64_t count = 0;
	size_t p = 0;

	while (p < len) {
		uint32_t rl;
		if (len - p < 4)
			return -EPROTO;
		rl = le32((const unsigned char *)buf + p);
		if (len - p - 4 < rl)
			return -EPROTO;
		if (pr_chunk(pr, buf + p + 4, rl) || pr_end(pr))
			return -EPIPE;
		p += 4 + (size_t)rl;
		count++;
	}
	return count;
}

/* Receives messages from one open file that stays open (write, line and
 * record framing; topics): each read is a message (records: many); a read
 * that fills the buffer is continued by the next. count 0: no limit.
 * timeout: for each message. Returns 0 or -errno (-ETIMEDOUT). */
static int recv_stream(int fd, bool records, uint64_t count, double timeout, struct printer *pr,
		       char *buf, uint64_t *got)
{
	bool more = false;

	while (count == 0 || *got < count || more) {
		struct deadline d;
		ssize_t n;
		deadline_init(&d, timeout);
		n = read_wait(fd, buf, IOBUF, &d);
		if (n < 0)
			return (int)n;
		if (n == 0) {
			if (more && pr_end(pr))
				return -EPIPE;
			return 0;
		}
		if (records) {
			int64_t k = print_records(pr, buf, (size_t)n);
			if (k < 0)
				return (int)k;
			*got += (uint64_t)k;
			continue;
		}
		if (pr_chunk(pr, buf, (size_t)n))
			return -EPIPE;
		more = (size_t)n == IOBUF;
		if (!more) {
			if (pr_end(pr))
				return -EPIPE;
			(*got)++;
		}
	}
	return 0;
}

/* Open framing: one open per message, read to EOF. */
static int recv_open(const char *path, uint64_t count, double timeout, struct printer *pr,
		     char *buf, uint64_t *got)
{
	while (count == 0 || *got < count) {
		struct deadline d;
		bool any = false;
		ssize_t n;
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		deadline_init(&d, timeout);
		while ((n = read_wait(fd, buf, IOBUF, &d)) > 0) {
			any = true;
			if (pr_chunk(pr, buf, (size_t)n)) {
				n = -EPIPE;
				break;
			}
		}
		close(fd);
		if (n < 0)
			return (int)n;
		if (!any)
			return 0; /* EOF at once: nothing more will come */
		if (pr_end(pr))
			return -EPIPE;
		(*got)++;
	}
	return 0;
}

/* Explains a failed receive. Returns the exit code. */
static int recv_error(const struct obj *o, int err, double timeout, uint64_t got)
{
	if (err == ETIMEDOUT) {
		say("%s: timed out after %g s (%" PRIu64 " received)", o->path, timeout, got);
		return RC_TIMEOUT;
	}
	if (err == EMSGSIZE) {
		say("%s: the next record is larger than one read can return (%u bytes)", o->path,
		    IOBUF);
		return RC_ERR;
	}
	if (err == EPROTO) {
		say("%s: the daemon returned a malformed record", o->path);
		return RC_ERR;
	}
	if (err == EPIPE)
		return fail(err, "stdout");
	return fail(err, "%s", o->path);
}

/* Common options of recv, wait and drain. */
struct recv_opts {
	double timeout; /* < 0: none */
	uint64_t count;
	bool raw;
	bool count_set;
};

/* Parses the options of recv, wait and drain that shortopts allows and
 * checks for one operand. Returns -1 to go on, or an exit code. */
static int parse_recv_opts(int argc, char **argv, const char *shortopts, struct recv_opts *ro)
{
	static const struct option lo[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	memset(ro, 0, sizeof(*ro));
	ro->timeout = -1;
	ro->count = 1;
	while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
		if (!strchr(shortopts, c))
			return usage_error("unknown option '%s'", argv[optind - 1]);
		switch (c) {
		case 't':
			if (parse_seconds(optarg, &ro->timeout))
				return usage_error("--timeout takes seconds (e.g. 2 or 0.5), not '%s'",
						   optarg);
			break;
		case 'n':
			if (parse_u64(optarg, false, &ro->count))
				return usage_error("--count takes a number, not '%s'", optarg);
			ro->count_set = true;
			break;
		case 'r':
			ro->raw = true;
			break;
		default:
			break;
		}
	}
	return operands(argc, 1, 1);
}

/* ipcctl recv PATH [--timeout S] [--count N] [--raw]: prints messages as
 * they come, waiting with poll(2) on a non-blocking file. */
static int cmd_recv(int argc, char **argv)
{
	static const char *const ok[] = { "mbox", "fifo", "topic", NULL };
	struct printer pr = { 0 };
	struct recv_opts ro;
	uint64_t got = 0;
	char *buf = NULL;
	struct obj o;
	int r, fd;

	if ((r = parse_recv_opts(argc, argv, ":ht:n:r", &ro)) >= 0)
		return r;
	r = obj_open_arg(&o, argv[optind]);
	if (r)
		return r;
	if ((r = need_kind(&o, "recv reads mbox, fifo and topic objects (events: wait)", ok)))
		goto out;
	if (!strcmp(o.kind, "fifo") && ro.count_set) {
		r = usage_error("--count does not apply to a FIFO (a byte stream)");
		goto out;
	}
	buf = malloc(IOBUF);
	if (!buf) {
		r = fail(ENOMEM, "%s", o.path);
		goto out;
	}
	pr.raw = ro.raw;
	if (!strcmp(o.kind, "mbox") && !strcmp(obj_get(&o, "framing"), "open")) {
		r = recv_open(o.path, ro.count, ro.timeout, &pr, buf, &got);
	} else {
		bool fifo = !strcmp(o.kind, "fifo");
		const char *f = obj_get(&o, "framing");
		fd = open(o.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
		} else {
			if (fifo) {
				/* A byte stream: everything up to EOF. */
				struct deadline d;
				ssize_t n;
				pr.raw = true;
				do {
					deadline_init(&d, ro.timeout);
					n = read_wait(fd, buf, IOBUF, &d);
					if (n > 0 && pr_chunk(&pr, buf, (size_t)n))
						n = -EPIPE;
					got += n > 0 ? (uint64_t)n : 0;
				} while (n > 0);
				r = (int)n;
			} else {
				r = recv_stream(fd, f && !strcmp(f, "record"), ro.count, ro.timeout,
						&pr, buf, &got);
			}
			close(fd);
		}
	}
	if (r == -ETIMEDOUT && ro.count == 0 && got)
		r = 0; /* --count 0: until quiet for the timeout */
	r = r ? recv_error(&o, -r, ro.timeout, got) : RC_OK;
out:
	free(buf);
	obj_fini(&o);
	return r;
}

/* ipcctl wait PATH [--timeout S]: the next firing of an event, or one
 * unit of a semaphore. */
static int cmd_wait(int argc, char **argv)
{
	static const char *const ok[] = { "event", "sem", NULL };
	struct printer pr = { .raw = true };
	struct recv_opts ro;
	struct deadline d;
	uint64_t got = 0;
	char *buf = NULL;
	struct obj o;
	ssize_t n;
	int r, fd;

	if ((r = parse_recv_opts(argc, argv, ":ht:", &ro)) >= 0)
		return r;
	r = obj_open_arg(&o, argv[optind]);
	if (r)
		return r;
	if ((r = need_kind(&o, "wait waits on event and sem objects (mailboxes: recv)", ok)))
		goto out;
	buf = malloc(IOBUF);
	fd = buf ? open(o.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	if (fd < 0) {
		r = fail(buf ? errno : ENOMEM, "%s", o.path);
		goto out;
	}
	/* Semaphore: take one unit (P), print nothing. Event: the payload of
	 * the next firing (or of a latched one), then EOF. */
	pr.quiet = !strcmp(o.kind, "sem");
	deadline_init(&d, ro.timeout);
	while ((n = read_wait(fd, buf, IOBUF, &d)) > 0) {
		got++;
		if (pr_chunk(&pr, buf, (size_t)n)) {
			n = -EPIPE;
			break;
		}
	}
	close(fd);
	r = n < 0 ? recv_error(&o, (int)-n, ro.timeout, 0) : RC_OK;
	if (!r && !got && !strcmp(o.kind, "sem")) {
		say("%s: the semaphore gave no unit", o.path);
		r = RC_ERR;
	}
out:
	free(buf);
	obj_fini(&o);
	return r;
}

/* ipcctl drain PATH: reads everything queued with O_NONBLOCK until EAGAIN
 * and prints how much it took. */
static int cmd_drain(int argc, char **argv)
{
	static const char *const ok[] = { "mbox", "fifo", "sem", NULL };
	struct printer pr = { .quiet = true };
	uint64_t count = 0;
	struct recv_opts ro;
	char *buf = NULL;
	struct obj o;
	int r, fd = -1;

	if ((r = parse_recv_opts(argc, argv, ":h", &ro)) >= 0)
		return r;
	r = obj_open_arg(&o, argv[optind]);
	if (r)
		return r;
	if ((r = need_kind(&o, "drain empties mbox, fifo and sem objects", ok)))
		goto out;
	if (!strcmp(o.kind, "sem") && obj_u64(&o, "undo")) {
		say("%s: undo=1: the units taken would come back at close; set value 0 instead "
		    "(ipcctl set %s value 0)", o.path, o.path);
		r = RC_ERR;
		goto out;
	}
	buf = malloc(IOBUF);
	if (!buf) {
		r = fail(ENOMEM, "%s", o.path);
		goto out;
	}
	r = 0;
	if (!strcmp(o.kind, "sem") ||
	    (!strcmp(o.kind, "mbox") && !strcmp(obj_get(&o, "framing"), "open"))) {
		/* One open per message (or unit), until one finds nothing. */
		for (;;) {
			ssize_t n;
			bool any = false;
			fd = open(o.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0) {
				r = -errno;
				break;
			}
			while ((n = read(fd, buf, IOBUF)) > 0 || (n < 0 && errno == EINTR))
				any |= n > 0;
			if (n < 0 && errno != EAGAIN)
				r = -errno;
			close(fd);
			fd = -1;
			if (r || !any)
				break;
			count++;
		}
	} else {
		bool records = obj_get(&o, "framing") && !strcmp(obj_get(&o, "framing"), "record");
		bool fifo = !strcmp(o.kind, "fifo"), more = false;
		fd = open(o.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		while (fd >= 0) {
			ssize_t n = read(fd, buf, IOBUF);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = errno == EAGAIN ? 0 : -errno;
				break;
			}
			if (n == 0)
				break;
			if (fifo) {
				count += (uint64_t)n;
			} else if (records) {
				int64_t k = print_records(&pr, buf, (size_t)n);
				if (k < 0) {
					r = (int)k;
					break;
				}
				count += (uint64_t)k;
			} else {
				/* A full read is continued by the next one. */
				count += (size_t)n == IOBUF ? 0 : 1;
				more = (size_t)n == IOBUF;
			}
		}
		count += more;
	}
	if (fd >= 0)
		close(fd);
	if (r) {
		r = recv_error(&o, -r, 0, count);
	} else {
		printf("%" PRIu64 "\n", count);
		r = fflush(stdout) ? fail(errno, "stdout") : RC_OK;
	}
out:
	free(buf);
	obj_fini(&o);
	return r;
}

/* top */

static volatile sig_atomic_t top_stop;

/* SIGINT, SIGTERM, SIGHUP: end top after the current frame. */
static void top_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

/* One object's counters at the previous frame. */
struct sample {
	char *name;
	ino_t ino;
	uint64_t in, out;
};

/* Orders samples by name (qsort, bsearch). */
static int sample_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sample *)a)->name, ((const struct sample *)b)->name);
}

/* The counter top shows as IN/OUT: messages, or bytes for FIFOs. */
static void counters(const struct obj *o, uint64_t *in, uint64_t *out)
{
	bool fifo = !strcmp(o->kind, "fifo");

	*in = obj_u64(o, fifo ? "in_bytes" : "in_messages");
	*out = obj_u64(o, fifo ? "out_bytes" : "out_messages");
}

/* Formats a rate, or "-" when there is none. */
static void fmt_rate(const struct obj *o, const struct sample *prev, bool in, double dt,
		     char *buf, size_t size)
{
	uint64_t now_in, now_out, now, then;

	if (!prev || dt <= 0 || !strcmp(o->kind, "shm")) {
		snprintf(buf, size, "-");
		return;
	}
	counters(o, &now_in, &now_out);
	now = in ? now_in : now_out;
	then = in ? prev->in : prev->out;
	if (now < then) {
		snprintf(buf, size, "-"); /* counters restarted */
	} else if (!strcmp(o->kind, "fifo")) {
		char b[32];
		snprintf(buf, size, "%s", fmt_size((uint64_t)((double)(now - then) / dt), b, sizeof(b)));
	} else {
		snprintf(buf, size, "%.1f", (double)(now - then) / dt);
	}
}

/* Reads a small file (the status files) into a malloc'd string. */
static char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return NULL;
	r = slurp(fd, 1u << 20, &buf, &len);
	close(fd);
	if (r) {
		errno = -r;
		return NULL;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	{
		char *nb = realloc(buf, len + 1);
		if (!nb) {
			free(buf);
			return NULL;
		}
		buf = nb;
	}
	buf[len] = '\0';
	return buf;
}

/* Writes one frame of top into f; keeps the counters for the next. */
static int top_frame(FILE *f, const char *root, struct sample **prev, size_t *nprev,
		     double dt, int max_rows)
{
	static const char *const head[] = { "KIND", "NAME", "DEPTH", "IN/s", "OUT/s", "OPEN r/w",
					    "BLOCKED r/w" };
	struct objlist l = { 0 };
	struct table t = { .ncol = 7 };
	struct sample *cur;
	char *status_path = join(root, ".ipcfs/stats"), *status = NULL;
	uint64_t tin = 0, tout = 0, pin = 0, pout = 0;
	int r;

	if (!status_path)
		return fail(ENOMEM, "%s", root);
	status = read_text(status_path);
	if (!status) {
		r = fail(errno, "%s", status_path);
		free(status_path);
		return r;
	}
	free(status_path);
	r = collect(root, &l);
	if (r) {
		free(status);
		return r;
	}
	/* The mount-wide lines that matter at a glance. */
	for (char *line = status, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (!strncmp(line, "ipcfs ", 6) || !strncmp(line, "objects:", 8) ||
		    !strncmp(line, "memory:", 7) || !strncmp(line, "queued:", 7) ||
		    !strncmp(line, "open:", 5) ||
		    (!strncmp(line, "database errors:", 16) && !strstr(line, "none")))
			fprintf(f, "%s\n", line);
	}
	free(status);
	cur = calloc(l.n ? l.n : 1, sizeof(*cur));
	if (!cur) {
		objlist_free(&l);
		return fail(ENOMEM, "%s", root);
	}
	table_row(&t, head);
	for (size_t i = 0; i < l.n; i++) {
		const struct obj *o = &l.v[i];
		struct sample key = { .name = o->name }, *p;
		char depth[64], rin[32], rout[32], open[32], blocked[32];
		const char *row[7] = { o->kind, o->name, depth, rin, rout, open, blocked };
		p = *nprev ? bsearch(&key, *prev, *nprev, sizeof(key), sample_cmp) : NULL;
		if (p && p->ino != o->st.st_ino)
			p = NULL;
		depth_of(o, depth, sizeof(depth));
		fmt_rate(o, p, true, dt, rin, sizeof(rin));
		fmt_rate(o, p, false, dt, rout, sizeof(rout));
		if (!strcmp(o->kind, "shm")) {
			snprintf(open, sizeof(open), "-");
			snprintf(blocked, sizeof(blocked), "-");
		} else {
			snprintf(open, sizeof(open), "%" PRIu64 "/%" PRIu64, obj_u64(o, "readers"),
				 obj_u64(o, "writers"));
			snprintf(blocked, sizeof(blocked), "%" PRIu64 "/%" PRIu64,
				 obj_u64(o, "blocked_readers"), obj_u64(o, "blocked_writers"));
		}
		cur[i].name = o->name;
		cur[i].ino = o->st.st_ino;
		counters(o, &cur[i].in, &cur[i].out);
		if (strcmp(o->kind, "fifo") && strcmp(o->kind, "shm")) {
			tin += cur[i].in;
			tout += cur[i].out;
			if (p) {
				pin += p->in;
				pout += p->out;
			} else {
				pin += cur[i].in;
				pout += cur[i].out;
			}
		}
		if (max_rows <= 0 || (int)i < max_rows)
			table_row(&t, row);
	}
	if (dt > 0 && *nprev)
		fprintf(f, "rates: %.1f messages/s in, %.1f out (FIFOs: bytes/s)\n",
			tin >= pin ? (double)(tin - pin) / dt : 0.0,
			tout >= pout ? (double)(tout - pout) / dt : 0.0);
	fputc('\n', f);
	table_print(f, &t, 1u << 3 | 1u << 4);
	if (max_rows > 0 && l.n > (size_t)max_rows)
		fprintf(f, "... %zu more\n", l.n - (size_t)max_rows);
	r = t.oom ? fail(ENOMEM, "%s", root) : l.rc;
	table_free(&t);
	/* The samples take the names over from the list, sorted for bsearch. */
	for (size_t i = 0; i < *nprev; i++)
		free((*prev)[i].name);
	free(*prev);
	for (size_t i = 0; i < l.n; i++)
		l.v[i].name = NULL;
	qsort(cur, l.n, sizeof(*cur), sample_cmp);
	*prev = cur;
	*nprev = l.n;
	objlist_free(&l);
	return r;
}

/* ipcctl top [MOUNT] [--once] [--interval S]: frames until q, a signal or
 * --once; on a terminal, redrawn in place with the cursor hidden. */
static int cmd_top(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "once", no_argument, NULL, '1' },
		{ "interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double interval = 1;
	bool once = false, tty, kbd;
	struct sample *prev = NULL;
	size_t nprev = 0;
	struct termios saved;
	struct timespec last = { 0, 0 };
	char *root;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h1i:", lo, NULL)) != -1) {
		if ((r = common_opt(c, argv)) >= 0)
			return r;
		if (c == '1')
			once = true;
		else if (parse_seconds(optarg, &interval) || interval < 0.05)
			return usage_error("--interval takes seconds, at least 0.05, not '%s'", optarg);
	}
	if ((r = operands(argc, 0, 1)) >= 0)
		return r;
	root = find_root(optind < argc ? argv[optind] : ".");
	if (!root) {
		if (errno == ENOENT && access(optind < argc ? argv[optind] : ".", F_OK) == 0) {
			say("%s is not inside an ipcfs mount (no .ipcfs directory above it)",
			    optind < argc ? argv[optind] : "the current directory");
			return RC_USAGE;
		}
		return fail(errno, "%s", optind < argc ? argv[optind] : ".");
	}
	tty = !once && isatty(STDOUT_FILENO);
	kbd = tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (!once) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = top_signal;
		sa.sa_flags = SA_RESTART; /* only the wait between frames sees EINTR */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	if (kbd) {
		struct termios raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	if (tty)
		fputs("\033[?25l", stdout); /* hide the cursor */
	r = RC_OK;
	for (bool first = true; !top_stop; first = false) {
		struct timespec now;
		char *frame = NULL;
		size_t flen = 0;
		FILE *f;
		double dt;
		int rows = 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		dt = first ? 0 : (double)(now.tv_sec - last.tv_sec) +
					 (double)(now.tv_nsec - last.tv_nsec) / 1e9;
		last = now;
		if (tty) {
			struct winsize ws;
			if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 12)
				rows = ws.ws_row - 10;
		}
		f = open_memstream(&frame, &flen);
		if (!f) {
			r = fail(errno, "memory");
			break;
		}
		r = top_frame(f, root, &prev, &nprev, dt, rows);
		fclose(f);
		if (r && r != RC_PERM) {
			free(frame);
			break;
		}
		if (!once || !first) {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			fwrite(frame, 1, flen, stdout);
			if (!tty && !once)
				fputc('\n', stdout);
			fflush(stdout);
		}
		free(frame);
		if (once && !first)
			break;
		/* Sleep for the interval; a 'q' on the terminal ends top. */
		{
			struct deadline d;
			deadline_init(&d, interval);
			while (!top_stop) {
				struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
				int ms = deadline_ms(&d), k;
				if (ms == 0)
					break;
				k = poll(&p, kbd ? 1 : 0, ms);
				if (k > 0) {
					char ch;
					if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
						top_stop = 1;
				}
			}
		}
	}
	if (tty)
		fputs("\033[?25h", stdout);
	if (kbd)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	for (size_t i = 0; i < nprev; i++)
		free(prev[i].name);
	free(prev);
	free(root);
	fflush(stdout);
	return r;
}

/* --- the command table and main --- */

static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "create", cmd_create,
	  "KIND PATH [--framing F] [--max-messages N] [--max-bytes N] [--size N]\n"
	  "         [--value N] [--retain N] [--overflow drop|block] [--undo] [--latched] [--mode MODE]",
	  "Creates an object (open(2) with O_CREAT|O_EXCL) and applies its settings.\n"
	  "KIND is mbox, fifo, shm, sem, event or topic; PATH must lie under that kind's\n"
	  "directory of an ipcfs mount (e.g. /mnt/ipc/mbox/app1/jobs). If a setting is\n"
	  "refused, the object is removed again.\n"
	  "\n"
	  "  --framing F         open, write, line or record (mbox, topic)\n"
	  "  --max-messages N    capacity in messages (mbox); subscriber backlog (topic)\n"
	  "  --max-bytes N       capacity in bytes (mbox, fifo), largest size (shm),\n"
	  "                      largest payload (event); K, M, G suffixes\n"
	  "  --size N            the region's size, by ftruncate (shm)\n"
	  "  --value N           the semaphore's initial value, written to it (sem)\n"
	  "  --retain N          messages kept for new subscribers (topic)\n"
	  "  --overflow P        drop (the oldest, for a slow subscriber) or block (topic)\n"
	  "  --undo              units taken come back when the taker closes (sem)\n"
	  "  --latched           the event stays set after a write until reset (event)\n"
	  "  --mode MODE         octal permission bits (default 0666 minus the umask)\n" },
	{ "ls", cmd_ls, "[DIR] [--json]",
	  "Lists every object under DIR (default: the current directory), recursively:\n"
	  "kind, name (relative to DIR), depth (messages and bytes queued, bytes, size,\n"
	  "value, set/clear, subscribers: whichever applies), limits, owner and mode.\n"
	  "\n"
	  "  --json              a JSON array with every setting and statistic\n" },
	{ "stat", cmd_stat, "PATH [--json]",
	  "Shows an object's owner, mode and every user.ipcfs.* setting and statistic.\n"
	  "\n"
	  "  --json              one JSON object: path, kind, uid, gid, owner, group,\n"
	  "                      mode, size, mtime, settings {...}, statistics {...}\n" },
	{ "set", cmd_set, "PATH KEY VALUE",
	  "Changes a setting (setxattr user.ipcfs.KEY): framing, max_messages,\n"
	  "max_bytes, undo, latched, retain, overflow, value. Only the owner or root\n"
	  "may; a bad value (exit 2) changes nothing.\n" },
	{ "send", cmd_send, "PATH [FILE|-]",
	  "Sends FILE (default: standard input) as one message. Open framing: one\n"
	  "open, the bytes, one close; write framing, events and semaphores: one\n"
	  "write(2); line and record framing and FIFOs: the bytes as given (each line\n"
	  "or record is then a message). A full mailbox makes send wait for room.\n" },
	{ "recv", cmd_recv, "PATH [--timeout S] [--count N] [--raw]",
	  "Receives messages from a mailbox or a topic (a new subscription) and prints\n"
	  "them, each followed by a newline if it does not end in one; from a FIFO,\n"
	  "prints the stream up to its end.\n"
	  "\n"
	  "  --count N           N messages (default 1); 0: until --timeout passes with\n"
	  "                      no message (or forever)\n"
	  "  --timeout S         give up when no message comes for S seconds (exit 5)\n"
	  "  --raw               print the messages' bytes only, no added newlines\n"
	  "In record framing one read returns a batch of records: all of the batch is\n"
	  "printed, even beyond N, since those records are already taken.\n" },
	{ "wait", cmd_wait, "PATH [--timeout S]",
	  "Event: waits for its next firing (or a latched one) and prints its payload.\n"
	  "Semaphore: takes one unit (P), waiting while there is none; prints nothing.\n"
	  "\n"
	  "  --timeout S         give up after S seconds (exit 5)\n" },
	{ "drain", cmd_drain, "PATH",
	  "Reads and discards everything queued, without waiting (O_NONBLOCK), and\n"
	  "prints how much: messages (mbox), bytes (fifo) or units (sem, undo=0).\n" },
	{ "top", cmd_top, "[MOUNT] [--once] [--interval S]",
	  "A live view of every object of the mount holding MOUNT (default: the current\n"
	  "directory): depth, messages in and out per second (FIFOs: bytes), open and\n"
	  "blocked readers/writers, with the mount-wide figures of /.ipcfs/stats.\n"
	  "q or Ctrl-C quits.\n"
	  "\n"
	  "  --once              print one frame (rates over one interval) and exit\n"
	  "  --interval S        seconds between frames (default 1)\n" },
	{ "help", cmd_help, "[COMMAND]", "Shows the help of ipcctl or of one command.\n" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The tool's help: the commands and the exit codes. */
static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ipcctl COMMAND [ARGS...]\n"
		"\n"
		"Manages the objects of an ipcfs mount through plain files and user.ipcfs.*\n"
		"extended attributes.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-7s %s\n", cmds[i].name, strchr(cmds[i].synopsis, '\n')
				? "KIND PATH [settings...]" : cmds[i].synopsis);
	fprintf(f,
		"\n"
		"'ipcctl COMMAND --help' shows a command's options.\n"
		"Exit status: 0 ok, 1 error, 2 bad arguments, 3 not found, 4 permission\n"
		"denied, 5 timeout.\n");
}

/* The command called name, or NULL. */
static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

/* ipcctl help [COMMAND]. */
static int cmd_help(int argc, char **argv)
{
	const struct cmd *c;
	int r, ch;
	static const struct option lo[] = { { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };

	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1)
		if ((r = common_opt(ch, argv)) >= 0)
			return r;
	if ((r = operands(argc, 0, 1)) >= 0)
		return r;
	if (optind == argc) {
		usage(stdout);
		return RC_OK;
	}
	c = find_cmd(argv[optind]);
	if (!c)
		return usage_error("unknown command '%s'", argv[optind]);
	cmd_usage(c, stdout);
	return RC_OK;
}

/* Dispatches to the command named by argv[1]; its return is the exit code. */
int main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		usage(stderr);
		return RC_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return RC_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("ipcctl %s\n", IPCFS_VERSION);
		return RC_OK;
	}
	c = find_cmd(argv[1]);
	if (!c) {
		fprintf(stderr, "ipcctl: unknown command '%s'\nTry 'ipcctl --help'.\n", argv[1]);
		return RC_USAGE;
	}
	current = c;
	snprintf(cmd_name, sizeof(cmd_name), "ipcctl %s", c->name);
	opterr = 0;
	return c->run(argc - 1, argv + 1);
}
