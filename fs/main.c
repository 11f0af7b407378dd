/* main.c - the ipcfs daemon: options, database, mount, loop, clean exit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
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
		"  --max-memory BYTES payload bytes held in memory (default: a quarter of RAM,\n"
		"                     at least 1G; K/M/G suffixes)\n"
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
	{
		/* Payload memory: a quarter of RAM, at least 1 GiB. */
		long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
		if (pages > 0 && psize > 0 && (uint64_t)pages * (uint64_t)psize / 4 > o->lim.max_memory)
			o->lim.max_memory = (uint64_t)pages * (uint64_t)psize / 4;
	}
	opterr = 0;
	/* Options may follow the operands: mount.fuse3 runs
	 * `ipcfs ipcfs MOUNTPOINT -o OPTS` for `mount -t fuse.ipcfs`. */
	while ((c = getopt_long(argc, argv, ":fdo:hV", longopts, NULL)) != -1) {
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
		case ':':
			fprintf(stderr, "ipcfs: option '%s' needs an argument\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "ipcfs: unknown option '%s'\n", argv[optind - 1]);
			return 2;
		}
	}
	/* A source operand (fstab's first field) may come first: "ipcfs". */
	if (argc - optind == 2 && (!strcmp(argv[optind], "ipcfs") || !strcmp(argv[optind], "none")))
		optind++;
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

/* Finds the mount's device (MAJ:MIN) in /proc/self/mountinfo. */
static int mount_dev(const char *mnt, char *dev, size_t devlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[PATH_MAX], mm[64];
	int found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char unesc[PATH_MAX];
		size_t j = 0;
		if (sscanf(line, "%*s %*s %63s %*s %4095s", mm, mp) != 2)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as \ooo */
		for (size_t i = 0; mp[i] && j + 1 < sizeof(unesc); i++) {
			if (mp[i] == '\\' && mp[i + 1] && mp[i + 2] && mp[i + 3]) {
				unesc[j++] = (char)((mp[i + 1] - '0') * 64 + (mp[i + 2] - '0') * 8 +
						    (mp[i + 3] - '0'));
				i += 3;
			} else {
				unesc[j++] = mp[i];
			}
		}
		unesc[j] = '\0';
		if (strcmp(unesc, mnt) == 0) {
			snprintf(dev, devlen, "%s", mm);
			found = 0; /* keep the last: the newest mount on that path */
		}
	}
	fclose(f);
	return found;
}

static int write_sys(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Mapped writes into a FUSE file are throttled by the mount's writeback
 * device (strict_limit, max_ratio 1%): lift that so regions run at memory
 * speed, and read ahead in 1 MiB requests for first touches. Root only. */
static void tune_bdi(struct fs *fs, const char *mnt)
{
	char dev[64], dir[PATH_MAX];
	int r;

	if (mount_dev(mnt, dev, sizeof(dev))) {
		fprintf(stderr, "ipcfs: cannot find %s in /proc/self/mountinfo; regions keep the default writeback limits\n",
			mnt);
		return;
	}
	snprintf(dir, sizeof(dir), "/sys/class/bdi/%s", dev);
	r = write_sys(dir, "strict_limit", "0");
	if (!r)
		r = write_sys(dir, "max_ratio", "100");
	if (r) {
		fprintf(stderr,
			"ipcfs: cannot tune writeback device %s (%s): writes into mapped regions will be\n"
			"ipcfs: about 100x slower than /dev/shm; run as root to lift the FUSE dirty-page limit\n",
			dir, strerror(-r));
		return;
	}
	r = write_sys(dir, "read_ahead_kb", "1024");
	fs_log(fs, "tuned writeback device %s: strict_limit=0 max_ratio=100 read_ahead_kb=1024%s",
	       dir, r ? " (read_ahead_kb not set)" : "");
}

/* --- signals: SIGTERM, SIGINT and SIGHUP end the daemon cleanly --- */

struct sigctl {
	struct fs *fs;
	const char *mnt;
	pthread_t main_thread, thread;
	atomic_bool done;
};

static void nop_handler(int sig)
{
	(void)sig;
}

/* syncfs() starts the writeback of dirty mapped pages but does not wait for
 * FUSE's answers; invalidating a region's cached pages writes its dirty pages
 * back synchronously (the loop still serves the WRITEs). */
static void writeback_regions(struct fs *fs)
{
	size_t n = store_ids_of_kind(fs->st, IPC_KIND_SHM, NULL, 0), got;
	uint64_t *ids;

	if (!n)
		return;
	ids = calloc(n, sizeof(*ids));
	if (!ids)
		return;
	got = store_ids_of_kind(fs->st, IPC_KIND_SHM, ids, n);
	for (size_t i = 0; i < got && i < n; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, ids[i], 0, 0); /* -ENOENT: not cached */
	free(ids);
}

/* Waits for a signal; then, while the loop still serves, asks the kernel to
 * write back dirty mapped region pages (syncfs), and only then ends the
 * loop: nothing a program stored in a region before the signal is lost. */
static void *signal_thread(void *arg)
{
	struct sigctl *sc = arg;
	sigset_t set;
	int sig, fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) || atomic_load(&sc->done))
		return NULL;
	fs_log(sc->fs, "signal %d: writing back and unmounting", sig);
	fd = open(sc->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0)
		fprintf(stderr, "ipcfs: cannot write back mapped regions before exit: %s\n",
			strerror(errno));
	if (fd >= 0)
		close(fd);
	writeback_regions(sc->fs);
	fuse_session_exit(sc->fs->se);
	/* Interrupt the loop's read of /dev/fuse (or the MT loop's wait). */
	pthread_kill(sc->main_thread, SIGUSR1);
	return NULL;
}

