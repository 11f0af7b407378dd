/* object.h - open files on IPC objects: open, read, write, flush, poll, close. */
#ifndef IPCFS_LIB_OBJECT_H
#define IPCFS_LIB_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/store.h"
#include "lib/waitq.h"

/*
 * An ipc_handle is one open file description on an object: what the kernel
 * calls a struct file and FUSE an fh. It remembers the opener (credentials
 * and thread id, for the open-framing commit on the opener's close), the
 * message being read (cursor) and the message being written.
 *
 * Every function here locks st->lock itself (and runs completions of other
 * waiters on unlock, see store.h). Operations that may wait follow one
 * protocol:
 *   - called with w == NULL, they either complete, fail, or return
 *     IPC_E_AGAIN having changed nothing;
 *   - called with a waiter (waiter_init()), they complete, fail, or return
 *     IPC_E_PARKED; then w->complete runs exactly once later, outside the
 *     lock, with w->result set, and owns w.
 * O_NONBLOCK in oflags turns any wait into -EAGAIN.
 *
 * Handles are reference counted: the open holds one, and every read result
 * that carries bytes holds one until ipc_read_done(). So a RELEASE that
 * races with a reply never frees a handle under a reader's feet.
 */

enum {
	IPC_ACC_READ = 1,
	IPC_ACC_WRITE = 2,
};

/* An oflags bit for ipc_write: the write is the kernel writing back mapped
 * pages (not a program's write(2)). */
#define IPC_O_WRITEBACK (1 << 30)

struct ipc_handle {
	struct ipc_store *st;     /* immutable */
	struct ipc_node *node;    /* immutable; counted in node->nhandles */
	struct ipc_list node_link;/* on node->handles */
	struct ipc_list poll_link;/* on node->pollers while armed */
	unsigned refs;
	unsigned acc;             /* IPC_ACC_* */
	struct ipc_cred cred;     /* the opener */
	void *user;               /* the caller's per-open context (poll hook) */
	bool released;

	/* Reading. */
	struct ipc_msg *cur;      /* message partly read (reference), or NULL */
	uint32_t cur_off;
	bool got_msg;             /* open framing: this open had its message */
	bool seen;                /* fifo: saw data or a writer */
	uint64_t gen;             /* event: firings when opened */
	int64_t seq;              /* topic: next message to read */
	uint32_t taken;           /* sem: units taken through this file */

	/* Writing. */
	struct ipc_msg *pend;     /* open/line framing: message being built */
	size_t pend_charge;       /* memory charged for pend */
	bool slot;                /* holds a reserved message slot (open framing) */
	int failed;               /* open framing: -errno that refused the message
				   * (EFBIG, ENOSPC); later writes get it too until
				   * the opener's close */
	bool aborted;             /* the writer was killed: commit nothing more */
};

/* Opens object `id` (not a directory: -EISDIR). oflags are open(2) flags.
 * On 0, *out is a new handle (release it with ipc_release). A mailbox in
 * open framing reserves a message slot for a writer (O_WRONLY): when none is
 * free the open waits (IPC_E_AGAIN / IPC_E_PARKED with *out set: the caller
 * must ipc_release(*out) if the wait ends in failure). */
int ipc_open(struct ipc_store *st, uint64_t id, int oflags, const struct ipc_cred *cred,
	     void *user, struct ipc_waiter *w, struct ipc_handle **out);

/* Reads at most `size` bytes: at most one message on a mailbox, bytes on a
 * FIFO. Returns 0 with the bytes referenced in *rd (rd->total bytes, 0 = end
 * of file), -errno, IPC_E_AGAIN or IPC_E_PARKED (the bytes then arrive in
 * w->rd and w->result is rd.total or -errno). The caller must call
 * ipc_read_done() after replying when 0 was returned with rd->total > 0, and
 * always when a parked read completed (whatever its result). */
int ipc_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
	     struct ipc_rdres *rd);

/* Reads at most size bytes at off (regions; streams: -ESPIPE). Returns 0
 * with the bytes in *rd (rd->total 0: at or past the end), -errno. Never
 * waits. Call ipc_read_done() when rd->total > 0. */
int ipc_pread(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd);

/* Ends a read that returned bytes: `delivered` false puts them back (the
 * reader died or was interrupted before the reply reached it). Releases the
 * result's references and the handle reference it held. */
void ipc_read_done(struct ipc_handle *h, struct ipc_rdres *rd, bool delivered);

/* Writes len bytes. off is the FUSE offset: 0 for the first chunk of a
 * write(2) on a stream, > 0 for its continuation chunks. Returns 0 with the
 * count in *written (all len bytes, or fewer only with O_NONBLOCK), -errno
 * (EFBIG: message over a limit; ENOSPC: store memory full; nothing written),
 * IPC_E_AGAIN or IPC_E_PARKED (w->result: bytes written, fewer than len only
 * after an interrupt, or -errno). In full sync mode a write completes only
 * after its commit. */
int ipc_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
	      struct ipc_waiter *w, size_t *written);

/* Ends a parked operation after its completion ran: drops what the waiter
 * held (for a READ this is ipc_read_done(w->h, &w->rd, delivered)). Every
 * completion callback calls it once. */
void ipc_waiter_end(struct ipc_waiter *w, bool delivered);

/* close(2) of one descriptor (FLUSH). From the opener's thread (cred->tid)
 * it commits the open-framing message being written (full mode: after its
 * commit). Returns 0, -errno, IPC_E_AGAIN, IPC_E_PARKED. */
int ipc_flush(struct ipc_handle *h, const struct ipc_cred *cred, struct ipc_waiter *w);

/* The writer was killed (fs/ saw its process die by a signal): what this
 * open file was writing and has not committed is dropped, and nothing more
 * of it will be (open framing: a killed writer leaves no part message).
 * Returns true when something was pending. */
bool ipc_abort_write(struct ipc_handle *h);

/* Whether the open file holds bytes written but not yet committed. */
bool ipc_write_pending(struct ipc_handle *h);

/* Waits until the object's state is durable. Returns 0, IPC_E_AGAIN,
 * IPC_E_PARKED, -EIO when the database failed. */
int ipc_fsync(struct ipc_handle *h, struct ipc_waiter *w);

/* poll(2): returns POLLIN/POLLOUT/POLLHUP bits ready in *revents. With arm,
 * the handle is (re)armed so that the next change calls the poll hook. */
void ipc_poll(struct ipc_handle *h, unsigned events, bool arm, unsigned *revents);

/* Last close: commits what the handle was writing, puts back a message it
 * had partly read, frees the handle once no read result holds it. */
void ipc_release(struct ipc_handle *h);

/* Bytes a stream object reports as its size (queued payload). Lock held. */
uint64_t ipc_node_size(const struct ipc_node *n);

/* --- Object lifecycle, used by the store (lock held). --- */
void ipc_object_init(struct ipc_store *st, struct ipc_node *n);
/* truncate(2) of an object (lock held): 0, -EINVAL, -EFBIG, -ENOMEM. */
int ipc_object_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size);

/* Settings changed (lock held): lets waiters proceed under new limits. */
void ipc_object_changed(struct ipc_store *st, struct ipc_node *n);

/* Frees an object's data when its node is freed (no handle is open, so no
 * waiter can be parked on it). */
void ipc_object_fini(struct ipc_store *st, struct ipc_node *n);

#endif
