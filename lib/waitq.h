/* waitq.h - waiters: operations parked until an object can complete them. */
#ifndef IPCFS_LIB_WAITQ_H
#define IPCFS_LIB_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/list.h"
#include "lib/msg.h"

/*
 * lib/ knows nothing of FUSE: an operation that cannot complete now is
 * represented by an ipc_waiter that the caller allocates and lib/ queues.
 * Whoever later makes it ready (another request, the persistence thread, an
 * interrupt) fills in its result under the store lock, and its completion
 * callback runs exactly once, after that thread has dropped the store lock
 * (see store_unlock()). fs/ completes a parked fuse_req_t from it; unit tests
 * complete it directly.
 *
 * States (all transitions under the store lock):
 *   INIT  -> DONE        the operation completed at once (no callback; the
 *                        caller reads the result itself)
 *   INIT  -> QUEUED      parked; IPC_E_PARKED was returned
 *   INIT  -> CANCELLED   cancelled before it was queued (an interrupt that
 *                        raced ahead); the operation then returns -EINTR
 *   QUEUED -> DONE       completed later; the callback will run
 *
 * Race-free use with FUSE interrupts (fs/ops.c): register the interrupt
 * callback first, then call the operation with the waiter; the interrupt
 * callback calls waiter_cancel(). Never register or clear an interrupt
 * callback while holding the store lock.
 */
enum ipc_wstate {
	IPC_W_INIT = 0,
	IPC_W_QUEUED,
	IPC_W_DONE,
	IPC_W_CANCELLED,
};

enum ipc_wop {
	IPC_OP_READ = 1, /* waiting for data */
	IPC_OP_WRITE,    /* waiting for room */
	IPC_OP_OPEN,     /* waiting for a message slot */
	IPC_OP_COMMIT,   /* waiting for a database commit */
};

/* A read result: up to IPC_RD_SEGS ranges of referenced messages. */
#define IPC_RD_SEGS 16
struct ipc_rdseg {
	struct ipc_msg *msg; /* one reference, owned by the result */
	uint32_t off, len;
};
struct ipc_rdres {
	unsigned nseg;
	size_t total;
	struct ipc_rdseg seg[IPC_RD_SEGS];
	/* What to undo if the bytes cannot be handed to the reader: */
	struct ipc_msg *taken; /* a message the read delivered (reference) */
	struct ipc_msg **many; /* record framing: messages delivered (references) */
	unsigned nmany;
};

struct ipc_handle;
struct ipc_waitq;

struct ipc_waiter {
	struct ipc_list link;  /* store lock: on its waitq */
	struct ipc_waitq *q;   /* store lock: the queue it is on */
	enum ipc_wstate state; /* store lock */
	enum ipc_wop op;       /* set by the operation */
	bool interrupted;      /* completion comes from the interrupt path */
	int result;            /* >= 0 or -errno, valid once DONE */

	struct ipc_handle *h; /* READ/WRITE/OPEN: the open file */
	bool href;            /* the waiter holds a reference on h */
	size_t size;          /* READ: bytes asked for */
	struct ipc_rdres rd;  /* READ: the bytes */
	struct ipc_msg *wmsg; /* WRITE: bytes still to place (reference) */
	size_t wlen, wdone;   /* WRITE: total bytes / bytes placed so far */
	uint64_t gen;         /* COMMIT: commit generation awaited */
	int commit_result;    /* COMMIT: what to return once committed */

	/* Runs once, outside the store lock, when the waiter becomes DONE after
	 * having been QUEUED. It owns the waiter from then on. */
	void (*complete)(struct ipc_waiter *w);
	void *user; /* the caller's context (fs/: the fuse request) */
};

struct ipc_waitq {
	struct ipc_list waiters; /* FIFO order */
	size_t n;
};

void waiter_init(struct ipc_waiter *w, void (*complete)(struct ipc_waiter *), void *user);

static inline void waitq_init(struct ipc_waitq *q)
{
	ipc_list_init(&q->waiters);
	q->n = 0;
}

/* Store lock held. Queues w (state INIT) and returns IPC_E_PARKED, or, if it
 * was cancelled before (CANCELLED), leaves it unqueued and returns -EINTR. */
int waitq_park(struct ipc_waitq *q, struct ipc_waiter *w);

/* Store lock held. First waiter or NULL. */
static inline struct ipc_waiter *waitq_first(struct ipc_waitq *q)
{
	return ipc_list_first(&q->waiters, struct ipc_waiter, link);
}

/* Store lock held. Unqueues w (QUEUED). */
void waitq_remove(struct ipc_waiter *w);

/* Frees a result's references (no lock needed). */
void rdres_release(struct ipc_rdres *rd);

/* Appends a range to a read result, taking a new reference on m.
 * Returns false when the result has no free segment. */
bool rdres_add(struct ipc_rdres *rd, struct ipc_msg *m, size_t off, size_t len);

#endif
