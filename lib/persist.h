/* persist.h - the SQLite database: open, load, write-behind, close. */
#ifndef IPCFS_LIB_PERSIST_H
#define IPCFS_LIB_PERSIST_H

#include <stddef.h>

#include "lib/store.h"

/*
 * The only module that includes sqlite3.h. One database file per mount,
 * guarded by an flock() so that a second daemon refuses to start.
 *
 * Schema (version IPC_SCHEMA_VERSION, PRAGMA user_version; application_id
 * 'IPCF'): meta(key, value) holds next_id; nodes(id, parent, name, kind,
 * is_dir, mode, uid, gid, times, settings) one row per user directory or
 * object; messages(obj, seq, skip, data) one row per queued message or FIFO
 * segment, in sequence order per object (skip: bytes of a FIFO segment
 * already consumed). See docs/ARCHITECTURE.md.
 *
 * A file that is not an ipcfs database, is corrupt, or has another schema
 * version is refused with a message and left byte-for-byte untouched.
 *
 * Write-behind: one writer thread takes snapshots of the store's dirty state
 * (under st->lock, copying references, never doing I/O), writes them in one
 * transaction without the lock, then completes the COMMIT waiters. In normal
 * mode it waits up to the commit window after the first change so that one
 * transaction carries many changes (and messages consumed meanwhile are
 * never written); in full mode, or when someone waits (fsync, full-mode
 * writes), it commits at once, and what arrives during a commit goes into
 * the next one (group commit). A failed commit is retried with backoff;
 * its waiters get -EIO.
 */

#define IPC_SCHEMA_VERSION 1
#define IPC_APPLICATION_ID 0x49504346 /* "IPCF" */
#define IPC_COMMIT_WINDOW_MS 100

struct ipc_persist;

/* Opens (creating if absent or empty) and checks the database, and locks it.
 * Writes a human-readable reason into err on failure. Returns 0, -EBUSY
 * (locked by another process), -EINVAL (not ipcfs, corrupt, wrong version),
 * -errno. */
int persist_open(const char *path, enum ipc_sync sync, struct ipc_persist **out, char *err,
		 size_t errlen);

/* Loads every node and message into an empty store (st->lock held by the
 * caller or not yet shared). On failure the store may hold part of it and
 * must be freed. Returns 0, -EINVAL (corrupt), -ENOSPC (over limits). */
int persist_load(struct ipc_persist *p, struct ipc_store *st, char *err, size_t errlen);

/* Starts the writer thread for st (blocks SIGINT/SIGTERM/... in it). */
int persist_start(struct ipc_persist *p, struct ipc_store *st);

/* Commits everything pending, stops the writer thread, closes the database
 * and releases the lock. NULL is a no-op. Returns 0 or -EIO if the final
 * commit failed. */
int persist_close(struct ipc_persist *p);

/* Database file size in bytes (for statistics), or 0. */
unsigned long long persist_db_size(struct ipc_persist *p);

#endif
