/* main.c - the ipcfs daemon: options, database, mount, loop, clean exit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/fs.h"
#include "ipcfs-config.h"

struct options {
	const char *db;
	bool memory;
	enum ipc_sync sync;
	bool foreground;
	bool debug;
	unsigned threads;
	const char *mountpoint;
	struct ipc_limits lim;
	char *fuse_opts; /* comma-separated, for libfuse */
	char *db_owned;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ipcfs [options] MOUNTPOINT\n"
		"\n"
		"Mounts a tree where mailboxes (mbox/), persistent FIFOs (fifo/) and the\n"
		"other IPC objects are files, persisted in an embedded SQLite database.\n"
		"\n"
		"Options:\n"
		"  --db PATH          database file (default: $XDG_STATE_HOME/ipcfs/ipcfs.db,\n"
		"                     or /var/lib/ipcfs/ipcfs.db when run as root)\n"
		"  --memory           keep everything in memory; no database\n"
		"  --sync MODE        normal (default): committed within %d ms, fsync waits;\n"
		"                     full: every write is acknowledged after its commit\n"
		"  --max-memory BYTES payload bytes held in memory (default 1G; K/M/G suffixes)\n"
		"  --max-objects N    objects and directories (default 1000000)\n"
		"  --threads N        FUSE worker threads; 1 = single-threaded loop (default)\n"
		"  -f                 stay in the foreground\n"
		"  -d                 debug log on stderr (implies -f)\n"
		"  -o OPT[,OPT...]    mount options (allow_other, auto_unmount, ...); also\n"
		"                     db=PATH, memory, sync=MODE (for mount -t fuse.ipcfs)\n"
		"  -h, --help         this help\n"
		"  -V, --version      version\n"
		"\n"
		"Unmount with: fusermount3 -u MOUNTPOINT (or umount, or SIGTERM).\n",
		IPC_COMMIT_WINDOW_MS);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end || v == 0)
		return -1;
	*out = v;
	return 0;
}

static int parse_sync(const char *s, enum ipc_sync *out)
{
	if (strcmp(s, "normal") == 0)
		*out = IPC_SYNC_NORMAL;
	else if (strcmp(s, "full") == 0)
		*out = IPC_SYNC_FULL;
	else
		return -1;
	return 0;
}

static int add_fuse_opt(struct options *o, const char *opt)
{
	size_t len = o->fuse_opts ? strlen(o->fuse_opts) : 0;
	char *n = realloc(o->fuse_opts, len + strlen(opt) + 2);

	if (!n)
		return -1;
	if (len)
		n[len++] = ',';
	strcpy(n + len, opt);
	o->fuse_opts = n;
	return 0;
}

/* Takes ipcfs's own keys out of a -o list; the rest go to libfuse. */
static int parse_o(struct options *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int r = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "db=", 3) == 0)
			o->db = o->db_owned = strdup(tok + 3);
		else if (strcmp(tok, "memory") == 0)
			o->memory = true;
		else if (strncmp(tok, "sync=", 5) == 0)
			r = parse_sync(tok + 5, &o->sync);
		else if (strncmp(tok, "threads=", 8) == 0)
			o->threads = (unsigned)atoi(tok + 8);
		else if (strcmp(tok, "default_permissions") == 0)
			; /* always on */
		else
			r = add_fuse_opt(o, tok);
	}
	free(copy);
	return r;
}

