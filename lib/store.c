/* store.c - namespace, ids, limits, the store lock and deferred completions. */
#include "lib/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/object.h"
#include "lib/region.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static const struct {
	const char *name;
	bool enabled;
	bool stream;
} kinds[IPC_KIND_COUNT] = {
	[IPC_KIND_DIR] = { "", false, false },
	[IPC_KIND_MBOX] = { "mbox", true, true },
	[IPC_KIND_FIFO] = { "fifo", true, true },
	[IPC_KIND_SHM] = { "shm", true, false },
	[IPC_KIND_SEM] = { "sem", true, true },
	[IPC_KIND_EVENT] = { "event", true, true },
	[IPC_KIND_TOPIC] = { "topic", true, true },
	[IPC_KIND_STATUS] = { ".ipcfs", true, false },
};

bool store_kind_enabled(enum ipc_kind k)
{
	return k < IPC_KIND_COUNT && kinds[k].enabled;
}

const char *store_kind_name(enum ipc_kind k)
{
	return k < IPC_KIND_COUNT ? kinds[k].name : "";
}

int store_kind_by_name(const char *name)
{
	for (int k = 1; k < IPC_KIND_COUNT; k++)
		if (strcmp(name, kinds[k].name) == 0)
			return k;
	return -1;
}

bool store_kind_is_stream(enum ipc_kind k)
{
	return k < IPC_KIND_COUNT && kinds[k].stream;
}

bool store_kind_is_cached(enum ipc_kind k)
{
	return k == IPC_KIND_SHM;
}

/* Kind directory ids follow the root: mbox is 2, fifo 3, ... */
static uint64_t kind_dir_id(enum ipc_kind k)
{
	return IPC_ROOT_ID + (uint64_t)k;
}

void store_default_limits(struct ipc_limits *l)
{
	l->max_nodes = 1000000;
	l->max_memory = 1ULL << 30;
	l->max_message = 64ULL << 20;
	l->max_obj_bytes = 1ULL << 30;
	l->max_obj_messages = 1ULL << 24;
	l->mbox_messages = 10000;
	l->mbox_bytes = 64ULL << 20;
	l->fifo_bytes = 1ULL << 20;
	l->write_msg_max = (1ULL << 20) - 4096;
}

void store_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* --- hashing --- */

static size_t hash_id(uint64_t id, size_t size)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (size - 1);
}

static size_t hash_name(uint64_t parent, const char *name, size_t size)
{
	uint64_t h = 1469598103934665603ULL ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return (size_t)h & (size - 1);
}

static uint64_t parent_id(const struct ipc_node *n)
{
	return n->parent ? n->parent->id : 0;
}

static void hash_insert_id(struct ipc_store *st, struct ipc_node *n)
{
	size_t b = hash_id(n->id, st->tab_size);

	n->id_next = st->id_tab[b];
	st->id_tab[b] = n;
}

static void hash_insert_name(struct ipc_store *st, struct ipc_node *n)
{
	size_t b = hash_name(parent_id(n), n->name, st->tab_size);

	n->name_next = st->name_tab[b];
	st->name_tab[b] = n;
}

static void hash_remove_id(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_node **pp = &st->id_tab[hash_id(n->id, st->tab_size)];

	for (; *pp; pp = &(*pp)->id_next) {
		if (*pp == n) {
			*pp = n->id_next;
			n->id_next = NULL;
			return;
		}
	}
}

static void hash_remove_name(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_node **pp = &st->name_tab[hash_name(parent_id(n), n->name, st->tab_size)];

	for (; *pp; pp = &(*pp)->name_next) {
		if (*pp == n) {
			*pp = n->name_next;
			n->name_next = NULL;
			return;
		}
	}
}

/* Doubles the tables when they are full. Failure to grow only costs speed. */
static void hash_maybe_grow(struct ipc_store *st)
{
	size_t osize = st->tab_size, nsize = osize * 2;
	struct ipc_node **oid = st->id_tab, **oname = st->name_tab;
	struct ipc_node **nid, **nname;

	if (st->nnodes + IPC_KIND_COUNT < osize)
		return;
	nid = calloc(nsize, sizeof(*nid));
	nname = calloc(nsize, sizeof(*nname));
	if (!nid || !nname) {
		free(nid);
		free(nname);
		return;
	}
	st->id_tab = nid;
	st->name_tab = nname;
	st->tab_size = nsize;
	for (size_t b = 0; b < osize; b++) {
		struct ipc_node *n = oid[b], *next;
		for (; n; n = next) {
			next = n->id_next;
			hash_insert_id(st, n);
		}
		for (n = oname[b]; n; n = next) {
			next = n->name_next;
			hash_insert_name(st, n);
		}
	}
	free(oid);
	free(oname);
}

