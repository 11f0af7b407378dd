/* util.h - helpers shared by the cmocka unit tests of lib/ (header only). */
#ifndef IPCFS_TESTS_UNIT_UTIL_H
#define IPCFS_TESTS_UNIT_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/attrs.h"
#include "lib/err.h"
#include "lib/object.h"
#include "lib/store.h"
#include "lib/waitq.h"

/* Ids of the fixed directories (store.c: the root, then one per kind). */
#define T_ROOT IPC_ROOT_ID
#define T_MBOX_DIR ((uint64_t)IPC_ROOT_ID + IPC_KIND_MBOX)
#define T_FIFO_DIR ((uint64_t)IPC_ROOT_ID + IPC_KIND_FIFO)

/* Default limits, as the daemon uses them. */
static inline struct ipc_limits t_limits(void)
{
	struct ipc_limits l;

	store_default_limits(&l);
	return l;
}

/* A new store (memory mode unless told); fails the test when it cannot. */
static inline struct ipc_store *t_store_lim(const struct ipc_limits *lim, enum ipc_sync sync,
					    const struct ipc_store_hooks *hooks)
{
	struct ipc_store *st = NULL;

	assert_int_equal(store_new(lim, sync, hooks, &st), 0);
	assert_non_null(st);
	return st;
}

static inline struct ipc_store *t_store(void)
{
	struct ipc_limits l = t_limits();

	return t_store_lim(&l, IPC_SYNC_MEMORY, NULL);
}

static inline struct ipc_cred t_cred(uint32_t uid, uint32_t gid, uint32_t tid)
{
	struct ipc_cred c = { .uid = uid, .gid = gid, .tid = tid, .umask = 0 };

	return c;
}

/* The usual test user: uid/gid 1000, thread 100, no umask. */
static inline struct ipc_cred t_user(void)
{
	return t_cred(1000, 1000, 100);
}

/* Creates an object in a directory; returns its id. */
static inline uint64_t t_create(struct ipc_store *st, uint64_t dir, const char *name)
{
	struct ipc_cred c = t_user();
	struct stat sb;

	assert_int_equal(store_create(st, dir, name, 0644, &c, &sb), 0);
	return sb.st_ino;
}

/* Sets a user.ipcfs.<key> setting as the owner (t_user); must succeed. */
static inline void t_set(struct ipc_store *st, uint64_t id, const char *key, const char *value)
{
	struct ipc_cred c = t_user();
	char name[128];

	snprintf(name, sizeof(name), "user.ipcfs.%s", key);
	assert_int_equal(attr_set(st, id, name, value, strlen(value), 0, &c), 0);
}

/* Opens an object as t_user with no waiter; must succeed. */
static inline struct ipc_handle *t_open(struct ipc_store *st, uint64_t id, int oflags)
{
	struct ipc_cred c = t_user();
	struct ipc_handle *h = NULL;

	assert_int_equal(ipc_open(st, id, oflags, &c, NULL, NULL, &h), 0);
	assert_non_null(h);
	return h;
}

/* Copies a read result's bytes into out (NUL-terminated; out holds cap
 * bytes). Returns the byte count. */
static inline size_t t_rd_copy(const struct ipc_rdres *rd, char *out, size_t cap)
{
	size_t n = 0;

	for (unsigned i = 0; i < rd->nseg; i++) {
		const struct ipc_rdseg *s = &rd->seg[i];
		assert_true(n + s->len < cap);
		memcpy(out + n, s->msg->data + s->off, s->len);
		n += s->len;
	}
	assert_int_equal(n, rd->total);
	out[n] = '\0';
	return n;
}

/* Reads at most size bytes without a waiter. On 0 the bytes are copied to
 * out (a string) and the read is ended as delivered. Returns ipc_read's
 * result. */
static inline int t_read(struct ipc_handle *h, size_t size, int oflags, char *out, size_t cap)
{
	struct ipc_rdres rd;
	int r;

	out[0] = '\0';
	r = ipc_read(h, size, oflags, NULL, &rd);
	if (r == 0) {
		t_rd_copy(&rd, out, cap);
		if (rd.total)
			ipc_read_done(h, &rd, true);
	}
	return r;
}

/* Writes a string (no waiter, offset 0); returns ipc_write's result and
 * stores the count in *written when given. */
static inline int t_write(struct ipc_handle *h, const char *s, int oflags, size_t *written)
{
	size_t n = 0;
	int r = ipc_write(h, s, strlen(s), 0, oflags, NULL, &n);

	if (written)
		*written = n;
	return r;
}

/* Writes a whole string; must succeed. */
static inline void t_put(struct ipc_handle *h, const char *s)
{
	size_t n = 0;

	assert_int_equal(t_write(h, s, 0, &n), 0);
	assert_int_equal(n, strlen(s));
}

/* A node's queue counters, read under the lock. */
static inline uint64_t t_count(struct ipc_store *st, uint64_t id)
{
	uint64_t v;

	store_lock(st);
	v = store_node(st, id)->q.count;
	store_unlock(st);
	return v;
}

