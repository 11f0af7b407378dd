/* test-msgq.c - unit tests of lib/msgq.c: order, counters, write-behind bookkeeping. */
#include "tests/unit/util.h"

#include <stdlib.h>

#include "lib/msg.h"
#include "lib/msgq.h"

static struct ipc_msg *mk(const char *s)
{
	struct ipc_msg *m = ipc_msg_new(s, strlen(s), strlen(s));

	assert_non_null(m);
	return m;
}

/* A message as the database would load it: saved, with a given sequence. */
static struct ipc_msg *mk_loaded(const char *s, int64_t seq)
{
	struct ipc_msg *m = mk(s);

	m->seq = seq;
	return m;
}

static bool deleted_has(const struct ipc_msgq *q, int64_t seq)
{
	for (size_t i = 0; i < q->ndeleted; i++)
		if (q->deleted[i] == seq)
			return true;
	return false;
}

static bool unsaved_has(const struct ipc_msgq *q, const struct ipc_msg *m)
{
	for (size_t i = 0; i < q->nunsaved; i++)
		if (q->unsaved[i] == m)
			return true;
	return false;
}

/* Messages that the persistence thread would insert (unsaved, not done). */
static size_t live_unsaved(const struct ipc_msgq *q)
{
	size_t n = 0;

	for (size_t i = 0; i < q->nunsaved; i++)
		if (!q->unsaved[i]->done)
			n++;
	return n;
}

/* The queue under test lives in the fixture so that a failed test does not
 * leak its messages. */
static int q_setup(void **state)
{
	struct ipc_msgq *q = calloc(1, sizeof(*q));

	if (!q)
		return -1;
	msgq_init(q, false);
	*state = q;
	return 0;
}

static int q_teardown(void **state)
{
	msgq_destroy(*state);
	free(*state);
	return 0;
}

static void test_msg_new(void **state)
{
	(void)state;
	struct ipc_msg *m = ipc_msg_new("abc", 3, 10);
	struct ipc_msg *e = ipc_msg_new(NULL, 0, 0);

	assert_non_null(m);
	assert_int_equal(m->len, 3);
	assert_int_equal(m->cap, 10);
	assert_memory_equal(m->data, "abc", 3);
	assert_false(m->queued);
	assert_false(m->in_db);
	/* cap below len is raised to len */
	ipc_msg_unref(m);
	m = ipc_msg_new("abcdef", 6, 2);
	assert_non_null(m);
	assert_int_equal(m->cap, 6);
	assert_non_null(e);
	assert_int_equal(e->len, 0);
	/* references */
	ipc_msg_ref(m);
	assert_int_equal(atomic_load(&m->ref), 2);
	ipc_msg_unref(m);
	assert_int_equal(atomic_load(&m->ref), 1);
	ipc_msg_unref(m);
	ipc_msg_unref(e);
	ipc_msg_unref(NULL);
	/* too large a capacity is refused */
	assert_null(ipc_msg_new(NULL, 0, (size_t)UINT32_MAX + 1));
}

static void test_push_pop_order(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a"), *b = mk("bb"), *c = mk("ccc"), *m;

	msgq_init(q, false);
	assert_null(msgq_head(q));
	assert_null(msgq_pop_head(q));
	assert_int_equal(msgq_push_tail(q, a), 0);
	assert_int_equal(msgq_push_tail(q, b), 0);
	assert_int_equal(msgq_push_tail(q, c), 0);
	assert_true(a->seq < b->seq);
	assert_true(b->seq < c->seq);
	assert_true(a->queued && b->queued && c->queued);
	assert_ptr_equal(msgq_head(q), a);

	m = msgq_pop_head(q);
	assert_ptr_equal(m, a);
	assert_false(m->queued);
	ipc_msg_unref(m);
	m = msgq_pop_head(q);
	assert_ptr_equal(m, b);
	ipc_msg_unref(m);
	m = msgq_pop_head(q);
	assert_ptr_equal(m, c);
	ipc_msg_unref(m);
	assert_null(msgq_pop_head(q));
	msgq_destroy(q);
}

