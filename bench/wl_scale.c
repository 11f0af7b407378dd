/* wl_scale.c - ipcfs-bench workload f: a million queued messages (memory, restart) and 10,000 blocked readers. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

struct readjob {
	char path[PATH_MAX];
	int per_proc;       /* threads per reader process */
	int procs;          /* reader processes; process `procs` is the writer */
	uint64_t messages;  /* the writer writes this many */
	struct inst *in;
	uint64_t want;      /* before the go: blocked_readers to wait for */
	long threads, rss_kb;
};

struct rthread {
	pthread_t t;
	const char *path;
	atomic_int *opened;
	double done;
	int err;
};

static void *reader_thread(void *arg)
{
	struct rthread *t = arg;
	char buf[256];
	int fd = open(t->path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		t->err = errno;
		atomic_fetch_add(t->opened, 1);
		return NULL;
	}
	atomic_fetch_add(t->opened, 1);
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
	int started = 0, errs = 0, first_err = 0;

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
	rl.rlim_cur = rl.rlim_max = (rlim_t)j->per_proc + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		child_fail(r, "setrlimit NOFILE %d: %s", j->per_proc + 64, strerror(errno));
	th = calloc((size_t)j->per_proc, sizeof(*th));
	if (!th)
		child_fail(r, "out of memory");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, READER_STACK);
	for (; started < j->per_proc; started++) {
		th[started].path = j->path;
		th[started].opened = &opened;
		if (pthread_create(&th[started].t, &attr, reader_thread, &th[started]))
			child_fail(r, "pthread_create (thread %d): %s", started, strerror(errno));
	}
	while (atomic_load(&opened) < j->per_proc)
		usleep(1000);
	for (int i = 0; i < j->per_proc; i++)
		if (th[i].err && !first_err)
			first_err = th[i].err;
	if (first_err)
		child_fail(r, "a reader could not open the mailbox: %s", strerror(first_err));
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

/* Before the go: every reader blocked in the daemon; its threads and RSS. */
static int readers_blocked(void *arg, char *err, size_t len)
{
	struct readjob *j = arg;
	uint64_t blocked = 0;
	double t0 = now();
	int r;

	for (;;) {
		r = get_xattr_u64(j->path, "blocked_readers", &blocked);
		if (r) {
			snprintf(err, len, "getxattr blocked_readers: %s", strerror(-r));
			return -1;
		}
		if (blocked >= j->want)
			break;
		if (now() - t0 > 120) {
			snprintf(err, len, "only %llu of %llu readers blocked after 120 s",
				 (unsigned long long)blocked, (unsigned long long)j->want);
			return -1;
		}
		usleep(10000);
	}
	j->threads = proc_status(j->in->pid, "Threads");
	j->rss_kb = proc_status(j->in->pid, "VmRSS");
	return 0;
}

static void blocked_readers(void)
{
	struct group *gt, *gw, *gm;
	struct row *rt, *rw, *rm;
	const char *ierr = NULL;
	struct inst *in;
	struct readjob j;

	gt = group_new('f', LOWER, "threads", "%llu readers blocked in read(2) on one mailbox: daemon threads",
		       (unsigned long long)plan.f_readers);
	gm = group_new('f', LOWER, "MB", "%llu blocked readers: daemon RSS", (unsigned long long)plan.f_readers);
	gw = group_new('f', LOWER, "ms", "%llu blocked readers: waking them all (one 64 B message each)",
		       (unsigned long long)plan.f_readers);
	rt = row_ipcfs(gt, "ipcfs --memory, single-threaded loop");
	rm = row_ipcfs(gm, "ipcfs --memory");
	rw = row_ipcfs(gw, "ipcfs --memory, write framing");
	group_note(gt, "%d processes x %llu threads, each thread its own open file and read(2).",
		   READER_PROCS, (unsigned long long)(plan.f_readers / READER_PROCS));
	group_note(gw, "from the first of %llu writes (one writer process) until the last reader returned.",
		   (unsigned long long)plan.f_readers);
	in = inst_shared("memory", &ierr);
	if (!in) {
		row_err(rt, "%s", ierr);
		row_err(rm, "%s", ierr);
		row_err(rw, "%s", ierr);
		return;
	}
	memset(&j, 0, sizeof(j));
	j.procs = READER_PROCS;
	j.per_proc = (int)(plan.f_readers / READER_PROCS);
	j.messages = (uint64_t)j.per_proc * READER_PROCS;
	j.want = j.messages;
	j.in = in;
	for (int rep = 0; rep < plan.f_reps && row_live(rw); rep++) {
		struct run run = { 0 };
		char name[64];
		int r;

		progress("f. %llu blocked readers: repetition %d/%d", (unsigned long long)j.want, rep + 1,
			 plan.f_reps);
		fresh_name(name, sizeof(name), "mbox/wake");
		inst_path(in, name, j.path, sizeof(j.path));
		r = make_obj(j.path);
		if (!r)
			r = set_xattr(j.path, "framing", "write");
		if (r) {
			row_err(rw, "creating %s: %s", name, strerror(-r));
			unlink(j.path);
			break;
		}
		run.before_go = readers_blocked;
		run.hook_arg = &j;
		if (run_procs(READER_PROCS + 1, readers_child, &j, in, SCALE_TIMEOUT, &run)) {
			row_err(rt, "%s", run.err);
			row_err(rm, "%s", run.err);
			row_err(rw, "%s", run.err);
		} else {
			row_add(rt, (double)j.threads);
			row_add(rm, (double)j.rss_kb / 1024.0);
			row_add(rw, (run_end(&run, 0, READER_PROCS) - run.t0) * 1e3);
		}
		run_free(&run);
		unlink(j.path);
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
	group_note(gm, "(VmRSS full - VmRSS with the empty mailbox) / messages - 64.");
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
