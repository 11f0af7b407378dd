/* test-mailbox.c - unit tests of lib/mailbox.c via lib/object.h: framing, delivery, capacity. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <poll.h>

#define BUF 256

/* Creates mbox/<name> with a framing ("open", "write", "line"). */
static uint64_t mbox(struct ipc_store *st, const char *name, const char *framing)
{
	uint64_t id = t_create(st, T_MBOX_DIR, name);

	if (strcmp(framing, "open") != 0)
		t_set(st, id, "framing", framing);
	return id;
}

/* Sends one message in open framing: open, write, close. */
static void send_open(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(st, id, O_WRONLY);

	t_put(w, s);
	ipc_release(w);
}

/* Receives one message in open framing: open, read, expect EOF, close. */
static void expect_open(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
	assert_int_equal(t_read(r, BUF - 1, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	ipc_release(r);
}

static void expect_read(struct ipc_handle *r, size_t size, const char *s)
{
	char buf[BUF];

	assert_int_equal(t_read(r, size, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
}

static struct ipc_node *node(struct ipc_store *st, uint64_t id)
{
	struct ipc_node *n;

	store_lock(st);
	n = store_node(st, id);
	store_unlock(st);
	return n;
}

static unsigned poll_bits(struct ipc_handle *h, bool arm)
{
	unsigned rev = 0;

	ipc_poll(h, POLLIN | POLLOUT, arm, &rev);
	return rev;
}

/* --- open framing --- */

static void test_open_one_message_per_open(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "open");

	send_open(st, id, "first");
	send_open(st, id, "second message");
	assert_int_equal(t_count(st, id), 2);
	assert_int_equal(t_bytes(st, id), 19);
	expect_open(st, id, "first");
	assert_int_equal(t_count(st, id), 1);
	expect_open(st, id, "second message");
	assert_int_equal(t_count(st, id), 0);
	assert_int_equal(mem_used(st), 0);
}

static void test_open_writes_accumulate(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "open");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	char big[1000];

	t_put(w, "ab");
	t_put(w, "cd");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	t_put(w, big);
	assert_int_equal(t_count(st, id), 0);
	ipc_release(w);
	assert_int_equal(t_count(st, id), 1);
	assert_int_equal(t_bytes(st, id), 4 + 999);
	{
		struct ipc_handle *r = t_open(st, id, O_RDONLY);
		char buf[1100];
		assert_int_equal(t_read(r, sizeof(buf) - 1, 0, buf, sizeof(buf)), 0);
		assert_int_equal(strlen(buf), 1003);
		assert_memory_equal(buf, "abcd", 4);
		assert_memory_equal(buf + 4, big, 999);
		ipc_release(r);
	}
	assert_int_equal(mem_used(st), 0);
}

static void test_open_commit_at_opener_flush_only(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "open");
	struct ipc_cred opener = t_user(), child = t_user();
	struct ipc_handle *w = t_open(st, id, O_WRONLY);

	child.tid = opener.tid + 1;
	t_put(w, "abc");
	assert_int_equal(t_count(st, id), 0);
	/* a child that inherited the descriptor closes it: no commit */
	assert_int_equal(ipc_flush(w, &child, NULL), 0);
	assert_int_equal(t_count(st, id), 0);
	/* the opener's close commits, before the release */
	assert_int_equal(ipc_flush(w, &opener, NULL), 0);
	assert_int_equal(t_count(st, id), 1);
	expect_open(st, id, "abc");

	/* bytes written after a commit form a new message */
	t_put(w, "def");
	assert_int_equal(t_count(st, id), 0);
	assert_int_equal(ipc_flush(w, &child, NULL), 0);
	assert_int_equal(t_count(st, id), 0);
	ipc_release(w);
	assert_int_equal(t_count(st, id), 1);
	expect_open(st, id, "def");
}

static void test_open_release_commits(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "open");
	struct ipc_handle *w;

	/* touch: an open and close without bytes sends nothing */
	w = t_open(st, id, O_WRONLY);
	assert_int_equal(ipc_flush(w, &w->cred, NULL), 0);
	ipc_release(w);
	assert_int_equal(t_count(st, id), 0);

	w = t_open(st, id, O_WRONLY);
	t_put(w, "x");
	ipc_release(w);
	assert_int_equal(t_count(st, id), 1);
	store_lock(st);
	assert_int_equal(store_node(st, id)->reserved, 0);
	store_unlock(st);
	expect_open(st, id, "x");
}

