/* test-topic.c - unit tests of lib/topic.c via lib/object.h: fan-out, retain, overflow. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <poll.h>

#define BUF 256
#define T_TOPIC_DIR ((uint64_t)IPC_ROOT_ID + IPC_KIND_TOPIC)

/* Creates topic/<name> with a framing ("open", "write", "line"). */
static uint64_t topic(struct ipc_store *st, const char *name, const char *framing)
{
	uint64_t id = t_create(st, T_TOPIC_DIR, name);

	if (strcmp(framing, "open") != 0)
		t_set(st, id, "framing", framing);
	return id;
}

static uint64_t blocked(struct ipc_store *st, uint64_t id, bool writers)
{
	uint64_t v;

	store_lock(st);
	v = writers ? store_node(st, id)->space.n : store_node(st, id)->readers.n;
	store_unlock(st);
	return v;
}

static uint64_t num(struct ipc_store *st, uint64_t id, const char *key)
{
	return strtoull(attr(st, id, key), NULL, 10);
}

/* Publishes one message per call on a write-framing publisher. */
static void pub(struct ipc_handle *w, const char *s)
{
	t_put(w, s);
}

/* Publishes "m<i>" for i in [from, to]. */
static void pub_range(struct ipc_handle *w, int from, int to)
{
	char s[32];

	for (int i = from; i <= to; i++) {
		snprintf(s, sizeof(s), "m%d", i);
		pub(w, s);
	}
}