struct ipc_node *store_node(struct ipc_store *st, uint64_t id)
{
	struct ipc_node *n = st->id_tab[hash_id(id, st->tab_size)];

	while (n && n->id != id)
		n = n->id_next;
	return n;
}

static struct ipc_node *child(struct ipc_store *st, const struct ipc_node *dir, const char *name)
{
	struct ipc_node *n = st->name_tab[hash_name(dir->id, name, st->tab_size)];

	for (; n; n = n->name_next)
		if (n->parent == dir && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* A node hidden from the namespace: a kind directory not yet served. */
static bool hidden(const struct ipc_node *n)
{
	return n->fixed && n->id != IPC_ROOT_ID && !store_kind_enabled(n->kind);
}

/* --- node lifecycle --- */

static struct ipc_node *node_alloc(struct ipc_store *st, uint64_t id, const char *name,
				   bool is_dir, uint8_t kind)
{
	struct ipc_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->id = id;
	n->is_dir = is_dir;
	n->kind = kind;
	ipc_list_init(&n->children);
	ipc_list_init(&n->sibling);
	ipc_list_init(&n->dirty_link);
	ipc_list_init(&n->handles);
	ipc_list_init(&n->pollers);
	msgq_init(&n->q, st->sync != IPC_SYNC_MEMORY);
	waitq_init(&n->readers);
	waitq_init(&n->space);
	waitq_init(&n->openers);
	return n;
}

/* Links n under dir keeping the children in ascending id order. */
static void attach(struct ipc_store *st, struct ipc_node *dir, struct ipc_node *n)
{
	struct ipc_list *pos = dir->children.prev;

	while (pos != &dir->children &&
	       ipc_container_of(pos, struct ipc_node, sibling)->id > n->id)
		pos = pos->prev;
	ipc_list_insert_after(pos, &n->sibling);
	dir->nchildren++;
	n->parent = dir;
	hash_insert_name(st, n);
}

static void detach(struct ipc_store *st, struct ipc_node *n)
{
	hash_remove_name(st, n);
	ipc_list_del(&n->sibling);
	n->parent->nchildren--;
	n->parent = NULL;
}

static void node_free(struct ipc_store *st, struct ipc_node *n)
{
	if (!n->is_dir)
		ipc_object_fini(st, n);
	msgq_destroy(&n->q);
	free(n->name);
	free(n);
}

void store_maybe_free(struct ipc_store *st, struct ipc_node *n)
{
	if (!n->unlinked || n->nlookup || n->nhandles)
		return;
	hash_remove_id(st, n);
	node_free(st, n);
}

/* Takes n out of the namespace: its rows go, its memory stays while the
 * kernel or an open file still refers to it. */
static void remove_node(struct ipc_store *st, struct ipc_node *n)
{
	st->retired.in_msgs += n->stats.in_msgs;
	st->retired.out_msgs += n->stats.out_msgs;
	st->retired.in_bytes += n->stats.in_bytes;
	st->retired.out_bytes += n->stats.out_bytes;
	detach(st, n);
	n->unlinked = true;
	st->nnodes--;
	if (ipc_list_linked(&n->dirty_link))
		ipc_list_del(&n->dirty_link);
	n->meta_dirty = false;
	msgq_untrack(&n->q);
	if (st->sync != IPC_SYNC_MEMORY) {
		struct ipc_tomb *t = malloc(sizeof(*t));
		/* Without memory for the tomb the rows stay: the object would come
		 * back after a restart, which loses nothing. */
		if (t) {
			t->id = n->id;
			ipc_list_add_tail(&st->deleted, &t->link);
			store_touch_data(st, NULL);
		}
	}
	store_maybe_free(st, n);
}

/* --- creation --- */

static void free_all_nodes(struct ipc_store *st)
{
	for (size_t b = 0; b < st->tab_size; b++) {
		struct ipc_node *n = st->id_tab[b], *next;
		for (; n; n = next) {
			next = n->id_next;
			node_free(st, n);
		}
		st->id_tab[b] = NULL;
	}
}

/* A fixed node: a directory, or (mode 0444) a status file. */
static struct ipc_node *fixed_node(struct ipc_store *st, uint64_t id, const char *name,
				   uint8_t kind, uint32_t mode, const struct timespec *now)
{
	bool dir = mode != 0444;
	struct ipc_node *n = node_alloc(st, id, name, dir, kind);

	if (!n)
		return NULL;
	n->fixed = true;
	n->mode = (dir ? S_IFDIR : S_IFREG) | mode;
	n->uid = (uint32_t)geteuid();
	n->gid = (uint32_t)getegid();
	n->atime = n->mtime = n->ctime = *now;
	n->nlookup = 1; /* never forgotten */
	hash_insert_id(st, n);
	return n;
}

int store_new(const struct ipc_limits *lim, enum ipc_sync sync,
	      const struct ipc_store_hooks *hooks, struct ipc_store **out)
{
	struct ipc_store *st = calloc(1, sizeof(*st));
	struct ipc_node *root;
	struct timespec now;

	if (!st)
		return -ENOMEM;
	st->lim = *lim;
	st->sync = sync;
	if (hooks)
		st->hooks = *hooks;
	st->tab_size = 1024;
	st->id_tab = calloc(st->tab_size, sizeof(*st->id_tab));
	st->name_tab = calloc(st->tab_size, sizeof(*st->name_tab));
	if (!st->id_tab || !st->name_tab)
		goto fail;
	st->next_id = IPC_FIRST_USER_ID;
	ipc_list_init(&st->wake);
	ipc_list_init(&st->dirty);
	ipc_list_init(&st->deleted);
	waitq_init(&st->commits);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->dirty_cv, NULL);

	store_now(&now);
	root = fixed_node(st, IPC_ROOT_ID, "", IPC_KIND_DIR, 0755, &now);
	if (!root)
		goto fail_locks;
	for (int k = IPC_KIND_DIR + 1; k < IPC_KIND_COUNT; k++) {
		struct ipc_node *d = fixed_node(st, kind_dir_id(k), kinds[k].name, (uint8_t)k,
						k == IPC_KIND_STATUS ? 0555 : 01777, &now);
		if (!d)
			goto fail_locks;
		attach(st, root, d);
		if (k == IPC_KIND_STATUS) {
			struct ipc_node *f1 = fixed_node(st, IPC_STATUS_STATS_ID, "stats",
							 IPC_KIND_STATUS, 0444, &now);
			struct ipc_node *f2 = fixed_node(st, IPC_STATUS_METRICS_ID, "metrics",
							 IPC_KIND_STATUS, 0444, &now);
			if (!f1 || !f2) {
				if (f1)
					node_free(st, f1);
				if (f2)
					node_free(st, f2);
				goto fail_locks;
			}
			attach(st, d, f1);
			attach(st, d, f2);
		}
	}
	st->started = now;
	*out = st;
	return 0;

fail_locks:
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->dirty_cv);
	free_all_nodes(st);
fail:
	free(st->id_tab);
	free(st->name_tab);
	free(st);
	return -ENOMEM;
}

