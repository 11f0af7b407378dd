/* test-fifo.c - unit tests of lib/fifo.c through lib/object.h: byte stream, EOF rules, capacity. */
#include "tests/unit/util.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

#define BUF 256

static uint64_t fifo(struct ipc_store *st, const char *name)
{
	return t_create(st, T_FIFO_DIR, name);
}

static void expect_read(struct ipc_handle *r, size_t size, const char *s)
{
	char buf[BUF];

	assert_int_equal(t_read(r, size, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
}

static void expect_eof(struct ipc_handle *r)
{
	char buf[BUF];

	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static unsigned poll_bits(struct ipc_handle *h)
{
	unsigned rev = 0;

	ipc_poll(h, POLLIN | POLLOUT, false, &rev);
	return rev;
}

/* Reads everything queued into a heap buffer (size bytes expected). */
static char *drain(struct ipc_handle *r, size_t size)
{
	char *all = malloc(size + 1);
	size_t got = 0;

	assert_non_null(all);
	while (got < size) {
		struct ipc_rdres rd;
		assert_int_equal(ipc_read(r, size - got, O_NONBLOCK, NULL, &rd), 0);
		assert_true(rd.total > 0);
		for (unsigned i = 0; i < rd.nseg; i++) {
			memcpy(all + got, rd.seg[i].msg->data + rd.seg[i].off, rd.seg[i].len);
			got += rd.seg[i].len;
		}
		ipc_read_done(r, &rd, true);
	}
	all[got] = '\0';
	return all;
}

static void test_stream_across_writes(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);

	t_put(w, "abc");
	t_put(w, "def");
	t_put(w, "gh");
	assert_int_equal(t_bytes(st, id), 8);
	/* no boundaries: one read takes bytes of several writes */
	expect_read(r, 100, "abcdefgh");
	t_put(w, "0123456789");
	expect_read(r, 4, "0123");
	expect_read(r, 3, "456");
	assert_int_equal(t_bytes(st, id), 3);
	expect_read(r, 100, "789");
	assert_int_equal(t_bytes(st, id), 0);
	/* the writer is still there: no EOF, the reader waits */
	{
		char buf[BUF];
		assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
		assert_int_equal(t_read(r, 100, O_NONBLOCK, buf, sizeof(buf)), -EAGAIN);
	}
	assert_int_equal(ipc_flush(w, &w->cred, NULL), 0);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_eof_after_writer_closes(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w;
	char buf[BUF];

	/* cat fifo/x & echo hi > fifo/x */
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
	assert_int_equal(poll_bits(r), 0);
	w = t_open(st, id, O_WRONLY);
	t_put(w, "hi\n");
	ipc_release(w);
	assert_int_equal(poll_bits(r), POLLIN);
	expect_read(r, 100, "hi\n");
	expect_eof(r);
	assert_int_equal(poll_bits(r), POLLIN | POLLHUP);
	ipc_release(r);
}

static void test_data_before_reader(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *r, *w = t_open(st, id, O_WRONLY);

	/* echo hi > fifo/x; cat fifo/x */
	t_put(w, "kept");
	ipc_release(w);
	assert_int_equal(t_bytes(st, id), 4);
	r = t_open(st, id, O_RDONLY);
	expect_read(r, 2, "ke");
	expect_read(r, 100, "pt");
	expect_eof(r);
	ipc_release(r);
}

static void test_reader_that_saw_nothing_waits(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *r, *w;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	char buf[BUF];

	/* a writer came and went before the reader opened */
	w = t_open(st, id, O_WRONLY);
	ipc_release(w);
	r = t_open(st, id, O_RDONLY);
	assert_int_equal(t_read(r, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
	assert_int_equal(t_read(r, 100, O_NONBLOCK, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	/* a writer arrives and writes: the parked read gets the bytes */
	w = t_open(st, id, O_WRONLY);
	assert_int_equal(t_waiter_ran(tw), 0);
	t_put(w, "data");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 4);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "data");
	ipc_waiter_end(&tw->w, true);
	ipc_release(w);
	expect_eof(r);
	ipc_release(r);
}

static void test_parked_reader_eof_when_writer_leaves(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 100, 0, &tw->w, &rd), IPC_E_PARKED);
	w = t_open(st, id, O_WRONLY);
	assert_int_equal(t_waiter_ran(tw), 0);
	/* the writer closes without writing: the reader saw it, so EOF */
	ipc_release(w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 0);
	ipc_waiter_end(&tw->w, true);
	ipc_release(r);
}

static void test_pipe_buf_writes_whole(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_bytes", "8");
	t_put(w, "abcdef");
	assert_int_equal(t_write(w, "ghij", 0, &n), IPC_E_AGAIN);
	assert_int_equal(t_write(w, "ghij", O_NONBLOCK, &n), -EAGAIN);
	assert_int_equal(t_bytes(st, id), 6);
	assert_int_equal(ipc_write(w, "ghij", 4, 0, 0, &tw->w, &n), IPC_E_PARKED);
	/* never a part of a small write */
	assert_int_equal(t_bytes(st, id), 6);
	expect_read(r, 1, "a");
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(t_bytes(st, id), 5);
	expect_read(r, 1, "b");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 4);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_bytes(st, id), 8);
	expect_read(r, 100, "cdefghij");
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void fill_pattern(char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + i % 23);
}

static void test_large_write_in_parts(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	enum { CAP = 5000, LEN = 6000 };
	char *src = malloc(LEN), *got;
	size_t n = 0;

	assert_true(LEN > PIPE_BUF);
	assert_non_null(src);
	fill_pattern(src, LEN);
	t_set(st, id, "max_bytes", "5000");
	/* without a waiter nothing moves */
	assert_int_equal(ipc_write(w, src, LEN, 0, 0, NULL, &n), IPC_E_AGAIN);
	assert_int_equal(t_bytes(st, id), 0);
	/* with one, what fits is placed while the rest waits */
	assert_int_equal(ipc_write(w, src, LEN, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(t_bytes(st, id), CAP);
	assert_int_equal(t_waiter_ran(tw), 0);
	got = drain(r, 3000);
	assert_memory_equal(got, src, 3000);
	free(got);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, LEN);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_bytes(st, id), LEN - 3000);
	got = drain(r, LEN - 3000);
	assert_memory_equal(got, src + 3000, LEN - 3000);
	free(got);

	/* O_NONBLOCK: a partial count */
	assert_int_equal(ipc_write(w, src, LEN, 0, O_NONBLOCK, NULL, &n), 0);
	assert_int_equal(n, CAP);
	got = drain(r, CAP);
	assert_memory_equal(got, src, CAP);
	free(got);
	free(src);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_large_write_cancelled_reports_count(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	enum { LEN = 6000 };
	char *src = malloc(LEN), *got;
	size_t n = 0;

	assert_non_null(src);
	fill_pattern(src, LEN);
	t_set(st, id, "max_bytes", "5000");
	assert_int_equal(ipc_write(w, src, LEN, 0, 0, &tw->w, &n), IPC_E_PARKED);
	store_cancel(st, &tw->w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_true(tw->interrupted);
	assert_int_equal(tw->result, 5000);
	ipc_waiter_end(&tw->w, false);
	got = drain(r, 5000);
	assert_memory_equal(got, src, 5000);
	free(got);
	/* nothing more arrives */
	assert_int_equal(t_bytes(st, id), 0);
	free(src);
	ipc_release(w);
	ipc_release(r);
}

/* An interrupt that raced ahead of a large write that could place a part:
 * the part stays, and the count is reported through the callback. */
static void test_large_write_cancelled_before_park(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	struct t_waiter *tw = &f->w[0];
	enum { LEN = 6000 };
	char *src = malloc(LEN);
	size_t n = 0;

	assert_non_null(src);
	fill_pattern(src, LEN);
	t_set(st, id, "max_bytes", "5000");
	store_cancel(st, &tw->w);
	assert_int_equal(ipc_write(w, src, LEN, 0, 0, &tw->w, &n), IPC_E_PARKED);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 5000);
	assert_true(tw->lock_was_free);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_bytes(st, id), 5000);
	/* nothing placed, nothing kept: -EINTR */
	t_waiter_reset(tw);
	store_cancel(st, &tw->w);
	assert_int_equal(ipc_write(w, src, LEN, 0, 0, &tw->w, &n), -EINTR);
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(t_bytes(st, id), 5000);
	free(src);
	ipc_release(w);
}

static void test_capacity_backpressure(void **state)
{
	struct t_fix *f = fix(state);
	struct ipc_store *st = f->st;
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *w2 = t_open(st, id, O_WRONLY);
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;

	t_set(st, id, "max_bytes", "4");
	assert_int_equal(poll_bits(w), POLLOUT);
	t_put(w, "abcd");
	assert_int_equal(poll_bits(w), 0);
	assert_int_equal(poll_bits(r), POLLIN);
	assert_int_equal(t_write(w, "e", 0, &n), IPC_E_AGAIN);
	assert_int_equal(t_write(w, "e", O_NONBLOCK, &n), -EAGAIN);
	/* writers queue in arrival order */
	assert_int_equal(ipc_write(w, "XY", 2, 0, 0, &tw->w, &n), IPC_E_PARKED);
	expect_read(r, 1, "a");
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(t_write(w2, "Z", O_NONBLOCK, &n), -EAGAIN);
	expect_read(r, 1, "b");
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 2);
	ipc_waiter_end(&tw->w, true);
	expect_read(r, 100, "cdXY");
	t_put(w2, "Z");
	expect_read(r, 100, "Z");
	ipc_release(w);
	ipc_release(w2);
	ipc_release(r);
}