static void test_open_reader_eof_after_one(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "open");
	struct ipc_handle *r;
	char buf[BUF];

	send_open(st, id, "m1");
	send_open(st, id, "m2");
	r = t_open(st, id, O_RDONLY);
	/* in parts: the rest of the message, then EOF, never m2 */
	expect_read(r, 1, "m");
	expect_read(r, 100, "1");
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(t_read(r, 100, O_NONBLOCK, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(poll_bits(r, false), POLLIN);
	ipc_release(r);
	assert_int_equal(t_count(st, id), 1);
	expect_open(st, id, "m2");
}

/* --- write framing --- */

static void test_write_each_write_one_message(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	t_put(w, "one");
	t_put(w, "two");
	assert_int_equal(t_count(st, id), 2);
	expect_read(r, 100, "one");
	expect_read(r, 100, "two");
	/* the stream never ends: the next read waits */
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
	t_put(w, "three");
	expect_read(r, 100, "three");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_write_small_buffer(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	t_put(w, "hello world");
	t_put(w, "gh");
	expect_read(r, 5, "hello");
	/* the next read returns the rest, not the next message */
	expect_read(r, 100, " world");
	assert_int_equal(t_count(st, id), 1);
	expect_read(r, 100, "gh");
	assert_int_equal(t_read(r, 100, O_NONBLOCK, buf, sizeof(buf)), -EAGAIN);
	ipc_release(w);
	ipc_release(r);
}

static void test_write_efbig(void **state)
{
	struct ipc_limits l = t_limits();
	struct ipc_store *st;
	struct ipc_handle *w;
	size_t n = 99;
	uint64_t id;

	l.write_msg_max = 8;
	st = t_fix_store(fix(state), &l, IPC_SYNC_MEMORY, NULL);
	id = mbox(st, "q", "write");
	w = t_open(st, id, O_WRONLY);
	t_put(w, "12345678");
	assert_int_equal(ipc_write(w, "123456789", 9, 0, 0, NULL, &n), -EFBIG);
	assert_int_equal(n, 0);
	/* a continuation chunk: one write(2) split over requests */
	assert_int_equal(ipc_write(w, "abc", 3, 4096, 0, NULL, &n), -EFBIG);
	assert_int_equal(t_count(st, id), 1);
	assert_int_equal(t_bytes(st, id), 8);
	ipc_release(w);
}

/* --- line framing --- */

static void test_line_framing(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "line");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	char buf[BUF];

	t_put(w, "a\nbb\nc");
	assert_int_equal(t_count(st, id), 2);
	t_put(w, "d");
	assert_int_equal(t_count(st, id), 2);
	t_put(w, "d\ne");
	assert_int_equal(t_count(st, id), 3);
	expect_read(r, 100, "a\n");
	expect_read(r, 1, "b");
	expect_read(r, 100, "b\n");
	expect_read(r, 100, "cdd\n");
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
	/* the partial line waits for its newline across the opener's flush
	 * (bash closes a duplicate in the opener's thread around builtins) */
	assert_int_equal(ipc_flush(w, &w->cred, NULL), 0);
	assert_int_equal(t_count(st, id), 0);
	t_put(w, "e\n");
	expect_read(r, 100, "ee\n");
	/* ... and an unterminated tail goes at the last release */
	t_put(w, "tail");
	assert_int_equal(t_count(st, id), 0);
	ipc_release(w);
	expect_read(r, 100, "tail");
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_fifo_order(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	char s[16];

	for (int i = 0; i < 50; i++) {
		snprintf(s, sizeof(s), "m%d", i);
		t_put(w, s);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(s, sizeof(s), "m%d", i);
		expect_read(r, 100, s);
	}
	ipc_release(w);
	ipc_release(r);

	/* open framing: in commit order */
	id = mbox(st, "o", "open");
	for (int i = 0; i < 5; i++) {
		snprintf(s, sizeof(s), "o%d", i);
		send_open(st, id, s);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(s, sizeof(s), "o%d", i);
		expect_open(st, id, s);
	}
}

/* --- blocking --- */

static void test_blocking_read(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_int_equal(ipc_read(r, 100, 0, NULL, &rd), IPC_E_AGAIN);
	assert_int_equal(ipc_read(r, 100, O_NONBLOCK, &tw->w, &rd), -EAGAIN);
	assert_int_equal(tw->w.state, IPC_W_INIT);
	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_int_equal(node(st, id)->readers.n, 1);
	assert_int_equal(t_waiter_ran(tw), 0);
	t_put(w, "hi");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	assert_true(tw->lock_was_free);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "hi");
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_count(st, id), 0);
	assert_int_equal(node(st, id)->readers.n, 0);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_blocking_read_open_framing(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	w = t_open(st, id, O_WRONLY);
	t_put(w, "msg");
	/* not a message until committed */
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(ipc_flush(w, &w->cred, NULL), 0);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 3);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "msg");
	ipc_waiter_end(&tw->w, true);
	/* that open had its message */
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	ipc_release(w);
	ipc_release(r);
}

