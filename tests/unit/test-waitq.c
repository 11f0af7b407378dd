/* test-waitq.c - unit tests of lib/waitq.c and the store's waiter protocol. */
#include "tests/unit/util.h"

#include <fcntl.h>

static void nop_complete(struct ipc_waiter *w)
{
	(void)w;
}

static void test_waiter_init(void **state)
{
	struct ipc_waiter w;
	int ctx;

	(void)state;
	memset(&w, 0xa5, sizeof(w));
	waiter_init(&w, nop_complete, &ctx);
	assert_int_equal(w.state, IPC_W_INIT);
	assert_ptr_equal(w.complete, nop_complete);
	assert_ptr_equal(w.user, &ctx);
	assert_null(w.q);
	assert_null(w.h);
	assert_null(w.wmsg);
	assert_false(w.interrupted);
	assert_false(w.href);
	assert_int_equal(w.rd.nseg, 0);
	assert_false(ipc_list_linked(&w.link));
}

static void test_park_fifo_and_remove(void **state)
{
	struct ipc_waitq q;
	struct ipc_waiter a, b;

	(void)state;
	waitq_init(&q);
	assert_null(waitq_first(&q));
	waiter_init(&a, nop_complete, NULL);
	waiter_init(&b, nop_complete, NULL);
	assert_int_equal(waitq_park(&q, &a), IPC_E_PARKED);
	assert_int_equal(waitq_park(&q, &b), IPC_E_PARKED);
	assert_int_equal(a.state, IPC_W_QUEUED);
	assert_ptr_equal(a.q, &q);
	assert_int_equal(q.n, 2);
	assert_ptr_equal(waitq_first(&q), &a);
	waitq_remove(&a);
	assert_null(a.q);
	assert_int_equal(q.n, 1);
	assert_ptr_equal(waitq_first(&q), &b);
	/* removing twice is harmless */
	waitq_remove(&a);
	assert_int_equal(q.n, 1);
	waitq_remove(&b);
	assert_int_equal(q.n, 0);
	assert_null(waitq_first(&q));
}

static void test_park_cancelled(void **state)
{
	struct ipc_waitq q;
	struct ipc_waiter w;

	(void)state;
	waitq_init(&q);
	waiter_init(&w, nop_complete, NULL);
	w.state = IPC_W_CANCELLED;
	assert_int_equal(waitq_park(&q, &w), -EINTR);
	assert_int_equal(w.state, IPC_W_CANCELLED);
	assert_int_equal(q.n, 0);
	assert_null(waitq_first(&q));
}

static void test_rdres(void **state)
{
	struct ipc_rdres rd;
	struct ipc_msg *m = ipc_msg_new("abcdef", 6, 6);

	(void)state;
	memset(&rd, 0, sizeof(rd));
	assert_non_null(m);
	for (unsigned i = 0; i < IPC_RD_SEGS; i++)
		assert_true(rdres_add(&rd, m, i % 6, 1));
	assert_false(rdres_add(&rd, m, 0, 1));
	assert_int_equal(rd.nseg, IPC_RD_SEGS);
	assert_int_equal(rd.total, IPC_RD_SEGS);
	assert_int_equal(atomic_load(&m->ref), 1 + IPC_RD_SEGS);
	rd.taken = ipc_msg_ref(m);
	rdres_release(&rd);
	assert_int_equal(atomic_load(&m->ref), 1);
	assert_int_equal(rd.nseg, 0);
	assert_int_equal(rd.total, 0);
	assert_null(rd.taken);
	ipc_msg_unref(m);
}

/* An empty mailbox in write framing. */
static uint64_t mbox_setup(struct ipc_store *st)
{
	uint64_t id = t_create(st, T_MBOX_DIR, "q");

	t_set(st, id, "framing", "write");
	return id;
}

