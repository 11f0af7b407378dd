/* kind.h - internal: the operations each kind of object implements. */
#ifndef IPCFS_LIB_KIND_H
#define IPCFS_LIB_KIND_H

#include "lib/object.h"

/*
 * Every function runs with st->lock held and follows object.h's protocol.
 * object.c does what is common: handle lifetime, the full-sync commit wait,
 * poll arming; the kind modules only implement their semantics.
 */
struct ipc_kind_ops {
	void (*init)(struct ipc_store *st, struct ipc_node *n);
	int (*open)(struct ipc_handle *h, int oflags, struct ipc_waiter *w);
	/* 0 with rd filled (rd->total 0: EOF), -errno, IPC_E_AGAIN, IPC_E_PARKED. */
	int (*read)(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		    struct ipc_rdres *rd);
	/* Positional read (regions): 0 with rd filled, -errno. */
	int (*pread)(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd);
	void (*unread)(struct ipc_handle *h, struct ipc_rdres *rd);
	/* 0 with *written set, -errno, IPC_E_AGAIN, IPC_E_PARKED. */
	int (*write)(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
		     struct ipc_waiter *w, size_t *written);
	/* Returns 1 when it changed stored state (full mode then waits for
	 * the commit), 0 when not, or -errno. */
	int (*flush)(struct ipc_handle *h, const struct ipc_cred *cred);
	void (*release)(struct ipc_handle *h);
	/* Drops what the handle wrote and has not committed; true if any. */
	bool (*abort)(struct ipc_handle *h);
	unsigned (*poll)(struct ipc_handle *h);
	uint64_t (*size)(const struct ipc_node *n);
	/* truncate(2): 0, -EINVAL (not sizable), -EFBIG. */
	int (*truncate)(struct ipc_store *st, struct ipc_node *n, uint64_t size);
	/* Settings changed: waiters may be able to proceed. */
	void (*changed)(struct ipc_store *st, struct ipc_node *n);
};

extern const struct ipc_kind_ops mbox_ops;
extern const struct ipc_kind_ops fifo_ops;
extern const struct ipc_kind_ops shm_ops;
extern const struct ipc_kind_ops sem_ops;
extern const struct ipc_kind_ops event_ops;
extern const struct ipc_kind_ops topic_ops;
extern const struct ipc_kind_ops status_ops;

/* mailbox.c's writer side, shared by topics (publishing with framings). */
int mbox_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
	       struct ipc_waiter *w, size_t *written);
int mbox_flush(struct ipc_handle *h, const struct ipc_cred *cred);
void mbox_release_writer(struct ipc_handle *h);
bool mbox_abort(struct ipc_handle *h);
/* Moves messages to parked readers and room to parked writers. */
bool mbox_pump(struct ipc_store *st, struct ipc_node *n);

/* topic.c, for the shared writer side: whether every subscriber can take
 * `msgs` more messages (overflow=block), publishing a finished message, and
 * serving parked subscribers (returns true if any was served). */
bool topic_room(const struct ipc_node *n, uint64_t msgs);
int topic_publish(struct ipc_store *st, struct ipc_node *n, struct ipc_msg *m);
bool topic_feed(struct ipc_store *st, struct ipc_node *n);

/* Completes a QUEUED WRITE waiter that placed its bytes (result: the count)
 * or failed (-errno): in full sync mode a success moves on to wait for the
 * commit. */
void obj_write_done(struct ipc_store *st, struct ipc_waiter *w, int result);

/* Parks a WRITE that could place only `done` of its `len` bytes: copies the
 * rest into the waiter. Returns IPC_E_PARKED, or -ENOMEM/-EINTR when nothing
 * was placed. When some bytes were placed but the waiter cannot wait
 * (cancelled, no memory), it is completed at once with that count and
 * IPC_E_PARKED is returned all the same. */
int obj_park_write(struct ipc_waitq *q, struct ipc_waiter *w, struct ipc_handle *h,
		   const char *buf, size_t len, size_t done);

/* Whether a read/write that must wait should fail, need a waiter or park:
 * returns -EAGAIN (O_NONBLOCK), IPC_E_AGAIN (no waiter) or 0 (park). */
int obj_must_wait(int oflags, const struct ipc_waiter *w);

/* Parks a READ waiter on q (taking a handle reference). */
int obj_park_read(struct ipc_waitq *q, struct ipc_waiter *w);

/* Outcome of a kind's attempt to place bytes (internal to the kinds). */
enum { OBJ_WAIT = 100 };

/* Charges memory ignoring the limit (giving back what was taken). */
void obj_force_charge(struct ipc_store *st, size_t bytes);

#endif
