/* msg.h - reference-counted, immutable-once-published message buffers. */
#ifndef IPCFS_LIB_MSG_H
#define IPCFS_LIB_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/list.h"

/*
 * An ipc_msg is one mailbox/topic message or one FIFO segment.
 *
 * Bytes [0, len) are immutable once the message is published on a queue;
 * a FIFO may append to bytes [len, cap) of its unsealed tail segment while
 * readers hold references to earlier bytes (they never look past their
 * range). The refcount is atomic so that references can be dropped without
 * the store lock (e.g. after a FUSE reply). Everything else in the struct is
 * guarded by the store lock of the store the message belongs to.
 */
struct ipc_msg {
	struct ipc_list link; /* store lock: position on its queue */
	atomic_uint ref;      /* atomic */
	uint32_t len;         /* store lock (FIFO tail grows) */
	uint32_t cap;         /* immutable */
	uint32_t head;        /* store lock: FIFO bytes already consumed */
	uint32_t uidx;        /* store lock: index in its queue's unsaved set */
	bool queued;          /* store lock: on a queue (not taken by a reader) */
	bool in_db;           /* store lock: a row exists or is being written */
	bool sealed;          /* store lock: no more appends (FIFO) */
	bool pending;         /* store lock: listed in its queue's unsaved set */
	bool skip_pending;    /* store lock: listed in its queue's skip set */
	bool done;            /* store lock: delivered; never to be saved */
	int64_t seq;          /* store lock: order key, unique per object */
	char data[];
};

/* Allocates a message able to hold cap bytes, copies len bytes of data
 * (data may be NULL when len is 0). One reference, owned by the caller.
 * Returns NULL when out of memory or cap > UINT32_MAX. */
struct ipc_msg *ipc_msg_new(const void *data, size_t len, size_t cap);

static inline struct ipc_msg *ipc_msg_ref(struct ipc_msg *m)
{
	atomic_fetch_add_explicit(&m->ref, 1, memory_order_relaxed);
	return m;
}

/* Drops one reference; frees at zero. NULL is a no-op. Any thread. */
void ipc_msg_unref(struct ipc_msg *m);

/* Writes m as one record of record framing, [u32 little-endian length]
 * [bytes], at p (4 + m->len bytes); returns that size. */
static inline size_t ipc_msg_put_record(char *p, const struct ipc_msg *m)
{
	unsigned char *u = (unsigned char *)p;

	u[0] = (unsigned char)m->len;
	u[1] = (unsigned char)(m->len >> 8);
	u[2] = (unsigned char)(m->len >> 16);
	u[3] = (unsigned char)(m->len >> 24);
	memcpy(p + 4, m->data, m->len);
	return 4 + (size_t)m->len;
}

/* Bytes of memory charged for a message (payload capacity plus header). */
static inline size_t ipc_msg_charge(const struct ipc_msg *m)
{
	return sizeof(*m) + m->cap;
}

#endif