static void test_cancel_init_makes_op_eintr(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox_setup(st);
	struct ipc_handle *r = t_open(st, id, O_RDONLY);
	struct t_waiter *tw = &((struct t_fix *)*state)->w[0];
	struct ipc_rdres rd;
	char buf[16];

	store_cancel(st, &tw->w);
	assert_int_equal(tw->w.state, IPC_W_CANCELLED);
	assert_int_equal(ipc_read(r, 10, 0, &tw->w, &rd), -EINTR);
	assert_int_equal(tw->w.state, IPC_W_CANCELLED);
	assert_int_equal(t_waiter_ran(tw), 0);
	store_lock(st);
	assert_int_equal(store_node(st, id)->readers.n, 0);
	store_unlock(st);

	/* nothing was left parked: a later message is not swallowed */
	{
		struct ipc_handle *w = t_open(st, id, O_WRONLY);
		t_put(w, "m");
		ipc_release(w);
	}
	assert_int_equal(t_count(st, id), 1);
	assert_int_equal(t_read(r, 10, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "m");
	assert_int_equal(t_waiter_ran(tw), 0);
	ipc_release(r);
}

static void test_cancel_init_write_eintr(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox_setup(st);
	struct ipc_handle *w = t_open(st, id, O_WRONLY);
	struct t_waiter *tw = &((struct t_fix *)*state)->w[0];
	size_t n = 0;

	t_set(st, id, "max_messages", "1");
	t_put(w, "full");
	store_cancel(st, &tw->w);
	assert_int_equal(ipc_write(w, "more", 4, 0, 0, &tw->w, &n), -EINTR);
	assert_int_equal(t_waiter_ran(tw), 0);
	assert_int_equal(t_count(st, id), 1);
	store_lock(st);
	assert_int_equal(store_node(st, id)->space.n, 0);
	store_unlock(st);
	ipc_release(w);
}

static void test_cancel_queued_runs_callback_once(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox_setup(st);
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w;
	struct t_waiter *tw = &((struct t_fix *)*state)->w[0];
	struct ipc_rdres rd;

	assert_int_equal(ipc_read(r, 10, 0, &tw->w, &rd), IPC_E_PARKED);
	assert_int_equal(tw->w.state, IPC_W_QUEUED);
	assert_int_equal(t_waiter_ran(tw), 0);

	store_cancel(st, &tw->w);
	/* the callback ran before store_cancel returned, outside the lock */
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, -EINTR);
	assert_true(tw->interrupted);
	assert_true(tw->lock_was_free);
	assert_int_equal(tw->w.state, IPC_W_DONE);

	/* a second cancel and a later message do not run it again */
	store_cancel(st, &tw->w);
	w = t_open(st, id, O_WRONLY);
	t_put(w, "kept");
	ipc_release(w);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(t_count(st, id), 1);
	ipc_waiter_end(&tw->w, true);

	ipc_release(r);
}

static void test_cancel_done_left_alone(void **state)
{
	struct ipc_store *st = T_ST(state);
	uint64_t id = mbox_setup(st);
	struct ipc_handle *r = t_open(st, id, O_RDONLY), *w;
	struct t_waiter *tw = &((struct t_fix *)*state)->w[0];
	struct ipc_rdres rd;
	char buf[16];

	assert_int_equal(ipc_read(r, 10, 0, &tw->w, &rd), IPC_E_PARKED);
	w = t_open(st, id, O_WRONLY);
	t_put(w, "abc");
	/* the write completed the parked read, after dropping the lock */
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, 3);
	assert_false(tw->interrupted);
	assert_true(tw->lock_was_free);
	assert_int_equal(tw->w.state, IPC_W_DONE);
	t_rd_copy(&tw->w.rd, buf, sizeof(buf));
	assert_string_equal(buf, "abc");

	store_cancel(st, &tw->w);
	assert_int_equal(tw->w.state, IPC_W_DONE);
	assert_int_equal(tw->w.result, 3);
	assert_false(tw->w.interrupted);
	assert_int_equal(t_waiter_ran(tw), 1);
	ipc_waiter_end(&tw->w, true);
	assert_int_equal(t_count(st, id), 0);

	ipc_release(w);
	ipc_release(r);
}

static void test_completions_run_after_unlock(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct t_waiter *a = &((struct t_fix *)*state)->w[0];
	struct t_waiter *b = &((struct t_fix *)*state)->w[1];
	struct ipc_waitq q;

	waitq_init(&q);
	store_lock(st);
	assert_int_equal(waitq_park(&q, &a->w), IPC_E_PARKED);
	assert_int_equal(waitq_park(&q, &b->w), IPC_E_PARKED);
	store_complete(st, &a->w, 11);
	store_complete(st, &b->w, -EIO);
	assert_int_equal(q.n, 0);
	assert_int_equal(a->w.state, IPC_W_DONE);
	/* still under the lock: nothing has run */
	assert_int_equal(t_waiter_ran(a), 0);
	assert_int_equal(t_waiter_ran(b), 0);
	store_unlock(st);
	assert_int_equal(t_waiter_ran(a), 1);
	assert_int_equal(t_waiter_ran(b), 1);
	assert_int_equal(a->result, 11);
	assert_int_equal(b->result, -EIO);
	assert_true(a->lock_was_free);
	assert_true(b->lock_was_free);
	/* a later unlock does not run them again */
	store_lock(st);
	store_unlock(st);
	assert_int_equal(t_waiter_ran(a), 1);
}