static int signals_start(struct sigctl *sc)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = nop_handler; /* no SA_RESTART: the read returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sc->main_thread = pthread_self();
	return pthread_create(&sc->thread, NULL, signal_thread, sc) ? -1 : 0;
}

static void signals_stop(struct sigctl *sc)
{
	atomic_store(&sc->done, true);
	pthread_kill(sc->thread, SIGTERM); /* ends its sigwait if still waiting */
	pthread_join(sc->thread, NULL);
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

static void ready(struct fs *fs, int fd)
{
	int null;

	if (fd < 0)
		return;
	openlog("ipcfs", LOG_PID, LOG_DAEMON);
	fs->syslog = true;
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
	struct sigctl sc = { 0 };
	char err[512] = "", *path = NULL, *mnt = NULL;
	int r, ready_fd = -1, status = 1;

	/* Message buffers of up to 1 MiB come and go at a high rate: keep them
	 * in the heap (glibc would mmap and unmap every one above 128 KiB, and
	 * each fresh page costs a fault), and return memory to the system only
	 * when a lot is free. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
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
	hooks.db_state = fs_db_state;
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
		fs.st->db_path = path;
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
	if (fuse_session_mount(fs.se, mnt)) {
		fprintf(stderr, "ipcfs: cannot mount on %s\n", mnt);
		goto out;
	}
	check_request_timeouts();
	tune_bdi(&fs, mnt);
	if (fs_notify_start(&fs) || (fs.persist && persist_start(fs.persist, fs.st))) {
		fprintf(stderr, "ipcfs: cannot start threads\n");
		goto out_unmount;
	}
	sc.fs = &fs;
	sc.mnt = mnt;
	if (signals_start(&sc)) {
		fprintf(stderr, "ipcfs: cannot start the signal thread\n");
		goto out_unmount;
	}
	ready(&fs, ready_fd);
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
	signals_stop(&sc);

out_unmount:
	/* Commit what is pending, then answer the requests still parked
	 * (ENOTCONN) while the session's device is open, then unmount. */
	if (fs.persist && persist_close(fs.persist)) {
		fprintf(stderr, "ipcfs: the final commit failed; recent changes may be lost\n");
		status = 1;
	}
	fs.persist = NULL;
	store_abort_waiters(fs.st);
	/* No notification may race with the unmount closing the device. */
	fs_notify_stop(&fs);
	fuse_session_unmount(fs.se);
out:
	if (fs.persist && persist_close(fs.persist)) {
		fprintf(stderr, "ipcfs: the final commit failed; recent changes may be lost\n");
		status = 1;
	}
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
