/* wl_scale.c - ipcfs-bench workload f: a million queued messages (memory, restart) and 10,000 blocked readers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"

#define MSG 64
#define READER_PROCS 10
#define READER_STACK (64 * 1024)
#define SCALE_TIMEOUT 900.0

/* --- filling a mailbox --- */

struct filljob {
	char path[PATH_MAX];
	uint64_t count;
	bool record;
};

static void fill_child(int idx, void *arg, struct wres *r)
{
	struct filljob *j = arg;
	size_t rec = 4 + MSG, batch = 256;
	char *buf = aligned_buf(batch * rec);
	int fd = open(j->path, O_WRONLY | O_CLOEXEC);

	(void)idx;
	if (fd < 0)
		child_fail(r, "open %s: %s", j->path, strerror(errno));
	child_ready();
	if (j->record) {
		uint32_t len = MSG;
		for (size_t k = 0; k < batch; k++)
			memcpy(buf + k * rec, &len, 4);
		for (uint64_t i = 0; i < j->count;) {
			size_t k = 0;
			ssize_t n;
			for (; k < batch && i < j->count; k++, i++)
				memcpy(buf + k * rec + 4, &i, 8);
			n = write(fd, buf, k * rec);
			if (n != (ssize_t)(k * rec))
				child_fail(r, "write of %zu records: %s", k, n < 0 ? strerror(errno) : "short");
		}
	} else {
		for (uint64_t i = 0; i < j->count; i++) {
			memcpy(buf, &i, 8);
			if (write(fd, buf, MSG) != MSG)
				child_fail(r, "write of message %llu: %s", (unsigned long long)i,
					   strerror(errno));
		}
	}
	r->t_end = now();
	close(fd);
}

/* --- blocked readers --- */

enum rv { RV_IPCFS, RV_FLOOR, RV_KFIFO, NRV };

struct readjob {
	enum rv v;
	char path[PATH_MAX];
	int per_proc;       /* threads per reader process */
	int procs;          /* reader processes; process `procs` is the writer */
	uint64_t messages;  /* the writer writes this many */
	struct inst *in;    /* NULL: the kernel FIFO */
	long threads;
	long rss0_kb, rss_kb; /* the daemon's VmRSS before the readers, with them blocked */
};

struct rthread {
	pthread_t t;
	const char *path;
	int oflags;
	atomic_int *opened;
	double done;
	int err;
};

static void *reader_thread(void *arg)
{
	struct rthread *t = arg;
	char buf[MSG];
	int fd = open(t->path, t->oflags | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		t->err = errno;
		atomic_fetch_add(t->opened, 1);
		return NULL;
	}
	atomic_fetch_add(t->opened, 1);
	/* Reads of exactly one message: a byte stream cannot give one
	 * reader two messages and leave another without. */
	n = read(fd, buf, sizeof(buf));
	t->done = now();
	if (n != MSG)
		t->err = n < 0 ? errno : EMSGSIZE;
	close(fd);
	return NULL;
}

static void readers_child(int idx, void *arg, struct wres *r)
{
	struct readjob *j = arg;
	struct rthread *th;
	pthread_attr_t attr;
	atomic_int opened = 0;
	struct rlimit rl;
	int errs = 0, first_err = 0;

	if (idx == j->procs) { /* the writer */
		char msg[MSG];
		int fd = open(j->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			child_fail(r, "open %s: %s", j->path, strerror(errno));
		memset(msg, 'w', sizeof(msg));
		child_ready();
		for (uint64_t i = 0; i < j->messages; i++)
			if (write(fd, msg, sizeof(msg)) != MSG)
				child_fail(r, "write: %s", strerror(errno));
		r->t_end = now();
		close(fd);
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)j->per_proc + 64) {
		rl.rlim_cur = (rlim_t)j->per_proc + 64;
		if (rl.rlim_max < rl.rlim_cur || setrlimit(RLIMIT_NOFILE, &rl))
			child_fail(r, "RLIMIT_NOFILE cannot be raised to %d (hard limit %llu)",
				   j->per_proc + 64, (unsigned long long)rl.rlim_max);
	}
	th = calloc((size_t)j->per_proc, sizeof(*th));
	if (!th)
		child_fail(r, "out of memory");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, READER_STACK);
	for (int i = 0; i < j->per_proc; i++) {
		th[i].path = j->path;
		/* A kernel FIFO opened for reading only would wait for a writer
		 * (and then see end of file): O_RDWR keeps one. */
		th[i].oflags = j->v == RV_KFIFO ? O_RDWR : O_RDONLY;
		th[i].opened = &opened;
		if (pthread_create(&th[i].t, &attr, reader_thread, &th[i]))
			child_fail(r, "pthread_create (thread %d): %s", i, strerror(errno));
	}
	while (atomic_load(&opened) < j->per_proc)
		usleep(1000);
	for (int i = 0; i < j->per_proc; i++)
		if (th[i].err && !first_err)
			first_err = th[i].err;
	if (first_err)
		child_fail(r, "a reader could not open %s: %s", j->path, strerror(first_err));
	child_ready();
	for (int i = 0; i < j->per_proc; i++) {
		pthread_join(th[i].t, NULL);
		if (th[i].err) {
			errs++;
			first_err = th[i].err;
		}
		if (th[i].done > r->t_end)
			r->t_end = th[i].done;
	}
	if (errs)
		child_fail(r, "%d readers failed: %s", errs, strerror(first_err));
	r->count = (uint64_t)j->per_proc;
}

