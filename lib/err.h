/* err.h - the error doctrine shared by every lib/ module. */
#ifndef IPCFS_LIB_ERR_H
#define IPCFS_LIB_ERR_H

/*
 * Every lib/ function that can fail returns:
 *   0            success (or a non-negative count where documented),
 *   -errno       a failure the caller reports as is (EINVAL, EFBIG, ENOSPC, ...),
 *   IPC_E_*      (positive) an expected condition the caller must act on.
 * fs/ turns these into exactly one FUSE reply in one place (fs/reply.c).
 */
enum ipc_code {
	/* The operation must wait and no waiter was supplied: call again with
	 * a waiter (the operation has changed nothing). */
	IPC_E_AGAIN = 1,
	/* The supplied waiter was queued; its completion callback will run
	 * exactly once, later, from another thread (or the interrupt path). */
	IPC_E_PARKED = 2,
};

#endif
