/* test-semaphore.c - unit tests of lib/semaphore.c via lib/object.h: P/V, waiting, undo. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <poll.h>

#define BUF 64
#define T_SEM_DIR ((uint64_t)IPC_ROOT_ID + IPC_KIND_SEM)
#define SEM_MAX 2147483647ULL

static uint64_t sem(struct ipc_store *st, const char *name)
{
	return t_create(st, T_SEM_DIR, name);
}

static struct ipc_node *node(struct ipc_store *st, uint64_t id)
{
	struct ipc_node *n;

	store_lock(st);
	n = store_node(st, id);
	store_unlock(st);
	return n;
}

static uint64_t value(struct ipc_store *st, uint64_t id)
{
	uint64_t v;

	store_lock(st);
	v = store_node(st, id)->value;
	store_unlock(st);
	return v;
}

static uint64_t blocked(struct ipc_store *st, uint64_t id)
{
	uint64_t v;

	store_lock(st);
	v = store_node(st, id)->readers.n;
	store_unlock(st);
	return v;
}

/* V: opens for writing, writes s, closes (echo s > sem/NAME). */
static void post(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(st, id, O_WRONLY | O_TRUNC);

	t_put(w, s);
	ipc_release(w);
}

/* Writes s on a new handle and returns ipc_write's result. */
static int post_r(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	int r = t_write(w, s, 0, NULL);

	ipc_release(w);
	return r;
}

/* P without waiting on a fresh open: "1\n" then EOF; the unit stays taken. */
static void take_one(struct ipc_store *st, uint64_t id)
{
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	ipc_release(r);
}

static unsigned poll_bits(struct ipc_handle *h)
{
	unsigned rev = 0;

	ipc_poll(h, POLLIN | POLLOUT, false, &rev);
	return rev;
}

/* --- value, P and V --- */

static void test_created_with_zero(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	assert_int_equal(value(st, id), 0);
	assert_string_equal(attr(st, id, "value"), "0");
	assert_string_equal(attr(st, id, "kind"), "sem");
	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), IPC_E_AGAIN);
	assert_int_equal(ipc_read(r, 100, O_NONBLOCK, NULL, &rd), -EAGAIN);
	assert_int_equal(value(st, id), 0);
	ipc_release(r);
}

static void test_write_adds_read_takes_one(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");

	post(st, id, "3\n");
	assert_int_equal(value(st, id), 3);
	assert_string_equal(attr(st, id, "value"), "3");
	post(st, id, "2"); /* no newline needed */
	assert_int_equal(value(st, id), 5);
	post(st, id, "0\n"); /* adds nothing, wakes nobody */
	assert_int_equal(value(st, id), 5);
	take_one(st, id);
	assert_int_equal(value(st, id), 4);
	take_one(st, id);
	take_one(st, id);
	take_one(st, id);
	take_one(st, id);
	assert_int_equal(value(st, id), 0);
	assert_string_equal(attr(st, id, "in_messages"), "5");
	assert_string_equal(attr(st, id, "out_messages"), "5");
}

/* Each open file takes at most one unit: every later read is EOF. */
static void test_one_unit_per_open(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	post(st, id, "5\n");
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "");
		assert_int_equal(t_read(r, BUF - 1, O_NONBLOCK, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "");
	}
	assert_int_equal(value(st, id), 4);
	ipc_release(r);
	assert_int_equal(value(st, id), 4); /* no undo: the unit stays taken */
}

