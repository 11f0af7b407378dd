/* wl_msg.c - ipcfs-bench workloads a (small-message throughput) and c (round-trip latency). */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"

/*
 * Transports. Each carries messages in one direction on a channel (a: one
 * channel producer -> consumer; c: two channels, ping and pong). Every
 * message starts with its sequence number; the receiver checks length and
 * sequence, so a lost, duplicated, merged or reordered message is an error.
 */
enum tr {
	TR_MBOX,      /* ipcfs mailbox, write framing: one write = one message */
	TR_RECORD,    /* ipcfs mailbox, record framing: many records per write/read */
	TR_FIFO,      /* ipcfs FIFO (byte stream: the receiver reads exactly `size`) */
	TR_FLOOR,     /* fuse-floor pipe (byte stream; reads of exactly `size`) */
	TR_MQ,        /* POSIX message queue */
	TR_SEQPACKET, /* AF_UNIX SOCK_SEQPACKET socketpair */
	TR_PIPE,      /* pipe(2) */
	TR_EVENTFD,   /* eventfd: an 8-byte counter, not a message */
};

#define MQ_DEPTH 256
#define RECORD_BATCH 256
#define WRITE_MAX (1 * MiB - 4 * KiB) /* one write(2) = one FUSE request */
#define RBUF (64 * KiB)              /* the consumer's buffer (mailbox, mq, socket) */
#define RECORD_RBUF (1 * MiB)        /* record framing: reads of many records */

struct chan {
	char path[PATH_MAX]; /* file on a mount, or mq name */
	int fd[2];           /* pipe/socketpair/eventfd: [0] read end, [1] write end */
};

struct msgjob {
	enum tr tr;
	size_t size;
	uint64_t count;  /* messages (a) or measured round trips (c) */
	uint64_t warm;   /* c: round trips before measuring */
	uint64_t reads;  /* a: read calls the consumer made in the last run */
	unsigned batch;  /* record framing: records per write */
	struct chan ch[2];
	double *lat;     /* c: `count` round-trip times (us), shared */
};

struct ep {
	enum tr tr;
	int fd;
	mqd_t mq;
};

static int mq_depth = 10;

/* The queue depth: msg_max (raised to 256 for the run), within what
 * RLIMIT_MSGQUEUE lets two queues of this message size hold (the kernel
 * charges about 100 bytes per message besides its payload). */
