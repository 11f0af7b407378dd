/* semaphore.c - counting semaphores: write N to add, read to take one. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "lib/attrs.h"
#include "lib/err.h"
#include "lib/kind.h"

/*
 * value: units available. A read takes one unit (waiting while there is
 * none) and returns "1\n", then EOF: each open file takes at most one unit,
 * so `cat sem/s` is P and `echo 1 > sem/s` is V. With the undo setting,
 * units taken through a file come back when it is released (also when its
 * process dies), like SysV SEM_UNDO; those units are saved as available, so
 * a crash returns them too. Waiters are served in arrival order.
 */

#define SEM_MAX 2147483647ULL /* SEM_VALUE_MAX */

/* The reply "1\n": one shared buffer, made once, never freed. */
static struct ipc_msg *unit_msg;
static pthread_once_t unit_once = PTHREAD_ONCE_INIT;

static void make_unit(void)
{
	unit_msg = ipc_msg_new("1\n", 2, 2);
}

static struct ipc_msg *the_unit(void)
{
	pthread_once(&unit_once, make_unit);
	return unit_msg;
}

static void sem_init(struct ipc_store *st, struct ipc_node *n)
{
	(void)st;
	n->set.max_bytes = 64;
	n->value = 0;
}

/* Takes one unit for h, filling rd from offset off of "1\n". */
static int take(struct ipc_store *st, struct ipc_node *n, struct ipc_handle *h, size_t size,
		struct ipc_rdres *rd)
{
	struct ipc_msg *u = the_unit();

	if (!u)
		return -ENOMEM;
	n->value--;
	h->taken++;
	if (n->set.undo)
		n->held_undo++;
	n->stats.out_msgs++;
	h->cur_off = (uint32_t)(size < 2 ? size : 2);
	rdres_add(rd, u, 0, h->cur_off);
	store_touch_meta(st, n);
	store_poll_wake(st, n);
	return 0;
}

static void give(struct ipc_store *st, struct ipc_node *n, uint64_t units);

static int sem_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		    struct ipc_rdres *rd)
{
	struct ipc_node *n = h->node;
	int r;

	if (size == 0)
		return 0;
	if (h->taken) {
		/* The rest of "1\n", then EOF. */
		size_t k = 2 - h->cur_off;
		if (k > size)
			k = size;
		if (k && the_unit()) {
			rdres_add(rd, the_unit(), h->cur_off, k);
			h->cur_off += (uint32_t)k;
		}
		return 0;
	}
	if (n->value && ipc_list_empty(&n->readers.waiters))
		return take(h->st, n, h, size, rd);
	r = obj_must_wait(oflags, w);
	return r ? r : obj_park_read(&n->readers, w);
}

/* Hands units to waiters in order. */
static void pump(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_waiter *w;

	while (n->value && (w = waitq_first(&n->readers))) {
		if (w->h->taken) {
			/* Another read on this open file took its unit meanwhile. */
			size_t k = 2 - w->h->cur_off;
			if (k > w->size)
				k = w->size;
			if (k && the_unit()) {
				rdres_add(&w->rd, the_unit(), w->h->cur_off, k);
				w->h->cur_off += (uint32_t)k;
			}
			store_complete(st, w, (int)w->rd.total);
			continue;
		}
		if (take(st, n, w->h, w->size, &w->rd)) {
			store_complete(st, w, -ENOMEM);
			continue;
		}
		store_complete(st, w, (int)w->rd.total);
	}
}

static void give(struct ipc_store *st, struct ipc_node *n, uint64_t units)
{
	n->value += units;
	store_touch_meta(st, n);
	pump(st, n);
	store_poll_wake(st, n);
}

static void sem_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	struct ipc_node *n = h->node;

	/* The reader never got its unit: it goes back. */
	if (rd->nseg && rd->seg[0].off == 0 && h->taken) {
		h->taken--;
		h->cur_off = 0;
		if (n->set.undo && n->held_undo)
			n->held_undo--;
		n->stats.out_msgs--;
		give(h->st, n, 1);
	}
}

static int sem_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off, int oflags,
		     struct ipc_waiter *w, size_t *written)
{
	struct ipc_node *n = h->node;
	uint64_t v;

	(void)off;
	(void)oflags;
	(void)w;
	if (attr_parse_u64(buf, len, 0, UINT64_MAX, &v))
		return -EINVAL;
	if (v > SEM_MAX - n->value - n->held_undo)
		return -EOVERFLOW;
	n->stats.in_msgs += v;
	give(h->st, n, v);
	*written = len;
	return 0;
}

static void sem_release(struct ipc_handle *h)
{
	struct ipc_node *n = h->node;

	if (h->taken && n->set.undo) {
		uint64_t k = h->taken < n->held_undo ? h->taken : n->held_undo;
		n->held_undo -= k;
		h->taken = 0;
		give(h->st, n, k);
	}
}

static unsigned sem_poll(struct ipc_handle *h)
{
	unsigned ev = POLLOUT | POLLWRNORM;

	if ((h->acc & IPC_ACC_READ) && (h->node->value || h->taken))
		ev |= POLLIN | POLLRDNORM;
	return ev;
}

static int sem_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	(void)h;
	(void)oflags;
	(void)w;
	return 0;
}

static uint64_t sem_size(const struct ipc_node *n)
{
	(void)n;
	return 0;
}

static void sem_changed(struct ipc_store *st, struct ipc_node *n)
{
	pump(st, n);
}

const struct ipc_kind_ops sem_ops = {
	.init = sem_init,
	.open = sem_open,
	.read = sem_read,
	.unread = sem_unread,
	.write = sem_write,
	.release = sem_release,
	.poll = sem_poll,
	.size = sem_size,
	.changed = sem_changed,
};
