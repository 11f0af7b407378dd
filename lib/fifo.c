/* fifo.c - persistent named pipes: a byte stream with named-pipe EOF rules. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"

/*
 * The stream is a queue of segments (ipc_msg); writers append to the tail
 * segment while it is unsaved, readers consume from the head (msg->head).
 * EOF: a reader that has seen data or a writer gets EOF once the stream is
 * empty and no writer has the FIFO open; until then it waits. Writes of at
 * most PIPE_BUF bytes are placed whole; larger ones may be placed in parts
 * while they wait for room (as with pipes). Writers queue in arrival order.
 */

#define SEG_MIN 16384

static void fifo_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.framing = 0;
	n->set.max_messages = 0;
	n->set.max_bytes = st->lim.fifo_bytes;
}

static uint64_t fifo_size(const struct ipc_node *n)
{
	return n->q.bytes;
}

static uint64_t room(const struct ipc_node *n)
{
	return n->q.bytes < n->set.max_bytes ? n->set.max_bytes - n->q.bytes : 0;
}

/* Appends len bytes to the stream. Returns 0, -ENOSPC, -ENOMEM (nothing
 * appended on failure: the check comes first). */
static int append(struct ipc_store *st, struct ipc_node *n, const char *buf, size_t len)
{
	struct ipc_msg *tail = ipc_list_empty(&n->q.msgs)
		? NULL : ipc_container_of(n->q.msgs.prev, struct ipc_msg, link);
	size_t fill = 0, rest, cap;
	struct ipc_msg *m = NULL;

	if (tail && !tail->sealed && !tail->in_db) {
		fill = tail->cap - tail->len;
		if (fill > len)
			fill = len;
	}
	rest = len - fill;
	if (rest) {
		cap = rest < SEG_MIN ? SEG_MIN : rest;
		if (st->mem_used + sizeof(*m) + cap > st->lim.max_memory)
			return -ENOSPC;
		m = ipc_msg_new(buf + fill, rest, cap);
		if (!m)
			return -ENOMEM;
		if (msgq_push_tail(&n->q, m)) {
			ipc_msg_unref(m);
			return -ENOMEM;
		}
		obj_force_charge(st, ipc_msg_charge(m));
	}
	if (fill) {
		memcpy(tail->data + tail->len, buf, fill);
		tail->len += (uint32_t)fill;
		n->q.bytes += fill;
	}
	n->stats.in_bytes += len;
	store_now(&n->mtime);
	store_touch_meta(st, n);
	store_touch_data(st, n);
	store_poll_wake(st, n);
	return 0;
}

/* Moves up to size bytes from the head of the stream into rd. */
static void gather(struct ipc_store *st, struct ipc_node *n, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m;

	while (size && (m = msgq_head(&n->q))) {
		size_t k = m->len - m->head;
		if (k > size)
			k = size;
		if (k && !rdres_add(rd, m, m->head, k))
			break;
		msgq_consumed_head(&n->q, m, k);
		size -= k;
		if (m->head == m->len) {
			msgq_pop_head(&n->q);
			store_uncharge(st, ipc_msg_charge(m));
			msgq_delivered(&n->q, m);
		}
	}
	n->stats.out_bytes += rd->total;
	store_touch_data(st, n);
	store_poll_wake(st, n);
}

/* Readers that have seen data or a writer get EOF when the stream is empty
 * and no writer is left. */
static bool at_eof(const struct ipc_handle *h)
{
	return h->seen && h->node->nwriters == 0 && h->node->q.bytes == 0;
}

/* Places writers' bytes and hands bytes to readers until nothing moves. */
static void pump(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_waiter *w;
	bool progress;

	do {
		progress = false;
		while ((w = waitq_first(&n->readers))) {
			if (n->q.bytes) {
				gather(st, n, w->size, &w->rd);
				w->h->seen = true;
				store_complete(st, w, (int)w->rd.total);
			} else if (at_eof(w->h)) {
				store_complete(st, w, 0);
			} else {
				break;
			}
			progress = true;
		}
		while ((w = waitq_first(&n->space))) {
			struct ipc_msg *m = w->wmsg;
			size_t left = m->len - m->head, k = room(n);
			int r;
			if (k > left)
				k = left;
			/* Small writes go in whole (unless they can never fit). */
			if (!k || (w->wlen <= PIPE_BUF && w->wlen <= n->set.max_bytes && k < left))
				break;
			r = append(st, n, m->data + m->head, k);
			if (r) {
				obj_write_done(st, w, w->wdone ? (int)w->wdone : r);
			} else {
				m->head += (uint32_t)k;
				w->wdone += k;
				if (w->wdone < w->wlen) {
					progress = true;
					break;
				}
				obj_write_done(st, w, (int)w->wlen);
			}
			progress = true;
		}
	} while (progress);
}

