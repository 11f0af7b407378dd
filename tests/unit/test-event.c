/* test-event.c - unit tests of lib/event.c via lib/object.h: broadcast, edge, latched. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <poll.h>

#define BUF 256
#define T_EVENT_DIR ((uint64_t)IPC_ROOT_ID + IPC_KIND_EVENT)

static uint64_t event(struct ipc_store *st, const char *name)
{
	return t_create(st, T_EVENT_DIR, name);
}

static uint64_t blocked(struct ipc_store *st, uint64_t id)
{
	uint64_t v;

	store_lock(st);
	v = store_node(st, id)->readers.n;
	store_unlock(st);
	return v;
}

/* echo s > event/NAME: open O_WRONLY|O_TRUNC, write, close. */
static void fire(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(st, id, O_WRONLY | O_CREAT | O_TRUNC);

	t_put(w, s);
	ipc_release(w);
}

/* Fires with a plain O_WRONLY open (no reset). */
static void fire_append(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(st, id, O_WRONLY | O_APPEND);

	t_put(w, s);
	ipc_release(w);
}

/* : > event/NAME (open with O_TRUNC, no write). */
static void reset_by_open(struct ipc_store *st, uint64_t id)
{
	ipc_release(t_open(st, id, O_WRONLY | O_CREAT | O_TRUNC));
}

static int truncate_to(struct ipc_store *st, uint64_t id, off_t size)
{
	struct ipc_cred c = t_user();
	struct stat a, out;

	memset(&a, 0, sizeof(a));
	a.st_size = size;
	return store_setattr(st, id, &a, IPC_SET_SIZE, &c, &out);
}