static void test_partial_read_back_to_head(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r;

	t_put(w, "hello");
	t_put(w, "next");
	r = t_open(st, id, O_RDONLY);
	expect_read(r, 2, "he");
	assert_int_equal(t_count(st, id), 1);
	ipc_release(r); /* the reader dies mid-message */
	assert_int_equal(t_count(st, id), 2);
	assert_int_equal(t_bytes(st, id), 9);
	r = t_open(st, id, O_RDONLY);
	expect_read(r, 100, "hello");
	expect_read(r, 100, "next");
	ipc_release(r);
	ipc_release(w);

	/* the same in open framing */
	id = mbox(st, "o", "open");
	send_open(st, id, "abcdef");
	send_open(st, id, "second");
	r = t_open(st, id, O_RDONLY);
	expect_read(r, 3, "abc");
	ipc_release(r);
	expect_open(st, id, "abcdef");
	expect_open(st, id, "second");
	assert_int_equal(mem_used(st), 0);
}

static void test_read_done_undelivered(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	char buf[BUF];

	t_put(w, "abc");
	t_put(w, "def");
	t_put(w, "ghi");
	/* a whole message that never reached its reader comes back */
	assert_int_equal(ipc_read(a, 100, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "abc");
	assert_int_equal(t_count(st, id), 2);
	ipc_read_done(a, &rd, false);
	expect_read(a, 100, "abc");

	/* a part: the same bytes are read again */
	assert_int_equal(ipc_read(a, 2, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "de");
	ipc_read_done(a, &rd, false);
	expect_read(a, 100, "def");

	/* another reader took the next message meanwhile: order is kept */
	assert_int_equal(ipc_read(a, 100, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "ghi");
	t_put(w, "jkl");
	expect_read(b, 100, "jkl");
	ipc_read_done(a, &rd, false);
	ipc_release(a); /* a closes without reading it: back on the queue */
	assert_int_equal(t_count(st, id), 1);
	expect_read(b, 100, "ghi");
	assert_int_equal(t_count(st, id), 0);
	ipc_release(b);
	ipc_release(w);
	assert_int_equal(mem_used(st), 0);
	{
		char v[32] = { 0 };
		assert_int_equal(attr_get(st, id, "user.ipcfs.out_messages", v, sizeof(v)), 1);
		assert_string_equal(v, "4");
	}
}

/* Two reads parked on one open file (two threads reading one descriptor;
 * FOPEN_STREAM lets them run concurrently): no byte may be lost. */
static void test_two_parked_reads_one_handle(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *a = &f->w[0], *b = &f->w[1];
	struct ipc_rdres rd;
	char buf[BUF];
	size_t total = 0;
	int rc;

	assert_int_equal(ipc_read(r, 2, 0, &a->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(r, 2, 0, &b->w, &rd), IPC_E_PARKED);
	t_put(w, "hello");
	t_put(w, "world");
	assert_int_equal(t_waiter_ran(a), 1);
	assert_int_equal(a->result, 2);
	total += a->w.rd.total;
	ipc_waiter_end(&a->w, true);
	if (!t_waiter_ran(b))
		store_cancel(st, &b->w);
	assert_int_equal(t_waiter_ran(b), 1);
	if (b->result > 0)
		total += (size_t)b->result;
	ipc_waiter_end(&b->w, true);
	while ((rc = t_read(r, 100, O_NONBLOCK, buf, sizeof(buf))) == 0 && buf[0])
		total += strlen(buf);
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(total, 10);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(t_count(st, id), 0);
	assert_int_equal(mem_used(st), 0);
}

/* The same in open framing: one open receives one message, however many
 * reads wait on it. */
static void test_two_parked_reads_one_open(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *a = &f->w[0], *b = &f->w[1];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 100, 0, &a->w, &rd), IPC_E_PARKED);
	assert_int_equal(ipc_read(r, 100, 0, &b->w, &rd), IPC_E_PARKED);
	send_open(st, id, "A");
	assert_int_equal(t_waiter_ran(a), 1);
	assert_int_equal(a->result, 1);
	ipc_waiter_end(&a->w, true);
	send_open(st, id, "B");
	/* B is for another open */
	assert_true(!t_waiter_ran(b) || b->result == 0);
	assert_int_equal(t_count(st, id), 1);
	if (!t_waiter_ran(b))
		store_cancel(st, &b->w);
	ipc_waiter_end(&b->w, true);
	ipc_release(r);
	expect_open(st, id, "B");
}

/* A parked read whose reply could not be sent gives its bytes back. */
static void test_parked_read_undelivered(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	t_put(w, "abc");
	t_put(w, "def");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 3);
	ipc_waiter_end(&tw->w, false);
	expect_read(r, 100, "abc");
	expect_read(r, 100, "def");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_access_mode(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	size_t n;

	assert_int_equal(ipc_read(w, 10, 0, NULL, &rd), -EBADF);
	assert_int_equal(ipc_write(r, "x", 1, 0, 0, NULL, &n), -EBADF);
	{
		struct ipc_cred c = t_user();
		struct ipc_handle *h;
		assert_int_equal(ipc_open(st, T_MBOX_DIR, O_RDONLY, &c, NULL, NULL, &h), -EISDIR);
		assert_int_equal(ipc_open(st, 999999, O_RDONLY, &c, NULL, NULL, &h), -ENOENT);
	}
	ipc_release(w);
	ipc_release(r);
}

/* --- capacity --- */

static void test_max_messages_open_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct ipc_cred c = t_user();
	struct ipc_handle *w1, *w2 = NULL, *tmp = NULL;
	struct t_waiter *tw = &f->w[0];

	t_set(st, id, "max_messages", "1");
	w1 = t_open(st, id, O_WRONLY); /* holds the only slot */
	t_put(w1, "1");
	assert_int_equal(ipc_open(st, id, O_WRONLY, &c, NULL, NULL, &tmp), IPC_E_AGAIN);
	assert_int_equal(ipc_open(st, id, O_WRONLY | O_NONBLOCK, &c, NULL, NULL, &tmp), -EAGAIN);
	assert_int_equal(node(st, id)->nhandles, 1);
	assert_int_equal(ipc_open(st, id, O_WRONLY, &c, NULL, &tw->w, &w2), IPC_E_PARKED);
	assert_non_null(w2);
	/* readers are not held back */
	{
		struct ipc_handle *r = t_open(st, id, O_RDONLY);
		ipc_release(r);
	}
	ipc_release(w1);
	/* the queued message holds the slot now */
	assert_int_equal(t_count(st, id), 1);
	assert_int_equal(t_waiter_ran(tw), 0);
	expect_open(st, id, "1");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 0);
	ipc_waiter_end(&tw->w, true);
	t_put(w2, "2");
	ipc_release(w2);
	expect_open(st, id, "2");
	assert_int_equal(node(st, id)->reserved, 0);
}

