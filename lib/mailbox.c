/* mailbox.c - message queues: framings, capacity, delivery and requeue. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"

/*
 * A message leaves the queue when a reader takes it (h->cur) and counts as
 * delivered once the reader has read all of it; a message taken but not
 * finished goes back to the head when its reader's file is released.
 * Capacity: messages on the queue plus slots reserved by open-framing
 * writers against max_messages; queued bytes plus the writer's own message
 * being built against max_bytes (each writer is checked alone, so several
 * open-framing writers may together overshoot max_bytes by what they are
 * writing; one writer never waits on another's unfinished message).
 */

static uint64_t msg_max(const struct ipc_store *st, const struct ipc_node *n)
{
	return n->set.max_bytes < st->lim.max_message ? n->set.max_bytes : st->lim.max_message;
}

/* The writer side is shared with topics (publishing): capacity and queuing
 * differ, framing does not. */
static bool is_topic(const struct ipc_node *n)
{
	return n->kind == IPC_KIND_TOPIC;
}

static bool slot_free(const struct ipc_node *n)
{
	if (is_topic(n))
		return topic_room(n, 1);
	return n->q.count + n->reserved < n->set.max_messages;
}

static bool bytes_fit(const struct ipc_node *n, uint64_t own, uint64_t len)
{
	return is_topic(n) || n->q.bytes + own + len <= n->set.max_bytes;
}

/* Room for msgs more messages of `bytes` in all, at once. */
static bool room_for(const struct ipc_node *n, uint64_t msgs, uint64_t bytes)
{
	if (is_topic(n))
		return topic_room(n, msgs);
	return n->q.count + n->reserved + msgs <= n->set.max_messages && bytes_fit(n, 0, bytes);
}

static void mbox_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.framing = IPC_FRAMING_OPEN;
	n->set.max_messages = st->lim.mbox_messages;
	n->set.max_bytes = st->lim.mbox_bytes;
}

static uint64_t mbox_size(const struct ipc_node *n)
{
	return n->q.bytes;
}

/* Queues a finished message (the caller's reference). */
static int enqueue(struct ipc_store *st, struct ipc_node *n, struct ipc_msg *m)
{
	int r;

	if (is_topic(n))
		return topic_publish(st, n, m);
	r = msgq_push_tail(&n->q, m);

	if (r)
		return r;
	n->stats.in_msgs++;
	n->stats.in_bytes += m->len;
	store_now(&n->mtime);
	store_touch_meta(st, n);
	store_touch_data(st, n);
	store_poll_wake(st, n);
	return 0;
}

/* The reader has all of m: it is delivered. Keeps a reference in rd for an
 * undo and drops the cursor's. */
static void deliver(struct ipc_store *st, struct ipc_node *n, struct ipc_msg *m,
		    struct ipc_rdres *rd)
{
	n->stats.out_msgs++;
	n->stats.out_bytes += m->len;
	store_uncharge(st, ipc_msg_charge(m));
	rd->taken = ipc_msg_ref(m);
	msgq_delivered(&n->q, m);
	store_touch_data(st, n);
}

/* Serves the next bytes of the handle's current message into rd. */
static void serve(struct ipc_store *st, struct ipc_node *n, struct ipc_handle *h, size_t size,
		  struct ipc_rdres *rd)
{
	struct ipc_msg *m = h->cur;
	size_t k = m->len - h->cur_off;

	if (k > size)
		k = size;
	rdres_add(rd, m, h->cur_off, k);
	h->cur_off += (uint32_t)k;
	if (h->cur_off == m->len) {
		h->cur = NULL;
		deliver(st, n, m, rd);
	}
}

/* Record framing: as many whole queued messages as fit in size, each as
 * [u32 length][bytes], copied into one buffer. -EMSGSIZE if the first does
 * not fit; 0 with nothing when the queue is empty. */
static int serve_records(struct ipc_store *st, struct ipc_node *n, size_t size,
			 struct ipc_rdres *rd)
{
	struct ipc_list *pos;
	size_t total = 0, count = 0, off = 0;
	struct ipc_msg *buf;