static void test_counts_bytes(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *m;

	msgq_init(q, false);
	assert_int_equal(q->count, 0);
	assert_int_equal(q->bytes, 0);
	assert_int_equal(msgq_push_tail(q, mk("hello")), 0);
	assert_int_equal(msgq_push_tail(q, mk("hi")), 0);
	assert_int_equal(q->count, 2);
	assert_int_equal(q->bytes, 7);

	m = msgq_pop_head(q);
	assert_int_equal(q->count, 1);
	assert_int_equal(q->bytes, 2);
	/* put back: counted again */
	assert_int_equal(msgq_requeue(q, m), 0);
	assert_int_equal(q->count, 2);
	assert_int_equal(q->bytes, 7);

	/* consuming a prefix of the head (FIFO) counts only the rest */
	msgq_consumed_head(q, msgq_head(q), 3);
	assert_int_equal(q->bytes, 4);
	assert_int_equal(q->count, 2);
	m = msgq_pop_head(q);
	assert_int_equal(m->head, 3);
	assert_int_equal(q->bytes, 2);
	assert_int_equal(msgq_delivered(q, m), 0);

	msgq_clear(q);
	assert_int_equal(q->count, 0);
	assert_int_equal(q->bytes, 0);
	assert_null(msgq_head(q));
	msgq_destroy(q);
}

static void test_requeue_in_sequence_order(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a"), *b = mk("b"), *c = mk("c"), *d = mk("d");
	struct ipc_msg *x, *y, *z;

	msgq_init(q, false);
	assert_int_equal(msgq_push_tail(q, a), 0);
	assert_int_equal(msgq_push_tail(q, b), 0);
	assert_int_equal(msgq_push_tail(q, c), 0);
	assert_int_equal(msgq_push_tail(q, d), 0);
	x = msgq_pop_head(q); /* a */
	y = msgq_pop_head(q); /* b */
	z = msgq_pop_head(q); /* c */
	/* given back in the "wrong" order, they take their places again */
	assert_int_equal(msgq_requeue(q, y), 0);
	assert_int_equal(msgq_requeue(q, z), 0);
	assert_int_equal(msgq_requeue(q, x), 0);
	assert_int_equal(q->count, 4);
	x = msgq_pop_head(q);
	assert_ptr_equal(x, a);
	ipc_msg_unref(x);
	x = msgq_pop_head(q);
	assert_ptr_equal(x, b);
	ipc_msg_unref(x);
	x = msgq_pop_head(q);
	assert_ptr_equal(x, c);
	ipc_msg_unref(x);
	x = msgq_pop_head(q);
	assert_ptr_equal(x, d);
	ipc_msg_unref(x);
	msgq_destroy(q);
}

static void test_push_head_copy_goes_first(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a"), *cp = mk("back"), *m;

	msgq_init(q, true);
	assert_int_equal(msgq_push_tail(q, a), 0);
	assert_int_equal(msgq_push_head_copy(q, cp), 0);
	assert_true(cp->seq < a->seq);
	assert_ptr_equal(msgq_head(q), cp);
	assert_true(unsaved_has(q, cp));
	assert_int_equal(q->count, 2);
	assert_int_equal(q->bytes, 5);
	m = msgq_pop_head(q);
	assert_ptr_equal(m, cp);
	ipc_msg_unref(m);
	msgq_destroy(q);
}

static void test_push_tail_records_unsaved(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a");

	msgq_init(q, true);
	assert_false(msgq_dirty(q));
	assert_int_equal(msgq_push_tail(q, a), 0);
	assert_int_equal(q->nunsaved, 1);
	assert_ptr_equal(q->unsaved[0], a);
	assert_true(a->pending);
	/* the bookkeeping holds its own reference */
	assert_int_equal(atomic_load(&a->ref), 2);
	assert_true(msgq_dirty(q));
	msgq_destroy(q);
}

