/* object.c - open files on objects: what every kind has in common. */
#include "lib/object.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"
#include "lib/region.h"

static const struct ipc_kind_ops *ops_of(const struct ipc_node *n)
{
	switch (n->kind) {
	case IPC_KIND_MBOX:
		return &mbox_ops;
	case IPC_KIND_FIFO:
		return &fifo_ops;
	case IPC_KIND_SHM:
		return &shm_ops;
	case IPC_KIND_SEM:
		return &sem_ops;
	case IPC_KIND_EVENT:
		return &event_ops;
	case IPC_KIND_TOPIC:
		return &topic_ops;
	case IPC_KIND_STATUS:
		return &status_ops;
	default:
		return NULL;
	}
}

void ipc_object_init(struct ipc_store *st, struct ipc_node *n)
{
	const struct ipc_kind_ops *ops = ops_of(n);

	if (ops && ops->init)
		ops->init(st, n);
}

void ipc_object_changed(struct ipc_store *st, struct ipc_node *n)
{
	const struct ipc_kind_ops *ops = ops_of(n);

	if (ops && ops->changed)
		ops->changed(st, n);
	store_poll_wake(st, n);
}

int ipc_object_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size)
{
	const struct ipc_kind_ops *ops = ops_of(n);

	if (ops && ops->truncate)
		return ops->truncate(st, n, size);
	/* Streams: truncating to 0 is a no-op (echo x > mbox/q). */
	return size == 0 ? 0 : -EINVAL;
}

void ipc_object_fini(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_msg *m;

	region_fini(st, n);
	while ((m = msgq_pop_head(&n->q))) {
		store_uncharge(st, ipc_msg_charge(m));
		m->done = true;
		ipc_msg_unref(m);
	}
}

uint64_t ipc_node_size(const struct ipc_node *n)
{
	const struct ipc_kind_ops *ops = ops_of(n);

	return ops && ops->size ? ops->size(n) : 0;
}

int obj_must_wait(int oflags, const struct ipc_waiter *w)
{
	if (oflags & O_NONBLOCK)
		return -EAGAIN;
	if (!w)
		return IPC_E_AGAIN;
	return 0;
}

void obj_write_done(struct ipc_store *st, struct ipc_waiter *w, int result)
{
	int r;

	if (st->sync == IPC_SYNC_FULL && result > 0) {
		waitq_remove(w);
		w->state = IPC_W_INIT;
		r = store_wait_commit(st, w, result);
		if (r == IPC_E_PARKED)
			return;
		if (r < 0)
			result = r;
	}
	store_complete(st, w, result);
}

int obj_park_write(struct ipc_waitq *q, struct ipc_waiter *w, struct ipc_handle *h,
		   const char *buf, size_t len, size_t done)
{
	struct ipc_msg *m = NULL;
	int r;

	if (w->state != IPC_W_CANCELLED)
		m = ipc_msg_new(buf + done, len - done, len - done);
	if (!m) {
		r = w->state == IPC_W_CANCELLED ? -EINTR : -ENOMEM;
		if (!done)
			return r;
		/* Report the bytes already placed, through the callback. */
		w->op = IPC_OP_WRITE;
		w->state = IPC_W_QUEUED;
		obj_write_done(h->st, w, (int)done);
		return IPC_E_PARKED;
	}
	w->op = IPC_OP_WRITE;
	w->h = h;
	w->wmsg = m;
	w->wlen = len;
	w->wdone = done;
	r = waitq_park(q, w);
	if (r == IPC_E_PARKED) {
		h->refs++;
		w->href = true;
	} else {
		w->wmsg = NULL;
		ipc_msg_unref(m);
	}
	return r;
}

int obj_park_read(struct ipc_waitq *q, struct ipc_waiter *w)
{
	int r = waitq_park(q, w);

	if (r == IPC_E_PARKED) {
		w->h->refs++;
		w->href = true;
	}
	return r;
}

void obj_force_charge(struct ipc_store *st, size_t bytes)
{
	st->mem_used += bytes;
}

