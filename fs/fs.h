/* fs.h - the FUSE adapter's shared state (fs/ only). */
#ifndef IPCFS_FS_FS_H
#define IPCFS_FS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

#include "lib/object.h"
#include "lib/persist.h"
#include "lib/store.h"

/*
 * fs/ maps FUSE requests onto lib/ and replies exactly once per request.
 * Parked requests: an fs_wait wraps the lib waiter and the fuse_req_t; it is
 * answered by fs_complete() from whichever thread completed it. Poll
 * handles live in fs_open and are notified by the notifier thread.
 *
 * Locks: fs->notify_lock guards every fs_open.ph and the notify queue. It is
 * taken inside st->lock (by the poll hook) and never the other way round.
 */

struct fs_open {
	struct ipc_handle *h;
	struct fuse_pollhandle *ph; /* fs->notify_lock */
	bool stream;                /* direct_io, nonseekable, FOPEN_STREAM */
	bool cached;                /* page cache (regions), else direct_io */
};

struct fs_notify_item {
	struct fs_notify_item *next;
	struct fuse_pollhandle *ph;
};

struct fs {
	struct fuse_session *se;
	struct ipc_store *st;
	struct ipc_persist *persist;
	bool debug;
	bool syslog;                /* daemonized: errors go to syslog */

	pthread_mutex_t notify_lock;
	pthread_cond_t notify_cv;
	struct fs_notify_item *nq_head, **nq_tail;
	bool notify_stop;
	pthread_t notify_thread;
	bool notify_running;
};

extern const struct fuse_lowlevel_ops fs_ops;

/* The poll hook given to the store (st->lock held). */
void fs_poll_wake(void *ctx, void *handle_user);
/* Frees an fs_open the kernel never released (store_free at exit). */
void fs_handle_gone(void *ctx, void *handle_user);
int fs_notify_start(struct fs *fs);
void fs_notify_stop(struct fs *fs);

/* reply.c: the one place where lib/ results become FUSE replies. */
int fs_errno(int r);
int fs_reply_open(fuse_req_t req, struct fs_open *fo);
int fs_reply_create(fuse_req_t req, const struct stat *attr, double attr_timeout,
		    double entry_timeout, struct fs_open *fo);
int fs_reply_rd(fuse_req_t req, const struct ipc_rdres *rd);

/* Debug log (-d) on stderr. */
void fs_log(struct fs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Errors and warnings: stderr, or syslog once the daemon has detached. */
void fs_err(struct fs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The store's db_state hook. */
void fs_db_state(void *ctx, const char *error);

#endif