static void expect_read(struct ipc_handle *r, size_t size, const char *s)
{
	char buf[BUF];

	assert_int_equal(t_read(r, size, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
}

static void expect_msg(struct ipc_handle *r, int i)
{
	char s[32];

	snprintf(s, sizeof(s), "m%d", i);
	expect_read(r, BUF - 1, s);
}

static void expect_empty(struct ipc_handle *r)
{
	char buf[BUF];

	assert_int_equal(t_read(r, BUF - 1, O_NONBLOCK, buf, sizeof(buf)), -EAGAIN);
	{
		struct ipc_rdres rd;
		assert_int_equal(ipc_read(r, BUF, 0, NULL, &rd), IPC_E_AGAIN);
	}
}

static unsigned poll_bits(struct ipc_handle *h)
{
	unsigned rev = 0;

	ipc_poll(h, POLLIN | POLLOUT, false, &rev);
	return rev;
}

/* --- fan-out --- */

static void test_every_subscriber_gets_every_message(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *s[3];

	assert_string_equal(attr(st, id, "kind"), "topic");
	assert_string_equal(attr(st, id, "framing"), "write");
	for (int i = 0; i < 3; i++)
		s[i] = t_open(st, id, O_RDONLY);
	assert_string_equal(attr(st, id, "subscribers"), "3");
	pub_range(w, 1, 100);
	for (int i = 0; i < 3; i++) {
		for (int k = 1; k <= 100; k++)
			expect_msg(s[i], k);
		expect_empty(s[i]);
	}
	/* read by everyone, retained by none: the log is empty */
	assert_string_equal(attr(st, id, "messages"), "0");
	assert_string_equal(attr(st, id, "in_messages"), "100");
	assert_string_equal(attr(st, id, "out_messages"), "300");
	assert_string_equal(attr(st, id, "dropped"), "0");
	for (int i = 0; i < 3; i++)
		ipc_release(s[i]);
	assert_string_equal(attr(st, id, "subscribers"), "0");
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* A subscription starts at the next message: nothing from before. */
static void test_subscription_starts_at_next(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *early = t_open(st, id, O_RDONLY), *late;

	pub_range(w, 1, 3);
	late = t_open(st, id, O_RDONLY);
	expect_empty(late);
	pub_range(w, 4, 4);
	expect_msg(late, 4);
	expect_empty(late);
	for (int k = 1; k <= 4; k++)
		expect_msg(early, k);
	/* with no subscriber, a message is not kept */
	ipc_release(early);
	ipc_release(late);
	pub_range(w, 5, 5);
	assert_string_equal(attr(st, id, "messages"), "0");
	late = t_open(st, id, O_RDONLY);
	expect_empty(late);
	ipc_release(late);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* Each read returns at most one message, whatever the buffer; a small
 * buffer reads one message in parts. */
static void test_one_message_per_read(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);

	pub(w, "hello");
	pub(w, "world!");
	expect_read(r, 3, "hel");
	expect_read(r, BUF - 1, "lo");
	expect_read(r, BUF - 1, "world!");
	expect_empty(r);
	ipc_release(w);
	ipc_release(r);
}

/* Publishing framings: open (one message per open..close), line. */
static void test_framings(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t o = topic(st, "o", "open"), l = topic(st, "l", "line");
	struct ipc_handle *ro = t_open(st, o, O_RDONLY), *rl = t_open(st, l, O_RDONLY), *w;

	assert_string_equal(attr(st, o, "framing"), "open");
	w = t_open(st, o, O_WRONLY);
	t_put(w, "ab");
	t_put(w, "cd\n");
	expect_empty(ro); /* not published before the close */
	assert_int_equal(ipc_flush(w, &w->cred, NULL), 0);
	expect_read(ro, BUF - 1, "abcd\n");
	t_put(w, "more\n");
	ipc_release(w);
	expect_read(ro, BUF - 1, "more\n");
	expect_empty(ro);

	w = t_open(st, l, O_WRONLY);
	t_put(w, "one\ntwo\nthr");
	t_put(w, "ee\nfour");
	expect_read(rl, BUF - 1, "one\n");
	expect_read(rl, BUF - 1, "two\n");
	expect_read(rl, BUF - 1, "three\n");
	expect_empty(rl);
	ipc_release(w); /* the unterminated rest is published at close */
	expect_read(rl, BUF - 1, "four");
	expect_empty(rl);
	ipc_release(ro);
	ipc_release(rl);
	assert_int_equal(mem_used(st), 0);
}

/* A subscription never ends by itself: no EOF, even with no publisher. */
static void test_never_eof(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "open");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);

	t_put(w, "x");
	ipc_release(w);
	expect_read(r, BUF - 1, "x");
	expect_empty(r);
	expect_empty(r);
	ipc_release(r);
}

/* --- waiting --- */

static void test_parked_subscribers_completed_by_publish(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *s[3];
	struct ipc_rdres rd;
	char buf[BUF];

	for (int i = 0; i < 3; i++) {
		s[i] = t_open(st, id, O_RDONLY);
		assert_int_equal(ipc_read(s[i], BUF, O_NONBLOCK, &f->w[i].w, &rd), -EAGAIN);
		assert_int_equal(ipc_read(s[i], BUF, 0, &f->w[i].w, &rd), IPC_E_PARKED);
	}
	assert_string_equal(attr(st, id, "blocked_readers"), "3");
	pub(w, "news");
	pub(w, "more");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t_waiter_ran(&f->w[i]), 1);
		assert_true(f->w[i].lock_was_free);
		assert_int_equal(f->w[i].result, 4);
		t_rd_copy(&f->w[i].w.rd, buf, sizeof(buf));
		assert_string_equal(buf, "news");
		ipc_waiter_end(&f->w[i].w, true);
		expect_read(s[i], BUF - 1, "more");
		expect_empty(s[i]);
		ipc_release(s[i]);
	}
	assert_int_equal(blocked(st, id, false), 0);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* Interrupted wait: EINTR, and the subscription goes on. */