/* The writer that holds the slot must be able to write its message while
 * another writer's open waits for a slot (that open waits for this very
 * message to be committed and read). */
static void test_slot_holder_writes_while_open_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct ipc_cred c = t_user();
	struct ipc_handle *w1, *w2 = NULL;
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_messages", "1");
	w1 = t_open(st, id, O_WRONLY);
	assert_int_equal(ipc_open(st, id, O_WRONLY, &c, NULL, &tw->w, &w2), IPC_E_PARKED);
	assert_int_equal(t_write(w1, "mine", 0, &n), 0);
	assert_int_equal(n, 4);
	ipc_release(w1);
	assert_int_equal(t_count(st, id), 1);
	expect_open(st, id, "mine");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 0);
	ipc_waiter_end(&tw->w, true);
	ipc_release(w2);
}

static void test_max_messages_open_cancelled(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct ipc_cred c = t_user();
	struct ipc_handle *w1, *w2 = NULL;
	struct t_waiter *tw = &f->w[0];

	t_set(st, id, "max_messages", "1");
	w1 = t_open(st, id, O_WRONLY);
	assert_int_equal(ipc_open(st, id, O_WRONLY, &c, NULL, &tw->w, &w2), IPC_E_PARKED);
	store_cancel(st, &tw->w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, -EINTR);
	ipc_waiter_end(&tw->w, false);
	ipc_release(w2);
	/* the failed open holds no slot */
	ipc_release(w1);
	assert_int_equal(node(st, id)->reserved, 0);
	send_open(st, id, "only");
	assert_int_equal(t_count(st, id), 1);
}