static struct ipc_handle *handle_new(struct ipc_store *st, struct ipc_node *n, int oflags,
				     const struct ipc_cred *cred, void *user)
{
	struct ipc_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->st = st;
	h->node = n;
	h->refs = 1;
	switch (oflags & O_ACCMODE) {
	case O_RDONLY:
		h->acc = IPC_ACC_READ;
		break;
	case O_WRONLY:
		h->acc = IPC_ACC_WRITE;
		break;
	default:
		h->acc = IPC_ACC_READ | IPC_ACC_WRITE;
		break;
	}
	h->cred = *cred;
	h->user = user;
	ipc_list_init(&h->poll_link);
	ipc_list_add_tail(&n->handles, &h->node_link);
	n->nhandles++;
	if (h->acc & IPC_ACC_READ)
		n->nreaders++;
	if (h->acc & IPC_ACC_WRITE)
		n->nwriters++;
	return h;
}

/* The handle stops counting as a reader/writer (before the kind's release,
 * which may act on the new counts: FIFO EOF). */
static void drop_access(struct ipc_handle *h)
{
	if (h->acc & IPC_ACC_READ)
		h->node->nreaders--;
	if (h->acc & IPC_ACC_WRITE)
		h->node->nwriters--;
}

/* Drops a reference; the last one frees the handle (lock held). */
static void handle_put(struct ipc_handle *h)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;

	if (--h->refs)
		return;
	ipc_list_del(&h->node_link);
	n->nhandles--;
	free(h);
	store_maybe_free(st, n);
}

int ipc_open(struct ipc_store *st, uint64_t id, int oflags, const struct ipc_cred *cred,
	     void *user, struct ipc_waiter *w, struct ipc_handle **out)
{
	const struct ipc_kind_ops *ops;
	struct ipc_handle *h;
	struct ipc_node *n;
	int r;

	store_lock(st);
	n = store_node(st, id);
	if (!n) {
		r = -ENOENT;
		goto out;
	}
	if (n->is_dir) {
		r = -EISDIR;
		goto out;
	}
	ops = ops_of(n);
	if (!ops) {
		r = -ENXIO;
		goto out;
	}
	h = handle_new(st, n, oflags, cred, user);
	if (!h) {
		r = -ENOMEM;
		goto out;
	}
	r = ops->open(h, oflags, w);
	if (r == 0 || r == IPC_E_PARKED) {
		*out = h;
	} else {
		/* Nothing of the open remains (IPC_E_AGAIN promises that). */
		h->released = true;
		drop_access(h);
		if (ops->release)
			ops->release(h);
		handle_put(h);
	}
out:
	store_unlock(st);
	return r;
}

int ipc_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
	     struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	int r;

	memset(rd, 0, sizeof(*rd));
	store_lock(st);
	if (!(h->acc & IPC_ACC_READ)) {
		r = -EBADF;
	} else {
		if (w) {
			w->op = IPC_OP_READ;
			w->h = h;
			w->size = size;
		}
		r = ops_of(h->node)->read(h, size, oflags, w, rd);
		/* (regions answer -ESPIPE: they are read with ipc_pread) */
		if (r == 0 && rd->total)
			h->refs++; /* held by the result until ipc_read_done */
		if (r == 0)
			store_now(&h->node->atime);
	}
	store_unlock(st);
	return r;
}

int ipc_pread(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	const struct ipc_kind_ops *ops = ops_of(h->node);
	int r;

	memset(rd, 0, sizeof(*rd));
	store_lock(st);
	if (!(h->acc & IPC_ACC_READ)) {
		r = -EBADF;
	} else if (!ops->pread) {
		r = -ESPIPE;
	} else {
		r = ops->pread(h, off, size, rd);
		if (r == 0 && rd->total)
			h->refs++;
	}
	store_unlock(st);
	return r;
}

void ipc_read_done(struct ipc_handle *h, struct ipc_rdres *rd, bool delivered)
{
	struct ipc_store *st = h->st;

	store_lock(st);
	if (!delivered && rd->total && ops_of(h->node)->unread)
		ops_of(h->node)->unread(h, rd);
	handle_put(h);
	store_unlock(st);
	rdres_release(rd);
}