static void expect_read(struct ipc_handle *r, size_t size, const char *s)
{
	char buf[BUF];

	assert_int_equal(t_read(r, size, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
}

static void expect_eof(struct ipc_handle *r)
{
	expect_read(r, BUF - 1, "");
}

static int read_nb(struct ipc_handle *r)
{
	char buf[BUF];

	return t_read(r, BUF - 1, O_NONBLOCK, buf, sizeof(buf));
}

static unsigned poll_in(struct ipc_handle *h)
{
	unsigned rev = 0;

	ipc_poll(h, POLLIN, false, &rev);
	return rev & POLLIN;
}

/* --- edge semantics --- */

static void test_parked_reader_woken_by_write(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_string_equal(attr(st, id, "kind"), "event");
	assert_int_equal(ipc_read(r, BUF, 0, NULL, &rd), IPC_E_AGAIN);
	assert_int_equal(ipc_read(r, BUF, O_NONBLOCK, &tw->w, &rd), -EAGAIN);
	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_string_equal(attr(st, id, "blocked_readers"), "1");
	fire(st, id, "reload\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_true(tw->lock_was_free);
	assert_int_equal(tw->result, 7);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "reload\n");
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(blocked(st, id), 0);
	expect_eof(r);
	expect_eof(r);
	/* a second write is not for this open: it had its firing */
	fire(st, id, "again\n");
	expect_eof(r);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* Every waiting reader gets the same write's payload, then EOF. */
static void test_broadcast_to_every_reader(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r[3], *idle;
	struct ipc_rdres rd;
	char buf[BUF];

	for (int i = 0; i < 3; i++) {
		r[i] = t_open(st, id, O_RDONLY);
		assert_int_equal(ipc_read(r[i], BUF, 0, &f->w[i].w, &rd), IPC_E_PARKED);
	}
	/* open but not reading yet: gets it on its next read */
	idle = t_open(st, id, O_RDONLY);
	assert_int_equal(blocked(st, id), 3);
	fire(st, id, "go\n");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t_waiter_ran(&f->w[i]), 1);
		assert_int_equal(f->w[i].result, 3);
		t_rd_copy(&f->w[i].w.rd, buf, sizeof(buf));
		assert_string_equal(buf, "go\n");
		ipc_waiter_end(&f->w[i].w, true);
		expect_eof(r[i]);
		ipc_release(r[i]);
	}
	expect_read(idle, BUF - 1, "go\n");
	expect_eof(idle);
	ipc_release(idle);
	assert_string_equal(attr(st, id, "in_messages"), "1");
	assert_string_equal(attr(st, id, "out_messages"), "4");
	assert_int_equal(mem_used(st), 0);
}

/* A write with nobody waiting is not kept; a reader that opens after a
 * write waits for the next one. */
static void test_write_without_reader_not_kept(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	fire(st, id, "early\n");
	assert_string_equal(attr(st, id, "set"), "0");
	assert_int_equal(mem_used(st), 0);
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(read_nb(r), -EAGAIN);
	assert_int_equal(poll_in(r), 0);
	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	fire(st, id, "late\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "late\n");
	ipc_waiter_end(&tw->w, true);
	ipc_release(r);
}

/* A write never blocks and returns its count, readers or not. */
static void test_write_never_blocks(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	size_t n;

	for (int i = 0; i < 100; i++) {
		assert_int_equal(ipc_write(w, "x\n", 2, 0, 0, NULL, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(ipc_write(w, "y\n", 2, 0, O_NONBLOCK, NULL, &n), 0);
		assert_int_equal(n, 2);
	}
	/* an empty write fires nothing */
	assert_int_equal(ipc_write(w, "", 0, 0, 0, NULL, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(attr(st, id, "in_messages"), "200");
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

static void test_empty_write_fires_nothing(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	size_t n;

	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_write(w, "", 0, 0, 0, NULL, &n), 0);
	assert_int_equal(t_waiter_ran(tw), 0);
	store_cancel(st, &tw->w);
	ipc_waiter_end(&tw->w, true);
	ipc_release(w);
	ipc_release(r);
}

/* A small buffer reads the payload in parts, then EOF. */
static void test_small_buffer(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);

	fire(st, id, "abcdef\n");
	expect_read(r, 3, "abc");
	expect_read(r, 3, "def");
	expect_read(r, 3, "\n");
	expect_eof(r);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* Interrupted wait: EINTR; the open still waits for the next write. */
static void test_cancelled_reader(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDONLY);
	struct t_waiter *wa = &f->w[0], *wb = &f->w[1];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_int_equal(ipc_read(a, BUF, 0, &wa->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(b, BUF, 0, &wb->w, &rd), IPC_E_PARKED);
	store_cancel(st, &wa->w);
	assert_int_equal(t_waiter_ran(wa), 1);
	assert_true(wa->interrupted);
	assert_int_equal(wa->result, -EINTR);
	ipc_waiter_end(&wa->w, true);
	assert_int_equal(blocked(st, id), 1);
	fire(st, id, "x\n");
	assert_int_equal(t_waiter_ran(wb), 1);
	t_rd_copy(&wb->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "x\n");
	ipc_waiter_end(&wb->w, true);
	/* a's open was still there when x came: it reads it now */
	expect_read(a, BUF - 1, "x\n");
	expect_eof(a);
	ipc_release(a);
	ipc_release(b);
	assert_int_equal(mem_used(st), 0);
}

/* A reply that never reached the reader: the payload comes back. */
static void test_read_done_undelivered(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	/* parked read */
	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	fire(st, id, "payload\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	ipc_waiter_end(&tw->w, false);
	assert_string_equal(attr(st, id, "out_messages"), "0");
	expect_read(r, BUF - 1, "payload\n");
	expect_eof(r);
	assert_string_equal(attr(st, id, "out_messages"), "1");
	ipc_release(r);

	/* direct read, undelivered twice, then delivered */
	r = t_open(st, id, O_RDONLY);
	fire(st, id, "second\n");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ipc_read(r, BUF, 0, NULL, &rd), 0);
		assert_int_equal(rd.total, 7);
		ipc_read_done(r, &rd, false);
	}
	expect_read(r, BUF - 1, "second\n");
	expect_eof(r);
	ipc_release(r);

	/* a partial read undelivered: the same part again */
	r = t_open(st, id, O_RDONLY);
	fire(st, id, "abcdef");
	expect_read(r, 2, "ab");
	assert_int_equal(ipc_read(r, 2, 0, NULL, &rd), 0);
	ipc_read_done(r, &rd, false);
	expect_read(r, 2, "cd");
	expect_read(r, 10, "ef");
	expect_eof(r);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* --- latched (manual-reset) --- */

static void test_latched_stays_set_until_reset(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	t_set(st, id, "latched", "1");
	assert_string_equal(attr(st, id, "latched"), "1");
	assert_string_equal(attr(st, id, "set"), "0");
	fire(st, id, "ready\n");
	assert_string_equal(attr(st, id, "set"), "1");
	/* readers return at once with the last payload, then EOF */
	for (int i = 0; i < 3; i++) {
		r = t_open(st, id, O_RDONLY);
		assert_true(poll_in(r));
		expect_read(r, BUF - 1, "ready\n");
		expect_eof(r);
		ipc_release(r);
	}
	assert_string_equal(attr(st, id, "set"), "1");
	/* a plain write (no O_TRUNC) replaces the payload */
	fire_append(st, id, "ready2\n");
	r = t_open(st, id, O_RDONLY);
	expect_read(r, BUF - 1, "ready2\n");
	ipc_release(r);
	/* : > event/e resets */
	reset_by_open(st, id);
	assert_string_equal(attr(st, id, "set"), "0");
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(read_nb(r), -EAGAIN);
	assert_int_equal(poll_in(r), 0);
	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	/* echo x > event/e: resets and sets again; the waiter gets it */
	fire(st, id, "x\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "x\n");
	ipc_waiter_end(&tw->w, true);
	expect_eof(r);
	ipc_release(r);
	assert_string_equal(attr(st, id, "set"), "1");
	r = t_open(st, id, O_RDONLY);
	expect_read(r, BUF - 1, "x\n");
	ipc_release(r);
	/* truncate -s 0 resets; other sizes are refused */
	assert_int_equal(truncate_to(st, id, 5), -EINVAL);
	assert_string_equal(attr(st, id, "set"), "1");
	assert_int_equal(truncate_to(st, id, 0), 0);
	assert_string_equal(attr(st, id, "set"), "0");
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(read_nb(r), -EAGAIN);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* Opening for reading with O_TRUNC is not a reset (only writers reset). */
static void test_latched_reader_open_does_not_reset(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *r;

	t_set(st, id, "latched", "1");
	fire(st, id, "on\n");
	r = t_open(st, id, O_RDONLY | O_TRUNC);
	expect_read(r, BUF - 1, "on\n");
	ipc_release(r);
	assert_string_equal(attr(st, id, "set"), "1");
}

/* The size of a set latched event is its payload. */
static void test_latched_size_and_stat(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct stat sb;

	t_set(st, id, "latched", "1");
	fire(st, id, "12345\n");
	assert_int_equal(store_getattr(st, id, &sb), 0);
	assert_int_equal(sb.st_size, 6);
	reset_by_open(st, id);
	assert_int_equal(store_getattr(st, id, &sb), 0);
	assert_int_equal(sb.st_size, 0);
}

/* Clearing latched resets a set event; setting it does not fire. */
static void test_latched_cleared_resets(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *r;

	t_set(st, id, "latched", "1");
	fire(st, id, "on\n");
	assert_string_equal(attr(st, id, "set"), "1");
	t_set(st, id, "latched", "0");
	assert_string_equal(attr(st, id, "set"), "0");
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(read_nb(r), -EAGAIN);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
	t_set(st, id, "latched", "1");
	assert_string_equal(attr(st, id, "set"), "0");
	{
		struct ipc_cred c = t_user();
		assert_int_equal(attr_set(st, id, "user.ipcfs.latched", "yes", 3, 0, &c), -EINVAL);
		assert_int_equal(attr_set(st, id, "user.ipcfs.set", "1", 1, 0, &c), -EPERM);
	}
}

/* A latched write also wakes the waiting readers (and only once each). */
static void test_latched_wakes_waiters(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = event(st, "e");
	struct ipc_handle *r[2];
	struct ipc_rdres rd;
	char buf[BUF];

	t_set(st, id, "latched", "1");
	for (int i = 0; i < 2; i++) {
		r[i] = t_open(st, id, O_RDONLY);
		assert_int_equal(ipc_read(r[i], BUF, 0, &f->w[i].w, &rd), IPC_E_PARKED);
	}
	fire(st, id, "a\n");
	fire(st, id, "b\n");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(t_waiter_ran(&f->w[i]), 1);
		t_rd_copy(&f->w[i].w.rd, buf, sizeof(buf));
		assert_string_equal(buf, "a\n");
		ipc_waiter_end(&f->w[i].w, true);
		expect_eof(r[i]);
		ipc_release(r[i]);
	}
}

/* --- limits, poll, access --- */

static void test_payload_limits(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	static char big[70000];
	size_t n;

	memset(big, 'z', sizeof(big));
	assert_int_equal(ipc_write(w, big, 65536, 0, 0, NULL, &n), 0);
	assert_int_equal(n, 65536);
	assert_int_equal(ipc_write(w, big, 65537, 0, 0, NULL, &n), -EFBIG);
	t_set(st, id, "max_bytes", "10");
	assert_int_equal(ipc_write(w, big, 11, 0, 0, NULL, &n), -EFBIG);
	assert_int_equal(ipc_write(w, big, 10, 0, 0, NULL, &n), 0);
	/* a continuation chunk: one write(2) was split */
	assert_int_equal(ipc_write(w, big, 5, 10, 0, NULL, &n), -EFBIG);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

static void test_poll(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);
	unsigned rev = 0;

	assert_int_equal(poll_in(r), 0);
	ipc_poll(w, POLLIN | POLLOUT, false, &rev);
	assert_int_equal(rev, POLLOUT);
	t_put(w, "ding\n");
	assert_true(poll_in(r));
	expect_read(r, BUF - 1, "ding\n");
	assert_true(poll_in(r)); /* EOF is readable */
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
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	unsigned rev = 0;

	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, 0);
	wakes = 0;
	fire(st, id, "1\n");
	assert_true(wakes >= 1);
	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, POLLIN);
	ipc_release(r);
}

static void test_readers_writers_stats(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = event(st, "e");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);

	assert_string_equal(attr(st, id, "readers"), "1");
	assert_string_equal(attr(st, id, "writers"), "1");
	ipc_release(r);
	ipc_release(w);
	assert_string_equal(attr(st, id, "readers"), "0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_parked_reader_woken_by_write),
		T_UNIT(test_broadcast_to_every_reader),
		T_UNIT(test_write_without_reader_not_kept),
		T_UNIT(test_write_never_blocks),
		T_UNIT(test_empty_write_fires_nothing),
		T_UNIT(test_small_buffer),
		T_UNIT(test_cancelled_reader),
		T_UNIT(test_read_done_undelivered),
		T_UNIT(test_latched_stays_set_until_reset),
		T_UNIT(test_latched_reader_open_does_not_reset),
		T_UNIT(test_latched_size_and_stat),
		T_UNIT(test_latched_cleared_resets),
		T_UNIT(test_latched_wakes_waiters),
		T_UNIT(test_payload_limits),
		T_UNIT(test_poll),
		T_UNIT(test_poll_wake_hook),
		T_UNIT(test_readers_writers_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