static void test_max_messages_write_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_messages", "2");
	t_put(w, "a");
	t_put(w, "b");
	assert_int_equal(t_write(w, "c", 0, &n), IPC_E_AGAIN);
	assert_int_equal(t_write(w, "c", O_NONBLOCK, &n), -EAGAIN);
	assert_int_equal(t_count(st, id), 2);
	assert_int_equal(ipc_write(w, "c", 1, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(t_count(st, id), 2);
	/* a later writer queues behind the parked one */
	assert_int_equal(t_write(w, "d", 0, &n), IPC_E_AGAIN);
	expect_read(r, 10, "a");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 1);
	ipc_waiter_end(&tw->w, true);
	expect_read(r, 10, "b");
	expect_read(r, 10, "c");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_max_messages_raised_wakes_writer(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_messages", "1");
	t_put(w, "a");
	assert_int_equal(ipc_write(w, "b", 1, 0, 0, &tw->w, &n), IPC_E_PARKED);
	t_set(st, id, "max_messages", "2");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 1);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_count(st, id), 2);
	ipc_release(w);
}

static void test_parked_write_cancelled(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	char buf[BUF];
	size_t n = 0;

	t_set(st, id, "max_messages", "1");
	t_put(w, "a");
	assert_int_equal(ipc_write(w, "b", 1, 0, 0, &tw->w, &n), IPC_E_PARKED);
	store_cancel(st, &tw->w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, -EINTR);
	assert_true(tw->interrupted);
	ipc_waiter_end(&tw->w, false);
	expect_read(r, 10, "a");
	/* the interrupted write left nothing behind */
	assert_int_equal(t_read(r, 10, O_NONBLOCK, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(t_count(st, id), 0);
	ipc_release(w);
	ipc_release(r);
}

static void test_line_max_messages_partial(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "line");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_messages", "1");
	/* without a waiter nothing changes */
	assert_int_equal(t_write(w, "a\nb\n", 0, &n), IPC_E_AGAIN);
	assert_int_equal(t_count(st, id), 0);
	/* with one, the lines that fit go and the rest waits */
	assert_int_equal(ipc_write(w, "a\nb\n", 4, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(t_count(st, id), 1);
	expect_read(r, 10, "a\n");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 4);
	ipc_waiter_end(&tw->w, true);
	expect_read(r, 10, "b\n");
	ipc_release(w);
	ipc_release(r);
}

static void test_max_bytes_write_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_bytes", "5");
	t_put(w, "abc");
	assert_int_equal(t_write(w, "def", 0, &n), IPC_E_AGAIN);
	assert_int_equal(t_write(w, "def", O_NONBLOCK, &n), -EAGAIN);
	assert_int_equal(ipc_write(w, "def", 3, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(t_bytes(st, id), 3);
	expect_read(r, 10, "abc");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 3);
	ipc_waiter_end(&tw->w, true);
	expect_read(r, 10, "def");
	ipc_release(w);
	ipc_release(r);
}

static void test_max_bytes_open_write_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = mbox(st, "q", "open");
	struct t_waiter *tw = &f->w[0];
	struct ipc_handle *w;
	size_t n = 0;

	t_set(st, id, "max_bytes", "5");
	send_open(st, id, "abc");
	w = t_open(st, id, O_WRONLY);
	t_put(w, "de"); /* 3 queued + 2 of its own */
	assert_int_equal(t_write(w, "f", 0, &n), IPC_E_AGAIN);
	assert_int_equal(ipc_write(w, "f", 1, 0, 0, &tw->w, &n), IPC_E_PARKED);
	expect_open(st, id, "abc");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 1);
	ipc_waiter_end(&tw->w, true);
	ipc_release(w);
	expect_open(st, id, "def");
}