/* Threads of process pid sleeping (state S): blocked in read, or the main
 * thread waiting for the go. */
static int sleeping_threads(pid_t pid)
{
	char path[64], buf[512];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char sp[300], *paren;
		if (de->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
		if (read_text(sp, buf, sizeof(buf)))
			continue;
		paren = strrchr(buf, ')');
		if (paren && paren[1] == ' ' && paren[2] == 'S')
			n++;
	}
	closedir(d);
	return n;
}

struct hookctx {
	struct run *run;
	struct readjob *j;
};

/* Before the go: every reader blocked (ipcfs says so in blocked_readers;
 * for all: every reader thread asleep); then the daemon's threads and RSS. */
static int readers_blocked(void *arg, char *err, size_t len)
{
	struct hookctx *h = arg;
	struct readjob *j = h->j;
	double t0 = now();

	for (;;) {
		uint64_t blocked = j->messages;
		int asleep = 0, r;

		if (j->v == RV_IPCFS) {
			r = get_xattr_u64(j->path, "blocked_readers", &blocked);
			if (r) {
				snprintf(err, len, "getxattr blocked_readers: %s", strerror(-r));
				return -1;
			}
		}
		for (int p = 0; p < j->procs; p++) {
			int k = sleeping_threads(h->run->pids[p]);
			asleep += k > 0 ? k - 1 : 0; /* less the main thread */
		}
		if (blocked >= j->messages && (uint64_t)asleep >= j->messages) {
			if (j->in) {
				j->threads = proc_status(j->in->pid, "Threads");
				j->rss_kb = proc_status(j->in->pid, "VmRSS");
			}
			return 0;
		}
		if (now() - t0 > 120) {
			snprintf(err, len, "only %llu readers blocked (%d threads asleep) of %llu after 120 s",
				 (unsigned long long)blocked, asleep, (unsigned long long)j->messages);
			return -1;
		}
		usleep(20000);
	}
}

/* One repetition of variant v. 0, or -1 with err. */
static int readers_run(struct readjob *j, double *wake_ms, char *err, size_t len)
{
	struct run run = { 0 };
	struct hookctx h = { &run, j };
	char name[64];
	int r = 0;

	/* Fresh daemons: their threads and memory are the readers' alone. */
	static struct inst fresh[2];

	j->in = NULL;
	if (j->v == RV_IPCFS || j->v == RV_FLOOR) {
		j->in = &fresh[j->v];
		inst_init(j->in, j->v == RV_IPCFS ? "readers" : "readers-floor",
			  j->v == RV_IPCFS ? INST_IPCFS : INST_FLOOR);
		if (j->v == RV_IPCFS)
			inst_arg(j->in, "--memory");
		if (inst_start(j->in)) {
			snprintf(err, len, "%.400s", j->in->err);
			return -1;
		}
	}
	switch (j->v) {
	case RV_IPCFS:
		fresh_name(name, sizeof(name), "mbox/wake");
		inst_path(j->in, name, j->path, sizeof(j->path));
		r = make_obj(j->path);
		if (!r)
			r = set_xattr(j->path, "framing", "write");
		if (r) {
			snprintf(err, len, "creating %s: %s", name, strerror(-r));
			inst_stop(j->in);
			return -1;
		}
		break;
	case RV_FLOOR:
		inst_path(j->in, "pipe", j->path, sizeof(j->path));
		break;
	case RV_KFIFO:
		fresh_name(name, sizeof(name), "wake-fifo");
		snprintf(j->path, sizeof(j->path), "%s/%s", cfg.tmp, name);
		if (mkfifo(j->path, 0600)) {
			snprintf(err, len, "mkfifo: %s", strerror(errno));
			return -1;
		}
		break;
	case NRV:
		return -1;
	}
	run.before_go = readers_blocked;
	run.hook_arg = &h;
	j->rss0_kb = j->in ? proc_status(j->in->pid, "VmRSS") : 0;
	r = run_procs(j->procs + 1, readers_child, j, j->in, SCALE_TIMEOUT, &run);
	if (r)
		snprintf(err, len, "%s", run.err);
	else
		*wake_ms = (run_end(&run, 0, j->procs) - run.t0) * 1e3;
	run_free(&run);
	if (j->in)
		inst_stop(j->in);
	else
		unlink(j->path);
	return r;
}

