/* store.h - the store: namespace, node ids, limits, the lock, completions. */
#ifndef IPCFS_LIB_STORE_H
#define IPCFS_LIB_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/list.h"
#include "lib/msgq.h"
#include "lib/waitq.h"

/*
 * The store holds every node (directories and IPC objects) in memory, keyed
 * by a 64-bit id that is also the FUSE inode number and the database row id
 * (ids are never reused within a database). The mount root (id 1) and one
 * directory per kind are fixed nodes that are never persisted.
 *
 * Locking: ONE mutex, st->lock, guards every field of the store, of every
 * node, handle, waiter and queue, except where a field says "atomic" or
 * "immutable". Lock order: st->lock is the innermost lock of lib/; callers
 * (fs/) may hold their own locks only if those are never taken with st->lock
 * held, except fs/'s poll-handle lock, which the poll hook takes with
 * st->lock held (st->lock -> fs poll lock). Nothing blocks, replies to FUSE
 * or calls SQLite with st->lock held.
 *
 * Completions: operations that finish parked waiters put them on st->wake
 * (store_complete()); store_unlock() drops the mutex and then runs their
 * callbacks. So every public function that takes the lock runs callbacks of
 * other requests before it returns; callers must not hold locks those
 * callbacks need.
 *
 * Functions documented "locks" take and release st->lock themselves; the
 * others require it held.
 */

enum ipc_kind {
	IPC_KIND_DIR = 0, /* a directory (root, kind directory or user's) */
	IPC_KIND_MBOX,
	IPC_KIND_FIFO,
	IPC_KIND_SHM,
	IPC_KIND_SEM,
	IPC_KIND_EVENT,
	IPC_KIND_TOPIC,
	IPC_KIND_STATUS, /* /.ipcfs/: mount-wide status files (fixed, read-only) */
	IPC_KIND_COUNT,
};

enum ipc_framing {
	IPC_FRAMING_OPEN = 0,
	IPC_FRAMING_WRITE,
	IPC_FRAMING_LINE,
	IPC_FRAMING_RECORD,
};

enum ipc_sync {
	IPC_SYNC_MEMORY = 0, /* no database */
	IPC_SYNC_NORMAL,     /* write-behind within the commit window */
	IPC_SYNC_FULL,       /* writes acknowledged after their commit */
};

#define IPC_ROOT_ID 1
#define IPC_STATUS_DIR_ID (IPC_ROOT_ID + IPC_KIND_STATUS) /* /.ipcfs */
#define IPC_STATUS_STATS_ID (IPC_STATUS_DIR_ID + 1)       /* /.ipcfs/stats */
#define IPC_STATUS_METRICS_ID (IPC_STATUS_DIR_ID + 2)     /* /.ipcfs/metrics */
#define IPC_FIRST_USER_ID 1024
#define IPC_NAME_MAX 255

enum ipc_overflow {
	IPC_OVERFLOW_DROP = 0, /* topic: drop a slow subscriber's oldest */
	IPC_OVERFLOW_BLOCK,    /* topic: publishers wait for the slowest */
};

/* Per-object settings (persisted). Limits apply to the kinds that use them. */
struct ipc_settings {
	uint8_t framing;       /* enum ipc_framing (mbox, topic) */
	uint64_t max_messages; /* mbox: queue; topic: each subscriber's backlog */
	uint64_t max_bytes;    /* mbox, fifo: queued bytes; shm: size; event/topic: message */
	bool undo;             /* sem: units come back when their file is closed */
	bool latched;          /* event: stays set until reset */
	uint8_t overflow;      /* topic: enum ipc_overflow */
	uint64_t retain;       /* topic: messages kept for new subscribers */
};

/* Counters since the mount (not persisted). */
struct ipc_stats {
	uint64_t in_msgs, out_msgs, in_bytes, out_bytes;
};

/* Mount-wide limits and defaults; every client-controlled resource. */
struct ipc_limits {
	uint64_t max_nodes;        /* objects + directories: ENOSPC beyond */
	uint64_t max_memory;       /* payload bytes held in memory: ENOSPC beyond */
	uint64_t max_message;      /* largest message in any framing: EFBIG beyond */
	uint64_t max_obj_bytes;    /* ceiling for max_bytes settings */
	uint64_t max_obj_messages; /* ceiling for max_messages settings */
	uint64_t mbox_messages;    /* default max_messages for a new mailbox */
	uint64_t mbox_bytes;       /* default max_bytes for a new mailbox */
	uint64_t fifo_bytes;       /* default max_bytes for a new FIFO */
	/* Largest message in write framing: one write(2) must reach the daemon
	 * as one request (fs/ sets it from the negotiated max_write). */
	uint64_t write_msg_max;
};

