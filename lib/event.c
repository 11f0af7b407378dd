/* event.c - events (signals, doorbells): a write wakes every waiting reader. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"

/*
 * A reader receives the payload of the first write made after it opened the
 * file, then EOF; every open reader receives it (broadcast). A write never
 * blocks and, without the latched setting, is not kept (edge semantics).
 * With latched=1 the event stays set after a write: readers that open later
 * get that payload at once, until a reset (truncate to 0, e.g. `: > event/e`;
 * `echo x > event/e` resets and sets again). The set payload is persisted
 * (n->q holds it); n->ev_set says whether it is set.
 */

static void event_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.max_bytes = st->lim.write_msg_max < 65536 ? st->lim.write_msg_max : 65536;
}

static void serve(struct ipc_handle *h, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m = h->cur;
	size_t k = m->len - h->cur_off;

	if (k > size)
		k = size;
	rdres_add(rd, m, h->cur_off, k);
	h->cur_off += (uint32_t)k;
	if (h->cur_off == m->len) {
		h->node->stats.out_msgs++;
		h->node->stats.out_bytes += m->len;
		ipc_msg_unref(m);
		h->cur = NULL;
	}
}

static void give(struct ipc_handle *h, struct ipc_msg *m)
{
	h->cur = ipc_msg_ref(m);
	h->cur_off = 0;
	h->got_msg = true;
}

static void reset(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_msg *m;

	if (!n->ev_set)
		return;
	n->ev_set = false;
	while ((m = msgq_pop_head(&n->q))) {
		store_uncharge(st, ipc_msg_charge(m));
		msgq_delivered(&n->q, m);
	}
	store_touch_meta(st, n);
	store_touch_data(st, n);
}

static int event_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	(void)w;
	h->gen = h->node->gen;
	if ((oflags & O_TRUNC) && (h->acc & IPC_ACC_WRITE))
		reset(h->st, h->node);
	return 0;
}

static int event_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		      struct ipc_rdres *rd)
{
	struct ipc_node *n = h->node;
	int r;

	if (size == 0)
		return 0;
	if (!h->got_msg && n->ev_set && msgq_head(&n->q))
		give(h, msgq_head(&n->q));
	if (h->cur) {
		serve(h, size, rd);
		return 0;
	}
	if (h->got_msg)
		return 0; /* had its firing: EOF */
	r = obj_must_wait(oflags, w);
	return r ? r : obj_park_read(&n->readers, w);
}

static void event_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	struct ipc_rdseg *s = &rd->seg[0];

	/* The reader did not get these bytes: let it read them again. */
	if (!h->cur && !h->released) {
		h->cur = ipc_msg_ref(s->msg);
		h->cur_off = s->off;
		h->node->stats.out_msgs--;
		h->node->stats.out_bytes -= s->msg->len;
	} else if (h->cur == s->msg && h->cur_off == s->off + s->len) {
		h->cur_off = s->off;
	}
}

static int event_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off,
		       int oflags, struct ipc_waiter *w, size_t *written)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	struct ipc_list *pos;
	struct ipc_waiter *pw;
	struct ipc_msg *m;

	(void)oflags;
	(void)w;
	if (len == 0)
		return 0;
	if (off > 0 || len > n->set.max_bytes || len > st->lim.write_msg_max)
		return -EFBIG;
	m = ipc_msg_new(buf, len, len);
	if (!m)
		return -ENOMEM;
	if (store_charge(st, ipc_msg_charge(m))) {
		ipc_msg_unref(m);
		return -ENOSPC;
	}
	n->gen++;
	n->stats.in_msgs++;
	n->stats.in_bytes += len;
	store_now(&n->mtime);
	/* Every reader that has had no firing since it opened gets this one. */
	ipc_list_for_each(pos, &n->handles) {
		struct ipc_handle *rh = ipc_container_of(pos, struct ipc_handle, node_link);
		if ((rh->acc & IPC_ACC_READ) && !rh->got_msg && !rh->released)
			give(rh, m);
	}
	while ((pw = waitq_first(&n->readers))) {
		serve(pw->h, pw->size, &pw->rd);
		store_complete(st, pw, (int)pw->rd.total);
	}
	if (n->set.latched) {
		reset(st, n);
		if (msgq_push_tail(&n->q, m)) {
			store_uncharge(st, ipc_msg_charge(m));
			ipc_msg_unref(m);
		} else {
			n->ev_set = true;
		}
		store_touch_data(st, n);
	} else {
		store_uncharge(st, ipc_msg_charge(m));
		ipc_msg_unref(m);
	}
	store_touch_meta(st, n);
	store_poll_wake(st, n);
	*written = len;
	return 0;
}

static void event_release(struct ipc_handle *h)
{
	ipc_msg_unref(h->cur);
	h->cur = NULL;
}

static unsigned event_poll(struct ipc_handle *h)
{
	struct ipc_node *n = h->node;
	unsigned ev = POLLOUT | POLLWRNORM;

	if ((h->acc & IPC_ACC_READ) && (h->cur || h->got_msg || n->ev_set))
		ev |= POLLIN | POLLRDNORM;
	return ev;
}

static uint64_t event_size(const struct ipc_node *n)
{
	return n->ev_set && msgq_head(&n->q) ? msgq_head(&n->q)->len : 0;
}

static int event_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size)
{
	if (size)
		return -EINVAL;
	reset(st, n);
	return 0;
}

static void event_changed(struct ipc_store *st, struct ipc_node *n)
{
	if (!n->set.latched)
		reset(st, n);
}

const struct ipc_kind_ops event_ops = {
	.init = event_init,
	.open = event_open,
	.read = event_read,
	.unread = event_unread,
	.write = event_write,
	.release = event_release,
	.poll = event_poll,
	.size = event_size,
	.truncate = event_truncate,
	.changed = event_changed,
};