static void test_efbig_over_max_bytes(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t wid = mbox(st, "w", "write"), oid = mbox(st, "o", "open");
	uint64_t lid = mbox(st, "l", "line");
	struct ipc_handle *w;
	uint64_t mem0;
	size_t n = 0;

	t_set(st, wid, "max_bytes", "4");
	t_set(st, oid, "max_bytes", "4");
	t_set(st, lid, "max_bytes", "4");
	mem0 = mem_used(st);

	w = t_open(st, wid, O_WRONLY);
	assert_int_equal(t_write(w, "abcde", 0, &n), -EFBIG);
	assert_int_equal(t_write(w, "abcde", O_NONBLOCK, &n), -EFBIG);
	assert_int_equal(ipc_write(w, "abcde", 5, 0, 0, &fix(state)->w[0].w, &n), -EFBIG);
	assert_int_equal(t_count(st, wid), 0);
	assert_int_equal(t_bytes(st, wid), 0);
	t_put(w, "abcd"); /* exactly the limit is fine */
	ipc_release(w);
	assert_int_equal(t_count(st, wid), 1);

	/* open framing: the message grows past the limit */
	w = t_open(st, oid, O_WRONLY);
	t_put(w, "abc");
	assert_int_equal(t_write(w, "de", 0, &n), -EFBIG);
	assert_int_equal(t_write(w, "x", 0, &n), -EFBIG);
	ipc_release(w);
	assert_int_equal(t_count(st, oid), 0);
	assert_int_equal(t_bytes(st, oid), 0);
	assert_int_equal(node(st, oid)->reserved, 0);
	assert_int_equal(node(st, oid)->pending_bytes, 0);

	/* line framing: a line over the limit */
	w = t_open(st, lid, O_WRONLY);
	assert_int_equal(t_write(w, "abcdef\n", 0, &n), -EFBIG);
	ipc_release(w);
	assert_int_equal(t_count(st, lid), 0);

	/* the store is as before, but for the one good message */
	assert_int_equal(mem_used(st), mem0 + sizeof(struct ipc_msg) + 4);
	w = t_open(st, wid, O_RDONLY);
	expect_read(w, 10, "abcd");
	ipc_release(w);
	assert_int_equal(mem_used(st), mem0);
	{
		char v[32] = { 0 };
		assert_int_equal(attr_get(st, oid, "user.ipcfs.in_messages", v, sizeof(v)), 1);
		assert_string_equal(v, "0");
	}
	/* a new open writes normally again */
	send_open(st, oid, "ok");
	expect_open(st, oid, "ok");
}

static void test_efbig_store_max_message(void **state)
{
	struct ipc_limits l = t_limits();
	struct ipc_store *st;
	struct ipc_handle *w;
	uint64_t id;
	size_t n = 0;

	l.max_message = 4;
	st = t_fix_store(fix(state), &l, IPC_SYNC_MEMORY, NULL);
	id = mbox(st, "q", "write");
	w = t_open(st, id, O_WRONLY);
	assert_int_equal(t_write(w, "abcde", 0, &n), -EFBIG);
	t_put(w, "abcd");
	ipc_release(w);
	assert_int_equal(t_count(st, id), 1);
}

/* --- poll --- */

static void test_poll_bits(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	unsigned rev = 0;

	t_set(st, id, "max_messages", "1");
	assert_int_equal(poll_bits(r, false), 0);
	assert_int_equal(poll_bits(w, false), POLLOUT);
	t_put(w, "x");
	assert_int_equal(poll_bits(r, false), POLLIN);
	assert_int_equal(poll_bits(w, false), 0);
	/* only the events asked for */
	ipc_poll(r, POLLOUT, false, &rev);
	assert_int_equal(rev, 0);
	expect_read(r, 10, "x");
	assert_int_equal(poll_bits(r, false), 0);
	assert_int_equal(poll_bits(w, false), POLLOUT);
	ipc_release(w);
	ipc_release(r);
}

struct wakes {
	struct ipc_store *st;
	int n;
	void *last;
	bool lock_was_free; /* the hook ran without st->lock: a bug */
};

static void poll_wake(void *ctx, void *user)
{
	struct wakes *wk = ctx;

	if (pthread_mutex_trylock(&wk->st->lock) == 0) {
		pthread_mutex_unlock(&wk->st->lock);
		wk->lock_was_free = true;
	}
	wk->n++;
	wk->last = user;
}