void store_default_limits(struct ipc_limits *l);

/* Who is asking (from the FUSE request context). tid is a thread id. */
struct ipc_cred {
	uint32_t uid, gid, tid, umask;
};

struct ipc_handle;
struct ipc_region;

struct ipc_node {
	uint64_t id;                 /* immutable */
	struct ipc_node *parent;     /* NULL for the root and unlinked nodes */
	char *name;                  /* owned, NUL-terminated */
	uint8_t kind;                /* enum ipc_kind; directories: the kind of their tree */
	bool is_dir;                 /* immutable */
	bool fixed;                  /* root or kind directory: not persisted */
	bool unlinked;               /* removed from the namespace */
	uint32_t mode;               /* including S_IFDIR/S_IFREG */
	uint32_t uid, gid;
	struct timespec atime, mtime, ctime;
	uint64_t nlookup;            /* kernel references */
	uint32_t nhandles;           /* open handles */

	struct ipc_node *id_next;    /* hash chain by id */
	struct ipc_node *name_next;  /* hash chain by (parent, name) */
	struct ipc_list children;    /* directories: children, ascending id */
	struct ipc_list sibling;     /* on parent's children */
	uint64_t nchildren;

	/* Persistence: dirty nodes are on st->dirty. */
	struct ipc_list dirty_link;
	bool meta_dirty;             /* the node row changed */

	/* Objects. */
	struct ipc_settings set;
	struct ipc_stats stats;
	struct ipc_list handles;     /* open handles (ipc_handle.node_link) */
	struct ipc_list pollers;     /* handles armed for a poll wake-up */
	struct ipc_msgq q;           /* messages or FIFO segments */
	struct ipc_waitq readers;    /* parked reads */
	struct ipc_waitq space;      /* parked writes waiting for room */
	struct ipc_waitq openers;    /* mbox: parked opens waiting for a message slot */
	uint32_t nreaders, nwriters; /* handles open for reading / writing */
	uint64_t reserved;           /* mbox: slots held by open-framing writers */
	uint64_t pending_bytes;      /* bytes of messages being written (not queued) */
	struct ipc_region *rg;       /* shm: the pages (lib/region.h) */
	uint64_t value;              /* sem: units available */
	uint64_t held_undo;          /* sem: units held by undo-enabled handles */
	uint64_t gen;                /* event: firings so far */
	bool ev_set;                 /* event: latched and set (payload: q head) */
	uint64_t dropped;            /* topic: messages dropped for slow subscribers */
	uint32_t nsubs;              /* topic: subscribers */
};

/* What persist.c loads and saves for one node. */
struct ipc_node_row {
	uint64_t id, parent;
	const char *name;
	uint8_t kind;
	bool is_dir;
	uint32_t mode, uid, gid;
	struct timespec atime, mtime, ctime;
	struct ipc_settings set;
	uint64_t size;               /* shm: file size */
	uint64_t value;              /* sem: units (+ those held with undo); event: set */
};

struct ipc_store_hooks {
	/* Called with st->lock held when a handle armed by ipc_poll() may have
	 * become ready. Must only hand the work off (no FUSE call, no blocking,
	 * no store call). */
	void (*poll_wake)(void *ctx, void *handle_user);
	/* Called by store_free() for each handle still open (the kernel never
	 * released it: the mount went away); frees the caller's per-open data. */
	void (*handle_gone)(void *ctx, void *handle_user);
	/* Called by the writer thread, without st->lock, when commits start
	 * failing (error: the database's message) or work again (NULL). */
	void (*db_state)(void *ctx, const char *error);
	void *ctx;
};

struct ipc_store {
	pthread_mutex_t lock;
	struct ipc_limits lim;       /* immutable after store_new */
	enum ipc_sync sync;          /* immutable after store_new */
	struct ipc_store_hooks hooks;/* set before the store is shared */

	struct ipc_node **id_tab, **name_tab; /* hash tables, power-of-2 sized */
	size_t tab_size;
	uint64_t nnodes;             /* user nodes (not fixed) */
	uint64_t next_id;
	uint64_t mem_used;           /* bytes charged against lim.max_memory */

	struct ipc_list wake;        /* completed waiters; run by store_unlock */