	ipc_list_for_each(pos, &n->q.msgs) {
		struct ipc_msg *m = ipc_container_of(pos, struct ipc_msg, link);
		if (total + 4 + m->len > size)
			break;
		total += 4 + m->len;
		count++;
	}
	if (!count)
		return msgq_head(&n->q) ? -EMSGSIZE : 0;
	buf = ipc_msg_new(NULL, 0, total);
	rd->many = malloc(count * sizeof(*rd->many));
	if (!buf || !rd->many) {
		ipc_msg_unref(buf);
		free(rd->many);
		rd->many = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		struct ipc_msg *m = msgq_pop_head(&n->q);
		off += ipc_msg_put_record(buf->data + off, m);
		n->stats.out_msgs++;
		n->stats.out_bytes += m->len;
		store_uncharge(st, ipc_msg_charge(m));
		rd->many[rd->nmany++] = ipc_msg_ref(m);
		msgq_delivered(&n->q, m);
	}
	buf->len = (uint32_t)total;
	rdres_add(rd, buf, 0, total);
	ipc_msg_unref(buf);
	store_touch_data(st, n);
	return 0;
}

static void take_head(struct ipc_node *n, struct ipc_handle *h)
{
	h->cur = msgq_pop_head(&n->q);
	h->cur_off = 0;
	h->got_msg = true;
}

/* Serves parked reads, in order, that can be served: from the reader's
 * partly read message, EOF for an open-framing reader that had its message,
 * else the queue's head. (Two threads may read one open file at once.) */
static bool feed_readers(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_list *pos, *tmp;
	bool any = false;

	ipc_list_for_each_safe(pos, tmp, &n->readers.waiters) {
		struct ipc_waiter *w = ipc_container_of(pos, struct ipc_waiter, link);
		struct ipc_handle *h = w->h;
		if (n->set.framing == IPC_FRAMING_RECORD && !h->cur) {
			int r;
			if (!msgq_head(&n->q))
				break;
			r = serve_records(st, n, w->size, &w->rd);
			store_complete(st, w, r < 0 ? r : (int)w->rd.total);
		} else if (h->cur) {
			serve(st, n, h, w->size, &w->rd);
			store_complete(st, w, (int)w->rd.total);
		} else if (n->set.framing == IPC_FRAMING_OPEN && h->got_msg) {
			store_complete(st, w, 0);
		} else if (msgq_head(&n->q)) {
			take_head(n, h);
			serve(st, n, h, w->size, &w->rd);
			store_complete(st, w, (int)w->rd.total);
		} else {
			continue;
		}
		any = true;
	}
	return any;
}

static int place(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		 uint64_t off, bool partial_ok, size_t *placed);

/* Hands messages to parked readers and room to parked writers/openers,
 * until neither makes progress. Returns true if anything moved. */
bool mbox_pump(struct ipc_store *st, struct ipc_node *n)
{
	bool any = false, progress;
	struct ipc_waiter *w;

	do {
		progress = false;
		if (is_topic(n))
			progress |= topic_feed(st, n);
		else
			progress |= feed_readers(st, n);
		/* Opens waiting for a slot and writes waiting for room queue
		 * apart: a slot holder's write never waits behind an open. */
		while ((w = waitq_first(&n->openers)) && slot_free(n)) {
			n->reserved++;
			w->h->slot = true;
			store_complete(st, w, 0);
			progress = true;
		}
		while ((w = waitq_first(&n->space))) {
			struct ipc_msg *m = w->wmsg;
			size_t k = 0;
			int r = place(st, w->h, m->data + m->head, m->len - m->head, 0, true, &k);
			m->head += (uint32_t)k;
			w->wdone += k;
			if (r == OBJ_WAIT) {
				progress |= k != 0;
				break;
			}
			if (r < 0)
				obj_write_done(st, w, w->wdone ? (int)w->wdone : r);
			else
				obj_write_done(st, w, (int)w->wlen);
			progress = true;
		}
		any |= progress;
	} while (progress);
	if (any)
		store_poll_wake(st, n);
	return any;
}