static void abort_waiters(struct ipc_store *st)
{
	struct ipc_waiter *w;

	for (size_t b = 0; b < st->tab_size; b++) {
		for (struct ipc_node *n = st->id_tab[b]; n; n = n->id_next) {
			while ((w = waitq_first(&n->readers)))
				store_complete(st, w, -ENOTCONN);
			while ((w = waitq_first(&n->space)))
				store_complete(st, w, -ENOTCONN);
			while ((w = waitq_first(&n->openers)))
				store_complete(st, w, -ENOTCONN);
		}
	}
	while ((w = waitq_first(&st->commits)))
		store_complete(st, w, -ENOTCONN);
}

void store_abort_waiters(struct ipc_store *st)
{
	store_lock(st);
	abort_waiters(st);
	store_unlock(st);
}

size_t store_ids_of_kind(struct ipc_store *st, enum ipc_kind kind, uint64_t *ids, size_t max)
{
	size_t n = 0;

	store_lock(st);
	for (size_t b = 0; b < st->tab_size; b++)
		for (struct ipc_node *nd = st->id_tab[b]; nd; nd = nd->id_next)
			if (nd->kind == kind && !nd->is_dir && !nd->fixed && n++ < max)
				ids[n - 1] = nd->id;
	store_unlock(st);
	return n;
}