	/* Write-behind state, shared with persist.c. */
	struct ipc_list dirty;       /* nodes with unsaved changes */
	struct ipc_list deleted;     /* ipc_tomb: node rows to delete */
	bool meta_global_dirty;      /* next_id etc. changed */
	pthread_cond_t dirty_cv;     /* signalled when work appears; waits on lock */
	bool commit_now;             /* someone waits: commit without the window */
	uint64_t snap_gen;           /* snapshots taken */
	uint64_t committed_gen;      /* snapshots durably committed */
	struct ipc_waitq commits;    /* COMMIT waiters, ascending gen */
	int db_error;                /* last commit failure (-errno) or 0 */
	uint64_t commits_ok, commits_failed;
	uint64_t commit_ns_sum, commit_ns_last; /* time spent writing batches */
	uint64_t db_bytes;           /* database + WAL size after the last commit */
	bool stopping;

	/* Statistics. */
	struct ipc_stats retired;    /* counters of removed objects */
	struct timespec started;
	const char *db_path;         /* NULL: --memory (set by the caller) */
};

/* A deleted node whose rows must go from the database. */
struct ipc_tomb {
	struct ipc_list link;
	uint64_t id;
};

/* Creates an empty store (root and kind directories only). hooks may be
 * NULL. Returns 0, -ENOMEM. The caller owns *out (store_free). */
int store_new(const struct ipc_limits *lim, enum ipc_sync sync,
	      const struct ipc_store_hooks *hooks, struct ipc_store **out);

/* Frees the store and every node, message and parked waiter (waiters are
 * freed by running their callbacks with result -ENOTCONN). NULL is a no-op.
 * No other thread may use the store any more. */
void store_free(struct ipc_store *st);

/* Locks. Ends every parked waiter (reads, writes, opens, commit waits)
 * with -ENOTCONN: the daemon is going away. Their callbacks run before
 * this returns. */
void store_abort_waiters(struct ipc_store *st);

/* Locks. Copies the ids of up to max objects of a kind into ids; returns
 * how many there are in all. */
size_t store_ids_of_kind(struct ipc_store *st, enum ipc_kind kind, uint64_t *ids, size_t max);

void store_lock(struct ipc_store *st);
/* Runs pending completions without touching the mutex (teardown only). */
void store_unlock_run(struct ipc_store *st);
/* Unlocks, then runs the callbacks of waiters completed meanwhile. */
void store_unlock(struct ipc_store *st);

/* Lock held. Marks a QUEUED waiter DONE with result and schedules its
 * callback for store_unlock(). Unqueues it if needed. */
void store_complete(struct ipc_store *st, struct ipc_waiter *w, int result);

/* Locks. Cancels a waiter (FUSE interrupt): a QUEUED waiter is completed
 * with -EINTR (a WRITE that placed bytes completes with that count) and its
 * callback runs before this returns, marked interrupted; an INIT waiter is
 * marked CANCELLED so that its operation returns -EINTR; a DONE one is left.
 * COMMIT waits are not cancelled (they end within one commit). */
void store_cancel(struct ipc_store *st, struct ipc_waiter *w);

/* Lock held. Records a node's changes for the writer thread. */
void store_touch_meta(struct ipc_store *st, struct ipc_node *n);
void store_touch_data(struct ipc_store *st, struct ipc_node *n);

/* Lock held. Parks w until everything changed so far is committed; w->result
 * is then `result` (or -EIO if the commit failed). Returns 0 at once when
 * there is no database or nothing is pending (the caller completes with its
 * own result), -EIO when the last commit failed and nothing is pending,
 * IPC_E_AGAIN when w is NULL and a wait is needed, IPC_E_PARKED otherwise. */
int store_wait_commit(struct ipc_store *st, struct ipc_waiter *w, int result);

/* Lock held. Node by id (unlinked nodes still open are found), or NULL. */
struct ipc_node *store_node(struct ipc_store *st, uint64_t id);

/* Lock held. Fills a stat for the node. */
void store_stat(struct ipc_store *st, const struct ipc_node *n, struct stat *out);

/* Whether a kind is served (its directory shows in the root). */
bool store_kind_enabled(enum ipc_kind k);
const char *store_kind_name(enum ipc_kind k);
/* The kind's directory name in the root, or -1 when not a kind name. */
int store_kind_by_name(const char *name);
/* True for kinds whose open files are streams (direct_io, nonseekable). */
bool store_kind_is_stream(enum ipc_kind k);
/* True for kinds served through the page cache (regions: mmap). Files of
 * other kinds that are not streams are direct_io but seekable (status). */
