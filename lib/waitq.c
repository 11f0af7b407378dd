/* waitq.c - parked operations. */
#include "lib/waitq.h"

#include "lib/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void waiter_init(struct ipc_waiter *w, void (*complete)(struct ipc_waiter *), void *user)
{
	memset(w, 0, sizeof(*w));
	ipc_list_init(&w->link);
	w->state = IPC_W_INIT;
	w->complete = complete;
	w->user = user;
}

int waitq_park(struct ipc_waitq *q, struct ipc_waiter *w)
{
	if (w->state == IPC_W_CANCELLED)
		return -EINTR;
	w->state = IPC_W_QUEUED;
	w->q = q;
	ipc_list_add_tail(&q->waiters, &w->link);
	q->n++;
	return IPC_E_PARKED;
}

void waitq_remove(struct ipc_waiter *w)
{
	if (!w->q)
		return;
	ipc_list_del(&w->link);
	w->q->n--;
	w->q = NULL;
}

void rdres_release(struct ipc_rdres *rd)
{
	for (unsigned i = 0; i < rd->nseg; i++)
		ipc_msg_unref(rd->seg[i].msg);
	ipc_msg_unref(rd->taken);
	for (unsigned i = 0; i < rd->nmany; i++)
		ipc_msg_unref(rd->many[i]);
	free(rd->many);
	memset(rd, 0, sizeof(*rd));
}

bool rdres_add(struct ipc_rdres *rd, struct ipc_msg *m, size_t off, size_t len)
{
	if (rd->nseg == IPC_RD_SEGS)
		return false;
	rd->seg[rd->nseg].msg = ipc_msg_ref(m);
	rd->seg[rd->nseg].off = (uint32_t)off;
	rd->seg[rd->nseg].len = (uint32_t)len;
	rd->nseg++;
	rd->total += len;
	return true;
}
