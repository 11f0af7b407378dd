/* wl_stream.c - ipcfs-bench workload b: bulk byte streams (ipcfs FIFO, kernel FIFO, the floor's pipe). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"

enum str {
	S_IPCFS,     /* ipcfs fifo/NAME, user.ipcfs.max_bytes = 8 MiB */
	S_KFIFO,     /* mkfifo, default pipe size (64 KiB) */
	S_KFIFO_1M,  /* mkfifo, F_SETPIPE_SZ 1 MiB */
	S_FLOOR,     /* fuse-floor pipe (no end of file: the reader counts) */
};

#define FIFO_BYTES "8388608"
#define READ_BUF (1 * MiB)
#define BLOCK 4096

struct streamjob {
	enum str k;
	size_t wsize;
	uint64_t total;
	char path[PATH_MAX];
};

/* Each 4 KiB block of the stream starts with its index: the reader checks
 * every block start it sees whole, so lost, repeated or misplaced bytes show. */
static void producer(struct streamjob *j, struct wres *r)
{
	char *buf = aligned_buf(j->wsize);
	int fd = open(j->path, O_WRONLY | O_CLOEXEC), err;

	if (fd < 0)
		child_fail(r, "open %s: %s", j->path, strerror(errno));
	if (j->k == S_KFIFO_1M && fcntl(fd, F_SETPIPE_SZ, (int)(1 * MiB)) < (int)(1 * MiB))
		child_fail(r, "F_SETPIPE_SZ 1 MiB: %s", strerror(errno));
	child_ready();
	for (uint64_t off = 0; off < j->total; off += j->wsize) {
		size_t len = j->total - off < j->wsize ? (size_t)(j->total - off) : j->wsize;
		for (size_t b = 0; b + 8 <= len; b += BLOCK) {
			uint64_t idx = (off + b) / BLOCK;
			memcpy(buf + b, &idx, 8);
		}
		err = write_all(fd, buf, len);
		if (err)
			child_fail(r, "write at byte %llu: %s", (unsigned long long)off, strerror(-err));
	}
	r->t_end = now();
	if (close(fd))
		child_fail(r, "close: %s", strerror(errno));
	r->bytes = j->total;
}

static void consumer(struct streamjob *j, struct wres *r)
{
	char *buf = aligned_buf(READ_BUF);
	int fd = open(j->path, O_RDONLY | O_CLOEXEC);
	uint64_t pos = 0, reads = 0;
	ssize_t n;

	if (fd < 0)
		child_fail(r, "open %s: %s", j->path, strerror(errno));
	child_ready();
	while (pos < j->total) {
		uint64_t first;
		n = read(fd, buf, READ_BUF);
		if (n < 0)
			child_fail(r, "read: %s", strerror(errno));
		if (n == 0)
			child_fail(r, "end of file after %llu of %llu bytes", (unsigned long long)pos,
				   (unsigned long long)j->total);
		reads++;
		first = (pos + BLOCK - 1) / BLOCK * BLOCK;
		for (uint64_t b = first; b + 8 <= pos + (uint64_t)n; b += BLOCK) {
			uint64_t idx;
			memcpy(&idx, buf + (b - pos), 8);
			if (idx != b / BLOCK)
				child_fail(r, "wrong bytes at stream offset %llu (block %llu holds %llu)",
					   (unsigned long long)b, (unsigned long long)(b / BLOCK),
					   (unsigned long long)idx);
		}
		pos += (uint64_t)n;
	}
	r->t_end = now();
	r->bytes = pos;
	r->v[0] = (double)reads;
	if (pos != j->total)
		child_fail(r, "read %llu bytes, %llu were written", (unsigned long long)pos,
			   (unsigned long long)j->total);
	/* Named-pipe rules: the writer has closed, so end of file (the floor has none). */
	if (j->k != S_FLOOR) {
		n = read(fd, buf, READ_BUF);
		if (n < 0)
			child_fail(r, "read after the last byte: %s", strerror(errno));
		if (n > 0)
			child_fail(r, "%zd bytes after the last one written", n);
	}
	close(fd);
}

static void child(int idx, void *arg, struct wres *r)
{
	if (idx == 0)
		producer(arg, r);
	else
		consumer(arg, r);
}