bool store_kind_is_cached(enum ipc_kind k);

/* --- Namespace operations. All lock. Attributes are returned in *st_out. --- */

/* Looks a name up and, on success, adds one kernel reference (nlookup). */
int store_lookup(struct ipc_store *st, uint64_t parent, const char *name, struct stat *out);
/* Drops kernel references; frees an unlinked node nobody uses. */
void store_forget(struct ipc_store *st, uint64_t id, uint64_t nlookup);
int store_getattr(struct ipc_store *st, uint64_t id, struct stat *out);

/* Which attributes store_setattr changes. */
enum {
	IPC_SET_MODE = 1 << 0,
	IPC_SET_UID = 1 << 1,
	IPC_SET_GID = 1 << 2,
	IPC_SET_SIZE = 1 << 3,
	IPC_SET_ATIME = 1 << 4,
	IPC_SET_MTIME = 1 << 5,
	IPC_SET_ATIME_NOW = 1 << 6,
	IPC_SET_MTIME_NOW = 1 << 7,
	IPC_SET_CTIME = 1 << 8,
};
/* chmod/chown/utimens/truncate. The kernel has checked permission
 * (default_permissions); the store re-checks ownership for chmod/chown.
 * Truncate: streams accept size 0 as a no-op and refuse others (EINVAL). */
int store_setattr(struct ipc_store *st, uint64_t id, const struct stat *attr, int which,
		  const struct ipc_cred *cred, struct stat *out);

/* Creates a directory (kind directories and below). +1 nlookup. */
int store_mkdir(struct ipc_store *st, uint64_t parent, const char *name, uint32_t mode,
		const struct ipc_cred *cred, struct stat *out);
/* Creates an object of the directory's kind. +1 nlookup. EEXIST if the name
 * exists. Returns the new node's id in out->st_ino. */
int store_create(struct ipc_store *st, uint64_t parent, const char *name, uint32_t mode,
		 const struct ipc_cred *cred, struct stat *out);
int store_unlink(struct ipc_store *st, uint64_t parent, const char *name);
int store_rmdir(struct ipc_store *st, uint64_t parent, const char *name);
/* flags: 0 or RENAME_NOREPLACE; RENAME_EXCHANGE is EINVAL. EXDEV across
 * kinds. */
int store_rename(struct ipc_store *st, uint64_t parent, const char *name, uint64_t newparent,
		 const char *newname, unsigned flags);

/* Calls fill for each entry of a directory after the entry with cookie
 * `after` (0: from the start; "." and ".." are the caller's), until fill
 * returns non-zero. Each entry's cookie is its id. Returns 0, -ENOTDIR,
 * -ENOENT. fill runs under the lock: it must only copy. */
int store_readdir(struct ipc_store *st, uint64_t id, uint64_t after,
		  int (*fill)(void *ctx, const char *name, const struct stat *attr, uint64_t cookie),
		  void *ctx);

struct ipc_statfs {
	uint64_t nodes, max_nodes, mem_used, max_memory;
};
void store_statfs(struct ipc_store *st, struct ipc_statfs *out);

/* --- Loading (persist.c, before the store is shared). Lock held. --- */

/* Adds a node read from the database. Parents must be loaded first. */
int store_load_node(struct ipc_store *st, const struct ipc_node_row *row);
/* After loading: lets every object settle (e.g. a topic trims its log to
 * what it retains). */
void store_loaded(struct ipc_store *st);
/* Appends a message (takes over the reference; m->seq and m->head set). */
int store_load_msg(struct ipc_store *st, uint64_t id, struct ipc_msg *m);
/* Loads one region page. */
int store_load_page(struct ipc_store *st, uint64_t id, uint64_t pgno, const void *data,
		    size_t len);
void store_set_next_id(struct ipc_store *st, uint64_t next_id);

/* --- Internal to lib/ (used by the object modules). Lock held. --- */

/* Charges/uncharges payload memory. charge returns -ENOSPC past max_memory. */
int store_charge(struct ipc_store *st, size_t bytes);
void store_uncharge(struct ipc_store *st, size_t bytes);
/* Wakes the node's armed pollers (through the poll hook). */
void store_poll_wake(struct ipc_store *st, struct ipc_node *n);
/* Frees a node that is unlinked and unused. */
void store_maybe_free(struct ipc_store *st, struct ipc_node *n);
void store_now(struct timespec *ts);
/* Fills a persistence row from a node. */
void store_node_row(const struct ipc_node *n, struct ipc_node_row *row);

#endif
