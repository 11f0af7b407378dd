/* daemon.c - ipcfs-bench: starting, waiting for, stopping the ipcfs and fuse-floor daemons. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

#define MOUNT_WAIT 60.0   /* seconds a daemon may take to mount (a big database loads first) */
#define EXIT_WAIT 120.0   /* seconds a daemon may take to exit after its unmount (final commit) */

static struct {
	const char *name;
	struct inst in;
	bool init;
} shared[] = {
	{ "memory" }, { "normal" }, { "full" }, { "floor" },
};
#define NSHARED (sizeof(shared) / sizeof(shared[0]))

/* Every instance ever started, for logs and inst_stop_all. */
static struct inst *all[16];
static int nall;

void inst_init(struct inst *in, const char *name, enum inst_kind kind)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", name);
	in->kind = kind;
	in->slot = -1;
	snprintf(in->mnt, sizeof(in->mnt), "%s/mnt-%s", cfg.tmp, name);
	snprintf(in->log, sizeof(in->log), "%s/%s.log", cfg.tmp, name);
	for (int i = 0; i < nall; i++)
		if (all[i] == in)
			return; /* re-initialised for another start */
	if (nall < (int)(sizeof(all) / sizeof(all[0])))
		all[nall++] = in;
}

void inst_arg(struct inst *in, const char *arg)
{
	if (in->nargs < 4)
		snprintf(in->args[in->nargs++], sizeof(in->args[0]), "%s", arg);
}

char *inst_path(const struct inst *in, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", in->mnt, rel);
	return buf;
}

/* The last non-empty line of the daemon's log, for error messages. */
static void log_tail(const struct inst *in, char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(in->log, "re");

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, len, "%s", line);
	}
	fclose(f);
}