void ipc_waiter_end(struct ipc_waiter *w, bool delivered)
{
	struct ipc_handle *h = w->h;

	if (w->op == IPC_OP_READ && w->href) {
		w->href = false;
		ipc_read_done(h, &w->rd, delivered);
		return;
	}
	rdres_release(&w->rd);
	ipc_msg_unref(w->wmsg);
	w->wmsg = NULL;
	if (w->href) {
		struct ipc_store *st = h->st;
		w->href = false;
		store_lock(st);
		handle_put(h);
		store_unlock(st);
	}
}

int ipc_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
	      struct ipc_waiter *w, size_t *written)
{
	struct ipc_store *st = h->st;
	int r;

	*written = 0;
	/* In full mode every write may end in a commit wait. */
	if (!w && st->sync == IPC_SYNC_FULL)
		return IPC_E_AGAIN;
	if (len > INT32_MAX)
		return -EFBIG;
	store_lock(st);
	if (!(h->acc & IPC_ACC_WRITE)) {
		r = -EBADF;
	} else if (st->sync == IPC_SYNC_FULL && st->db_error) {
		/* Nothing new is acknowledged while it cannot be made durable. */
		r = -EIO;
	} else {
		r = ops_of(h->node)->write(h, buf, len, off, oflags, w, written);
		if (r == 0 && *written && st->sync == IPC_SYNC_FULL) {
			if (w->state == IPC_W_CANCELLED)
				w->state = IPC_W_INIT;
			w->op = IPC_OP_COMMIT;
			r = store_wait_commit(st, w, (int)*written);
		}
	}
	store_unlock(st);
	return r;
}

int ipc_flush(struct ipc_handle *h, const struct ipc_cred *cred, struct ipc_waiter *w)
{
	struct ipc_store *st = h->st;
	const struct ipc_kind_ops *ops = ops_of(h->node);
	int r = 0;

	if (!w && st->sync == IPC_SYNC_FULL && (h->acc & IPC_ACC_WRITE))
		return IPC_E_AGAIN;
	store_lock(st);
	if (ops->flush)
		r = ops->flush(h, cred);
	if (r > 0)
		r = st->sync == IPC_SYNC_FULL ? store_wait_commit(st, w, 0) : 0;
	store_unlock(st);
	return r;
}

bool ipc_abort_write(struct ipc_handle *h)
{
	const struct ipc_kind_ops *ops = ops_of(h->node);
	bool r = false;

	store_lock(h->st);
	if (ops->abort)
		r = ops->abort(h);
	store_unlock(h->st);
	return r;
}

bool ipc_write_pending(struct ipc_handle *h)
{
	bool r;

	store_lock(h->st);
	r = h->pend != NULL;
	store_unlock(h->st);
	return r;
}

int ipc_fsync(struct ipc_handle *h, struct ipc_waiter *w)
{
	struct ipc_store *st = h->st;
	int r;

	store_lock(st);
	r = store_wait_commit(st, w, 0);
	store_unlock(st);
	return r;
}

void ipc_poll(struct ipc_handle *h, unsigned events, bool arm, unsigned *revents)
{
	struct ipc_store *st = h->st;
	unsigned ready;

	store_lock(st);
	ready = ops_of(h->node)->poll(h);
	if (arm && !ipc_list_linked(&h->poll_link) && !h->released)
		ipc_list_add_tail(&h->node->pollers, &h->poll_link);
	store_unlock(st);
	*revents = ready & (events | POLLHUP | POLLERR);
}

void ipc_release(struct ipc_handle *h)
{
	struct ipc_store *st = h->st;
	const struct ipc_kind_ops *ops = ops_of(h->node);

	store_lock(st);
	h->released = true;
	drop_access(h);
	if (ipc_list_linked(&h->poll_link))
		ipc_list_del(&h->poll_link);
	if (ops->release)
		ops->release(h);
	handle_put(h);
	store_unlock(st);
}