static void test_cancelled_subscriber(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	store_cancel(st, &tw->w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_true(tw->interrupted);
	assert_int_equal(tw->result, -EINTR);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(blocked(st, id, false), 0);
	pub(w, "after");
	expect_read(r, BUF - 1, "after");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* A reply that never reached the subscriber: the message comes back to it
 * (with another subscriber still behind, the message is on the log). */
static void test_read_done_undelivered_other_behind(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY),
			  *slow = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	pub(w, "a");
	pub(w, "b");
	assert_int_equal(ipc_read(r, BUF, 0, NULL, &rd), 0);
	assert_int_equal(rd.total, 1);
	ipc_read_done(r, &rd, false);
	expect_read(r, BUF - 1, "a");
	expect_read(r, BUF - 1, "b");
	expect_read(slow, BUF - 1, "a");
	expect_read(slow, BUF - 1, "b");
	ipc_release(w);
	ipc_release(r);
	ipc_release(slow);
	assert_int_equal(mem_used(st), 0);
}

/* The same with a single subscriber: the message is not lost. */
static void test_read_done_undelivered_single_subscriber(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	pub(w, "a");
	pub(w, "b");
	assert_int_equal(ipc_read(r, BUF, 0, NULL, &rd), 0);
	assert_int_equal(rd.total, 1);
	ipc_read_done(r, &rd, false);
	expect_read(r, BUF - 1, "a");
	expect_read(r, BUF - 1, "b");
	expect_empty(r);
	assert_string_equal(attr(st, id, "out_messages"), "2");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* A parked read completed by a publish whose reply failed. */
static void test_parked_read_undelivered(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	pub(w, "lost?");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 5);
	ipc_waiter_end(&tw->w, false);
	expect_read(r, BUF - 1, "lost?");
	expect_empty(r);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* A partial read undelivered: the same part again (message not finished). */
static void test_partial_read_undelivered(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;

	pub(w, "abcdef");
	expect_read(r, 2, "ab");
	assert_int_equal(ipc_read(r, 2, 0, NULL, &rd), 0);
	ipc_read_done(r, &rd, false);
	expect_read(r, 2, "cd");
	expect_read(r, BUF - 1, "ef");
	expect_empty(r);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

/* --- retain --- */

static void test_retain_replays_last_n(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r;

	t_set(st, id, "retain", "3");
	assert_string_equal(attr(st, id, "retain"), "3");
	pub_range(w, 1, 5);
	assert_string_equal(attr(st, id, "messages"), "3");
	for (int k = 0; k < 2; k++) {
		r = t_open(st, id, O_RDONLY);
		assert_true(poll_bits(r) & POLLIN);
		/* the last three published so far */
		expect_msg(r, 3 + k);
		expect_msg(r, 4 + k);
		expect_msg(r, 5 + k);
		expect_empty(r);
		pub_range(w, 6 + k, 6 + k);
		expect_msg(r, 6 + k);
		ipc_release(r);
	}
	/* retained messages stay after every subscriber read them */
	assert_string_equal(attr(st, id, "messages"), "3");
	ipc_release(w);
}

static void test_retain_fewer_than_n(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r;

	t_set(st, id, "retain", "10");
	pub_range(w, 1, 2);
	r = t_open(st, id, O_RDONLY);
	expect_msg(r, 1);
	expect_msg(r, 2);
	expect_empty(r);
	ipc_release(r);
	/* lowering retain trims the log */
	t_set(st, id, "retain", "1");
	assert_string_equal(attr(st, id, "messages"), "1");
	r = t_open(st, id, O_RDONLY);
	expect_msg(r, 2);
	expect_empty(r);
	ipc_release(r);
	t_set(st, id, "retain", "0");
	assert_string_equal(attr(st, id, "messages"), "0");
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* A parked subscriber of a retaining topic is served by the next publish. */
static void test_retain_with_parked_reader(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "line");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	t_set(st, id, "retain", "2");
	t_put(w, "a\nb\nc\n");
	r = t_open(st, id, O_RDONLY);
	expect_read(r, BUF - 1, "b\n");
	expect_read(r, BUF - 1, "c\n");
	assert_int_equal(ipc_read(r, BUF, 0, &tw->w, &rd), IPC_E_PARKED);
	t_put(w, "d\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "d\n");
	ipc_waiter_end(&tw->w, true);
	ipc_release(r);
	ipc_release(w);
}

/* --- overflow --- */

/* overflow=drop (default): a slow subscriber keeps the newest
 * max_messages; the rest are dropped for it and counted. */
static void test_drop_counts_for_slow_subscriber(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY),
			  *fast = t_open(st, id, O_RDONLY);

	assert_string_equal(attr(st, id, "overflow"), "drop");
	assert_string_equal(attr(st, id, "max_messages"), "1000");
	t_set(st, id, "max_messages", "10");
	for (int k = 1; k <= 50; k++) {
		pub_range(w, k, k);
		expect_msg(fast, k);
	}
	assert_int_equal(num(st, id, "dropped"), 40);
	assert_int_equal(num(st, id, "messages"), 10);
	for (int k = 41; k <= 50; k++)
		expect_msg(slow, k);
	expect_empty(slow);
	expect_empty(fast);
	assert_int_equal(num(st, id, "dropped"), 40);
	ipc_release(w);
	ipc_release(slow);
	ipc_release(fast);
	assert_int_equal(mem_used(st), 0);
}

/* The bound holds for a subscriber stalled in the middle of a message too
 * (it read part of one and stopped): the log must not grow without limit. */
static void test_drop_bound_with_partly_read_message(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY);

	t_set(st, id, "max_messages", "10");
	pub_range(w, 1, 1);
	expect_read(slow, 1, "m"); /* stalls inside m1 */
	pub_range(w, 2, 100);
	/* the backlog (and so the log) stays within max_messages (+ the message
	 * being read) */
	assert_true(num(st, id, "messages") <= 11);
	assert_true(num(st, id, "dropped") >= 89);
	ipc_release(slow);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* Lowering max_messages bounds an existing backlog at the next publish. */
static void test_drop_bound_after_max_lowered(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY);

	pub_range(w, 1, 50);
	assert_int_equal(num(st, id, "messages"), 50);
	t_set(st, id, "max_messages", "10");
	pub_range(w, 51, 51);
	assert_true(num(st, id, "messages") <= 10);
	for (int k = 42; k <= 51; k++)
		expect_msg(slow, k);
	expect_empty(slow);
	ipc_release(slow);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* overflow=block: the publisher waits for the slowest subscriber. */
static void test_block_parks_publisher_until_read(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 99;

	t_set(st, id, "overflow", "block");
	assert_string_equal(attr(st, id, "overflow"), "block");
	t_set(st, id, "max_messages", "2");
	pub_range(w, 1, 2);
	assert_int_equal(poll_bits(w) & POLLOUT, 0);
	assert_int_equal(ipc_write(w, "m3", 2, 0, 0, NULL, &n), IPC_E_AGAIN);
	assert_int_equal(ipc_write(w, "m3", 2, 0, O_NONBLOCK, NULL, &n), -EAGAIN);
	assert_int_equal(ipc_write(w, "m3", 2, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(blocked(st, id, true), 1);
	assert_string_equal(attr(st, id, "blocked_writers"), "1");
	assert_int_equal(t_waiter_ran(tw), 0);
	expect_msg(slow, 1);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_true(tw->lock_was_free);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(blocked(st, id, true), 0);
	expect_msg(slow, 2);
	expect_msg(slow, 3);
	expect_empty(slow);
	assert_int_equal(num(st, id, "dropped"), 0);
	assert_true(poll_bits(w) & POLLOUT);
	ipc_release(w);
	ipc_release(slow);
	assert_int_equal(mem_used(st), 0);
}

/* A blocked publisher goes on when the slow subscriber leaves, when the
 * limit is raised, and EINTR when interrupted. */
static void test_block_publisher_other_wakeups(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY), *other;
	struct t_waiter *tw = &f->w[0];
	size_t n;

	t_set(st, id, "overflow", "block");
	t_set(st, id, "max_messages", "1");
	pub_range(w, 1, 1);
	/* interrupted */
	assert_int_equal(ipc_write(w, "m2", 2, 0, 0, &tw->w, &n), IPC_E_PARKED);
	store_cancel(st, &tw->w);
	assert_int_equal(tw->result, -EINTR);
	ipc_waiter_end(&tw->w, true);
	/* limit raised */
	t_waiter_reset(tw);
	assert_int_equal(ipc_write(w, "m2", 2, 0, 0, &tw->w, &n), IPC_E_PARKED);
	t_set(st, id, "max_messages", "2");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	/* the slow subscriber leaves */
	t_waiter_reset(tw);
	assert_int_equal(ipc_write(w, "m3", 2, 0, 0, &tw->w, &n), IPC_E_PARKED);
	ipc_release(slow);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	/* with no subscriber nothing blocks */
	pub_range(w, 4, 20);
	other = t_open(st, id, O_RDONLY);
	expect_empty(other);
	ipc_release(other);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
}

/* Line framing with overflow=block: a write of several lines places what
 * fits and waits for the rest. */
static void test_block_line_framing(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = topic(st, "t", "line");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *slow = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	const char *lines = "1\n2\n3\n4\n";
	size_t n = 0;

	t_set(st, id, "overflow", "block");
	t_set(st, id, "max_messages", "2");
	assert_int_equal(ipc_write(w, lines, strlen(lines), 0, 0, NULL, &n), IPC_E_AGAIN);
	assert_int_equal(n, 0);
	assert_int_equal(ipc_write(w, lines, strlen(lines), 0, 0, &tw->w, &n), IPC_E_PARKED);
	expect_read(slow, BUF - 1, "1\n");
	expect_read(slow, BUF - 1, "2\n");
	expect_read(slow, BUF - 1, "3\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 8);
	ipc_waiter_end(&tw->w, true);
	expect_read(slow, BUF - 1, "4\n");
	expect_empty(slow);
	ipc_release(w);
	ipc_release(slow);
}

/* --- poll, access, stats --- */

static void test_poll(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);

	assert_int_equal(poll_bits(r) & POLLIN, 0);
	assert_true(poll_bits(w) & POLLOUT);
	pub(w, "x");
	assert_true(poll_bits(r) & POLLIN);
	expect_read(r, BUF - 1, "x");
	assert_int_equal(poll_bits(r) & POLLIN, 0);
	ipc_release(w);
	ipc_release(r);
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
	uint64_t id = topic(st, "t", "write");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w = t_open(st, id, O_WRONLY);
	unsigned rev = 0;

	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, 0);
	wakes = 0;
	pub(w, "1");
	assert_true(wakes >= 1);
	ipc_poll(r, POLLIN, true, &rev);
	assert_int_equal(rev, POLLIN);
	ipc_release(r);
	ipc_release(w);
}

static void test_subscribers_and_settings(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "open");
	struct ipc_cred c = t_user();
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDWR),
			  *w = t_open(st, id, O_WRONLY);

	assert_string_equal(attr(st, id, "subscribers"), "2");
	assert_string_equal(attr(st, id, "readers"), "2");
	assert_string_equal(attr(st, id, "writers"), "2");
	ipc_release(a);
	assert_string_equal(attr(st, id, "subscribers"), "1");
	ipc_release(b);
	ipc_release(w);
	assert_string_equal(attr(st, id, "subscribers"), "0");
	assert_int_equal(attr_set(st, id, "user.ipcfs.overflow", "sometimes", 9, 0, &c), -EINVAL);
	assert_int_equal(attr_set(st, id, "user.ipcfs.retain", "-1", 2, 0, &c), -EINVAL);
	assert_int_equal(attr_set(st, id, "user.ipcfs.max_messages", "0", 1, 0, &c), -EINVAL);
	assert_int_equal(attr_set(st, id, "user.ipcfs.subscribers", "3", 1, 0, &c), -EPERM);
	assert_int_equal(attr_set(st, id, "user.ipcfs.dropped", "0", 1, 0, &c), -EPERM);
	assert_string_equal(attr(st, id, "overflow"), "drop");
	assert_string_equal(attr(st, id, "retain"), "0");
}

/* Retained messages are what persists (store_node_row and the log). */
static void test_retain_is_saved_setting(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = topic(st, "t", "write");
	struct ipc_node_row row;

	t_set(st, id, "retain", "7");
	t_set(st, id, "overflow", "block");
	store_lock(st);
	store_node_row(store_node(st, id), &row);
	assert_int_equal(row.set.retain, 7);
	assert_int_equal(row.set.overflow, IPC_OVERFLOW_BLOCK);
	store_unlock(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_every_subscriber_gets_every_message),
		T_UNIT(test_subscription_starts_at_next),
		T_UNIT(test_one_message_per_read),
		T_UNIT(test_framings),
		T_UNIT(test_never_eof),
		T_UNIT(test_parked_subscribers_completed_by_publish),
		T_UNIT(test_cancelled_subscriber),
		T_UNIT(test_read_done_undelivered_other_behind),
		T_UNIT(test_read_done_undelivered_single_subscriber),
		T_UNIT(test_parked_read_undelivered),
		T_UNIT(test_partial_read_undelivered),
		T_UNIT(test_retain_replays_last_n),
		T_UNIT(test_retain_fewer_than_n),
		T_UNIT(test_retain_with_parked_reader),
		T_UNIT(test_drop_counts_for_slow_subscriber),
		T_UNIT(test_drop_bound_with_partly_read_message),
		T_UNIT(test_drop_bound_after_max_lowered),
		T_UNIT(test_block_parks_publisher_until_read),
		T_UNIT(test_block_publisher_other_wakeups),
		T_UNIT(test_block_line_framing),
		T_UNIT(test_poll),
		T_UNIT(test_poll_wake_hook),
		T_UNIT(test_subscribers_and_settings),
		T_UNIT(test_retain_is_saved_setting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