static void test_delivered_deletes_only_saved(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *saved = mk_loaded("old", 7), *fresh = mk("new"), *m;

	msgq_init(q, true);
	msgq_push_loaded(q, saved);
	assert_true(saved->in_db);
	assert_int_equal(q->nunsaved, 0);
	assert_int_equal(msgq_push_tail(q, fresh), 0);
	/* the tail continues after the loaded sequence numbers */
	assert_true(fresh->seq > 7);

	m = msgq_pop_head(q);
	assert_ptr_equal(m, saved);
	assert_int_equal(msgq_delivered(q, m), 0);
	assert_int_equal(q->ndeleted, 1);
	assert_int_equal(q->deleted[0], 7);

	m = msgq_pop_head(q);
	assert_ptr_equal(m, fresh);
	ipc_msg_ref(m);
	assert_int_equal(msgq_delivered(q, m), 0);
	/* never saved: no delete recorded */
	assert_int_equal(q->ndeleted, 1);
	assert_false(deleted_has(q, fresh->seq));
	assert_true(m->done);
	ipc_msg_unref(m);
	msgq_destroy(q);
}

static void test_consumed_before_saved_leaves_nothing(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("transient"), *m;

	msgq_init(q, true);
	assert_int_equal(msgq_push_tail(q, a), 0);
	m = msgq_pop_head(q);
	assert_int_equal(msgq_delivered(q, m), 0);
	/* no delete for a row that never existed, and nothing to insert */
	assert_int_equal(q->ndeleted, 0);
	assert_int_equal(live_unsaved(q), 0);
	assert_int_equal(q->nskips, 0);
	msgq_destroy(q);
}

/* The bookkeeping must not keep a consumed message alive: its memory was
 * uncharged at delivery, and while the writer thread cannot take snapshots
 * (a failing database) such references would pile up without bound. */
static void test_consumed_before_saved_releases_message(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("transient"), *m;

	msgq_init(q, true);
	assert_int_equal(msgq_push_tail(q, a), 0);
	m = msgq_pop_head(q);
	/* the reader's reference and the bookkeeping's */
	assert_int_equal(atomic_load(&m->ref), 2);
	assert_int_equal(msgq_delivered(q, m), 0);
	/* the reader's was dropped; no other may remain */
	assert_int_equal(q->nunsaved, 0);
	assert_false(msgq_dirty(q));
	msgq_destroy(q);
}

static void test_undeliver_cancels_pending_delete(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *m = mk_loaded("row", 3), *x;

	msgq_init(q, true);
	msgq_push_loaded(q, m);
	x = msgq_pop_head(q);
	ipc_msg_ref(x); /* the reader's result keeps one */
	assert_int_equal(msgq_delivered(q, x), 0);
	assert_true(deleted_has(q, 3));
	/* the reader never got it: the delete is cancelled, the row stays */
	assert_int_equal(msgq_undeliver(q, x), 0);
	assert_false(deleted_has(q, 3));
	assert_int_equal(q->ndeleted, 0);
	assert_true(x->in_db);
	assert_false(x->done);
	/* the row exists, so no insert either */
	assert_int_equal(q->nunsaved, 0);
	/* back on the queue it is an ordinary saved message */
	assert_int_equal(msgq_requeue(q, x), 0);
	assert_int_equal(q->ndeleted, 0);
	assert_int_equal(q->nunsaved, 0);
	assert_ptr_equal(msgq_head(q), x);
	msgq_destroy(q);
}

static void test_undeliver_after_delete_written(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *m = mk_loaded("row", 3), *x;

	msgq_init(q, true);
	msgq_push_loaded(q, m);
	x = msgq_pop_head(q);
	ipc_msg_ref(x);
	assert_int_equal(msgq_delivered(q, x), 0);
	/* the persistence thread took the delete (as snapshot() does) */
	q->ndeleted = 0;
	assert_int_equal(msgq_requeue(q, x), 0);
	/* the row is gone: the message must be written again */
	assert_false(x->in_db);
	assert_true(unsaved_has(q, x));
	assert_true(x->pending);
	msgq_destroy(q);
}