/* Turns the handle's message being built into a queued message. */
static int commit_pending(struct ipc_store *st, struct ipc_node *n, struct ipc_handle *h)
{
	struct ipc_msg *m = h->pend, *fit;
	int r;

	if (!m)
		return 0;
	/* Trim the slack so the charge is the message's size. */
	fit = realloc(m, sizeof(*m) + m->len);
	if (fit) {
		m = fit;
		m->cap = m->len;
		ipc_list_init(&m->link);
	}
	h->pend = NULL;
	n->pending_bytes -= m->len;
	store_uncharge(st, h->pend_charge);
	h->pend_charge = 0;
	obj_force_charge(st, ipc_msg_charge(m));
	r = enqueue(st, n, m);
	if (r) {
		store_uncharge(st, ipc_msg_charge(m));
		ipc_msg_unref(m);
		return r;
	}
	if (h->slot) {
		h->slot = false;
		n->reserved--;
	}
	return 1;
}

static void drop_pending(struct ipc_store *st, struct ipc_node *n, struct ipc_handle *h)
{
	if (!h->pend)
		return;
	n->pending_bytes -= h->pend->len;
	store_uncharge(st, h->pend_charge);
	h->pend_charge = 0;
	ipc_msg_unref(h->pend);
	h->pend = NULL;
}

/* Appends to the handle's message being built (not yet shared). */
static int append_pending(struct ipc_store *st, struct ipc_node *n, struct ipc_handle *h,
			  const char *buf, size_t len)
{
	struct ipc_msg *m = h->pend;
	size_t need = (m ? m->len : 0) + len;

	if (!m || need > m->cap) {
		size_t oldcap = m ? m->cap : 0, cap = oldcap ? oldcap * 2 : 256;
		struct ipc_msg *nm;
		if (cap < need)
			cap = need;
		if (cap > msg_max(st, n))
			cap = need;
		/* Near the memory limit, grow by exactly what is needed. */
		if (store_charge(st, cap - oldcap)) {
			cap = need;
			if (store_charge(st, cap - oldcap))
				return -ENOSPC;
		}
		if (m) {
			nm = realloc(m, sizeof(*m) + cap);
			if (nm)
				ipc_list_init(&nm->link);
		} else {
			nm = ipc_msg_new(NULL, 0, cap);
		}
		if (!nm) {
			store_uncharge(st, cap - oldcap);
			return -ENOMEM;
		}
		h->pend_charge += cap - oldcap;
		nm->cap = (uint32_t)cap;
		h->pend = m = nm;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += (uint32_t)len;
	n->pending_bytes += len;
	return 0;
}

static int place_open(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		      size_t *placed)
{
	struct ipc_node *n = h->node;
	uint64_t own = h->pend ? h->pend->len : 0;
	int r;

	if (h->failed)
		return h->failed;
	if (own + len > msg_max(st, n)) {
		drop_pending(st, n, h);
		h->failed = -EFBIG;
		return -EFBIG;
	}
	if (!h->slot && !slot_free(n))
		return OBJ_WAIT;
	if (!bytes_fit(n, own, len))
		return OBJ_WAIT;
	if (!h->slot) {
		n->reserved++;
		h->slot = true;
	}
	r = append_pending(st, n, h, buf, len);
	if (r) {
		/* Like EFBIG: a message cut short is never queued. */
		drop_pending(st, n, h);
		h->failed = r;
		return r;
	}
	*placed = len;
	return 0;
}

static int place_write(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		       uint64_t off, size_t *placed)
{
	struct ipc_node *n = h->node;
	struct ipc_msg *m;
	int r;

	/* A continuation chunk means one write(2) did not fit one request. */
	if (off > 0 || len > msg_max(st, n) || len > st->lim.write_msg_max)
		return -EFBIG;
	if (!slot_free(n) || !bytes_fit(n, 0, len))
		return OBJ_WAIT;
	m = ipc_msg_new(buf, len, len);
	if (!m)
		return -ENOMEM;
	if (store_charge(st, ipc_msg_charge(m))) {
		ipc_msg_unref(m);
		return -ENOSPC;
	}
	r = enqueue(st, n, m);
	if (r) {
		store_uncharge(st, ipc_msg_charge(m));
		ipc_msg_unref(m);
		return r;
	}
	*placed = len;
	return 0;
}

/* Line framing: checks lengths and, unless partial_ok, room for every
 * complete line, before anything changes. */
static int line_check(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		      bool partial_ok)
{
	struct ipc_node *n = h->node;
	uint64_t own = h->pend ? h->pend->len : 0, lines = 0, bytes = 0;
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		uint64_t seg = nl ? (uint64_t)(nl - p) + 1 : (uint64_t)(end - p);
		if (own + seg > msg_max(st, n))
			return -EFBIG;
		if (nl) {
			lines++;
			bytes += own + seg;
			own = 0;
		}
		p += seg;
	}
	if (!partial_ok && lines && !room_for(n, lines, bytes))
		return OBJ_WAIT;
	if (st->mem_used + len + lines * sizeof(struct ipc_msg) > st->lim.max_memory)
		return -ENOSPC;
	return 0;
}

