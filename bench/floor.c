/* floor.c - fuse-floor: a do-nothing low-level FUSE file system, the cost floor ipcfs is compared with. */
#include <errno.h>
#include <getopt.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

/*
 * The root holds three files, all streams (FOPEN_DIRECT_IO | NONSEEKABLE |
 * STREAM, sent in a hand-built fuse_open_out as ipcfs's fs/reply.c does):
 *   null   read returns `size` zero bytes at once; write returns size.
 *   pipe   the cheapest blocked-read ping-pong: a read with nothing buffered
 *   pipe2  is parked (fuse_req_t kept, interrupt callback registered); a write
 *          hands its bytes straight to a parked read (reply to the read from
 *          the write handler, then to the write), or appends them to one
 *          bounded buffer when no read waits (a write that does not fit is
 *          parked until reads drain the buffer).
 * No persistence, no xattrs, no poll, nothing else. Like ipcfs: always
 * default_permissions, the single-threaded loop unless --threads N > 1, -f.
 *
 * Locking: `lock` guards every pipe and waiter. Lock order: libfuse's
 * req->lock (held while it calls intr_cb) -> lock -> libfuse's se->lock
 * (taken by fuse_reply_*). So fuse_req_interrupt_func() is never called with
 * `lock` held, and a waiter is freed only after its request's interrupt
 * callback was cleared (which waits out a running callback).
 */

enum { INO_ROOT = 1, INO_NULL, INO_PIPE, INO_PIPE2, INO_END };
static const char *const names[INO_END] = { NULL, NULL, "null", "pipe", "pipe2" };

#define PIPE_CAP (8u << 20)   /* the one buffer of a pipe: 8 MiB */
#define ZERO_LEN (2u << 20)   /* more than any READ (max_read <= 1 MiB) */

static const char zeros[ZERO_LEN];

enum wstate { W_INIT, W_QUEUED, W_TAKEN, W_INTR_EARLY };

/* A parked READ or WRITE. */
struct waiter {
	struct waiter *next;
	fuse_req_t req;
	enum wstate state;
	bool is_write;
	size_t size;  /* READ: bytes asked; WRITE: bytes carried */
	char *data;   /* WRITE: a copy of the bytes (the request buffer is reused);
			 READ taken from the buffer: the bytes to send */
	size_t len;   /* READ taken from the buffer: bytes in data */
	struct pipe *p;
};

struct pipe {
	char *buf;     /* ring of PIPE_CAP bytes, allocated on first use */
	size_t head, len;
	struct waiter *readers, **rtail;
	struct waiter *writers, **wtail;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pipe pipes[2];

static struct pipe *pipe_of(fuse_ino_t ino)
{
	return ino == INO_PIPE ? &pipes[0] : ino == INO_PIPE2 ? &pipes[1] : NULL;
}

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0666;
		st->st_nlink = 1;
	}
}

/* --- lists (lock held) --- */

static void push(struct waiter **head, struct waiter ***tail, struct waiter *w)
{
	w->next = NULL;
	if (!*head)
		*tail = head;
	**tail = w;
	*tail = &w->next;
}

static struct waiter *pop(struct waiter **head, struct waiter ***tail)
{
	struct waiter *w = *head;

	if (w) {
		*head = w->next;
		if (!*head)
			*tail = head;
	}
	return w;
}

static bool unlink_w(struct waiter **head, struct waiter ***tail, struct waiter *w)
{
	for (struct waiter **pp = head; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			if (*tail == &w->next)
				*tail = pp;
			return true;
		}
	}
	return false;
}

/* --- the ring (lock held) --- */

static bool ring_alloc(struct pipe *p)
{
	if (!p->buf)
		p->buf = malloc(PIPE_CAP);
	return p->buf != NULL;
}

static void ring_put(struct pipe *p, const char *src, size_t n)
{
	size_t tail = (p->head + p->len) % PIPE_CAP, first = PIPE_CAP - tail;

	if (first > n)
		first = n;
	memcpy(p->buf + tail, src, first);
	memcpy(p->buf, src + first, n - first);
	p->len += n;
}

/* Up to two iovecs for the first n buffered bytes. */
static int ring_iov(const struct pipe *p, size_t n, struct iovec *iov)
{
	size_t first = PIPE_CAP - p->head;

	iov[0].iov_base = p->buf + p->head;
	if (first >= n) {
		iov[0].iov_len = n;
		return 1;
	}
	iov[0].iov_len = first;
	iov[1].iov_base = p->buf;
	iov[1].iov_len = n - first;
	return 2;
}