static void test_requeue_partly_consumed_marks_head(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *m = mk_loaded("abcdef", 1), *x;

	msgq_init(q, true);
	msgq_push_loaded(q, m);
	msgq_consumed_head(q, m, 2);
	/* the consumed prefix of a saved message must be written */
	assert_int_equal(q->nskips, 1);
	assert_ptr_equal(q->skips[0], m);
	assert_true(m->skip_pending);
	/* (as snapshot() does) */
	q->skips[0]->skip_pending = false;
	ipc_msg_unref(q->skips[0]);
	q->nskips = 0;
	x = msgq_pop_head(q);
	assert_int_equal(msgq_requeue(q, x), 0);
	/* put back with a consumed prefix: recorded again */
	assert_int_equal(q->nskips, 1);
	assert_int_equal(q->bytes, 4);
	msgq_destroy(q);
}

static void test_no_tracking(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a"), *b = mk_loaded("b", 50), *x;

	msgq_init(q, false);
	assert_int_equal(msgq_push_tail(q, a), 0);
	assert_int_equal(q->nunsaved, 0);
	assert_null(q->unsaved);
	assert_false(a->pending);
	assert_int_equal(atomic_load(&a->ref), 1);
	msgq_push_loaded(q, b);
	x = msgq_pop_head(q);
	assert_int_equal(msgq_delivered(q, x), 0);
	x = msgq_pop_head(q);
	ipc_msg_ref(x);
	assert_int_equal(msgq_delivered(q, x), 0);
	assert_int_equal(msgq_requeue(q, x), 0);
	msgq_consumed_head(q, x, 0);
	assert_int_equal(msgq_push_head_copy(q, mk("c")), 0);
	assert_int_equal(q->nunsaved, 0);
	assert_int_equal(q->ndeleted, 0);
	assert_null(q->deleted);
	assert_int_equal(q->nskips, 0);
	assert_false(msgq_dirty(q));
	msgq_destroy(q);
}

static void test_untrack_drops_bookkeeping(void **state)
{
	struct ipc_msgq *q = *state;
	struct ipc_msg *a = mk("a"), *b = mk_loaded("b", 1), *x;

	msgq_init(q, true);
	msgq_push_loaded(q, b);
	assert_int_equal(msgq_push_tail(q, a), 0);
	x = msgq_pop_head(q);
	assert_int_equal(msgq_delivered(q, x), 0);
	assert_true(msgq_dirty(q));
	msgq_untrack(q);
	assert_false(msgq_dirty(q));
	assert_false(q->track);
	assert_false(a->pending);
	assert_int_equal(atomic_load(&a->ref), 1);
	/* later changes record nothing */
	assert_int_equal(msgq_push_tail(q, mk("c")), 0);
	assert_int_equal(q->nunsaved, 0);
	msgq_destroy(q);
}

int main(void)
{
#define QT(fn) cmocka_unit_test_setup_teardown(fn, q_setup, q_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msg_new),
		QT(test_push_pop_order),
		QT(test_counts_bytes),
		QT(test_requeue_in_sequence_order),
		QT(test_push_head_copy_goes_first),
		QT(test_push_tail_records_unsaved),
		QT(test_delivered_deletes_only_saved),
		QT(test_consumed_before_saved_leaves_nothing),
		QT(test_consumed_before_saved_releases_message),
		QT(test_undeliver_cancels_pending_delete),
		QT(test_undeliver_after_delete_written),
		QT(test_requeue_partly_consumed_marks_head),
		QT(test_no_tracking),
		QT(test_untrack_drops_bookkeeping),
	};

#undef QT

	return cmocka_run_group_tests(tests, NULL, NULL);
}