static int place_line(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		      bool partial_ok, size_t *placed)
{
	struct ipc_node *n = h->node;
	size_t done = 0;
	int r = line_check(st, h, buf, len, partial_ok);

	if (r) {
		if (r == -EFBIG)
			drop_pending(st, n, h);
		return r;
	}
	while (done < len) {
		const char *p = buf + done;
		const char *nl = memchr(p, '\n', len - done);
		size_t seg = nl ? (size_t)(nl - p) + 1 : len - done;
		if (nl) {
			uint64_t own = h->pend ? h->pend->len : 0;
			if (!slot_free(n) || !bytes_fit(n, 0, own + seg)) {
				r = OBJ_WAIT;
				break;
			}
		}
		r = append_pending(st, n, h, p, seg);
		if (!r && nl)
			r = commit_pending(st, n, h) < 0 ? -ENOMEM : 0;
		if (r)
			break;
		done += seg;
	}
	*placed = done;
	return r;
}

/* --- record framing: [u32 little-endian length][bytes] ... --- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Scans the pending partial record and buf: counts complete records and
 * their bytes; checks every declared length. */
static int record_check(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
			bool partial_ok)
{
	struct ipc_node *n = h->node;
	unsigned char hdr[4];
	uint64_t have = 0, recs = 0, bytes = 0;
	uint32_t rlen = 0;
	size_t p = 0;

	if (h->pend) {
		have = h->pend->len;
		memcpy(hdr, h->pend->data, have < 4 ? have : 4);
		if (have >= 4)
			rlen = le32(hdr); /* checked when it was first seen */
	}
	while (p < len) {
		size_t take;
		if (have < 4) {
			take = 4 - have < len - p ? 4 - have : len - p;
			memcpy(hdr + have, buf + p, take);
			have += take;
			p += take;
			if (have < 4)
				break;
			rlen = le32(hdr);
			/* A record must fit in one read's reply, header included. */
			if (rlen > msg_max(st, n) || rlen > st->lim.write_msg_max - 4)
				return -EFBIG;
		}
		take = 4 + rlen - have < len - p ? 4 + rlen - have : len - p;
		have += take;
		p += take;
		if (have == 4 + (uint64_t)rlen) {
			recs++;
			bytes += rlen;
			have = 0;
		}
	}
	if (!partial_ok && recs && !room_for(n, recs, bytes))
		return OBJ_WAIT;
	if (st->mem_used + len + recs * sizeof(struct ipc_msg) > st->lim.max_memory)
		return -ENOSPC;
	return 0;
}

/* Queues one record's payload as a message. */
static int push_record(struct ipc_store *st, struct ipc_node *n, const char *data, size_t len)
{
	struct ipc_msg *m = ipc_msg_new(data, len, len);
	int r;

	if (!m)
		return -ENOMEM;
	obj_force_charge(st, ipc_msg_charge(m));
	r = enqueue(st, n, m);
	if (r) {
		store_uncharge(st, ipc_msg_charge(m));
		ipc_msg_unref(m);
	}
	return r;
}

