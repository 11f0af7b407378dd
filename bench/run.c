/* run.c - ipcfs-bench: one timed run of forked processes with a common start and a timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

#define READY_WAIT 120.0  /* seconds for every process to set itself up */
#define REAP_WAIT 5.0     /* seconds for SIGKILLed processes to go */

/* In a run process. */
static int ready_fd = -1, go_fd = -1;
static bool readied;

void child_ready(void)
{
	char c = 'R', b;

	readied = true;
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	close(ready_fd);
	while (read(go_fd, &b, 1) < 0 && errno == EINTR)
		;
	close(go_fd);
}

void child_fail(struct wres *r, const char *fmt, ...)
{
	va_list ap;
	char c = 'F';

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->failed = 1;
	if (!readied) {
		ssize_t n = write(ready_fd, &c, 1);
		(void)n; /* the parent sees the exit anyway */
	}
	_exit(1);
}

double run_end(const struct run *run, int from, int to)
{
	double t = 0;

	for (int i = from; i < to; i++)
		if (run->res[i].t_end > t)
			t = run->res[i].t_end;
	return t;
}

static void set_err(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(run->err, sizeof(run->err), fmt, ap);
	va_end(ap);
}

/* Reaps what it can within secs; returns how many are left. */
static int reap(pid_t *pids, int n, double secs, struct run *run)
{
	double t0 = now();
	int left;

	for (;;) {
		left = 0;
		for (int i = 0; i < n; i++) {
			int status;
			pid_t r;
			if (!pids[i])
				continue;
			r = waitpid(pids[i], &status, WNOHANG);
			if (r == 0) {
				left++;
				continue;
			}
			unreg_worker(pids[i]);
			pids[i] = 0;
			if (r < 0)
				continue;
			if (run->res[i].failed)
				set_err(run, "%s", run->res[i].msg);
			else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
				set_err(run, "process %d of the run died of signal %d", i,
					WTERMSIG(status));
			else if (WIFEXITED(status) && WEXITSTATUS(status))
				set_err(run, "process %d of the run exited with %d", i,
					WEXITSTATUS(status));
		}
		if (!left || now() - t0 >= secs)
			return left;
		usleep(2000);
	}
}

static void kill_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i])
			kill(pids[i], SIGKILL);
}

/* Ends a failed run: kills, reaps, aborts the daemon when processes stay
 * stuck in its requests. */
static void give_up(pid_t *pids, int n, struct inst *in, struct run *run)
{
	kill_all(pids, n);
	if (reap(pids, n, REAP_WAIT, run) && in) {
		set_err(run, "processes stuck after SIGKILL");
		inst_abort(in);
		reap(pids, n, REAP_WAIT, run);
	}
	if (reap(pids, n, 0, run))
		progress("warning: processes of a run could not be reaped");
}

int run_procs(int n, child_fn fn, void *arg, struct inst *in, double timeout, struct run *run)
{
	int rp[2] = { -1, -1 }, gp[2] = { -1, -1 }, dp[2] = { -1, -1 }, got = 0;
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	double t0;

	run->n = n;
	run->err[0] = '\0';
	run->res = shared_alloc((size_t)n * sizeof(struct wres));
	if (!pids || pipe2(rp, O_CLOEXEC) || pipe2(gp, O_CLOEXEC) || pipe2(dp, O_CLOEXEC)) {
		set_err(run, "cannot set up a run: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			set_err(run, "fork: %s", strerror(errno));
			give_up(pids, i, in, run);
			goto out;
		}
		if (pid == 0) {
			child_after_fork(SIGKILL);
			close(rp[0]);
			close(gp[1]);
			close(dp[0]);
			ready_fd = rp[1];
			go_fd = gp[0];
			fn(i, arg, &run->res[i]);
			if (!readied)
				child_ready();
			_exit(0);
		}
		pids[i] = pid;
		reg_worker(pid);
	}
	close(rp[1]);
	close(gp[0]);
	close(dp[1]);
	rp[1] = gp[0] = dp[1] = -1;

	/* Every process ready (or one failed). */
	t0 = now();
	while (got < n) {
		struct pollfd p = { rp[0], POLLIN, 0 };
		char buf[64];
		ssize_t k;
		int r = poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			k = read(rp[0], buf, sizeof(buf));
			if (k <= 0) {
				set_err(run, "a process of the run exited while setting up");
				break;
			}
			for (ssize_t j = 0; j < k; j++)
				got += buf[j] == 'R';
			if (memchr(buf, 'F', (size_t)k))
				break;
		}
		if (now() - t0 > READY_WAIT) {
			set_err(run, "processes not set up after %.0f s (hang?)", READY_WAIT);
			break;
		}
	}
	if (got < n) {
		give_up(pids, n, in, run);
		set_err(run, "a process of the run failed to set up");
		goto out;
	}
	run->pids = pids;
	if (run->before_go && run->before_go(run->hook_arg, run->err, sizeof(run->err))) {
		run->pids = NULL;
		give_up(pids, n, in, run);
		goto out;
	}
	run->pids = NULL;

	/* Go; then wait for every process to close the done pipe (exit). */
	run->t0 = now();
	close(gp[1]);
	gp[1] = -1;
	for (;;) {
		struct pollfd p = { dp[0], POLLIN, 0 };
		double left = timeout - (now() - run->t0);
		char b;
		int r;
		if (left <= 0) {
			set_err(run, "timeout: the run took more than %.3g s (hang?)", timeout);
			give_up(pids, n, in, run);
			goto out;
		}
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && read(dp[0], &b, 1) == 0)
			break; /* every process has exited */
	}
	if (reap(pids, n, REAP_WAIT, run))
		give_up(pids, n, in, run);
out:
	for (int i = 0; i < 2; i++) {
		if (rp[i] >= 0)
			close(rp[i]);
		if (gp[i] >= 0)
			close(gp[i]);
		if (dp[i] >= 0)
			close(dp[i]);
	}
	free(pids);
	return run->err[0] ? -1 : 0;
}

void run_free(struct run *run)
{
	shared_free(run->res, (size_t)run->n * sizeof(struct wres));
	run->res = NULL;
}