static void test_unread_gives_bytes_back(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	struct ipc_handle *a = t_open(st, id, O_RDONLY), *b = t_open(st, id, O_RDONLY);
	struct ipc_rdres rd;
	char buf[BUF];

	t_put(w, "abcdef");
	/* a prefix comes back */
	assert_int_equal(ipc_read(a, 3, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "abc");
	assert_int_equal(t_bytes(st, id), 3);
	ipc_read_done(a, &rd, false);
	assert_int_equal(t_bytes(st, id), 6);
	expect_read(a, 100, "abcdef");

	/* everything comes back, before what was written meanwhile */
	t_put(w, "xyz");
	assert_int_equal(ipc_read(a, 100, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "xyz");
	t_put(w, "123");
	ipc_read_done(a, &rd, false);
	expect_read(b, 100, "xyz123");

	/* another reader read on meanwhile: the bytes still come back first */
	t_put(w, "abcdef");
	assert_int_equal(ipc_read(a, 3, 0, NULL, &rd), 0);
	expect_read(b, 2, "de");
	ipc_read_done(a, &rd, false);
	expect_read(b, 100, "abcf");
	assert_int_equal(t_bytes(st, id), 0);
	ipc_release(w);
	ipc_release(a);
	ipc_release(b);
	assert_int_equal(mem_used(st), 0);
	{
		char v[32] = { 0 };
		assert_int_equal(attr_get(st, id, "user.ipcfs.out_bytes", v, sizeof(v)), 2);
		assert_string_equal(v, "18");
	}
}

static void test_unread_across_segments(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w = t_open(st, id, O_WRONLY), *r = t_open(st, id, O_RDONLY);
	enum { BIG = 20000 };
	char *src = malloc(BIG + 1), *got;
	struct ipc_rdres rd;
	size_t n = 0;

	assert_non_null(src);
	fill_pattern(src, BIG);
	/* several writes, several segments */
	assert_int_equal(ipc_write(w, src, 16384, 0, 0, NULL, &n), 0);
	assert_int_equal(ipc_write(w, src + 16384, BIG - 16384, 0, 0, NULL, &n), 0);
	assert_int_equal(t_bytes(st, id), BIG);
	assert_int_equal(ipc_read(r, BIG, 0, NULL, &rd), 0);
	assert_int_equal(rd.total, BIG);
	assert_true(rd.nseg >= 2);
	assert_int_equal(t_bytes(st, id), 0);
	ipc_read_done(r, &rd, false);
	assert_int_equal(t_bytes(st, id), BIG);
	got = drain(r, BIG);
	assert_memory_equal(got, src, BIG);
	free(got);
	free(src);
	ipc_release(w);
	ipc_release(r);
	assert_int_equal(mem_used(st), 0);
}

static void test_rdwr_handle(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *h = t_open(st, id, O_RDWR);
	char buf[BUF];

	t_put(h, "self");
	expect_read(h, 100, "self");
	/* its own writer side keeps it from EOF */
	assert_int_equal(t_read(h, 100, 0, buf, sizeof(buf)), IPC_E_AGAIN);
	assert_int_equal(poll_bits(h), POLLOUT);
	ipc_release(h);
}

static void test_bytes_survive_without_reader(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = fifo(st, "f");
	struct ipc_handle *w, *r;
	struct stat sb;

	for (int i = 0; i < 3; i++) {
		w = t_open(st, id, O_WRONLY);
		t_put(w, "ab");
		ipc_release(w);
	}
	assert_int_equal(store_getattr(st, id, &sb), 0);
	assert_int_equal(sb.st_size, 6);
	r = t_open(st, id, O_RDONLY);
	expect_read(r, 100, "ababab");
	expect_eof(r);
	ipc_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_UNIT(test_stream_across_writes),
		T_UNIT(test_eof_after_writer_closes),
		T_UNIT(test_data_before_reader),
		T_UNIT(test_reader_that_saw_nothing_waits),
		T_UNIT(test_parked_reader_eof_when_writer_leaves),
		T_UNIT(test_pipe_buf_writes_whole),
		T_UNIT(test_large_write_in_parts),
		T_UNIT(test_large_write_cancelled_reports_count),
		T_UNIT(test_large_write_cancelled_before_park),
		T_UNIT(test_capacity_backpressure),
		T_UNIT(test_unread_gives_bytes_back),
		T_UNIT(test_unread_across_segments),
		T_UNIT(test_rdwr_handle),
		T_UNIT(test_bytes_survive_without_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