static int place_record(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
			bool partial_ok, size_t *placed)
{
	struct ipc_node *n = h->node;
	size_t done = 0;
	int r = record_check(st, h, buf, len, partial_ok);

	if (r) {
		if (r == -EFBIG)
			drop_pending(st, n, h);
		return r;
	}
	while (!r && done < len) {
		size_t left = len - done, have, need, take;
		uint32_t rlen;
		if (!h->pend) {
			if (left >= 4 && left - 4 >= (rlen = le32((const unsigned char *)buf + done))) {
				/* A whole record in this write: no copy but the message. */
				if (!room_for(n, 1, rlen)) {
					r = OBJ_WAIT;
					break;
				}
				r = push_record(st, n, buf + done + 4, rlen);
				if (!r)
					done += 4 + (size_t)rlen;
				continue;
			}
			/* The start of a record: keep it until the rest comes. */
			r = append_pending(st, n, h, buf + done, left);
			if (!r)
				done = len;
			continue;
		}
		have = h->pend->len;
		if (have < 4) {
			take = 4 - have < left ? 4 - have : left;
			r = append_pending(st, n, h, buf + done, take);
			if (!r)
				done += take;
			continue;
		}
		rlen = le32((const unsigned char *)h->pend->data);
		need = 4 + (size_t)rlen - have;
		take = need < left ? need : left;
		if (take == need && !room_for(n, 1, rlen)) {
			r = OBJ_WAIT;
			break;
		}
		r = append_pending(st, n, h, buf + done, take);
		if (r)
			break;
		done += take;
		if (take == need) {
			r = push_record(st, n, h->pend->data + 4, rlen);
			drop_pending(st, n, h);
		}
	}
	*placed = done;
	return r;
}

static int place(struct ipc_store *st, struct ipc_handle *h, const char *buf, size_t len,
		 uint64_t off, bool partial_ok, size_t *placed)
{
	switch (h->node->set.framing) {
	case IPC_FRAMING_RECORD:
		return place_record(st, h, buf, len, partial_ok, placed);
	case IPC_FRAMING_WRITE:
		return place_write(st, h, buf, len, off, placed);
	case IPC_FRAMING_LINE:
		return place_line(st, h, buf, len, partial_ok, placed);
	default:
		return place_open(st, h, buf, len, placed);
	}
}

static int mbox_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	struct ipc_node *n = h->node;
	int r;

	/* An open-framing writer holds a message slot from its open on. */
	if (h->acc != IPC_ACC_WRITE || n->set.framing != IPC_FRAMING_OPEN || is_topic(n))
		return 0;
	if (slot_free(n) && ipc_list_empty(&n->openers.waiters)) {
		n->reserved++;
		h->slot = true;
		return 0;
	}
	r = obj_must_wait(oflags, w);
	if (r)
		return r;
	w->op = IPC_OP_OPEN;
	w->h = h;
	r = waitq_park(&n->openers, w);
	if (r == IPC_E_PARKED) {
		h->refs++;
		w->href = true;
	}
	return r;
}

static int mbox_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		     struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	int r;

	if (size == 0)
		return 0;
	if (n->set.framing == IPC_FRAMING_RECORD && !h->cur) {
		if (!msgq_head(&n->q)) {
			r = obj_must_wait(oflags, w);
			return r ? r : obj_park_read(&n->readers, w);
		}
		r = serve_records(st, n, size, rd);
		if (!r)
			mbox_pump(st, n);
		return r;
	}
	if (!h->cur) {
		if (n->set.framing == IPC_FRAMING_OPEN && h->got_msg)
			return 0; /* this open had its message: EOF */
		if (!msgq_head(&n->q)) {
			r = obj_must_wait(oflags, w);
			return r ? r : obj_park_read(&n->readers, w);
		}
		take_head(n, h);
	}
	serve(st, n, h, size, rd);
	mbox_pump(st, n);
	store_poll_wake(st, n);
	return 0;
}

static void mbox_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	struct ipc_rdseg *s = &rd->seg[0];

	if (rd->nmany) {
		/* Records the reader never got go back, in their order. */
		for (unsigned i = 0; i < rd->nmany; i++) {
			struct ipc_msg *m = rd->many[i];
			n->stats.out_msgs--;
			n->stats.out_bytes -= m->len;
			obj_force_charge(st, ipc_msg_charge(m));
			msgq_requeue(&n->q, m);
			rd->many[i] = NULL;
		}
		rd->nmany = 0;
		store_touch_data(st, n);
	} else if (rd->taken) {
		/* The read finished the message: it was delivered, undo that. */
		struct ipc_msg *m = rd->taken;
		rd->taken = NULL;
		n->stats.out_msgs--;
		n->stats.out_bytes -= m->len;
		obj_force_charge(st, ipc_msg_charge(m));
		if (!h->cur && !h->released) {
			/* Give it back to this reader, which may read again. */
			msgq_undeliver(&n->q, m);
			h->cur = m;
			h->cur_off = s->off;
		} else {
			msgq_requeue(&n->q, m);
		}
		store_touch_data(st, n);
	} else if (h->cur == s->msg && h->cur_off == s->off + s->len) {
		h->cur_off = s->off;
	}
	mbox_pump(st, n);
	store_poll_wake(st, n);
}