static void test_poll_wake_hook(void **state)
{
	static struct wakes wk;
	static int tag_r, tag_idle, tag_w;
	struct ipc_limits l = t_limits();
	struct ipc_store_hooks hooks = { .poll_wake = poll_wake, .ctx = &wk };
	struct ipc_store *st = t_fix_store(fix(state), &l, IPC_SYNC_MEMORY, &hooks);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_cred c = t_user();
	struct ipc_handle *r, *idle, *w;

	memset(&wk, 0, sizeof(wk));
	wk.st = st;
	t_set(st, id, "max_messages", "1");
	assert_int_equal(ipc_open(st, id, O_RDONLY, &c, &tag_r, NULL, &r), 0);
	assert_int_equal(ipc_open(st, id, O_RDONLY, &c, &tag_idle, NULL, &idle), 0);
	assert_int_equal(ipc_open(st, id, O_WRONLY, &c, &tag_w, NULL, &w), 0);
	assert_int_equal(poll_bits(r, true), 0);
	assert_int_equal(poll_bits(idle, false), 0);
	assert_int_equal(wk.n, 0);
	t_put(w, "1");
	/* the armed reader was woken, once; the other was not */
	assert_int_equal(wk.n, 1);
	assert_ptr_equal(wk.last, &tag_r);
	/* a wake disarms: the next change needs a new poll */
	expect_read(idle, 10, "1");
	t_put(w, "2");
	assert_int_equal(wk.n, 1);

	/* a full writer is woken when room appears */
	wk.n = 0;
	assert_int_equal(poll_bits(w, true), 0);
	expect_read(r, 10, "2");
	assert_true(wk.n >= 1);
	assert_ptr_equal(wk.last, &tag_w);

	/* a released handle is never woken */
	wk.n = 0;
	assert_int_equal(poll_bits(r, true), 0);
	ipc_release(r);
	t_put(w, "3");
	assert_int_equal(wk.n, 0);
	assert_false(wk.lock_was_free);
	ipc_release(idle);
	ipc_release(w);
}

static void test_stat_size_and_stats(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox(st, "q", "write");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct ipc_node *n = node(st, id);
	struct stat sb;

	t_put(w, "abc");
	t_put(w, "de");
	assert_int_equal(store_getattr(st, id, &sb), 0);
	assert_int_equal(sb.st_size, 5);
	expect_read(r, 10, "abc");
	assert_int_equal(store_getattr(st, id, &sb), 0);
	assert_int_equal(sb.st_size, 2);
	store_lock(st);
	assert_int_equal(n->stats.in_msgs, 2);
	assert_int_equal(n->stats.in_bytes, 5);
	assert_int_equal(n->stats.out_msgs, 1);
	assert_int_equal(n->stats.out_bytes, 3);
	assert_int_equal(n->nreaders, 1);
	assert_int_equal(n->nwriters, 1);
	store_unlock(st);
	ipc_release(w);
	ipc_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_open_one_message_per_open),
		T_UNIT(test_open_writes_accumulate),
		T_UNIT(test_open_commit_at_opener_flush_only),
		T_UNIT(test_open_release_commits),
		T_UNIT(test_open_reader_eof_after_one),
		T_UNIT(test_write_each_write_one_message),
		T_UNIT(test_write_small_buffer),
		T_UNIT(test_write_efbig),
		T_UNIT(test_line_framing),
		T_UNIT(test_fifo_order),
		T_UNIT(test_blocking_read),
		T_UNIT(test_blocking_read_open_framing),
		T_UNIT(test_partial_read_back_to_head),
		T_UNIT(test_read_done_undelivered),
		T_UNIT(test_two_parked_reads_one_handle),
		T_UNIT(test_two_parked_reads_one_open),
		T_UNIT(test_parked_read_undelivered),
		T_UNIT(test_access_mode),
		T_UNIT(test_max_messages_open_waits),
		T_UNIT(test_slot_holder_writes_while_open_waits),
		T_UNIT(test_max_messages_open_cancelled),
		T_UNIT(test_max_messages_write_waits),
		T_UNIT(test_max_messages_raised_wakes_writer),
		T_UNIT(test_parked_write_cancelled),
		T_UNIT(test_line_max_messages_partial),
		T_UNIT(test_max_bytes_write_waits),
		T_UNIT(test_max_bytes_open_write_waits),
		T_UNIT(test_efbig_over_max_bytes),
		T_UNIT(test_efbig_store_max_message),
		T_UNIT(test_poll_bits),
		T_UNIT(test_poll_wake_hook),
		T_UNIT(test_stat_size_and_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
