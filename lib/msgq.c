/* msgq.c - ordered message queue with write-behind bookkeeping. */
#include "lib/msgq.h"

#include <errno.h>
#include <stdlib.h>

void msgq_init(struct ipc_msgq *q, bool track)
{
	q->track = track;
	ipc_list_init(&q->msgs);
	q->count = 0;
	q->bytes = 0;
	q->next_seq = 1;
	q->low_seq = 1;
	q->unsaved = NULL;
	q->skips = NULL;
	q->nskips = q->capskips = 0;
	q->nunsaved = q->capunsaved = 0;
	q->deleted = NULL;
	q->ndeleted = q->capdeleted = 0;
}

void msgq_destroy(struct ipc_msgq *q)
{
	msgq_clear(q);
	for (size_t i = 0; i < q->nunsaved; i++)
		ipc_msg_unref(q->unsaved[i]);
	for (size_t i = 0; i < q->nskips; i++)
		ipc_msg_unref(q->skips[i]);
	free(q->unsaved);
	free(q->deleted);
	free(q->skips);
	msgq_init(q, q->track);
}

void msgq_untrack(struct ipc_msgq *q)
{
	for (size_t i = 0; i < q->nunsaved; i++) {
		q->unsaved[i]->pending = false;
		ipc_msg_unref(q->unsaved[i]);
	}
	for (size_t i = 0; i < q->nskips; i++) {
		q->skips[i]->skip_pending = false;
		ipc_msg_unref(q->skips[i]);
	}
	free(q->unsaved);
	free(q->deleted);
	free(q->skips);
	q->unsaved = NULL;
	q->nunsaved = q->capunsaved = 0;
	q->deleted = NULL;
	q->ndeleted = q->capdeleted = 0;
	q->skips = NULL;
	q->nskips = q->capskips = 0;
	q->track = false;
}

/* Grows *arr to hold one more element of size sz. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *na;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	na = realloc(*arr, ncap * sz);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*cap = ncap;
	return 0;
}

static int note_unsaved(struct ipc_msgq *q, struct ipc_msg *m)
{
	if (!q->track || m->pending || m->in_db)
		return 0;
	if (grow((void **)&q->unsaved, &q->capunsaved, q->nunsaved, sizeof(*q->unsaved)))
		return -ENOMEM;
	m->uidx = (uint32_t)q->nunsaved;
	q->unsaved[q->nunsaved++] = ipc_msg_ref(m);
	m->pending = true;
	return 0;
}

int msgq_push_tail(struct ipc_msgq *q, struct ipc_msg *m)
{
	if (q->track && grow((void **)&q->unsaved, &q->capunsaved, q->nunsaved, sizeof(*q->unsaved)))
		return -ENOMEM;
	m->seq = q->next_seq++;
	m->queued = true;
	m->done = false;
	ipc_list_add_tail(&q->msgs, &m->link);
	q->count++;
	q->bytes += m->len - m->head;
	return note_unsaved(q, m); /* cannot fail: room was made above */
}

void msgq_push_loaded(struct ipc_msgq *q, struct ipc_msg *m)
{
	m->queued = true;
	m->in_db = true;
	m->sealed = true;
	ipc_list_add_tail(&q->msgs, &m->link);
	q->count++;
	q->bytes += m->len - m->head;
	if (m->seq >= q->next_seq)
		q->next_seq = m->seq + 1;
	if (m->seq < q->low_seq)
		q->low_seq = m->seq;
}

struct ipc_msg *msgq_pop_head(struct ipc_msgq *q)
{
	struct ipc_msg *m = msgq_head(q);

	if (!m)
		return NULL;
	ipc_list_del(&m->link);
	m->queued = false;
	q->count--;
	q->bytes -= m->len - m->head;
	return m;
}

int msgq_delivered(struct ipc_msgq *q, struct ipc_msg *m)
{
	int r = 0;

	m->done = true;
	if (m->pending && !m->in_db && m->uidx < q->nunsaved && q->unsaved[m->uidx] == m) {
		/* Never saved: forget it now, in O(1). */
		struct ipc_msg *last = q->unsaved[--q->nunsaved];
		q->unsaved[m->uidx] = last;
		last->uidx = m->uidx;
		m->pending = false;
		ipc_msg_unref(m);
	}
	if (m->in_db && q->track) {
		r = grow((void **)&q->deleted, &q->capdeleted, q->ndeleted, sizeof(*q->deleted));
		if (!r)
			q->deleted[q->ndeleted++] = m->seq;
	}
	ipc_msg_unref(m);
	return r;
}

/* Inserts m (not queued) in sequence order, searching from the head. */
static void insert_sorted(struct ipc_msgq *q, struct ipc_msg *m)
{
	struct ipc_list *pos;

	ipc_list_for_each(pos, &q->msgs) {
		struct ipc_msg *cur = ipc_container_of(pos, struct ipc_msg, link);
		if (cur->seq > m->seq)
			break;
	}
	ipc_list_insert_after(pos->prev, &m->link);
	m->queued = true;
	q->count++;
	q->bytes += m->len - m->head;
}

int msgq_undeliver(struct ipc_msgq *q, struct ipc_msg *m)
{
	bool undone = false;

	if (m->done && m->in_db) {
		/* Cancel the delete if it is still only recorded; otherwise the
		 * row is gone (or going) and must be written again. */
		for (size_t i = q->ndeleted; i-- > 0;) {
			if (q->deleted[i] == m->seq) {
				q->deleted[i] = q->deleted[--q->ndeleted];
				undone = true;
				break;
			}
		}
		if (!undone)
			m->in_db = false;
	}
	m->done = false;
	return note_unsaved(q, m);
}

int msgq_requeue(struct ipc_msgq *q, struct ipc_msg *m)
{
	int r = msgq_undeliver(q, m);

	insert_sorted(q, m);
	if (m->head && !r)
		r = msgq_skip_changed(q, m);
	return r;
}

void msgq_consumed_head(struct ipc_msgq *q, struct ipc_msg *m, size_t n)
{
	m->head += (uint32_t)n;
	q->bytes -= n;
	msgq_skip_changed(q, m); /* without memory the old skip stays: a redelivery */
}

int msgq_skip_changed(struct ipc_msgq *q, struct ipc_msg *m)
{
	if (!q->track || !m->in_db || m->skip_pending)
		return 0;
	if (grow((void **)&q->skips, &q->capskips, q->nskips, sizeof(*q->skips)))
		return -ENOMEM;
	q->skips[q->nskips++] = ipc_msg_ref(m);
	m->skip_pending = true;
	return 0;
}

int msgq_push_head_copy(struct ipc_msgq *q, struct ipc_msg *m)
{
	m->seq = --q->low_seq;
	m->done = false;
	m->in_db = false;
	ipc_list_add_head(&q->msgs, &m->link);
	m->queued = true;
	q->count++;
	q->bytes += m->len - m->head;
	return note_unsaved(q, m);
}

void msgq_clear(struct ipc_msgq *q)
{
	struct ipc_msg *m;

	while ((m = msgq_pop_head(q))) {
		m->done = true;
		ipc_msg_unref(m);
	}
	q->ndeleted = 0;
}
