/* topic.c - publish/subscribe: every subscriber gets every message. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"

/*
 * The topic keeps one log of messages (n->q, sequence numbers increasing by
 * one per publish). Every open for reading is a subscription: a cursor
 * (h->cur, the next message to read, with h->seq its number; NULL when
 * caught up, h->seq then being the next number to be published). A message
 * stays on the log while a subscriber has yet to read it or while it is one
 * of the last `retain` (those are persisted, for new subscribers and
 * restarts). A subscriber's backlog is bounded by max_messages: with
 * overflow=drop its oldest unread message is skipped and counted
 * (n->dropped); with overflow=block publishers wait for the slowest.
 * Publishing (framings, flush, max_bytes) is mailbox.c's writer side.
 */

static bool is_sub(const struct ipc_handle *h)
{
	return (h->acc & IPC_ACC_READ) && !h->released;
}

#define for_each_sub(h, n, pos)                                                        \
	ipc_list_for_each(pos, &(n)->handles)                                           \
		if ((h = ipc_container_of(pos, struct ipc_handle, node_link)), is_sub(h))

static uint64_t backlog(const struct ipc_node *n, const struct ipc_handle *h)
{
	return (uint64_t)(n->q.next_seq - h->seq);
}

static struct ipc_msg *next_of(struct ipc_node *n, struct ipc_msg *m)
{
	return m->queued && m->link.next != &n->q.msgs
		? ipc_container_of(m->link.next, struct ipc_msg, link) : NULL;
}

/* Moves a subscriber's cursor to the message after its current one. */
static void advance(struct ipc_node *n, struct ipc_handle *h)
{
	struct ipc_msg *m = h->cur, *next = next_of(n, m);

	h->cur = next ? ipc_msg_ref(next) : NULL;
	h->seq = next ? next->seq : m->seq + 1;
	h->cur_off = 0;
	ipc_msg_unref(m);
}

/* Drops log messages no subscriber needs and not retained. */
static void collect(struct ipc_store *st, struct ipc_node *n)
{
	int64_t keep_from = n->q.next_seq - (int64_t)n->set.retain, min = n->q.next_seq;
	struct ipc_list *pos;
	struct ipc_handle *h;
	struct ipc_msg *m;

	for_each_sub(h, n, pos)
		if (h->seq < min)
			min = h->seq;
	while ((m = msgq_head(&n->q)) && m->seq < min && m->seq < keep_from) {
		msgq_pop_head(&n->q);
		store_uncharge(st, ipc_msg_charge(m));
		msgq_delivered(&n->q, m);
		store_touch_data(st, n);
	}
}

bool topic_room(const struct ipc_node *n, uint64_t msgs)
{
	struct ipc_list *pos;
	struct ipc_handle *h;

	if (n->set.overflow != IPC_OVERFLOW_BLOCK)
		return true;
	for_each_sub(h, n, pos)
		if (backlog(n, h) + msgs > n->set.max_messages)
			return false;
	return true;
}

static void serve(struct ipc_node *n, struct ipc_handle *h, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m = h->cur;
	size_t k = m->len - h->cur_off;

	if (k > size)
		k = size;
	rdres_add(rd, m, h->cur_off, k);
	h->cur_off += (uint32_t)k;
	if (h->cur_off == m->len) {
		n->stats.out_msgs++;
		n->stats.out_bytes += m->len;
		rd->taken = ipc_msg_ref(m); /* for an undo */
		advance(n, h);
	}
}

/* Record framing: as many whole messages from the cursor as fit in size,
 * each as [u32 length][bytes], in one buffer. */
static int serve_records(struct ipc_node *n, struct ipc_handle *h, size_t size,
			 struct ipc_rdres *rd)
{
	size_t total = 0, count = 0, off = 0;
	struct ipc_msg *m, *buf;

	for (m = h->cur; m && total + 4 + m->len <= size; m = next_of(n, m)) {
		total += 4 + m->len;
		count++;
	}
	if (!count)
		return -EMSGSIZE;
	buf = ipc_msg_new(NULL, 0, total);
	rd->many = malloc(count * sizeof(*rd->many));
	if (!buf || !rd->many) {
		ipc_msg_unref(buf);
		free(rd->many);
		rd->many = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		m = h->cur;
		off += ipc_msg_put_record(buf->data + off, m);
		n->stats.out_msgs++;
		n->stats.out_bytes += m->len;
		rd->many[rd->nmany++] = ipc_msg_ref(m);
		advance(n, h);
	}
	buf->len = (uint32_t)total;
	rdres_add(rd, buf, 0, total);
	ipc_msg_unref(buf);
	return 0;
}

/* Serves a subscriber that has a message waiting. */
static int serve_any(struct ipc_node *n, struct ipc_handle *h, size_t size, struct ipc_rdres *rd)
{
	if (n->set.framing == IPC_FRAMING_RECORD && h->cur_off == 0)
		return serve_records(n, h, size, rd);
	serve(n, h, size, rd);
	return 0;
}

bool topic_feed(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_waiter *w;
	bool any = false;

	for (struct ipc_list *pos = n->readers.waiters.next, *tmp = pos->next;
	     pos != &n->readers.waiters; pos = tmp, tmp = pos->next) {
		w = ipc_container_of(pos, struct ipc_waiter, link);
		int r;
		if (!w->h->cur)
			continue;
		r = serve_any(n, w->h, w->size, &w->rd);
		store_complete(st, w, r < 0 ? r : (int)w->rd.total);
		any = true;
	}
	if (any) {
		collect(st, n);
		store_poll_wake(st, n);
	}
	return any;
}