static int mq_depth_for(size_t size)
{
	struct rlimit rl;
	long fit;

	if (getrlimit(RLIMIT_MSGQUEUE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return mq_depth;
	fit = (long)(rl.rlim_cur / 2 / (size + 128));
	return fit < 1 ? 1 : fit < mq_depth ? (int)fit : mq_depth;
}

void fresh_name(char *buf, size_t len, const char *prefix)
{
	static unsigned seq;

	snprintf(buf, len, "%s-%u", prefix, ++seq);
}

/* --- endpoints (in run processes) --- */

static void ep_open(struct msgjob *j, int c, bool tx, struct ep *e, struct wres *r)
{
	e->tr = j->tr;
	e->fd = -1;
	switch (j->tr) {
	case TR_MBOX:
	case TR_RECORD:
	case TR_FIFO:
	case TR_FLOOR:
		e->fd = open(j->ch[c].path, (tx ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		if (e->fd < 0)
			child_fail(r, "open %s: %s", j->ch[c].path, strerror(errno));
		break;
	case TR_MQ:
		e->mq = mq_open(j->ch[c].path, tx ? O_WRONLY : O_RDONLY);
		if (e->mq == (mqd_t)-1)
			child_fail(r, "mq_open %s: %s", j->ch[c].path, strerror(errno));
		break;
	case TR_SEQPACKET:
	case TR_PIPE:
	case TR_EVENTFD:
		e->fd = j->ch[c].fd[tx ? 1 : 0];
		break;
	}
}

static void ep_send(struct ep *e, const char *buf, size_t len, struct wres *r)
{
	uint64_t one = 1;
	ssize_t n;
	int err;

	switch (e->tr) {
	case TR_MQ:
		if (mq_send(e->mq, buf, len, 0))
			child_fail(r, "mq_send: %s", strerror(errno));
		return;
	case TR_EVENTFD:
		if (write(e->fd, &one, sizeof(one)) != sizeof(one))
			child_fail(r, "eventfd write: %s", strerror(errno));
		return;
	case TR_SEQPACKET:
		n = send(e->fd, buf, len, 0);
		break;
	case TR_MBOX:
	case TR_RECORD:
		n = write(e->fd, buf, len);
		break;
	default: /* byte streams */
		err = write_all(e->fd, buf, len);
		if (err)
			child_fail(r, "write: %s", strerror(-err));
		return;
	}
	if (n < 0)
		child_fail(r, "write: %s", strerror(errno));
	if ((size_t)n != len)
		child_fail(r, "short write: %zd of %zu bytes", n, len);
}

/* Receives one message of `want` bytes into buf (cap bytes). */
static void ep_recv(struct ep *e, char *buf, size_t cap, size_t want, struct wres *r)
{
	size_t got = 0;
	ssize_t n;

	switch (e->tr) {
	case TR_MQ:
		n = mq_receive(e->mq, buf, cap, NULL);
		break;
	case TR_EVENTFD:
		n = read(e->fd, buf, 8);
		want = 8;
		break;
	case TR_SEQPACKET:
		n = recv(e->fd, buf, cap, 0);
		break;
	case TR_MBOX:
	case TR_RECORD:
		n = read(e->fd, buf, cap);
		break;
	default: /* byte streams: exactly want bytes, in as many reads as it takes */
		while (got < want) {
			n = read(e->fd, buf + got, want - got);
			if (n < 0)
				child_fail(r, "read: %s", strerror(errno));
			if (n == 0)
				child_fail(r, "unexpected end of file");
			got += (size_t)n;
		}
		return;
	}
	if (n < 0)
		child_fail(r, "receive: %s", strerror(errno));
	if (n == 0)
		child_fail(r, "unexpected end of file");
	if ((size_t)n != want)
		child_fail(r, "received a message of %zd bytes, expected %zu", n, want);
}

static void stamp(char *msg, uint64_t seq)
{
	memcpy(msg, &seq, sizeof(seq));
}

static void check_seq(const char *msg, size_t len, uint64_t want, struct wres *r)
{
	uint64_t seq = 0;

	if (len < sizeof(seq))
		return;
	memcpy(&seq, msg, sizeof(seq));
	if (seq != want)
		child_fail(r, "message %llu arrived where %llu was expected (lost, duplicated or reordered)",
			   (unsigned long long)seq, (unsigned long long)want);
}

/* --- a: throughput --- */

static void a_producer(struct msgjob *j, struct wres *r)
{
	size_t rec = 4 + j->size;
	char *buf = aligned_buf(j->tr == TR_RECORD ? j->batch * rec : j->size);
	struct ep e;

	ep_open(j, 0, true, &e, r);
	child_ready();
	if (j->tr == TR_RECORD) {
		uint32_t len = (uint32_t)j->size;
		for (unsigned k = 0; k < j->batch; k++)
			memcpy(buf + k * rec, &len, 4); /* little-endian host */
		for (uint64_t i = 0; i < j->count;) {
			unsigned k = 0;
			for (; k < j->batch && i < j->count; k++, i++)
				stamp(buf + k * rec + 4, i);
			ep_send(&e, buf, k * rec, r);
		}
	} else {
		for (uint64_t i = 0; i < j->count; i++) {
			stamp(buf, i);
			ep_send(&e, buf, j->size, r);
		}
	}
	r->t_end = now();
	r->count = j->count;
}

static void a_consumer(struct msgjob *j, struct wres *r)
{
	size_t cap = j->tr == TR_RECORD ? RECORD_RBUF : j->tr == TR_MQ ? j->size : RBUF;
	char *buf = aligned_buf(cap);
	uint64_t got = 0, reads = 0;
	struct ep e;

	ep_open(j, 0, false, &e, r);
	child_ready();
	if (j->tr == TR_RECORD) {
		while (got < j->count) {
			ssize_t n = read(e.fd, buf, cap);
			size_t off = 0;
			if (n < 0)
				child_fail(r, "read: %s", strerror(errno));
			if (n == 0)
				child_fail(r, "unexpected end of file after %llu messages",
					   (unsigned long long)got);
			reads++;
			while (off < (size_t)n) {
				uint32_t len;
				if ((size_t)n - off < 4)
					child_fail(r, "a read ended inside a record header");
				memcpy(&len, buf + off, 4);
				if (len != j->size)
					child_fail(r, "record of %u bytes, expected %zu", len, j->size);
				if ((size_t)n - off - 4 < len)
					child_fail(r, "a read returned a partial record");
				check_seq(buf + off + 4, len, got, r);
				got++;
				off += 4 + len;
			}
		}
	} else {
		/* The floor's pipe is a byte stream: reading exactly `size` makes
		 * one READ request per WRITE, as a mailbox does. */
		if (j->tr == TR_FLOOR)
			cap = j->size;
		for (; got < j->count; got++, reads++) {
			ep_recv(&e, buf, cap, j->size, r);
			check_seq(buf, j->size, got, r);
		}
	}
	r->t_end = now();
	r->count = got;
	r->v[0] = (double)reads;
}

static void a_child(int idx, void *arg, struct wres *r)
{
	if (idx == 0)
		a_producer(arg, r);
	else
		a_consumer(arg, r);
}

/* --- c: latency --- */

static void c_child(int idx, void *arg, struct wres *r)
{
	struct msgjob *j = arg;
	char *buf = aligned_buf(RBUF), *msg = aligned_buf(j->size);
	size_t cap = j->tr == TR_MQ ? j->size : RBUF;
	struct ep tx, rx;

	/* Opening order matters for FIFOs (a reader may wait for a writer). */
	if (idx == 0) {
		ep_open(j, 0, true, &tx, r);
		ep_open(j, 1, false, &rx, r);
	} else {
		ep_open(j, 0, false, &rx, r);
		ep_open(j, 1, true, &tx, r);
	}
	child_ready();
	for (uint64_t i = 0; i < j->warm + j->count; i++) {
		if (idx == 0) {
			double t = now();
			stamp(msg, i);
			ep_send(&tx, msg, j->size, r);
			ep_recv(&rx, buf, cap, j->size, r);
			if (j->tr != TR_EVENTFD)
				check_seq(buf, j->size, i, r);
			if (i >= j->warm)
				j->lat[i - j->warm] = (now() - t) * 1e6;
		} else {
			ep_recv(&rx, buf, cap, j->size, r);
			if (j->tr != TR_EVENTFD)
				check_seq(buf, j->size, i, r);
			ep_send(&tx, buf, j->size, r);
		}
	}
	r->t_end = now();
	r->count = j->count;
}

/* --- setting up and tearing down a transport (in the bench) --- */

/* Prepares channel c for j->tr. 0, 1 (n/a: *why), or -1 (error: *why). */
static int chan_setup(struct msgjob *j, int c, struct inst *in, char *why, size_t len)
{
	struct chan *ch = &j->ch[c];
	char name[64];
	int r;

	ch->fd[0] = ch->fd[1] = -1;
	ch->path[0] = '\0';
	switch (j->tr) {
	case TR_MBOX:
	case TR_RECORD:
	case TR_FIFO:
		fresh_name(name, sizeof(name), j->tr == TR_FIFO ? "fifo/bench" : "mbox/bench");
		inst_path(in, name, ch->path, sizeof(ch->path));
		r = make_obj(ch->path);
		if (r) {
			snprintf(why, len, "mknod %s: %s", name, strerror(-r));
			ch->path[0] = '\0';
			return -1;
		}
		if (j->tr == TR_FIFO)
			return 0;
		r = set_xattr(ch->path, "framing", j->tr == TR_MBOX ? "write" : "record");
		if (r == -EINVAL && j->tr == TR_RECORD) {
			snprintf(why, len, "user.ipcfs.framing=record is not supported (EINVAL)");
			return 1;
		}
		if (!r)
			r = set_xattr(ch->path, "max_messages", "1000000");
		if (r) {
			snprintf(why, len, "setxattr on %s: %s", name, strerror(-r));
			return -1;
		}
		return 0;
	case TR_FLOOR:
		inst_path(in, c ? "pipe2" : "pipe", ch->path, sizeof(ch->path));
		return 0;
	case TR_MQ: {
		struct mq_attr attr;
		mqd_t q;
		memset(&attr, 0, sizeof(attr));
		attr.mq_maxmsg = mq_depth_for(j->size);
		attr.mq_msgsize = (long)j->size;
		fresh_name(name, sizeof(name), "q");
		snprintf(ch->path, sizeof(ch->path), "/ipcfs-bench-%d-%s", (int)getpid(), name);
		q = mq_open(ch->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
		if (q == (mqd_t)-1) {
			snprintf(why, len, "mq_open: %s", strerror(errno));
			ch->path[0] = '\0';
			return -1;
		}
		mq_close(q);
		reg_mq(ch->path);
		return 0;
	}
	case TR_SEQPACKET:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch->fd)) {
			snprintf(why, len, "socketpair: %s", strerror(errno));
			return -1;
		}
		return 0;
	case TR_PIPE:
		if (pipe2(ch->fd, O_CLOEXEC)) {
			snprintf(why, len, "pipe: %s", strerror(errno));
			return -1;
		}
		return 0;
	case TR_EVENTFD:
		ch->fd[0] = eventfd(0, EFD_CLOEXEC);
		ch->fd[1] = ch->fd[0] >= 0 ? dup(ch->fd[0]) : -1;
		if (ch->fd[1] < 0) {
			snprintf(why, len, "eventfd: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	return -1;
}

static void chan_teardown(struct msgjob *j, int c)
{
	struct chan *ch = &j->ch[c];

	switch (j->tr) {
	case TR_MBOX:
	case TR_RECORD:
	case TR_FIFO:
		if (ch->path[0])
			unlink(ch->path);
		break;
	case TR_MQ:
		if (ch->path[0]) {
			mq_unlink(ch->path);
			unreg_mq(ch->path);
		}
		break;
	default:
		for (int i = 0; i < 2; i++)
			if (ch->fd[i] >= 0)
				close(ch->fd[i]);
		break;
	}
}

static const char *inst_for(enum tr tr)
{
	switch (tr) {
	case TR_MBOX:
	case TR_RECORD:
	case TR_FIFO:
		return "memory";
	case TR_FLOOR:
		return "floor";
	default:
		return NULL;
	}
}

/* One run of a (throughput: msg/s) or c (latency: fills j->lat). Returns 0,
 * 1 (n/a) or -1, with why. inst overrides the instance (NULL: by transport). */
static int msg_run(struct msgjob *j, bool latency, struct inst *inst, double *rate, char *why,
		   size_t len)
{
	const char *iname = inst_for(j->tr), *err = NULL;
	int nch = latency ? 2 : 1, r = 0;
	struct run run = { 0 };

	if (!inst && iname && !(inst = inst_shared(iname, &err))) {
		snprintf(why, len, "%s", err);
		return -1;
	}
	for (int c = 0; c < 2; c++)
		j->ch[c].fd[0] = j->ch[c].fd[1] = -1, j->ch[c].path[0] = '\0';
	for (int c = 0; c < nch && !r; c++)
		r = chan_setup(j, c, inst, why, len);
	if (!r) {
		r = run_procs(2, latency ? c_child : a_child, j, inst, cfg.timeout, &run);
		if (r)
			snprintf(why, len, "%s", run.err);
		else if (!latency) {
			*rate = (double)run.res[1].count / (run.res[1].t_end - run.t0);
			j->reads = (uint64_t)run.res[1].v[0];
		}
		run_free(&run);
	}
	for (int c = 0; c < nch; c++)
		chan_teardown(j, c);
	return r;
}

int msg_mbox_run(struct inst *in, size_t size, uint64_t count, double *rate, char *err,
		 size_t errlen)
{
	struct msgjob j = { .tr = TR_MBOX, .size = size, .count = count };

	return msg_run(&j, false, in, rate, err, errlen) ? -1 : 0;
}

int msg_floor_run(struct inst *in, size_t size, uint64_t count, double *rate, char *err,
		  size_t errlen)
{
	struct msgjob j = { .tr = TR_FLOOR, .size = size, .count = count };

	return msg_run(&j, false, in, rate, err, errlen) ? -1 : 0;
}

static void mq_limits(void)
{
	static bool done;
	char buf[32];
	int r;

	if (done)
		return;
	done = true;
	/* Queue depth 256 (the default cap is 10): raised for the run, restored. */
	r = sysctl_raise("/proc/sys/fs/mqueue/msg_max", MQ_DEPTH);
	if (r)
		progress("cannot raise /proc/sys/fs/mqueue/msg_max: %s", strerror(-r));
	if (read_text("/proc/sys/fs/mqueue/msg_max", buf, sizeof(buf)) == 0)
		mq_depth = (int)strtol(buf, NULL, 10);
	if (mq_depth > MQ_DEPTH)
		mq_depth = MQ_DEPTH;
	if (mq_depth < 1)
		mq_depth = 10;
}

/* Runs one variant of a group in a repetition, recording into row r. */
static void a_variant(struct row *r, struct msgjob *j, double *per_read)
{
	char why[512];
	double rate = 0;
	int k;

	if (!row_live(r))
		return;
	k = msg_run(j, false, NULL, &rate, why, sizeof(why));
	if (!k && per_read && j->reads)
		*per_read = (double)j->count / (double)j->reads;
	if (k > 0)
		row_na(r, "%s", why);
	else if (k < 0)
		row_err(r, "%s", why);
	else
		row_add(r, rate);
}

void wl_messages(void)
{
	static const size_t sizes[2] = { 64, 4096 };

	mq_limits();
	for (int s = 0; s < 2; s++) {
		size_t size = sizes[s];
		unsigned batch = RECORD_BATCH;
		struct group *g;
		struct row *rw, *rr, *rmq, *rsp, *rfl;
		struct msgjob jw = { .tr = TR_MBOX }, jr, jmq, jsp, jfl;
		double per_read[MAX_REPS];

		if (batch * (4 + size) > WRITE_MAX)
			batch = (unsigned)(WRITE_MAX / (4 + size));
		g = group_new('a', HIGHER, "msg/s", "small messages, %zu B, one producer and one consumer",
			      size);
		rw = row_ipcfs(g, "ipcfs mbox, write framing");
		rr = row_ipcfs(g, "ipcfs mbox, record framing (%u/write)", batch);
		rmq = row_ref(g, "POSIX mq (depth %d)", mq_depth_for(size));
		rsp = row_ref(g, "SOCK_SEQPACKET socketpair");
		rfl = row_ref(g, "FUSE floor pipe, 1 write + 1 read/msg");
		group_note(g, "write framing and the floor: one WRITE and one READ request per message"
			      " (consumer buffer %llu KiB; the floor's reads are %zu B so it never merges"
			      " writes), so the floor's requests/s are twice its figure; record framing:"
			      " up to %u records per write, 1 MiB reads.",
			   RBUF / KiB, size, batch);
		jw.size = size;
		jw.count = plan.a_fuse[s];
		jr = jw;
		jr.tr = TR_RECORD;
		jr.batch = batch;
		jr.count = plan.a_kern[s];
		jmq = jw;
		jmq.tr = TR_MQ;
		jmq.count = plan.a_kern[s];
		jsp = jmq;
		jsp.tr = TR_SEQPACKET;
		jfl = jw;
		jfl.tr = TR_FLOOR;
		for (int rep = 0; rep < cfg.reps; rep++) {
			per_read[rep] = 0;
			progress("a. messages %zu B: repetition %d/%d", size, rep + 1, cfg.reps);
			a_variant(rw, &jw, NULL);
			a_variant(rr, &jr, &per_read[rep]);
			a_variant(rmq, &jmq, NULL);
			a_variant(rsp, &jsp, NULL);
			a_variant(rfl, &jfl, NULL);
		}
		if (row_live(rr) && rr->n)
			group_note(g, "Record framing delivered %.0f records per read (median over the"
				      " repetitions).", median(per_read, rr->n));
	}
}

/* --- c --- */

static void c_variant(struct row *r50, struct row *r99, struct msgjob *j)
{
	char why[512];
	size_t bytes = (size_t)j->count * sizeof(double);
	int k;

	if (!row_live(r50))
		return;
	j->lat = shared_alloc(bytes);
	k = msg_run(j, true, NULL, NULL, why, sizeof(why));
	if (k > 0) {
		row_na(r50, "%s", why);
		row_na(r99, "%s", why);
	} else if (k < 0) {
		row_err(r50, "%s", why);
		row_err(r99, "%s", why);
	} else {
		double p50 = percentile(j->lat, j->count, 0.50);
		row_add(r50, p50);
		row_add(r99, percentile(j->lat, j->count, 0.99));
	}
	shared_free(j->lat, bytes);
	j->lat = NULL;
}

void wl_latency(void)
{
	static const struct {
		enum tr tr;
		const char *label;
		bool ipcfs;
	} vars[] = {
		{ TR_MBOX, "ipcfs 2 mailboxes, write framing", true },
		{ TR_FIFO, "ipcfs 2 FIFOs", true },
		{ TR_PIPE, "2 pipes", false },
		{ TR_MQ, "2 POSIX mqs", false },
		{ TR_EVENTFD, "2 eventfds (8-byte counter)", false },
		{ TR_FLOOR, "FUSE floor, 2 pipe files", false },
	};
	enum { NV = sizeof(vars) / sizeof(vars[0]) };
	struct group *g50, *g99;
	struct row *r50[NV], *r99[NV];
	struct msgjob j[NV];

	mq_limits();
	g50 = group_new('c', LOWER, "us", "round trip, 64 B ping-pong between two processes: p50");
	g99 = group_new('c', LOWER, "us", "round trip, 64 B ping-pong between two processes: p99");
	group_note(g50, "%llu round trips through FUSE, %llu through the kernel, after %llu warm-up;"
			" p50 and p99 of each repetition.",
		   (unsigned long long)plan.c_fuse, (unsigned long long)plan.c_kern,
		   (unsigned long long)plan.c_warm);
	for (int v = 0; v < NV; v++) {
		if (vars[v].ipcfs) {
			r50[v] = row_ipcfs(g50, "%s", vars[v].label);
			r99[v] = row_ipcfs(g99, "%s", vars[v].label);
		} else {
			r50[v] = row_ref(g50, "%s", vars[v].label);
			r99[v] = row_ref(g99, "%s", vars[v].label);
		}
		memset(&j[v], 0, sizeof(j[v]));
		j[v].tr = vars[v].tr;
		j[v].size = 64;
		j[v].warm = plan.c_warm;
		j[v].count = inst_for(vars[v].tr) ? plan.c_fuse : plan.c_kern;
	}
	for (int rep = 0; rep < cfg.reps; rep++) {
		progress("c. latency: repetition %d/%d", rep + 1, cfg.reps);
		for (int v = 0; v < NV; v++)
			c_variant(r50[v], r99[v], &j[v]);
	}
}