static void blocked_readers(void)
{
	static const char *const labels[NRV] = {
		"ipcfs --memory mailbox, write framing",
		"FUSE floor pipe",
		"kernel FIFO (readers O_RDWR)",
	};
	unsigned long long n = (unsigned long long)plan.f_readers;
	struct group *gt, *gm, *gw;
	struct row *rt[NRV], *rm[NRV], *rw[NRV];

	gt = group_new('f', LOWER, "threads", "%llu readers blocked in read(2) on one file: daemon threads", n);
	gm = group_new('f', LOWER, "B/reader", "%llu blocked readers: daemon RSS growth per blocked reader", n);
	group_note(gm, "a fresh daemon each repetition: (VmRSS with the readers blocked - VmRSS"
		       " before they opened) / readers.");
	gw = group_new('f', LOWER, "ms", "%llu blocked readers: waking them all, one 64 B message each", n);
	for (int v = 0; v < NRV; v++) {
		if (v == RV_IPCFS) {
			rt[v] = row_ipcfs(gt, "%s", labels[v]);
			rm[v] = row_ipcfs(gm, "%s", labels[v]);
			rw[v] = row_ipcfs(gw, "%s", labels[v]);
		} else {
			rt[v] = v == RV_FLOOR ? row_ref(gt, "%s", labels[v]) : NULL;
			rm[v] = v == RV_FLOOR ? row_ref(gm, "%s", labels[v]) : NULL;
			rw[v] = row_ref(gw, "%s", labels[v]);
		}
	}
	group_note(gt, "%d processes x %llu threads, each thread its own open file and a 64 B read(2);"
		       " both daemons run their single-threaded loop.", READER_PROCS, n / READER_PROCS);
	group_note(gw, "from the first of %llu 64 B writes (one writer process) until the last reader"
		       " returned.", n);
	for (int rep = 0; rep < plan.f_reps; rep++) {
		progress("f. %llu blocked readers: repetition %d/%d", n, rep + 1, plan.f_reps);
		for (int v = 0; v < NRV; v++) {
			struct readjob j;
			char err[512];
			double ms = 0;

			if (!row_live(rw[v]))
				continue;
			memset(&j, 0, sizeof(j));
			j.v = (enum rv)v;
			j.procs = READER_PROCS;
			j.per_proc = (int)(plan.f_readers / READER_PROCS);
			j.messages = (uint64_t)j.per_proc * READER_PROCS;
			if (readers_run(&j, &ms, err, sizeof(err))) {
				row_err(rw[v], "%s", err);
				if (rt[v]) {
					row_err(rt[v], "%s", err);
					row_err(rm[v], "%s", err);
				}
				continue;
			}
			row_add(rw[v], ms);
			if (rt[v]) {
				row_add(rt[v], (double)j.threads);
				row_add(rm[v], (double)(j.rss_kb - j.rss0_kb) * 1024.0 / (double)j.messages);
			}
		}
	}
}

/* --- a million queued messages --- */