void store_free(struct ipc_store *st)
{
	struct ipc_list *pos, *tmp;

	if (!st)
		return;
	/* Parked waiters belong to open handles; end them first. */
	abort_waiters(st);
	store_unlock_run(st);
	/* Handles the kernel never released (the mount went away). */
	for (size_t b = 0; b < st->tab_size; b++) {
		for (struct ipc_node *n = st->id_tab[b]; n; n = n->id_next) {
			struct ipc_list *hp, *ht;
			ipc_list_for_each_safe(hp, ht, &n->handles) {
				struct ipc_handle *h =
					ipc_container_of(hp, struct ipc_handle, node_link);
				if (st->hooks.handle_gone)
					st->hooks.handle_gone(st->hooks.ctx, h->user);
				ipc_msg_unref(h->cur);
				ipc_msg_unref(h->pend);
				ipc_list_del(hp);
				free(h);
			}
		}
	}
	ipc_list_for_each_safe(pos, tmp, &st->deleted) {
		ipc_list_del(pos);
		free(ipc_container_of(pos, struct ipc_tomb, link));
	}
	free_all_nodes(st);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->dirty_cv);
	free(st->id_tab);
	free(st->name_tab);
	free(st);
}

/* --- lock and completions --- */

void store_lock(struct ipc_store *st)
{
	pthread_mutex_lock(&st->lock);
}

/* Runs completed waiters' callbacks; st->lock not held. */
static void run_wake(struct ipc_list *list)
{
	struct ipc_list *pos, *tmp;

	ipc_list_for_each_safe(pos, tmp, list) {
		struct ipc_waiter *w = ipc_container_of(pos, struct ipc_waiter, link);
		ipc_list_del(pos);
		w->complete(w);
	}
}

void store_unlock(struct ipc_store *st)
{
	struct ipc_list wake;

	if (ipc_list_empty(&st->wake)) {
		pthread_mutex_unlock(&st->lock);
		return;
	}
	ipc_list_init(&wake);
	ipc_list_splice_tail(&wake, &st->wake);
	pthread_mutex_unlock(&st->lock);
	run_wake(&wake);
}

/* store_free's variant: no lock is held and nobody else runs. */
void store_unlock_run(struct ipc_store *st)
{
	struct ipc_list wake;

	ipc_list_init(&wake);
	ipc_list_splice_tail(&wake, &st->wake);
	run_wake(&wake);
}

void store_complete(struct ipc_store *st, struct ipc_waiter *w, int result)
{
	waitq_remove(w);
	w->state = IPC_W_DONE;
	w->result = result;
	ipc_list_add_tail(&st->wake, &w->link);
}

void store_cancel(struct ipc_store *st, struct ipc_waiter *w)
{
	store_lock(st);
	switch (w->state) {
	case IPC_W_INIT:
		w->state = IPC_W_CANCELLED;
		break;
	case IPC_W_QUEUED:
		if (w->op == IPC_OP_COMMIT)
			break;
		w->interrupted = true;
		if (w->op == IPC_OP_WRITE && w->wdone)
			store_complete(st, w, (int)w->wdone);
		else
			store_complete(st, w, -EINTR);
		break;
	default:
		break;
	}
	store_unlock(st);
}

/* --- write-behind bookkeeping --- */

static bool persisted(const struct ipc_store *st)
{
	return st->sync != IPC_SYNC_MEMORY;
}

static void kick(struct ipc_store *st)
{
	pthread_cond_signal(&st->dirty_cv);
}

void store_touch_meta(struct ipc_store *st, struct ipc_node *n)
{
	if (!persisted(st) || n->fixed || n->unlinked)
		return;
	n->meta_dirty = true;
	store_touch_data(st, n);
}

void store_touch_data(struct ipc_store *st, struct ipc_node *n)
{
	bool was_clean;

	if (!persisted(st))
		return;
	was_clean = ipc_list_empty(&st->dirty) && ipc_list_empty(&st->deleted);
	if (n) {
		if (n->fixed || n->unlinked || ipc_list_linked(&n->dirty_link))
			return;
		ipc_list_add_tail(&st->dirty, &n->dirty_link);
	}
	if (was_clean || st->sync == IPC_SYNC_FULL)
		kick(st);
}