static void test_wait_commit_memory_mode(void **state)
{
	struct ipc_store *st = T_ST(state);
	struct t_waiter *tw = &((struct t_fix *)*state)->w[0];

	t_create(st, T_MBOX_DIR, "changed");
	store_lock(st);
	assert_int_equal(store_wait_commit(st, &tw->w, 5), 0);
	assert_int_equal(store_wait_commit(st, NULL, 5), 0);
	assert_int_equal(st->commits.n, 0);
	store_unlock(st);
	assert_int_equal(tw->w.state, IPC_W_INIT);
	assert_int_equal(t_waiter_ran(tw), 0);
}

static void test_wait_commit_parks_and_is_not_cancelled(void **state)
{
	struct t_fix *f = *state;
	struct ipc_limits l = t_limits();
	/* a database mode, but no writer thread: commits never come */
	struct ipc_store *st = t_fix_store(f, &l, IPC_SYNC_NORMAL, NULL);
	struct t_waiter *tw = &f->w[0];

	t_create(st, T_MBOX_DIR, "dirty");
	store_lock(st);
	assert_int_equal(store_wait_commit(st, NULL, 5), IPC_E_AGAIN);
	store_unlock(st);

	/* an interrupt that raced ahead does not cancel a commit wait */
	store_cancel(st, &tw->w);
	assert_int_equal(tw->w.state, IPC_W_CANCELLED);
	store_lock(st);
	assert_int_equal(store_wait_commit(st, &tw->w, 5), IPC_E_PARKED);
	assert_int_equal(tw->w.state, IPC_W_QUEUED);
	assert_int_equal(tw->w.op, IPC_OP_COMMIT);
	assert_true(st->commit_now);
	store_unlock(st);
	store_cancel(st, &tw->w);
	assert_int_equal(tw->w.state, IPC_W_QUEUED);
	assert_int_equal(t_waiter_ran(tw), 0);

	/* store_free ends it */
	f->st = NULL;
	store_free(st);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, -ENOTCONN);
}

static int gone_calls;
static void *gone_user;

static void handle_gone(void *ctx, void *user)
{
	(void)ctx;
	gone_calls++;
	gone_user = user;
}

static void test_store_free_ends_parked_waiters(void **state)
{
	struct t_fix *f = *state;
	struct ipc_limits l = t_limits();
	struct ipc_store_hooks hooks = { .handle_gone = handle_gone };
	struct ipc_store *st = t_fix_store(f, &l, IPC_SYNC_MEMORY, &hooks);
	uint64_t id = mbox_setup(st);
	struct ipc_cred c = t_user();
	struct ipc_handle *r = NULL;
	struct t_waiter *tw = &f->w[0];
	struct ipc_rdres rd;
	static int tag;

	gone_calls = 0;
	gone_user = NULL;
	assert_int_equal(ipc_open(st, id, O_RDONLY, &c, &tag, NULL, &r), 0);
	assert_int_equal(ipc_read(r, 10, 0, &tw->w, &rd), IPC_E_PARKED);
	f->st = NULL;
	store_free(st);
	assert_int_equal(t_waiter_ran(tw), 1);
	assert_int_equal(tw->result, -ENOTCONN);
	assert_int_equal(gone_calls, 1);
	assert_ptr_equal(gone_user, &tag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waiter_init),
		cmocka_unit_test(test_park_fifo_and_remove),
		cmocka_unit_test(test_park_cancelled),
		cmocka_unit_test(test_rdres),
		T_UNIT(test_cancel_init_makes_op_eintr),
		T_UNIT(test_cancel_init_write_eintr),
		T_UNIT(test_cancel_queued_runs_callback_once),
		T_UNIT(test_cancel_done_left_alone),
		T_UNIT(test_completions_run_after_unlock),
		T_UNIT(test_wait_commit_memory_mode),
		T_UNIT(test_wait_commit_parks_and_is_not_cancelled),
		T_UNIT(test_store_free_ends_parked_waiters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