static void ring_take(struct pipe *p, size_t n, char *dst)
{
	struct iovec iov[2];
	int cnt = ring_iov(p, n, iov);

	if (dst)
		for (int i = 0, o = 0; i < cnt; o += (int)iov[i].iov_len, i++)
			memcpy(dst + o, iov[i].iov_base, iov[i].iov_len);
	p->head = (p->head + n) % PIPE_CAP;
	p->len -= n;
}

/* Moves parked writers whose bytes now fit into the buffer; they are marked
 * TAKEN and chained on *done to be answered once the lock is dropped. */
static void admit_writers(struct pipe *p, struct waiter **done)
{
	while (p->buf && p->writers && p->writers->size <= PIPE_CAP - p->len) {
		struct waiter *w = pop(&p->writers, &p->wtail);
		ring_put(p, w->data, w->size);
		w->state = W_TAKEN;
		w->next = *done;
		*done = w;
	}
}

/* Gives buffered bytes to parked readers (copies: they are answered after
 * the lock is dropped); out of memory, they stay parked for the next write. */
static void feed_readers(struct pipe *p, struct waiter **done)
{
	while (p->readers && p->len) {
		struct waiter *w = p->readers;
		size_t n = w->size < p->len ? w->size : p->len;
		char *d = malloc(n);
		if (!d)
			return; /* stays parked; a later write retries */
		pop(&p->readers, &p->rtail);
		ring_take(p, n, d);
		w->data = d;
		w->len = n;
		w->state = W_TAKEN;
		w->next = *done;
		*done = w;
		admit_writers(p, done);
	}
}

/* Answers a TAKEN waiter (lock not held) and frees it. */
static void finish(struct waiter *w)
{
	fuse_req_interrupt_func(w->req, NULL, NULL);
	if (w->is_write)
		fuse_reply_write(w->req, w->size);
	else
		fuse_reply_buf(w->req, w->data, w->len);
	free(w->data);
	free(w);
}

static void finish_all(struct waiter *done)
{
	/* Chained newest first; answer in arrival order. */
	struct waiter *rev = NULL;

	while (done) {
		struct waiter *n = done->next;
		done->next = rev;
		rev = done;
		done = n;
	}
	while (rev) {
		struct waiter *n = rev->next;
		finish(rev);
		rev = n;
	}
}

static void intr_cb(fuse_req_t req, void *data)
{
	struct waiter *w = data;
	struct pipe *p = w->p;
	bool queued;

	pthread_mutex_lock(&lock);
	if (w->state == W_INIT) {
		w->state = W_INTR_EARLY;
		pthread_mutex_unlock(&lock);
		return;
	}
	queued = w->state == W_QUEUED &&
		 (w->is_write ? unlink_w(&p->writers, &p->wtail, w)
			      : unlink_w(&p->readers, &p->rtail, w));
	pthread_mutex_unlock(&lock);
	if (!queued)
		return;
	fuse_reply_err(req, EINTR);
	free(w->data);
	free(w);
}

/* A new waiter with its interrupt callback registered (lock not held). */
static struct waiter *wait_new(fuse_req_t req, struct pipe *p, bool is_write, size_t size)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->req = req;
	w->p = p;
	w->is_write = is_write;
	w->size = size;
	fuse_req_interrupt_func(req, intr_cb, w);
	return w;
}