static int fifo_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	struct ipc_node *n = h->node;
	struct ipc_list *pos;

	(void)oflags;
	(void)w;
	if (h->acc & IPC_ACC_WRITE) {
		ipc_list_for_each(pos, &n->handles)
			ipc_container_of(pos, struct ipc_handle, node_link)->seen = true;
	}
	if (h->acc & IPC_ACC_READ)
		h->seen = n->nwriters > 0;
	return 0;
}

static int fifo_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		     struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	int r;

	if (size == 0)
		return 0;
	if (n->q.bytes) {
		gather(st, n, size, rd);
		h->seen = true;
		pump(st, n);
		return 0;
	}
	if (at_eof(h))
		return 0;
	r = obj_must_wait(oflags, w);
	return r ? r : obj_park_read(&n->readers, w);
}

static void fifo_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;

	for (unsigned i = rd->nseg; i-- > 0;) {
		struct ipc_rdseg *s = &rd->seg[i];
		struct ipc_msg *m = s->msg;
		if (m->queued && msgq_head(&n->q) == m && m->head == s->off + s->len) {
			m->head = s->off;
			n->q.bytes += s->len;
			msgq_skip_changed(&n->q, m);
		} else if (!m->queued && m->done && m->head == s->off + s->len) {
			m->head = s->off;
			obj_force_charge(st, ipc_msg_charge(m));
			msgq_requeue(&n->q, ipc_msg_ref(m));
		} else {
			/* Someone read on meanwhile: give the bytes back as a copy. */
			struct ipc_msg *c = ipc_msg_new(m->data + s->off, s->len, s->len);
			if (!c)
				continue; /* out of memory: these bytes are lost */
			c->sealed = true;
			obj_force_charge(st, ipc_msg_charge(c));
			msgq_push_head_copy(&n->q, c);
		}
		n->stats.out_bytes -= s->len;
	}
	store_touch_data(st, n);
	pump(st, n);
	store_poll_wake(st, n);
}

static int fifo_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off,
		      int oflags, struct ipc_waiter *w, size_t *written)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	size_t placed = 0;
	int r;

	(void)off;
	if (len == 0)
		return 0;
	if (ipc_list_empty(&n->space.waiters)) {
		uint64_t k = room(n);
		if (len <= k) {
			r = append(st, n, buf, len);
			if (r)
				return r;
			*written = len;
			pump(st, n);
			return 0;
		}
		if ((len > PIPE_BUF || len > n->set.max_bytes) && k && (w || (oflags & O_NONBLOCK))) {
			r = append(st, n, buf, k);
			if (r)
				return r;
			placed = k;
			pump(st, n);
		}
	}
	if (oflags & O_NONBLOCK) {
		if (!placed)
			return -EAGAIN;
		*written = placed;
		return 0;
	}
	if (!w)
		return IPC_E_AGAIN;
	r = obj_park_write(&n->space, w, h, buf, len, placed);
	/* The part placed may already have gone to a parked reader: room. */
	if (r == IPC_E_PARKED)
		pump(st, n);
	return r;
}

static void fifo_release(struct ipc_handle *h)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;

	pump(st, n);
	store_poll_wake(st, n);
}

static unsigned fifo_poll(struct ipc_handle *h)
{
	struct ipc_node *n = h->node;
	unsigned ev = 0;

	if (h->acc & IPC_ACC_READ) {
		if (n->q.bytes)
			ev |= POLLIN | POLLRDNORM;
		else if (at_eof(h))
			ev |= POLLIN | POLLRDNORM | POLLHUP;
	}
	if ((h->acc & IPC_ACC_WRITE) && room(n))
		ev |= POLLOUT | POLLWRNORM;
	return ev;
}

static void fifo_changed(struct ipc_store *st, struct ipc_node *n)
{
	pump(st, n);
}

const struct ipc_kind_ops fifo_ops = {
	.init = fifo_init,
	.open = fifo_open,
	.read = fifo_read,
	.unread = fifo_unread,
	.write = fifo_write,
	.flush = NULL,
	.release = fifo_release,
	.poll = fifo_poll,
	.size = fifo_size,
	.changed = fifo_changed,
};