static bool anything_dirty(const struct ipc_store *st)
{
	return !ipc_list_empty(&st->dirty) || !ipc_list_empty(&st->deleted) ||
	       st->meta_global_dirty;
}

int store_wait_commit(struct ipc_store *st, struct ipc_waiter *w, int result)
{
	uint64_t need;

	if (!persisted(st))
		return 0;
	if (anything_dirty(st))
		need = st->snap_gen + 1;
	else if (st->snap_gen > st->committed_gen)
		need = st->snap_gen;
	else
		return st->db_error ? -EIO : 0;
	if (!w)
		return IPC_E_AGAIN;
	w->op = IPC_OP_COMMIT;
	w->gen = need;
	w->commit_result = result;
	if (w->state == IPC_W_CANCELLED)
		w->state = IPC_W_INIT; /* commit waits are not interruptible */
	st->commit_now = true;
	kick(st);
	return waitq_park(&st->commits, w);
}

/* --- memory --- */

int store_charge(struct ipc_store *st, size_t bytes)
{
	if (st->mem_used + bytes > st->lim.max_memory)
		return -ENOSPC;
	st->mem_used += bytes;
	return 0;
}

void store_uncharge(struct ipc_store *st, size_t bytes)
{
	st->mem_used = bytes > st->mem_used ? 0 : st->mem_used - bytes;
}

void store_poll_wake(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_list *pos, *tmp;

	ipc_list_for_each_safe(pos, tmp, &n->pollers) {
		struct ipc_handle *h = ipc_container_of(pos, struct ipc_handle, poll_link);
		ipc_list_del(pos);
		if (st->hooks.poll_wake)
			st->hooks.poll_wake(st->hooks.ctx, h->user);
	}
}

/* --- attributes --- */

void store_stat(struct ipc_store *st, const struct ipc_node *n, struct stat *out)
{
	(void)st;
	memset(out, 0, sizeof(*out));
	out->st_ino = n->id;
	out->st_mode = n->mode;
	out->st_nlink = n->is_dir ? 2 : (n->unlinked ? 0 : 1);
	out->st_uid = n->uid;
	out->st_gid = n->gid;
	out->st_size = n->is_dir ? (off_t)n->nchildren : (off_t)ipc_node_size(n);
	out->st_blksize = 4096;
	out->st_blocks = (out->st_size + 511) / 512;
	out->st_atim = n->atime;
	out->st_mtim = n->mtime;
	out->st_ctim = n->ctime;
}

/* The directory `id`; *err is 0, or -ENOENT/-ENOTDIR with NULL returned. */
static struct ipc_node *dir_node(struct ipc_store *st, uint64_t id, int *err)
{
	struct ipc_node *d = store_node(st, id);

