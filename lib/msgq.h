/* msgq.h - an ordered queue of messages with write-behind bookkeeping. */
#ifndef IPCFS_LIB_MSGQ_H
#define IPCFS_LIB_MSGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/msg.h"

/*
 * One ipc_msgq per mailbox, FIFO (its segments) or topic (its retained
 * messages). It owns one reference to every queued message and records what
 * the database lacks: messages to insert ("unsaved") and sequence numbers to
 * delete ("deleted"), so that the persistence module can save only changes,
 * and so that a message consumed before it was ever saved costs no database
 * write at all.
 *
 * Sequence numbers order messages within one object and key their rows.
 * New messages get increasing numbers at the tail; a message put back at the
 * head keeps its number (it is older than everything behind it), and a copy
 * made at the head gets a number below every other (msgq_push_head_copy).
 *
 * Message life: queued (on the queue) -> taken (popped by a reader, which
 * holds the reference) -> delivered (msgq_delivered) or put back
 * (msgq_requeue). No locking here: every function is called with the
 * owning store's lock held.
 */
struct ipc_msgq {
	struct ipc_list msgs; /* queued messages, delivery order */
	uint64_t count;       /* messages on the queue */
	uint64_t bytes;       /* unconsumed payload bytes on the queue */
	int64_t next_seq;     /* for the next tail message */
	int64_t low_seq;      /* lowest sequence number ever handed out */
	bool track;           /* keep write-behind bookkeeping (a database exists) */

	struct ipc_msg **unsaved; /* references: messages to insert */
	size_t nunsaved, capunsaved;
	int64_t *deleted; /* rows to delete */
	size_t ndeleted, capdeleted;
	struct ipc_msg **skips; /* references: saved messages whose head moved */
	size_t nskips, capskips;
};

/* track: whether to record unsaved/deleted for a database. */
void msgq_init(struct ipc_msgq *q, bool track);

/* Stops tracking (the object was removed) and drops the bookkeeping. */
void msgq_untrack(struct ipc_msgq *q);

/* Drops every queued message and the bookkeeping. The struct may be
 * re-initialised afterwards. */
void msgq_destroy(struct ipc_msgq *q);

/* Appends m with the next sequence number; the queue takes over the
 * caller's reference. Records it as unsaved. Returns -ENOMEM (m untouched,
 * still the caller's) when the bookkeeping cannot grow. */
int msgq_push_tail(struct ipc_msgq *q, struct ipc_msg *m);

/* Appends m, loaded from the database, keeping its sequence number
 * (m->seq) and marking it saved. Loads must come in sequence order. */
void msgq_push_loaded(struct ipc_msgq *q, struct ipc_msg *m);

/* Takes the head message off the queue; the caller receives the queue's
 * reference. NULL when empty. */
struct ipc_msg *msgq_pop_head(struct ipc_msgq *q);

static inline struct ipc_msg *msgq_head(const struct ipc_msgq *q)
{
	return ipc_list_first(&q->msgs, struct ipc_msg, link);
}

/* A taken message has been read completely: forget it (delete its row if
 * it has one) and drop the caller's reference. Returns -ENOMEM only if the
 * delete could not be recorded; the reference is dropped either way and the
 * row then stays until the object is next rewritten (never lost data, at
 * worst a redelivery after a crash). */
int msgq_delivered(struct ipc_msgq *q, struct ipc_msg *m);

/* Puts a taken message back, in sequence order near the head, taking over
 * the caller's reference. Undoes a pending delete of its row, or re-saves
 * it if the row is already gone. */
int msgq_requeue(struct ipc_msgq *q, struct ipc_msg *m);

/* A delivered message comes back unqueued (its reader never got it, and it
 * goes back to that reader's cursor): cancels the pending delete of its row,
 * or records it as unsaved when the row is already gone. */
int msgq_undeliver(struct ipc_msgq *q, struct ipc_msg *m);

/* Marks that bytes were consumed from the head message (FIFO). */
void msgq_consumed_head(struct ipc_msgq *q, struct ipc_msg *m, size_t n);

/* Records that a saved message's consumed prefix (m->head) changed, so its
 * row's skip is rewritten. Returns 0 or -ENOMEM. */
int msgq_skip_changed(struct ipc_msgq *q, struct ipc_msg *m);

/* Inserts m at the head with a sequence number below all others (a FIFO
 * giving back bytes it could not deliver). Takes over the reference. */
int msgq_push_head_copy(struct ipc_msgq *q, struct ipc_msg *m);

/* Removes and returns every queued message (for object removal): the rows
 * need no individual deletes since the whole object is deleted. */
void msgq_clear(struct ipc_msgq *q);

/* True when the persistence module has something to write for q. */
static inline bool msgq_dirty(const struct ipc_msgq *q)
{
	return q->nunsaved || q->ndeleted || q->nskips;
}

#endif