/* --- operations --- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	if (parent == INO_ROOT)
		for (fuse_ino_t i = INO_NULL; i < INO_END; i++)
			if (strcmp(name, names[i]) == 0) {
				e.ino = i;
				e.generation = 1;
				fill_stat(i, &e.attr);
				break;
			}
	if (!e.ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino < INO_ROOT || ino >= INO_END) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)attr;
	(void)to_set;
	op_getattr(req, ino, fi); /* `echo > file` may truncate: a no-op */
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char buf[512];
	size_t pos = 0;
	struct stat st;

	(void)fi;
	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (off_t i = off; i < INO_END; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." : names[i];
		size_t len;
		fill_stat(i < 2 ? INO_ROOT : (fuse_ino_t)i, &st);
		len = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		if (len > size - pos)
			break;
		pos += len;
	}
	fuse_reply_buf(req, buf, pos);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_open_out out;

	(void)fi;
	if (ino == INO_ROOT) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* libfuse 3.14 has no FOPEN_STREAM field: the kernel ABI struct. */
	memset(&out, 0, sizeof(out));
	out.open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM;
	fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pipe *p = pipe_of(ino);
	struct waiter *w, *done = NULL;
	struct iovec iov[2];
	size_t n;

	(void)fi;
	if (!p) {
		fuse_reply_buf(req, zeros, size < ZERO_LEN ? size : ZERO_LEN);
		return;
	}
	/* A continuation chunk of one read(2) (FOPEN_STREAM: each call starts
	 * at 0): end the call here rather than wait. */
	if (off > 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	pthread_mutex_lock(&lock);
	if (p->len) {
		n = size < p->len ? size : p->len;
		fuse_reply_iov(req, iov, ring_iov(p, n, iov));
		ring_take(p, n, NULL);
		admit_writers(p, &done);
		pthread_mutex_unlock(&lock);
		finish_all(done);
		return;
	}
	pthread_mutex_unlock(&lock);

	w = wait_new(req, p, false, size);
	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&lock);
	if (w->state == W_INTR_EARLY) {
		pthread_mutex_unlock(&lock);
		fuse_req_interrupt_func(req, NULL, NULL);
		fuse_reply_err(req, EINTR);
		free(w);
		return;
	}
	push(&p->readers, &p->rtail, w);
	w->state = W_QUEUED;
	/* A write may have come in between the two locks (--threads). */
	admit_writers(p, &done);
	feed_readers(p, &done);
	pthread_mutex_unlock(&lock);
	finish_all(done);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct pipe *p = pipe_of(ino);
	struct waiter *r, *w, *done = NULL;

	(void)off;
	(void)fi;
	if (!p) {
		fuse_reply_write(req, size);
		return;
	}
	pthread_mutex_lock(&lock);
	r = p->readers;
	if (r && !p->len && !p->writers && r->size >= size) {
		/* The ping-pong path: straight to the parked read. */
		pop(&p->readers, &p->rtail);
		r->state = W_TAKEN;
		pthread_mutex_unlock(&lock);
		fuse_req_interrupt_func(r->req, NULL, NULL);
		fuse_reply_buf(r->req, buf, size);
		free(r);
		fuse_reply_write(req, size);
		return;
	}
	if (!p->writers && size <= PIPE_CAP - p->len && ring_alloc(p)) {
		ring_put(p, buf, size);
		feed_readers(p, &done);
		pthread_mutex_unlock(&lock);
		finish_all(done);
		fuse_reply_write(req, size);
		return;
	}
	pthread_mutex_unlock(&lock);

	/* No room: park the write with a copy of its bytes. */
	w = wait_new(req, p, true, size);
	if (!w || !(w->data = malloc(size))) {
		if (w) {
			fuse_req_interrupt_func(req, NULL, NULL);
			free(w);
		}
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(w->data, buf, size);
	pthread_mutex_lock(&lock);
	if (w->state == W_INTR_EARLY) {
		pthread_mutex_unlock(&lock);
		fuse_req_interrupt_func(req, NULL, NULL);
		fuse_reply_err(req, EINTR);
		free(w->data);
		free(w);
		return;
	}
	push(&p->writers, &p->wtail, w);
	w->state = W_QUEUED;
	if (ring_alloc(p)) {
		admit_writers(p, &done); /* reads may have drained it meanwhile */
		feed_readers(p, &done);
	}
	pthread_mutex_unlock(&lock);
	finish_all(done);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: fuse-floor [options] MOUNTPOINT\n"
		"\n"
		"A do-nothing FUSE file system: the files null and pipe, pipe2 (blocked-read\n"
		"ping-pong) measure what any FUSE file system costs on this machine.\n"
		"\n"
		"Options:\n"
		"  --threads N        FUSE worker threads; 1 = single-threaded loop (default)\n"
		"  -f                 stay in the foreground\n"
		"  -d                 debug log on stderr (implies -f)\n"
		"  -o OPT[,OPT...]    mount options (allow_other, auto_unmount, ...)\n"
		"  -h, --help         this help\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	bool foreground = false, debug = false;
	const char *opts = NULL;
	int threads = 1, c, r = 1;

	while ((c = getopt_long(argc, argv, "+fdo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			threads = atoi(optarg);
			if (threads < 1 || threads > 64) {
				fprintf(stderr, "fuse-floor: --threads takes 1..64\n");
				return 2;
			}
			break;
		case 'f': foreground = true; break;
		case 'd': debug = foreground = true; break;
		case 'o': opts = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	pipes[0].rtail = &pipes[0].readers;
	pipes[0].wtail = &pipes[0].writers;
	pipes[1].rtail = &pipes[1].readers;
	pipes[1].wtail = &pipes[1].writers;
	if (fuse_opt_add_arg(&args, argv[0]) ||
	    fuse_opt_add_arg(&args, "-odefault_permissions,fsname=fuse-floor,subtype=fuse-floor") ||
	    (opts && (fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts))) ||
	    (debug && fuse_opt_add_arg(&args, "-odebug")))
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se))
		goto out;
	if (fuse_session_mount(se, argv[optind])) {
		fuse_remove_signal_handlers(se);
		goto out;
	}
	fuse_daemonize(foreground);
	if (threads > 1) {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(cfg, (unsigned)threads);
		r = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	} else {
		r = fuse_session_loop(se);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	r = r < 0 ? 1 : 0;
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	return r;
}