/* Returns 0, 1 (exit 0: help/version printed), 2 (usage error). */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'D' },
		{ "memory", no_argument, NULL, 'M' },
		{ "sync", required_argument, NULL, 'S' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "max-objects", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->sync = IPC_SYNC_NORMAL;
	o->threads = 1;
	store_default_limits(&o->lim);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+fdo:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': o->db = optarg; break;
		case 'M': o->memory = true; break;
		case 'S':
			if (parse_sync(optarg, &o->sync)) {
				fprintf(stderr, "ipcfs: --sync takes full or normal, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'm':
			if (parse_size(optarg, &o->lim.max_memory)) {
				fprintf(stderr, "ipcfs: bad --max-memory '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			if (parse_size(optarg, &o->lim.max_nodes)) {
				fprintf(stderr, "ipcfs: bad --max-objects '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			o->threads = (unsigned)atoi(optarg);
			if (o->threads < 1 || o->threads > 64) {
				fprintf(stderr, "ipcfs: --threads takes 1..64\n");
				return 2;
			}
			break;
		case 'f': o->foreground = true; break;
		case 'd': o->debug = o->foreground = true; break;
		case 'o':
			if (parse_o(o, optarg)) {
				fprintf(stderr, "ipcfs: bad -o option '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 1;
		case 'V': printf("ipcfs %s\n", IPCFS_VERSION); return 1;
		default:
			fprintf(stderr, "ipcfs: unknown option '%s'\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, optind >= argc ? "ipcfs: no mount point given\n"
					      : "ipcfs: too many arguments\n");
		return 2;
	}
	o->mountpoint = argv[optind];
	if (o->threads < 1 || o->threads > 64) {
		fprintf(stderr, "ipcfs: threads takes 1..64\n");
		return 2;
	}
	return 0;
}

/* mkdir -p for the directory part of path. */
static int make_parents(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* The database path, absolute (the daemon changes directory). */
static char *db_path(const struct options *o)
{
	char buf[PATH_MAX * 2 + 2], cwd[PATH_MAX];
	const char *base;

	if (o->db) {
		if (o->db[0] == '/')
			return strdup(o->db);
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		snprintf(buf, sizeof(buf), "%s/%s", cwd, o->db);
		return strdup(buf);
	}
	if (geteuid() == 0) {
		snprintf(buf, sizeof(buf), "/var/lib/ipcfs/ipcfs.db");
	} else if ((base = getenv("XDG_STATE_HOME")) && base[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/ipcfs/ipcfs.db", base);
	} else if ((base = getenv("HOME")) && base[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/.local/state/ipcfs/ipcfs.db", base);
	} else {
		return NULL;
	}
	return strdup(buf);
}

static void check_request_timeouts(void)
{
	const char *files[] = { "/proc/sys/fs/fuse/default_request_timeout",
				"/proc/sys/fs/fuse/max_request_timeout" };

	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		unsigned long v = 0;
		if (!f)
			continue;
		if (fscanf(f, "%lu", &v) == 1 && v)
			fprintf(stderr,
				"ipcfs: warning: %s is %lu: a read blocked longer than that aborts the whole mount\n",
				files[i], v);
		fclose(f);
	}
}

/* Forks; the parent waits until the child reports the mount ready (exit 0)
 * or fails (the child's exit status). Returns the fd to report on. */
static int background(void)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("ipcfs: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("ipcfs: fork");
		exit(1);
	}
	if (pid > 0) {
		int status = 1;
		close(pfd[1]);
		if (read(pfd[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		_exit(1);
	}
	close(pfd[0]);
	setsid();
	return pfd[1];
}

static void ready(int fd)
{
	int null;

	if (fd < 0)
		return;
	if (write(fd, "", 1) != 1)
		perror("ipcfs: ready");
	close(fd);
	if (chdir("/") < 0)
		perror("ipcfs: chdir");
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct ipc_store_hooks hooks;
	struct fs fs = { 0 };
	char err[512] = "", *path = NULL, *mnt = NULL;
	int r, ready_fd = -1, status = 1;

	r = parse_args(argc, argv, &o);
	if (r == 1)
		return 0;
	if (r) {
		fprintf(stderr, "Try 'ipcfs --help'.\n");
		return 2;
	}
	mnt = realpath(o.mountpoint, NULL);
	if (!mnt) {
		fprintf(stderr, "ipcfs: mount point %s: %s\n", o.mountpoint, strerror(errno));
		return 1;
	}
	if (!o.foreground)
		ready_fd = background();

	pthread_mutex_init(&fs.notify_lock, NULL);
	pthread_cond_init(&fs.notify_cv, NULL);
	fs.debug = o.debug;
	hooks.poll_wake = fs_poll_wake;
	hooks.handle_gone = fs_handle_gone;
	hooks.ctx = &fs;
	if (store_new(&o.lim, o.memory ? IPC_SYNC_MEMORY : o.sync, &hooks, &fs.st)) {
		fprintf(stderr, "ipcfs: out of memory\n");
		goto out;
	}
	if (!o.memory) {
		path = db_path(&o);
		if (!path) {
			fprintf(stderr, "ipcfs: no database path (set --db, or HOME)\n");
			goto out;
		}
		if (!o.db && make_parents(path, 0700) < 0) {
			fprintf(stderr, "ipcfs: cannot create the directory of %s: %s\n", path,
				strerror(errno));
			goto out;
		}
		r = persist_open(path, o.sync, &fs.persist, err, sizeof(err));
		if (!r)
			r = persist_load(fs.persist, fs.st, err, sizeof(err));
		if (r) {
			fprintf(stderr, "ipcfs: %s\n", err);
			goto out;
		}
		fs_log(&fs, "database %s (sync %s)", path, o.sync == IPC_SYNC_FULL ? "full" : "normal");
	}

	if (fuse_opt_add_arg(&args, argv[0]) ||
	    fuse_opt_add_arg(&args, "-odefault_permissions,fsname=ipcfs,subtype=ipcfs") ||
	    (o.fuse_opts && (fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, o.fuse_opts))) ||
	    (o.debug && fuse_opt_add_arg(&args, "-odebug"))) {
		fprintf(stderr, "ipcfs: out of memory\n");
		goto out;
	}
	fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!fs.se) {
		fprintf(stderr, "ipcfs: cannot start FUSE (bad -o option?)\n");
		goto out;
	}
	if (fuse_set_signal_handlers(fs.se)) {
		fprintf(stderr, "ipcfs: cannot set signal handlers\n");
		goto out;
	}
	if (fuse_session_mount(fs.se, mnt)) {
		fprintf(stderr, "ipcfs: cannot mount on %s\n", mnt);
		goto out_handlers;
	}
	check_request_timeouts();
	if (fs_notify_start(&fs) || (fs.persist && persist_start(fs.persist, fs.st))) {
		fprintf(stderr, "ipcfs: cannot start threads\n");
		goto out_unmount;
	}
	ready(ready_fd);
	ready_fd = -1;

	if (o.threads > 1) {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(cfg, o.threads);
		r = fuse_session_loop_mt(fs.se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else {
		r = fuse_session_loop(fs.se);
	}
	status = r < 0 ? 1 : 0;
	fs_log(&fs, "loop ended (%d); unmounting", r);

out_unmount:
	fuse_session_unmount(fs.se);
out_handlers:
	fuse_remove_signal_handlers(fs.se);
out:
	if (fs.persist && persist_close(fs.persist)) {
		fprintf(stderr, "ipcfs: the final commit failed; recent changes may be lost\n");
		status = 1;
	}
	/* Parked requests are answered (ENOTCONN) before the session goes. */
	store_free(fs.st);
	fs_notify_stop(&fs);
	if (fs.se)
		fuse_session_destroy(fs.se);
	fuse_opt_free_args(&args);
	pthread_mutex_destroy(&fs.notify_lock);
	pthread_cond_destroy(&fs.notify_cv);
	free(o.fuse_opts);
	free(o.db_owned);
	free(path);
	free(mnt);
	if (ready_fd >= 0)
		close(ready_fd);
	return status;
}