	*err = 0;
	if (!d || d->unlinked || hidden(d)) {
		*err = -ENOENT;
		return NULL;
	}
	if (!d->is_dir) {
		*err = -ENOTDIR;
		return NULL;
	}
	return d;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -ENOENT;
	if (len > IPC_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int store_lookup(struct ipc_store *st, uint64_t parent, const char *name, struct stat *out)
{
	struct ipc_node *d, *n;
	int r;

	if ((r = check_name(name)))
		return r;
	store_lock(st);
	d = dir_node(st, parent, &r);
	if (d) {
		n = child(st, d, name);
		if (!n || hidden(n)) {
			r = -ENOENT;
		} else {
			n->nlookup++;
			store_stat(st, n, out);
		}
	}
	store_unlock(st);
	return r;
}

void store_forget(struct ipc_store *st, uint64_t id, uint64_t nlookup)
{
	struct ipc_node *n;

	store_lock(st);
	n = store_node(st, id);
	if (n && !n->fixed) {
		n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
		store_maybe_free(st, n);
	}
	store_unlock(st);
}

int store_getattr(struct ipc_store *st, uint64_t id, struct stat *out)
{
	struct ipc_node *n;
	int r = 0;

	store_lock(st);
	n = store_node(st, id);
	if (!n || hidden(n))
		r = -ENOENT;
	else
		store_stat(st, n, out);
	store_unlock(st);
	return r;
}

int store_setattr(struct ipc_store *st, uint64_t id, const struct stat *attr, int which,
		  const struct ipc_cred *cred, struct stat *out)
{
	struct ipc_node *n;
	struct timespec now;
	bool owner;
	int r = 0;

	store_lock(st);
	n = store_node(st, id);
	if (!n || hidden(n)) {
		r = -ENOENT;
		goto out;
	}
	owner = cred->uid == 0 || cred->uid == n->uid;
	if ((which & (IPC_SET_MODE | IPC_SET_UID | IPC_SET_GID)) && (n->fixed || !owner)) {
		r = -EPERM;
		goto out;
	}
	if ((which & IPC_SET_UID) && cred->uid != 0 && attr->st_uid != n->uid) {
		r = -EPERM;
		goto out;
	}
	if (which & IPC_SET_SIZE) {
		if (n->is_dir)
			r = -EISDIR;
		else if (attr->st_size < 0)
			r = -EINVAL;
		else
			r = ipc_object_truncate(st, n, (uint64_t)attr->st_size);
		if (r)
			goto out;
	}
	store_now(&now);
	if (which & IPC_SET_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (which & IPC_SET_UID)
		n->uid = attr->st_uid;
	if (which & IPC_SET_GID)
		n->gid = attr->st_gid;
	if (which & IPC_SET_ATIME_NOW)
		n->atime = now;
	else if (which & IPC_SET_ATIME)
		n->atime = attr->st_atim;
	if (which & IPC_SET_MTIME_NOW)
		n->mtime = now;
	else if (which & IPC_SET_MTIME)
		n->mtime = attr->st_mtim;
	if (which & (IPC_SET_MODE | IPC_SET_UID | IPC_SET_GID | IPC_SET_ATIME |
		     IPC_SET_MTIME | IPC_SET_ATIME_NOW | IPC_SET_MTIME_NOW | IPC_SET_CTIME))
		n->ctime = now;
	store_touch_meta(st, n);
	store_stat(st, n, out);
out:
	store_unlock(st);
	return r;
}

/* Common checks for making a node in parent. */
static int prepare_new(struct ipc_store *st, uint64_t parent, const char *name,
		       struct ipc_node **dirp)
{
	struct ipc_node *d;
	int r;

	if ((r = check_name(name)))
		return r;
	d = dir_node(st, parent, &r);
	if (!d)
		return r;
	if (d->id == IPC_ROOT_ID || d->kind == IPC_KIND_STATUS)
		return child(st, d, name) ? -EEXIST : -EPERM;
	if (!store_kind_enabled(d->kind))
		return -ENOENT;
	if (child(st, d, name))
		return -EEXIST;
	if (st->nnodes >= st->lim.max_nodes)
		return -ENOSPC;
	*dirp = d;
	return 0;
}

static void touch_dir(struct ipc_store *st, struct ipc_node *d)
{
	struct timespec now;

	store_now(&now);
	d->mtime = d->ctime = now;
	store_touch_meta(st, d);
}

static struct ipc_node *make_node(struct ipc_store *st, struct ipc_node *d, const char *name,
				  bool is_dir, uint32_t mode, const struct ipc_cred *cred)
{
	struct ipc_node *n = node_alloc(st, st->next_id, name, is_dir, d->kind);
	struct timespec now;

	if (!n)
		return NULL;
	st->next_id++;
	st->meta_global_dirty = persisted(st);
	n->mode = (is_dir ? S_IFDIR : S_IFREG) | (mode & ~cred->umask & 07777);
	n->uid = cred->uid;
	n->gid = cred->gid;
	if (d->mode & S_ISGID) {
		n->gid = d->gid;
		if (is_dir)
			n->mode |= S_ISGID;
	}
	store_now(&now);
	n->atime = n->mtime = n->ctime = now;
	touch_dir(st, d);
	hash_insert_id(st, n);
	attach(st, d, n);
	st->nnodes++;
	hash_maybe_grow(st);
	if (!is_dir)
		ipc_object_init(st, n);
	n->nlookup = 1;
	store_touch_meta(st, n);
	return n;
}

int store_mkdir(struct ipc_store *st, uint64_t parent, const char *name, uint32_t mode,
		const struct ipc_cred *cred, struct stat *out)
{
	struct ipc_node *d, *n;
	int r;

	store_lock(st);
	r = prepare_new(st, parent, name, &d);
	if (!r) {
		n = make_node(st, d, name, true, mode, cred);
		if (n)
			store_stat(st, n, out);
		else
			r = -ENOMEM;
	}
	store_unlock(st);
	return r;
}

int store_create(struct ipc_store *st, uint64_t parent, const char *name, uint32_t mode,
		 const struct ipc_cred *cred, struct stat *out)
{
	struct ipc_node *d, *n;
	int r;

	store_lock(st);
	r = prepare_new(st, parent, name, &d);
	if (!r) {
		n = make_node(st, d, name, false, mode, cred);
		if (n)
			store_stat(st, n, out);
		else
			r = -ENOMEM;
	}
	store_unlock(st);
	return r;
}

/* unlink(2) (dir false) and rmdir(2) (dir true). */
static int remove_child(struct ipc_store *st, uint64_t parent, const char *name, bool dir)
{
	struct ipc_node *d, *n;
	int r;

	store_lock(st);
	d = dir_node(st, parent, &r);
	if (!d)
		goto out;
	n = child(st, d, name);
	if (!n || hidden(n))
		r = -ENOENT;
	else if (n->fixed)
		r = dir ? -EBUSY : -EPERM;
	else if (n->is_dir != dir)
		r = dir ? -ENOTDIR : -EISDIR;
	else if (dir && n->nchildren)
		r = -ENOTEMPTY;
	if (r)
		goto out;
	touch_dir(st, d);
	remove_node(st, n);
out:
	store_unlock(st);
	return r;
}

int store_unlink(struct ipc_store *st, uint64_t parent, const char *name)
{
	return remove_child(st, parent, name, false);
}

int store_rmdir(struct ipc_store *st, uint64_t parent, const char *name)
{
	return remove_child(st, parent, name, true);
}

/* True when a is d or one of d's ancestors. */
static bool is_ancestor(const struct ipc_node *a, const struct ipc_node *d)
{
	for (; d; d = d->parent)
		if (d == a)
			return true;
	return false;
}

int store_rename(struct ipc_store *st, uint64_t parent, const char *name, uint64_t newparent,
		 const char *newname, unsigned flags)
{
	struct ipc_node *d, *nd, *n, *t;
	char *nname;
	int r;

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if ((r = check_name(newname)))
		return r;
	store_lock(st);
	d = dir_node(st, parent, &r);
	nd = d ? dir_node(st, newparent, &r) : NULL;
	if (!nd)
		goto out;
	n = child(st, d, name);
	if (!n || hidden(n)) {
		r = -ENOENT;
		goto out;
	}
	if (n->fixed || nd->id == IPC_ROOT_ID) {
		r = -EPERM;
		goto out;
	}
	if (nd->kind != n->kind) {
		r = -EXDEV;
		goto out;
	}
	if (n->is_dir && is_ancestor(n, nd)) {
		r = -EINVAL;
		goto out;
	}
	t = child(st, nd, newname);
	if (t == n)
		goto out;
	if (t) {
		if (flags & RENAME_NOREPLACE)
			r = -EEXIST;
		else if (t->is_dir && !n->is_dir)
			r = -EISDIR;
		else if (!t->is_dir && n->is_dir)
			r = -ENOTDIR;
		else if (t->is_dir && t->nchildren)
			r = -ENOTEMPTY;
		if (r)
			goto out;
	}
	nname = strdup(newname);
	if (!nname) {
		r = -ENOMEM;
		goto out;
	}
	if (t)
		remove_node(st, t);
	detach(st, n);
	free(n->name);
	n->name = nname;
	attach(st, nd, n);
	touch_dir(st, d);
	touch_dir(st, nd);
	n->ctime = nd->mtime;
	store_touch_meta(st, n);
out:
	store_unlock(st);
	return r;
}

int store_readdir(struct ipc_store *st, uint64_t id, uint64_t after,
		  int (*fill)(void *ctx, const char *name, const struct stat *attr, uint64_t cookie),
		  void *ctx)
{
	struct ipc_node *d, *prev;
	struct ipc_list *pos;
	int r = 0;

	store_lock(st);
	d = dir_node(st, id, &r);
	if (!d)
		goto out;
	pos = d->children.next;
	if (after) {
		prev = store_node(st, after);
		if (prev && prev->parent == d) {
			pos = prev->sibling.next;
		} else {
			while (pos != &d->children &&
			       ipc_container_of(pos, struct ipc_node, sibling)->id <= after)
				pos = pos->next;
		}
	}
	for (; pos != &d->children; pos = pos->next) {
		struct ipc_node *n = ipc_container_of(pos, struct ipc_node, sibling);
		struct stat sb;
		if (hidden(n))
			continue;
		store_stat(st, n, &sb);
		if (fill(ctx, n->name, &sb, n->id))
			break;
	}
out:
	store_unlock(st);
	return r;
}

void store_statfs(struct ipc_store *st, struct ipc_statfs *out)
{
	store_lock(st);
	out->nodes = st->nnodes;
	out->max_nodes = st->lim.max_nodes;
	out->mem_used = st->mem_used;
	out->max_memory = st->lim.max_memory;
	store_unlock(st);
}

/* --- loading and saving rows --- */

void store_node_row(const struct ipc_node *n, struct ipc_node_row *row)
{
	row->id = n->id;
	row->parent = parent_id(n);
	row->name = n->name;
	row->kind = n->kind;
	row->is_dir = n->is_dir;
	row->mode = n->mode;
	row->uid = n->uid;
	row->gid = n->gid;
	row->atime = n->atime;
	row->mtime = n->mtime;
	row->ctime = n->ctime;
	row->set = n->set;
	row->size = n->kind == IPC_KIND_SHM ? ipc_node_size(n) : 0;
	/* Units held with undo are saved as available: a crash returns them. */
	row->value = n->kind == IPC_KIND_SEM ? n->value + n->held_undo : n->ev_set;
}

int store_load_node(struct ipc_store *st, const struct ipc_node_row *row)
{
	struct ipc_node *d, *n;
	int r;

	if (row->id < IPC_FIRST_USER_ID || row->kind == IPC_KIND_DIR ||
	    row->kind >= IPC_KIND_STATUS || store_node(st, row->id))
		return -EINVAL;
	if ((r = check_name(row->name)))
		return -EINVAL;
	/* A top-level node's parent is the kind directory of its kind. */
	d = store_node(st, row->parent);
	if (!d || !d->is_dir || d->kind != row->kind || d->id == IPC_ROOT_ID ||
	    child(st, d, row->name))
		return -EINVAL;
	if (st->nnodes >= st->lim.max_nodes)
		return -ENOSPC;
	n = node_alloc(st, row->id, row->name, row->is_dir, row->kind);
	if (!n)
		return -ENOMEM;
	n->mode = (row->is_dir ? S_IFDIR : S_IFREG) | (row->mode & 07777);
	n->uid = row->uid;
	n->gid = row->gid;
	n->atime = row->atime;
	n->mtime = row->mtime;
	n->ctime = row->ctime;
	hash_insert_id(st, n);
	attach(st, d, n);
	st->nnodes++;
	hash_maybe_grow(st);
	if (!n->is_dir) {
		ipc_object_init(st, n);
		n->set = row->set;
		if (n->rg)
			n->rg->size = row->size;
		if (n->kind == IPC_KIND_SEM)
			n->value = row->value;
		else if (n->kind == IPC_KIND_EVENT)
			n->ev_set = row->value != 0 && n->set.latched;
	}
	if (row->id >= st->next_id)
		st->next_id = row->id + 1;
	return 0;
}

int store_load_msg(struct ipc_store *st, uint64_t id, struct ipc_msg *m)
{
	struct ipc_node *n = store_node(st, id);
	int r;

	if (!n || n->is_dir || m->head > m->len)
		return -EINVAL;
	r = store_charge(st, ipc_msg_charge(m));
	if (r)
		return r;
	msgq_push_loaded(&n->q, m);
	return 0;
}

int store_load_page(struct ipc_store *st, uint64_t id, uint64_t pgno, const void *data,
		    size_t len)
{
	struct ipc_node *n = store_node(st, id);

	if (!n || !n->rg)
		return -EINVAL;
	return region_load_page(st, n, pgno, data, len);
}

void store_loaded(struct ipc_store *st)
{
	for (size_t b = 0; b < st->tab_size; b++)
		for (struct ipc_node *n = st->id_tab[b]; n; n = n->id_next)
			if (!n->is_dir)
				ipc_object_changed(st, n);
}

void store_set_next_id(struct ipc_store *st, uint64_t next_id)
{
	if (next_id > st->next_id)
		st->next_id = next_id;
}