static inline uint64_t t_bytes(struct ipc_store *st, uint64_t id)
{
	uint64_t v;

	store_lock(st);
	v = store_node(st, id)->q.bytes;
	store_unlock(st);
	return v;
}

/*
 * A waiter whose completion records that it ran (how often, with what
 * result, whether it was an interrupt) and whether the store lock was free
 * at the time. Thread-safe: the persistence thread may complete it.
 */
struct t_waiter {
	struct ipc_waiter w;
	struct ipc_store *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ran;
	int result;
	bool interrupted;
	bool lock_was_free; /* the store lock was not held by anyone */
};

static inline void t_waiter_complete(struct ipc_waiter *w)
{
	struct t_waiter *tw = ipc_container_of(w, struct t_waiter, w);
	bool free_lock = false;

	if (tw->st && pthread_mutex_trylock(&tw->st->lock) == 0) {
		free_lock = true;
		pthread_mutex_unlock(&tw->st->lock);
	}
	pthread_mutex_lock(&tw->mu);
	tw->ran++;
	tw->result = w->result;
	tw->interrupted = w->interrupted;
	tw->lock_was_free = free_lock;
	pthread_cond_broadcast(&tw->cv);
	pthread_mutex_unlock(&tw->mu);
}

static inline void t_waiter_init(struct t_waiter *tw, struct ipc_store *st)
{
	memset(tw, 0, sizeof(*tw));
	tw->st = st;
	pthread_mutex_init(&tw->mu, NULL);
	pthread_cond_init(&tw->cv, NULL);
	waiter_init(&tw->w, t_waiter_complete, tw);
}

/* Re-arms a waiter for another operation (counters reset). */
static inline void t_waiter_reset(struct t_waiter *tw)
{
	pthread_mutex_lock(&tw->mu);
	tw->ran = 0;
	tw->result = 0;
	tw->interrupted = false;
	tw->lock_was_free = false;
	pthread_mutex_unlock(&tw->mu);
	waiter_init(&tw->w, t_waiter_complete, tw);
}

static inline void t_waiter_fini(struct t_waiter *tw)
{
	pthread_mutex_destroy(&tw->mu);
	pthread_cond_destroy(&tw->cv);
}

static inline int t_waiter_ran(struct t_waiter *tw)
{
	int n;

	pthread_mutex_lock(&tw->mu);
	n = tw->ran;
	pthread_mutex_unlock(&tw->mu);
	return n;
}

/* Waits at most ms milliseconds for the completion; true if it ran. */
static inline bool t_waiter_wait_ms(struct t_waiter *tw, long ms)
{
	struct timespec until;
	bool ran;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&tw->mu);
	while (!tw->ran && pthread_cond_timedwait(&tw->cv, &tw->mu, &until) == 0)
		;
	ran = tw->ran != 0;
	pthread_mutex_unlock(&tw->mu);
	return ran;
}

/* Waits (at most 10 s) for the completion to run; fails the test if not. */
static inline void t_waiter_wait(struct t_waiter *tw)
{
	assert_true(t_waiter_wait_ms(tw, 10000));
	assert_int_equal(t_waiter_ran(tw), 1);
}

/*
 * The per-test fixture: a memory-mode store and a few recording waiters,
 * freed by the teardown even when the test fails half-way (store_free ends
 * parked waiters through their callbacks, which write into the fixture,
 * never into a dead stack frame).
 */
#define T_NW 4
struct t_fix {
	struct ipc_store *st;
	struct t_waiter w[T_NW];
};

static inline int t_setup(void **state)
{
	struct t_fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->st = t_store();
	for (int i = 0; i < T_NW; i++)
		t_waiter_init(&f->w[i], f->st);
	*state = f;
	return 0;
}

static inline int t_teardown(void **state)
{
	struct t_fix *f = *state;

	store_free(f->st);
	for (int i = 0; i < T_NW; i++)
		t_waiter_fini(&f->w[i]);
	free(f);
	return 0;
}

/* Replaces the fixture's store by one with other limits, mode or hooks. */
static inline struct ipc_store *t_fix_store(struct t_fix *f, const struct ipc_limits *lim,
					    enum ipc_sync sync,
					    const struct ipc_store_hooks *hooks)
{
	store_free(f->st);
	f->st = NULL;
	f->st = t_store_lim(lim, sync, hooks);
	for (int i = 0; i < T_NW; i++)
		f->w[i].st = f->st;
	return f->st;
}

#define T_ST(state) (((struct t_fix *)*(state))->st)
#define T_UNIT(fn) cmocka_unit_test_setup_teardown(fn, t_setup, t_teardown)

/* Helpers several test files share. */

static inline struct t_fix *fix(void **state)
{
	return *state;
}

static inline uint64_t mem_used(struct ipc_store *st)
{
	uint64_t v;

	store_lock(st);
	v = st->mem_used;
	store_unlock(st);
	return v;
}

static inline const char *attr(struct ipc_store *st, uint64_t id, const char *key)
{
	static char buf[64];
	char name[128];
	int n;

	snprintf(name, sizeof(name), "user.ipcfs.%s", key);
	n = attr_get(st, id, name, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

#endif