/* One run; MB/s (10^6 bytes) into *mbs. 0 or -1 with err. */
static int stream_run(struct streamjob *j, struct inst *in, double *mbs, char *err, size_t len)
{
	const char *ierr = NULL;
	struct run run = { 0 };
	char name[64];
	int r;

	if (j->k == S_IPCFS || j->k == S_FLOOR) {
		if (!in && !(in = inst_shared(j->k == S_IPCFS ? "memory" : "floor", &ierr))) {
			snprintf(err, len, "%s", ierr);
			return -1;
		}
	}
	switch (j->k) {
	case S_IPCFS:
		fresh_name(name, sizeof(name), "fifo/stream");
		inst_path(in, name, j->path, sizeof(j->path));
		r = make_obj(j->path);
		if (!r)
			r = set_xattr(j->path, "max_bytes", FIFO_BYTES);
		if (r) {
			snprintf(err, len, "creating %s: %s", name, strerror(-r));
			unlink(j->path);
			return -1;
		}
		break;
	case S_KFIFO:
	case S_KFIFO_1M:
		fresh_name(name, sizeof(name), "kfifo");
		snprintf(j->path, sizeof(j->path), "%s/%s", cfg.tmp, name);
		if (mkfifo(j->path, 0600)) {
			snprintf(err, len, "mkfifo: %s", strerror(errno));
			return -1;
		}
		break;
	case S_FLOOR:
		inst_path(in, "pipe", j->path, sizeof(j->path));
		break;
	}
	r = run_procs(2, child, j, in, cfg.timeout, &run);
	if (r)
		snprintf(err, len, "%s", run.err);
	else
		*mbs = (double)run.res[1].bytes / (run.res[1].t_end - run.t0) / 1e6;
	run_free(&run);
	if (j->k != S_FLOOR)
		unlink(j->path);
	return r;
}

int stream_fifo_run(struct inst *in, size_t wsize, uint64_t total, double *mbs, char *err,
		    size_t errlen)
{
	struct streamjob j = { .k = S_IPCFS, .wsize = wsize, .total = total };

	return stream_run(&j, in, mbs, err, errlen);
}

void wl_stream(void)
{
	static const size_t sizes[2] = { 4 * KiB, 1 * MiB };
	static const struct {
		enum str k;
		const char *label;
	} vars[] = {
		{ S_IPCFS, "ipcfs FIFO (max_bytes 8 MiB)" },
		{ S_KFIFO, "kernel FIFO (mkfifo), 64 KiB pipe" },
		{ S_KFIFO_1M, "kernel FIFO, F_SETPIPE_SZ 1 MiB" },
		{ S_FLOOR, "FUSE floor pipe (8 MiB buffer)" },
	};
	enum { NV = sizeof(vars) / sizeof(vars[0]) };

	for (int s = 0; s < 2; s++) {
		struct group *g;
		struct row *rows[NV];
		struct streamjob jobs[NV];
		char sz[16];

		snprintf(sz, sizeof(sz), sizes[s] >= MiB ? "%zu MiB" : "%zu KiB",
			 sizes[s] >= MiB ? (size_t)(sizes[s] / MiB) : (size_t)(sizes[s] / KiB));
		g = group_new('b', HIGHER, "MB/s", "bulk stream, %s writes, 1 MiB reads", sz);
		group_note(g, "%llu MiB per run; the reader checks the byte count and each 4 KiB block's index."
			      " A read returns what is queued (ipcfs, kernel), while the floor hands each write"
			      " to the parked read: one READ per WRITE whenever the reader keeps up.",
			   (unsigned long long)(plan.b_total[s] / MiB));
		for (int v = 0; v < NV; v++) {
			rows[v] = v == 0 ? row_ipcfs(g, "%s", vars[v].label) : row_ref(g, "%s", vars[v].label);
			memset(&jobs[v], 0, sizeof(jobs[v]));
			jobs[v].k = vars[v].k;
			jobs[v].wsize = sizes[s];
			jobs[v].total = plan.b_total[s];
		}
		for (int rep = 0; rep < cfg.reps; rep++) {
			progress("b. stream %s writes: repetition %d/%d", sz, rep + 1, cfg.reps);
			for (int v = 0; v < NV; v++) {
				char err[512];
				double mbs = 0;
				if (!row_live(rows[v]))
					continue;
				if (stream_run(&jobs[v], NULL, &mbs, err, sizeof(err)))
					row_err(rows[v], "%s", err);
				else
					row_add(rows[v], mbs);
			}
		}
	}
}