/* A one-byte buffer gets "1", then "\n", then EOF: still one unit. */
static void test_small_buffer(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	post(st, id, "2\n");
	assert_int_equal(t_read(r, 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1");
	assert_int_equal(t_read(r, 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\n");
	assert_int_equal(t_read(r, 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(t_read(r, 0, 0, buf, sizeof(buf)), 0);
	assert_int_equal(value(st, id), 1);
	ipc_release(r);
}

static void test_bad_writes_einval_value_unchanged(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	static const char *const bad[] = {
		"abc\n", "abc", "", "\n", "-1\n", "+1\n", " 1\n", "1 \n", "1\n\n", "1x\n",
		"0x10\n", "1.5\n", "1\n2\n", "\0371\n",
	};

	post(st, id, "7\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ipc_handle *w = t_open(st, id, O_WRONLY);
		size_t n = 99;
		int r = ipc_write(w, bad[i], strlen(bad[i]), 0, 0, NULL, &n);
		if (strlen(bad[i]) == 0)
			assert_true(r == -EINVAL || (r == 0 && n == 0));
		else
			assert_int_equal(r, -EINVAL);
		ipc_release(w);
		assert_int_equal(value(st, id), 7);
	}
	assert_string_equal(attr(st, id, "value"), "7");
}

static void test_overflow(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");

	post(st, id, "2147483647\n");
	assert_int_equal(value(st, id), SEM_MAX);
	assert_int_equal(post_r(st, id, "1\n"), -EOVERFLOW);
	assert_int_equal(value(st, id), SEM_MAX);
	assert_int_equal(post_r(st, id, "0\n"), 0);
	take_one(st, id);
	assert_int_equal(post_r(st, id, "2\n"), -EOVERFLOW);
	assert_int_equal(value(st, id), SEM_MAX - 1);
	assert_int_equal(post_r(st, id, "1\n"), 0);
	assert_int_equal(value(st, id), SEM_MAX);
}

/* A single write past SEM_VALUE_MAX is an overflow too (brief: "past
 * 2^31-1: EOVERFLOW"), and in any case changes nothing. */
static void test_overflow_single_write(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	int r;

	r = post_r(st, id, "99999999999999999999999\n");
	assert_true(r == -EOVERFLOW || r == -EINVAL);
	assert_int_equal(value(st, id), 0);
	r = post_r(st, id, "2147483648\n");
	assert_int_equal(value(st, id), 0);
	assert_int_equal(r, -EOVERFLOW);
}

/* --- waiting --- */

static void test_parked_reader_completed_by_write(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_int_equal(ipc_read(r, 4096, O_NONBLOCK, &tw->w, &rd), -EAGAIN);
	assert_int_equal(tw->w.state, IPC_W_INIT);
	assert_int_equal(ipc_read(r, 4096, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_int_equal(blocked(st, id), 1);
	assert_string_equal(attr(st, id, "blocked_readers"), "1");
	assert_int_equal(t_waiter_ran(tw), 0);
	post(st, id, "1\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_true(tw->lock_was_free);
	assert_int_equal(tw->result, 2);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "1\n");
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(value(st, id), 0);
	assert_int_equal(blocked(st, id), 0);
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	ipc_release(r);
}

/* Waiters are served in arrival order, one unit each; the rest stays. */
static void test_waiters_in_order(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r[3];
	struct ipc_rdres rd;

	for (int i = 0; i < 3; i++) {
		r[i] = t_open(st, id, O_RDONLY);
		assert_int_equal(ipc_read(r[i], 100, 0, &f->w[i].w, &rd), IPC_E_PARKED);
	}
	assert_int_equal(blocked(st, id), 3);
	post(st, id, "1\n");
	assert_int_equal(t_waiter_ran(&f->w[0]), 1);
	assert_int_equal(t_waiter_ran(&f->w[1]), 0);
	assert_int_equal(t_waiter_ran(&f->w[2]), 0);
	assert_int_equal(f->w[0].result, 2);
	assert_int_equal(value(st, id), 0);
	/* a newcomer does not overtake the parked ones */
	{
		struct ipc_handle *late = t_open(st, id, O_RDONLY);
		assert_int_equal(ipc_read(late, 100, 0, NULL, &rd), IPC_E_AGAIN);
		ipc_release(late);
	}
	post(st, id, "4\n");
	assert_int_equal(t_waiter_ran(&f->w[1]), 1);
	assert_int_equal(t_waiter_ran(&f->w[2]), 1);
	assert_int_equal(f->w[1].result, 2);
	assert_int_equal(f->w[2].result, 2);
	assert_int_equal(value(st, id), 2);
	assert_int_equal(blocked(st, id), 0);
	for (int i = 0; i < 3; i++) {
		ipc_waiter_end(&f->w[i].w, true);
		ipc_release(r[i]);
	}
	assert_int_equal(value(st, id), 2);
}

/* Setting the value through the xattr (owner) wakes waiters too. */
static void test_value_xattr_set_wakes(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_cred other = t_cred(2000, 2000, 7), owner = t_user();
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	/* not the owner: refused */
	assert_int_equal(attr_set(st, id, "user.ipcfs.value", "5", 1, 0, &other), -EPERM);
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(attr_set(st, id, "user.ipcfs.value", "x", 1, 0, &owner), -EINVAL);
	assert_int_equal(attr_set(st, id, "user.ipcfs.value", "2147483648", 10, 0, &owner),
			 -EINVAL);
	assert_int_equal(t_waiter_ran(tw), 0);
	t_set(st, id, "value", "3\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	assert_string_equal(attr(st, id, "value"), "2");
	ipc_release(r);
	/* reading the xattr never takes a unit */
	for (int i = 0; i < 3; i++)
		assert_string_equal(attr(st, id, "value"), "2");
	assert_int_equal(value(st, id), 2);
	t_set(st, id, "value", "0");
	assert_int_equal(value(st, id), 0);
}

/* An interrupted wait takes nothing; the next V is for the others. */
static void test_cancelled_reader_takes_nothing(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDONLY);
	struct t_waiter *wa = &f->w[0], *wb = &f->w[1];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_int_equal(ipc_read(a, 100, 0, &wa->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(b, 100, 0, &wb->w, &rd), IPC_E_PARKED);
	store_cancel(st, &wa->w);
	assert_int_equal(t_waiter_ran(wa), 1);
	assert_true(wa->interrupted);
	assert_int_equal(wa->result, -EINTR);
	ipc_waiter_end(&wa->w, true);
	assert_int_equal(blocked(st, id), 1);
	post(st, id, "1\n");
	assert_int_equal(t_waiter_ran(wb), 1);
	assert_int_equal(wb->result, 2);
	ipc_waiter_end(&wb->w, true);
	assert_int_equal(value(st, id), 0);
	/* the interrupted open may still take a unit later */
	post(st, id, "1\n");
	assert_int_equal(t_read(a, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	assert_int_equal(value(st, id), 0);
	ipc_release(a);
	ipc_release(b);
	/* a cancel that comes before the wait is queued: EINTR at once */
	{
		struct ipc_handle *c = t_open(st, id, O_RDONLY);
		t_waiter_reset(wa);
		store_cancel(st, &wa->w);
		assert_int_equal(ipc_read(c, 100, 0, &wa->w, &rd), -EINTR);
		assert_int_equal(t_waiter_ran(wa), 0);
		assert_int_equal(blocked(st, id), 0);
		ipc_release(c);
	}
	/* a cancel after completion changes nothing */
	{
		struct ipc_handle *c = t_open(st, id, O_RDONLY);
		t_waiter_reset(wa);
		assert_int_equal(ipc_read(c, 100, 0, &wa->w, &rd), IPC_E_PARKED);
		post(st, id, "1\n");
		assert_int_equal(t_waiter_ran(wa), 1);
		store_cancel(st, &wa->w);
		assert_int_equal(t_waiter_ran(wa), 1);
		assert_int_equal(wa->result, 2);
		ipc_waiter_end(&wa->w, true);
		ipc_release(c);
		assert_int_equal(value(st, id), 0);
	}
}

/* A reply that never reached the reader gives its unit back. */
static void test_read_done_undelivered_gives_unit_back(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	char buf[BUF];

	post(st, id, "1\n");
	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), 0);
	assert_int_equal(rd.total, 2);
	assert_int_equal(value(st, id), 0);
	ipc_read_done(r, &rd, false);
	assert_int_equal(value(st, id), 1);
	assert_string_equal(attr(st, id, "out_messages"), "0");
	/* the same open may read again and take it */
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	assert_int_equal(value(st, id), 0);
	ipc_release(r);
	assert_int_equal(value(st, id), 0);
}

/* The same for a parked read: the unit goes to the next waiter. */
static void test_parked_read_undelivered_goes_to_next(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDONLY);
	struct t_waiter *wa = &f->w[0], *wb = &f->w[1];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(a, 100, 0, &wa->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(b, 100, 0, &wb->w, &rd), IPC_E_PARKED);
	post(st, id, "1\n");
	assert_int_equal(t_waiter_ran(wa), 1);
	assert_int_equal(t_waiter_ran(wb), 0);
	ipc_waiter_end(&wa->w, false); /* a's reply failed (interrupted) */
	assert_int_equal(t_waiter_ran(wb), 1);
	assert_int_equal(wb->result, 2);
	ipc_waiter_end(&wb->w, true);
	assert_int_equal(value(st, id), 0);
	ipc_release(a);
	ipc_release(b);
	assert_int_equal(value(st, id), 0);
}

/* A short read ("1" of "1\n") not delivered gives the unit back too. */
static void test_partial_read_undelivered(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	char buf[BUF];

	post(st, id, "1\n");
	assert_int_equal(ipc_read(r, 1, 0, NULL, &rd), 0);
	assert_int_equal(rd.total, 1);
	ipc_read_done(r, &rd, false);
	assert_int_equal(value(st, id), 1);
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	ipc_release(r);
	assert_int_equal(value(st, id), 0);
}

/* Two reads parked on ONE open file (two threads): the file still takes at
 * most one unit ("each open file takes at most one unit"). */
static void test_two_parked_reads_one_open(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *a = &f->w[0], *b = &f->w[1];
	struct ipc_rdres rd;
	size_t got;

	assert_int_equal(ipc_read(r, 100, 0, &a->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(r, 100, 0, &b->w, &rd), IPC_E_PARKED);
	post(st, id, "2\n");
	assert_int_equal(t_waiter_ran(a), 1);
	assert_int_equal(a->result, 2);
	if (!t_waiter_ran(b))
		store_cancel(st, &b->w);
	assert_int_equal(t_waiter_ran(b), 1);
	got = a->w.rd.total + (b->result > 0 ? (size_t)b->result : 0);
	ipc_waiter_end(&a->w, true);
	ipc_waiter_end(&b->w, true);
	/* "1\n" once: the other read saw EOF (or nothing) */
	assert_int_equal(got, 2);
	assert_int_equal(value(st, id), 1);
	ipc_release(r);
}

/* --- undo --- */

static void test_undo_returns_units_on_release(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r1, *r2;
	char buf[BUF];

	t_set(st, id, "undo", "1");
	assert_string_equal(attr(st, id, "undo"), "1");
	post(st, id, "2\n");
	r1 = t_open(st, id, O_RDONLY);
	r2 = t_open(st, id, O_RDONLY);
	assert_int_equal(t_read(r1, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	assert_int_equal(t_read(r2, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1\n");
	assert_int_equal(value(st, id), 0);
	assert_int_equal(node(st, id)->held_undo, 2);
	/* a flush (close of a dup'ed descriptor) returns nothing */
	assert_int_equal(ipc_flush(r1, &r1->cred, NULL), 0);
	assert_int_equal(value(st, id), 0);
	ipc_release(r1);
	assert_int_equal(value(st, id), 1);
	ipc_release(r2);
	assert_int_equal(value(st, id), 2);
	assert_int_equal(node(st, id)->held_undo, 0);
	/* an open that took nothing returns nothing */
	r1 = t_open(st, id, O_RDONLY);
	ipc_release(r1);
	assert_int_equal(value(st, id), 2);
}

/* Without undo a closed holder keeps its unit (plain P). */
static void test_no_undo_keeps_units(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");

	assert_string_equal(attr(st, id, "undo"), "0");
	post(st, id, "1\n");
	take_one(st, id);
	assert_int_equal(value(st, id), 0);
	assert_int_equal(node(st, id)->held_undo, 0);
}

/* The unit an undo holder returns goes to a parked waiter. */
static void test_undo_release_wakes_waiter(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *holder, *r;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	t_set(st, id, "undo", "1");
	post(st, id, "1\n");
	holder = t_open(st, id, O_RDONLY);
	assert_int_equal(t_read(holder, BUF - 1, 0, buf, sizeof(buf)), 0);
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	ipc_release(holder); /* the holder dies */
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(value(st, id), 0);
	assert_int_equal(node(st, id)->held_undo, 1);
	ipc_release(r);
	assert_int_equal(value(st, id), 1);
	assert_int_equal(node(st, id)->held_undo, 0);
}

/* An undelivered read with undo, then release: the unit comes back once. */
static void test_undo_and_undelivered_no_double_return(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	t_set(st, id, "undo", "1");
	post(st, id, "1\n");
	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), 0);
	assert_int_equal(value(st, id), 0);
	ipc_read_done(r, &rd, false);
	assert_int_equal(value(st, id), 1);
	assert_int_equal(node(st, id)->held_undo, 0);
	ipc_release(r);
	assert_int_equal(value(st, id), 1);

	/* release first (the reader died), then the reply fails */
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), 0);
	ipc_release(r); /* the result still holds the handle */
	assert_int_equal(value(st, id), 1);
	ipc_read_done(r, &rd, false);
	assert_int_equal(value(st, id), 1);
	assert_int_equal(node(st, id)->held_undo, 0);
}

/* Without undo, a reader that died before its reply gets its unit back. */
static void test_no_undo_release_then_undelivered(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	post(st, id, "1\n");
	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), 0);
	ipc_release(r);
	assert_int_equal(value(st, id), 0);
	ipc_read_done(r, &rd, false);
	assert_int_equal(value(st, id), 1);
}

/* undo cannot change while units are held under it; writes count the
 * held units against SEM_VALUE_MAX. */
static void test_undo_busy_and_overflow(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_cred c = t_user();
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	t_set(st, id, "undo", "1");
	assert_int_equal(attr_set(st, id, "user.ipcfs.undo", "2", 1, 0, &c), -EINVAL);
	post(st, id, "2147483647\n");
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_int_equal(value(st, id), SEM_MAX - 1);
	assert_int_equal(attr_set(st, id, "user.ipcfs.undo", "0", 1, 0, &c), -EBUSY);
	assert_string_equal(attr(st, id, "undo"), "1");
	t_set(st, id, "undo", "1"); /* unchanged: fine */
	assert_int_equal(post_r(st, id, "1\n"), -EOVERFLOW);
	assert_int_equal(value(st, id), SEM_MAX - 1);
	ipc_release(r);
	assert_int_equal(value(st, id), SEM_MAX);
	t_set(st, id, "undo", "0");
	assert_string_equal(attr(st, id, "undo"), "0");
}

/* What persists: the value plus the units held with undo (a crash returns
 * them). */
static void test_persisted_value_includes_undo_held(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s"), id2 = sem(st, "plain");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *r2 = t_open(st, id2, O_RDONLY);
	struct ipc_node_row row;
	char buf[BUF];

	t_set(st, id, "undo", "1");
	post(st, id, "3\n");
	post(st, id2, "3\n");
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_int_equal(t_read(r2, BUF - 1, 0, buf, sizeof(buf)), 0);
	store_lock(st);
	store_node_row(store_node(st, id), &row);
	assert_int_equal(row.value, 3);
	assert_true(row.set.undo);
	store_node_row(store_node(st, id2), &row);
	assert_int_equal(row.value, 2);
	store_unlock(st);
	ipc_release(r);
	ipc_release(r2);
}

/* --- poll, access, statistics --- */

static void test_poll(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);
	char buf[BUF];

	assert_int_equal(poll_bits(r) & POLLIN, 0);
	assert_true(poll_bits(w) & POLLOUT);
	assert_int_equal(poll_bits(w) & POLLIN, 0);
	t_put(w, "1\n");
	assert_true(poll_bits(r) & POLLIN);
	/* the xattr does not take it */
	assert_string_equal(attr(st, id, "value"), "1");
	assert_true(poll_bits(r) & POLLIN);
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	/* readable: EOF is next */
	assert_true(poll_bits(r) & POLLIN);
	ipc_release(r);
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(poll_bits(r) & POLLIN, 0);
	ipc_release(r);
	ipc_release(w);
}

static int wakes;
static void count_wake(void *ctx, void *user)
{
	(void)ctx;
	(void)user;
	wakes++;
}

static void test_poll_wake_hook(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_limits l = t_limits();
	struct ipc_store_hooks hooks = { .poll_wake = count_wake };
	struct ipc_store *st = t_fix_store(f, &l, IPC_SYNC_MEMORY, &hooks);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	unsigned rev = 0;

	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, 0);
	wakes = 0;
	post(st, id, "1\n");
	assert_true(wakes >= 1);
	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, POLLIN);
	ipc_release(r);
}

static void test_access_mode(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	size_t n;

	assert_int_equal(ipc_read(w, 10, 0, NULL, &rd), -EBADF);
	assert_int_equal(ipc_write(r, "1", 1, 0, 0, NULL, &n), -EBADF);
	assert_int_equal(value(st, id), 0);
	ipc_release(w);
	ipc_release(r);
	/* O_RDWR: V then P on one open */
	w = t_open(st, id, O_RDWR);
	t_put(w, "1\n");
	{
		char buf[BUF];
		assert_int_equal(t_read(w, BUF - 1, 0, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "1\n");
	}
	ipc_release(w);
	assert_int_equal(value(st, id), 0);
}

/* Streams: truncate to 0 (echo's O_TRUNC) is a no-op; sizes are refused. */
static void test_truncate(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_cred c = t_user();
	struct stat a, out;

	post(st, id, "2\n");
	memset(&a, 0, sizeof(a));
	assert_int_equal(store_setattr(st, id, &a, IPC_SET_SIZE, &c, &out), 0);
	assert_int_equal(value(st, id), 2);
	assert_int_equal(out.st_size, 0);
	a.st_size = 5;
	assert_int_equal(store_setattr(st, id, &a, IPC_SET_SIZE, &c, &out), -EINVAL);
	assert_int_equal(value(st, id), 2);
}

/* Statistics for streams: readers/writers count the open files. */
static void test_readers_writers_stats(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);

	assert_string_equal(attr(st, id, "readers"), "1");
	assert_string_equal(attr(st, id, "writers"), "1");
	ipc_release(r);
	ipc_release(w);
	assert_string_equal(attr(st, id, "readers"), "0");
	assert_string_equal(attr(st, id, "writers"), "0");
}

/* Removing a semaphore someone waits on: the waiter stays until its file
 * is closed (interrupt), nothing leaks. */
static void test_unlink_with_waiter(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = sem(st, "s");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_int_equal(store_unlink(st, T_SEM_DIR, "s"), 0);
	store_cancel(st, &tw->w);
	assert_int_equal(tw->result, -EINTR);
	ipc_waiter_end(&tw->w, true);
	ipc_release(r);
	store_forget(st, id, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_created_with_zero),
		T_UNIT(test_write_adds_read_takes_one),
		T_UNIT(test_one_unit_per_open),
		T_UNIT(test_small_buffer),
		T_UNIT(test_bad_writes_einval_value_unchanged),
		T_UNIT(test_overflow),
		T_UNIT(test_overflow_single_write),
		T_UNIT(test_parked_reader_completed_by_write),
		T_UNIT(test_waiters_in_order),
		T_UNIT(test_value_xattr_set_wakes),
		T_UNIT(test_cancelled_reader_takes_nothing),
		T_UNIT(test_read_done_undelivered_gives_unit_back),
		T_UNIT(test_parked_read_undelivered_goes_to_next),
		T_UNIT(test_partial_read_undelivered),
		T_UNIT(test_two_parked_reads_one_open),
		T_UNIT(test_undo_returns_units_on_release),
		T_UNIT(test_no_undo_keeps_units),
		T_UNIT(test_undo_release_wakes_waiter),
		T_UNIT(test_undo_and_undelivered_no_double_return),
		T_UNIT(test_no_undo_release_then_undelivered),
		T_UNIT(test_undo_busy_and_overflow),
		T_UNIT(test_persisted_value_includes_undo_held),
		T_UNIT(test_poll),
		T_UNIT(test_poll_wake_hook),
		T_UNIT(test_access_mode),
		T_UNIT(test_truncate),
		T_UNIT(test_readers_writers_stats),
		T_UNIT(test_unlink_with_waiter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