static void exec_daemon(struct inst *in)
{
	char threads[16];
	char *argv[24];
	int n = 0, fd;

	setpgid(0, 0); /* a terminal's Ctrl-C reaches the bench, which unmounts in order */
	fd = open(in->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	for (int i = 0; i < in->nwrap; i++)
		argv[n++] = in->wrap[i];
	argv[n++] = in->kind == INST_FLOOR ? cfg.floor : cfg.ipcfs;
	for (int i = 0; i < in->nargs; i++)
		argv[n++] = in->args[i];
	if (cfg.threads > 1) {
		snprintf(threads, sizeof(threads), "%u", cfg.threads);
		argv[n++] = "--threads";
		argv[n++] = threads;
	}
	argv[n++] = "-f";
	argv[n++] = "-o";
	argv[n++] = "auto_unmount";
	argv[n++] = in->mnt;
	argv[n] = NULL;
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int inst_start(struct inst *in)
{
	char tail[400];
	struct stat st;
	double t0;
	int status;
	pid_t pid;

	if (mkdir(in->mnt, 0755) && errno != EEXIST) {
		snprintf(in->err, sizeof(in->err), "mkdir %s: %s", in->mnt, strerror(errno));
		return -1;
	}
	if (is_mounted(in->mnt)) {
		snprintf(in->err, sizeof(in->err), "%s is already mounted", in->mnt);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(in->err, sizeof(in->err), "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		child_after_fork(SIGTERM); /* ipcfs unmounts cleanly on SIGTERM */
		exec_daemon(in);
	}
	in->pid = pid;
	in->slot = reg_daemon(pid, in->mnt);
	t0 = now();
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			log_tail(in, tail, sizeof(tail));
			snprintf(in->err, sizeof(in->err), "%s daemon exited (%s %d) before mounting%s%s",
				 in->name, WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 tail[0] ? ": " : "", tail);
			unreg_daemon(in->slot);
			in->pid = 0;
			return -1;
		}
		if (is_mounted(in->mnt))
			break;
		if (now() - t0 > MOUNT_WAIT) {
			snprintf(in->err, sizeof(in->err), "%s daemon did not mount within %.0f s",
				 in->name, MOUNT_WAIT);
			inst_abort(in);
			return -1;
		}
		usleep(2000);
	}
	/* The first request waits for INIT: the mount answers. */
	if (stat(in->mnt, &st)) {
		snprintf(in->err, sizeof(in->err), "stat %s: %s", in->mnt, strerror(errno));
		inst_abort(in);
		return -1;
	}
	return 0;
}

/* Waits up to secs for the daemon to exit; its status or -1. */
static int wait_exit(struct inst *in, double secs)
{
	double t0 = now();
	int status;

	while (now() - t0 < secs) {
		pid_t r = waitpid(in->pid, &status, WNOHANG);
		if (r == in->pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(5000);
	}
	return -2;
}

static void forget(struct inst *in)
{
	unreg_daemon(in->slot);
	in->slot = -1;
	in->pid = 0;
}

int inst_stop(struct inst *in)
{
	char *umount[] = { cfg.fusermount, "-u", in->mnt, NULL };
	char *lazy[] = { cfg.fusermount, "-u", "-z", in->mnt, NULL };
	int r = -1;

	if (!in->pid)
		return 0;
	for (int i = 0; i < 50 && is_mounted(in->mnt); i++) {
		if (run_cmd(umount) == 0)
			break;
		usleep(100000); /* busy: a run process may still be closing its files */
	}
	if (is_mounted(in->mnt)) {
		progress("%s: fusermount3 -u failed; unmounting lazily", in->name);
		run_cmd(lazy);
	}
	r = wait_exit(in, EXIT_WAIT);
	if (r == -2) {
		progress("%s: daemon still running %.0f s after its unmount; SIGTERM", in->name,
			 EXIT_WAIT);
		kill(in->pid, SIGTERM);
		r = wait_exit(in, 10);
		if (r == -2) {
			kill(in->pid, SIGKILL);
			r = wait_exit(in, 10);
		}
	}
	if (r != 0)
		progress("%s: daemon exit status %d", in->name, r);
	forget(in);
	return r == 0 ? 0 : -1;
}

void inst_abort(struct inst *in)
{
	char *lazy[] = { cfg.fusermount, "-u", "-z", in->mnt, NULL };

	if (!in->pid)
		return;
	progress("%s: aborting the daemon (lazy unmount, SIGKILL)", in->name);
	run_cmd(lazy);
	kill(in->pid, SIGKILL);
	wait_exit(in, 10);
	forget(in);
}

struct inst *inst_shared(const char *name, const char **err)
{
	char db[256];

	for (size_t i = 0; i < NSHARED; i++) {
		struct inst *in = &shared[i].in;
		if (strcmp(shared[i].name, name))
			continue;
		if (!shared[i].init) {
			shared[i].init = true;
			inst_init(in, name, strcmp(name, "floor") ? INST_IPCFS : INST_FLOOR);
			snprintf(db, sizeof(db), "%s/%s.db", cfg.tmp, in->name);
			if (strcmp(name, "memory") == 0) {
				inst_arg(in, "--memory");
			} else if (in->kind == INST_IPCFS) {
				inst_arg(in, "--db");
				inst_arg(in, db);
				inst_arg(in, "--sync");
				inst_arg(in, name);
			}
		}
		if (in->failed) {
			*err = in->err;
			return NULL;
		}
		if (!in->pid) {
			progress("starting %s (%s)", in->kind == INST_FLOOR ? "fuse-floor" : "ipcfs",
				 name);
			if (inst_start(in)) {
				in->failed = true;
				progress("%s", in->err);
				*err = in->err;
				return NULL;
			}
		}
		return in;
	}
	*err = "no such instance";
	return NULL;
}

void inst_stop_all(void)
{
	for (int i = 0; i < nall; i++)
		if (all[i]->pid)
			inst_stop(all[i]);
}

void inst_print_logs(FILE *out)
{
	for (int i = 0; i < nall; i++) {
		char line[512];
		int shown = 0;
		FILE *f = fopen(all[i]->log, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (line[0] == '\n')
				continue;
			if (shown++ == 0)
				fprintf(out, "ipcfs-bench: the %s daemon wrote:\n", all[i]->name);
			if (shown <= 8)
				fprintf(out, "  %s", line);
		}
		if (shown > 8)
			fprintf(out, "  ... (%d lines)\n", shown);
		fclose(f);
	}
}
