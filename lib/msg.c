/* msg.c - reference-counted message buffers. */
#include "lib/msg.h"

#include <stdlib.h>
#include <string.h>

struct ipc_msg *ipc_msg_new(const void *data, size_t len, size_t cap)
{
	struct ipc_msg *m;

	if (cap < len)
		cap = len;
	if (cap > UINT32_MAX)
		return NULL;
	m = malloc(sizeof(*m) + cap);
	if (!m)
		return NULL;
	ipc_list_init(&m->link);
	atomic_init(&m->ref, 1);
	m->len = (uint32_t)len;
	m->cap = (uint32_t)cap;
	m->head = 0;
	m->queued = false;
	m->in_db = false;
	m->sealed = false;
	m->pending = false;
	m->skip_pending = false;
	m->done = false;
	m->seq = 0;
	if (len)
		memcpy(m->data, data, len);
	return m;
}

void ipc_msg_unref(struct ipc_msg *m)
{
	if (!m)
		return;
	if (atomic_fetch_sub_explicit(&m->ref, 1, memory_order_acq_rel) == 1)
		free(m);
}