int mbox_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
	       struct ipc_waiter *w, size_t *written)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	bool queued_writers = !ipc_list_empty(&n->space.waiters);
	bool partial_ok = (w || (oflags & O_NONBLOCK)) != 0;
	size_t placed = 0;
	int r;

	if (len == 0)
		return 0;
	r = queued_writers ? OBJ_WAIT : place(st, h, buf, len, off, partial_ok, &placed);
	if (placed)
		mbox_pump(st, n);
	if (r != OBJ_WAIT) {
		if (r < 0 && placed == 0)
			return r;
		*written = placed;
		return 0;
	}
	if (placed && (oflags & O_NONBLOCK)) {
		*written = placed;
		return 0;
	}
	r = obj_must_wait(oflags, w);
	if (r)
		return r;
	r = obj_park_write(&n->space, w, h, buf, len, placed);
	/* What was placed may already have gone to parked readers: room. */
	if (r == IPC_E_PARKED)
		mbox_pump(st, n);
	return r;
}

int mbox_flush(struct ipc_handle *h, const struct ipc_cred *cred)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;
	int r = 0;

	if (!(h->acc & IPC_ACC_WRITE) || cred->tid != h->cred.tid || h->aborted)
		return 0;
	h->failed = 0;
	if (n->set.framing == IPC_FRAMING_RECORD && h->pend) {
		/* A record cut short: refuse it (close(2) reports EINVAL). */
		drop_pending(st, n, h);
		return -EINVAL;
	}
	/* (In line framing an unterminated line waits for its newline or for
	 * the last release: bash's dup2 dance closes in the opener's thread.) */
	if (n->set.framing == IPC_FRAMING_OPEN) {
		r = commit_pending(st, n, h);
		if (r > 0)
			mbox_pump(st, n);
	}
	return r;
}

bool mbox_abort(struct ipc_handle *h)
{
	bool had = h->pend != NULL;

	drop_pending(h->st, h->node, h);
	h->failed = -EIO; /* and nothing later on this open either */
	h->aborted = true;
	return had;
}

void mbox_release_writer(struct ipc_handle *h)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;

	if (!(h->acc & IPC_ACC_WRITE))
		return;
	if (h->failed || n->set.framing == IPC_FRAMING_RECORD)
		drop_pending(st, n, h);
	/* The last close commits what was written (children's closes did not). */
	if (commit_pending(st, n, h) < 0)
		drop_pending(st, n, h);
	if (h->slot) {
		h->slot = false;
		n->reserved--;
	}
}

static void mbox_release(struct ipc_handle *h)
{
	struct ipc_store *st = h->st;
	struct ipc_node *n = h->node;

	mbox_release_writer(h);
	if (h->cur) {
		/* Read in part: back to the head for the next reader. */
		msgq_requeue(&n->q, h->cur);
		h->cur = NULL;
		store_touch_data(st, n);
	}
	mbox_pump(st, n);
	store_poll_wake(st, n);
}

static unsigned mbox_poll(struct ipc_handle *h)
{
	struct ipc_node *n = h->node;
	unsigned ev = 0;

	if (h->acc & IPC_ACC_READ) {
		if (h->cur || msgq_head(&n->q) ||
		    (n->set.framing == IPC_FRAMING_OPEN && h->got_msg))
			ev |= POLLIN | POLLRDNORM;
	}
	if (h->acc & IPC_ACC_WRITE) {
		if ((h->slot || slot_free(n)) && n->q.bytes < n->set.max_bytes)
			ev |= POLLOUT | POLLWRNORM;
	}
	return ev;
}

static void mbox_changed(struct ipc_store *st, struct ipc_node *n)
{
	mbox_pump(st, n);
}

const struct ipc_kind_ops mbox_ops = {
	.init = mbox_init,
	.open = mbox_open,
	.read = mbox_read,
	.unread = mbox_unread,
	.write = mbox_write,
	.flush = mbox_flush,
	.release = mbox_release,
	.abort = mbox_abort,
	.poll = mbox_poll,
	.size = mbox_size,
	.changed = mbox_changed,
};