static void million(void)
{
	struct group *gm, *gr, *gs, *gf;
	struct row *rm, *rr, *rs, *rf;
	static struct inst in; /* stays registered for the logs */
	struct filljob fj;
	struct run run = { 0 };
	char db[256];
	uint64_t msgs = 0;
	long rss0, rss1;
	int r;

	gf = group_new('f', HIGHER, "msg/s", "%llu queued 64 B messages, one mailbox: filling it",
		       (unsigned long long)plan.f_msgs);
	gm = group_new('f', LOWER, "B/msg", "%llu queued 64 B messages: daemon RSS beyond payload per message",
		       (unsigned long long)plan.f_msgs);
	gs = group_new('f', LOWER, "s", "%llu queued 64 B messages: restart (start until the mount answers with all)",
		       (unsigned long long)plan.f_msgs);
	gr = group_new('f', LOWER, "B/msg", "%llu queued 64 B messages: RSS beyond payload per message after a restart",
		       (unsigned long long)plan.f_msgs);
	rf = row_ipcfs(gf, "ipcfs --db, --sync normal");
	rm = row_ipcfs(gm, "ipcfs, after filling");
	rs = row_ipcfs(gs, "ipcfs --db, restart");
	rr = row_ipcfs(gr, "ipcfs, loaded from the database");
	group_note(gm, "(VmRSS full, after an fsync of the mailbox - VmRSS with the empty mailbox)"
		       " / messages - 64.");
	group_note(gs, "unmount (final commit), then: start the daemon, until the mount is up and"
		       " user.ipcfs.messages reads %llu.", (unsigned long long)plan.f_msgs);

	inst_init(&in, "scale", INST_IPCFS);
	snprintf(db, sizeof(db), "%s/scale.db", cfg.tmp);
	inst_arg(&in, "--db");
	inst_arg(&in, db);
	progress("f. starting ipcfs (scale, --db)");
	if (inst_start(&in)) {
		row_err(rf, "%s", in.err);
		return;
	}
	memset(&fj, 0, sizeof(fj));
	fj.count = plan.f_msgs;
	inst_path(&in, "mbox/big", fj.path, sizeof(fj.path));
	r = make_obj(fj.path);
	if (!r) {
		fj.record = set_xattr(fj.path, "framing", "record") == 0;
		if (!fj.record)
			r = set_xattr(fj.path, "framing", "write");
	}
	if (!r)
		r = set_xattr(fj.path, "max_messages", "16000000");
	if (!r)
		r = set_xattr(fj.path, "max_bytes", "1073741824");
	if (r) {
		row_err(rf, "creating mbox/big: %s", strerror(-r));
		goto out;
	}
	group_note(gf, "%s.", fj.record ? "record framing, 256 records per write"
				       : "write framing, one write per message (record framing not available)");
	rss0 = proc_status(in.pid, "VmRSS");
	progress("f. filling a mailbox with %llu messages", (unsigned long long)plan.f_msgs);
	if (run_procs(1, fill_child, &fj, &in, SCALE_TIMEOUT, &run)) {
		row_err(rf, "%s", run.err);
		run_free(&run);
		goto out;
	}
	row_add(rf, (double)plan.f_msgs / (run.res[0].t_end - run.t0));
	run_free(&run);
	r = get_xattr_u64(fj.path, "messages", &msgs);
	if (r || msgs != plan.f_msgs) {
		row_err(rm, "user.ipcfs.messages reads %llu (%s), %llu were written",
			(unsigned long long)msgs, r ? strerror(-r) : "ok", (unsigned long long)plan.f_msgs);
		goto out;
	}
	/* At rest: fsync waits for the commit that holds every message, so no
	 * write-behind snapshot is in flight while RSS is read. */
	{
		int fd = open(fj.path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd)) {
			row_err(rm, "fsync of the mailbox: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}
	rss1 = proc_status(in.pid, "VmRSS");
	row_add(rm, (double)(rss1 - rss0) * 1024.0 / (double)plan.f_msgs - MSG);

	for (int rep = 0; rep < plan.f_reps; rep++) {
		double t0, t1;
		progress("f. restart with %llu messages: %d/%d", (unsigned long long)plan.f_msgs, rep + 1,
			 plan.f_reps);
		if (inst_stop(&in)) {
			row_err(rs, "the daemon did not exit cleanly after its unmount (see its log)");
			break;
		}
		t0 = now();
		if (inst_start(&in)) {
			row_err(rs, "%s", in.err);
			break;
		}
		msgs = 0;
		r = get_xattr_u64(fj.path, "messages", &msgs);
		t1 = now();
		if (r || msgs != plan.f_msgs) {
			row_err(rs, "after the restart user.ipcfs.messages reads %llu (%s), expected %llu",
				(unsigned long long)msgs, r ? strerror(-r) : "ok",
				(unsigned long long)plan.f_msgs);
			break;
		}
		row_add(rs, t1 - t0);
		/* Baseline: the same daemon with an empty tree is not at hand after a
		 * restart; use the one measured before filling. */
		row_add(rr, (double)(proc_status(in.pid, "VmRSS") - rss0) * 1024.0 / (double)plan.f_msgs - MSG);
	}
out:
	inst_stop(&in);
}

void wl_scale(void)
{
	million();
	blocked_readers();
}