/* overflow=drop: a subscriber whose backlog passed max_messages loses its
 * oldest unread messages (one it had begun to read too). */
static void trim_backlogs(struct ipc_node *n)
{
	struct ipc_list *pos;
	struct ipc_handle *h;

	if (n->set.overflow != IPC_OVERFLOW_DROP)
		return;
	for_each_sub(h, n, pos) {
		while (h->cur && backlog(n, h) > n->set.max_messages) {
			advance(n, h);
			n->dropped++;
		}
	}
}

int topic_publish(struct ipc_store *st, struct ipc_node *n, struct ipc_msg *m)
{
	struct ipc_list *pos;
	struct ipc_handle *h;
	int r = msgq_push_tail(&n->q, m);

	if (r)
		return r;
	n->stats.in_msgs++;
	n->stats.in_bytes += m->len;
	store_now(&n->mtime);
	for_each_sub(h, n, pos) {
		if (!h->cur) {
			h->cur = ipc_msg_ref(m);
			h->seq = m->seq;
			h->cur_off = 0;
		}
	}
	trim_backlogs(n);
	topic_feed(st, n);
	collect(st, n);
	if (n->set.retain)
		store_touch_data(st, n);
	store_touch_meta(st, n);
	store_poll_wake(st, n);
	return 0;
}

static void topic_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.framing = IPC_FRAMING_OPEN;
	n->set.max_messages = 1000;
	n->set.max_bytes = st->lim.mbox_bytes;
	n->set.overflow = IPC_OVERFLOW_DROP;
	n->set.retain = 0;
}

static int topic_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	struct ipc_node *n = h->node;
	struct ipc_msg *m;

	(void)oflags;
	(void)w;
	if (!(h->acc & IPC_ACC_READ))
		return 0;
	n->nsubs++;
	/* From the next message, or from the last `retain` kept. */
	h->seq = n->q.next_seq;
	m = msgq_head(&n->q);
	while (m && m->seq < n->q.next_seq - (int64_t)n->set.retain)
		m = next_of(n, m);
	if (m && n->set.retain) {
		h->cur = ipc_msg_ref(m);
		h->seq = m->seq;
	}
	store_poll_wake(h->st, n);
	return 0;
}

static int topic_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		      struct ipc_rdres *rd)
{
	struct ipc_node *n = h->node;
	int r;

	if (size == 0)
		return 0;
	if (h->cur) {
		r = serve_any(n, h, size, rd);
		if (r)
			return r;
		collect(h->st, n);
		mbox_pump(h->st, n); /* blocked publishers may go on */
		store_poll_wake(h->st, n);
		return 0;
	}
	/* A subscription never ends by itself. */
	r = obj_must_wait(oflags, w);
	return r ? r : obj_park_read(&n->readers, w);
}

static void topic_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	struct ipc_node *n = h->node;
	struct ipc_rdseg *s = &rd->seg[0];

	struct ipc_msg **ms = rd->nmany ? rd->many : &rd->taken;
	unsigned nm = rd->nmany ? rd->nmany : (rd->taken ? 1 : 0);

	if (nm) {
		/* Messages the read finished but the reader never got: step the
		 * cursor back to the first (if it has not moved on meanwhile),
		 * putting back on the log any that were collected already. */
		struct ipc_msg *first = ms[0], *last = ms[nm - 1];
		if (h->seq != last->seq + 1 || h->cur_off || h->released)
			return;
		for (unsigned i = nm; i-- > 0;) {
			n->stats.out_msgs--;
			n->stats.out_bytes -= ms[i]->len;
			if (!ms[i]->queued) {
				obj_force_charge(h->st, ipc_msg_charge(ms[i]));
				msgq_requeue(&n->q, ipc_msg_ref(ms[i]));
				store_touch_data(h->st, n);
			}
		}
		ipc_msg_unref(h->cur);
		h->cur = ipc_msg_ref(first);
		h->seq = first->seq;
		h->cur_off = rd->nmany ? 0 : s->off;
	} else if (h->cur == s->msg && h->cur_off == s->off + s->len) {
		h->cur_off = s->off;
	}
}

static void topic_release(struct ipc_handle *h)
{
	struct ipc_node *n = h->node;

	if (h->acc & IPC_ACC_READ) {
		n->nsubs--;
		ipc_msg_unref(h->cur);
		h->cur = NULL;
	}
	mbox_release_writer(h);
	collect(h->st, n);
	mbox_pump(h->st, n);
	store_poll_wake(h->st, n);
}

static unsigned topic_poll(struct ipc_handle *h)
{
	unsigned ev = 0;

	if ((h->acc & IPC_ACC_READ) && h->cur)
		ev |= POLLIN | POLLRDNORM;
	if ((h->acc & IPC_ACC_WRITE) && topic_room(h->node, 1))
		ev |= POLLOUT | POLLWRNORM;
	return ev;
}

static uint64_t topic_size(const struct ipc_node *n)
{
	(void)n;
	return 0;
}

static void topic_changed(struct ipc_store *st, struct ipc_node *n)
{
	trim_backlogs(n);
	collect(st, n);
	mbox_pump(st, n);
}

const struct ipc_kind_ops topic_ops = {
	.init = topic_init,
	.open = topic_open,
	.read = topic_read,
	.unread = topic_unread,
	.write = mbox_write,
	.flush = mbox_flush,
	.release = topic_release,
	.abort = mbox_abort,
	.poll = topic_poll,
	.size = topic_size,
	.changed = topic_changed,
};
