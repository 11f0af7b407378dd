/* cleanup.c - ipcfs-bench: what must be undone on any way out, from a signal handler too. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

/*
 * A registry of everything the benchmark started or changed: run processes,
 * daemons and their mount points, /dev/shm files, message queues, sysctls.
 * The normal paths unregister what they undo themselves; on SIGINT, SIGTERM,
 * SIGHUP or SIGQUIT the handler undoes the rest using only async-signal-safe
 * calls (kill, fork, execve, waitpid, nanosleep, open, write, unlink) and
 * exits. Processes we started also die with us (PR_SET_PDEATHSIG: run
 * processes by SIGKILL, daemons by SIGTERM, on which they unmount), and the
 * mounts carry auto_unmount: nothing outlives even a SIGKILL of the bench.
 */

#define MAX_WORKERS 256
#define MAX_DAEMONS 8
#define MAX_PATHS 8
#define MAX_SYSCTL 4

static volatile pid_t workers[MAX_WORKERS];
static struct {
	volatile pid_t pid;
	char mnt[PATH_MAX];
} daemons[MAX_DAEMONS];
static struct {
	volatile int used;
	char path[PATH_MAX];
} paths[MAX_PATHS], mqs[MAX_PATHS];
static struct {
	volatile int used;
	char path[128], old[64];
} sysctls[MAX_SYSCTL];
static volatile sig_atomic_t cleaning;

void reg_worker(pid_t pid)
{
	for (int i = 0; i < MAX_WORKERS; i++)
		if (!workers[i]) {
			workers[i] = pid;
			return;
		}
}

void unreg_worker(pid_t pid)
{
	for (int i = 0; i < MAX_WORKERS; i++)
		if (workers[i] == pid)
			workers[i] = 0;
}

int reg_daemon(pid_t pid, const char *mnt)
{
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (!daemons[i].pid) {
			snprintf(daemons[i].mnt, sizeof(daemons[i].mnt), "%s", mnt);
			daemons[i].pid = pid;
			return i;
		}
	return -1;
}

void unreg_daemon(int slot)
{
	if (slot >= 0 && slot < MAX_DAEMONS)
		daemons[slot].pid = 0;
}

static void reg_in(typeof(paths) *tab, const char *s)
{
	for (int i = 0; i < MAX_PATHS; i++)
		if (!(*tab)[i].used) {
			snprintf((*tab)[i].path, sizeof((*tab)[i].path), "%s", s);
			(*tab)[i].used = 1;
			return;
		}
}

static void unreg_in(typeof(paths) *tab, const char *s)
{
	for (int i = 0; i < MAX_PATHS; i++)
		if ((*tab)[i].used && strcmp((*tab)[i].path, s) == 0)
			(*tab)[i].used = 0;
}

void reg_path(const char *path) { reg_in(&paths, path); }
void unreg_path(const char *path) { unreg_in(&paths, path); }
void reg_mq(const char *name) { reg_in(&mqs, name); }
void unreg_mq(const char *name) { unreg_in(&mqs, name); }

int sysctl_raise(const char *path, long val)
{
	char old[64], buf[64];
	int r, i;

	r = read_text(path, old, sizeof(old));
	if (r)
		return r;
	if (strtol(old, NULL, 10) >= val)
		return 0;
	for (i = 0; i < MAX_SYSCTL && sysctls[i].used; i++)
		;
	if (i == MAX_SYSCTL)
		return -ENOSPC;
	snprintf(sysctls[i].path, sizeof(sysctls[i].path), "%s", path);
	snprintf(sysctls[i].old, sizeof(sysctls[i].old), "%s", old);
	snprintf(buf, sizeof(buf), "%ld", val);
	r = write_text(path, buf);
	if (!r)
		sysctls[i].used = 1;
	return r;
}

/* Async-signal-safe. */
static void restore_sysctls(void)
{
	for (int i = 0; i < MAX_SYSCTL; i++) {
		int fd;
		if (!sysctls[i].used)
			continue;
		fd = open(sysctls[i].path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = write(fd, sysctls[i].old, strlen(sysctls[i].old));
			(void)n; /* nothing better to do on failure */
			close(fd);
		}
		sysctls[i].used = 0;
	}
}

void sysctl_restore_all(void)
{
	restore_sysctls();
}

void child_after_fork(int deathsig)
{
	struct sigaction sa;
	sigset_t set;
	pid_t parent = getppid();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent) /* the bench died meanwhile */
		_exit(1);
}

/* --- the handler (async-signal-safe only) --- */

static void say(const char *s)
{
	ssize_t n = write(2, s, strlen(s));

	(void)n; /* nowhere to report a failure */
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits up to ms for pid; true when it was reaped (or is not our child). */
static bool reap_within(pid_t pid, long ms)
{
	for (long t = 0; t <= ms; t += 10) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		nap_ms(10);
	}
	return false;
}

static void unmount_lazy(const char *mnt)
{
	char *argv[] = { cfg.fusermount, "-u", "-z", (char *)mnt, NULL };
	char *envp[] = { NULL };
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (pid > 0)
		reap_within(pid, 5000);
}

static void on_signal(int sig)
{
	char *rm[] = { "/bin/rm", "-rf", "--one-file-system", cfg.tmp, NULL };
	char *envp[] = { NULL };
	pid_t pid = -1;

	if (cleaning)
		return;
	cleaning = 1;
	say("\nipcfs-bench: signal received; stopping processes, unmounting, cleaning up\n");
	for (int i = 0; i < MAX_WORKERS; i++)
		if (workers[i] > 0)
			kill(workers[i], SIGKILL);
	for (int i = 0; i < MAX_WORKERS; i++)
		if (workers[i] > 0)
			reap_within(workers[i], 2000);
	for (int i = 0; i < MAX_DAEMONS; i++) {
		pid_t d = daemons[i].pid;
		if (d <= 0)
			continue;
		unmount_lazy(daemons[i].mnt);
		kill(d, SIGTERM);
		if (!reap_within(d, 10000)) {
			kill(d, SIGKILL);
			reap_within(d, 2000);
		}
	}
	/* Stuck run processes are free once their daemon is gone. */
	for (int i = 0; i < MAX_WORKERS; i++)
		if (workers[i] > 0)
			reap_within(workers[i], 2000);
	for (int i = 0; i < MAX_PATHS; i++) {
		if (paths[i].used)
			unlink(paths[i].path);
		if (mqs[i].used)
			mq_unlink(mqs[i].path);
	}
	restore_sysctls();
	if (cfg.tmp[0] && (pid = fork()) == 0) {
		execve(rm[0], rm, envp);
		_exit(127);
	}
	if (cfg.tmp[0] && pid > 0)
		reap_within(pid, 10000);
	_exit(128 + sig);
}

void cleanup_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}
