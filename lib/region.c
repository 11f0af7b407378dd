/* region.c - shared memory regions: pages, copy-on-write, dirty tracking. */
#include "lib/region.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/kind.h"

static uint64_t pages_for(uint64_t size)
{
	return (size + IPC_PAGE - 1) / IPC_PAGE;
}

static size_t page_charge(void)
{
	return sizeof(struct ipc_msg) + IPC_PAGE;
}

int region_init(struct ipc_node *n)
{
	struct ipc_region *rg = calloc(1, sizeof(*rg));

	if (!rg)
		return -ENOMEM;
	rg->trunc_from = UINT64_MAX;
	n->rg = rg;
	return 0;
}

void region_fini(struct ipc_store *st, struct ipc_node *n)
{
	struct ipc_region *rg = n->rg;

	if (!rg)
		return;
	for (uint64_t i = 0; i < rg->npages; i++)
		ipc_msg_unref(rg->pages[i]);
	store_uncharge(st, rg->nalloc * page_charge());
	free(rg->pages);
	free(rg->dirty);
	free(rg->dirtyv);
	free(rg);
	n->rg = NULL;
}

/* Makes room for page numbers below np. */
static int grow_table(struct ipc_region *rg, uint64_t np)
{
	uint64_t ncap;
	struct ipc_msg **pages;
	uint8_t *dirty;

	if (np <= rg->npages)
		return 0;
	ncap = rg->npages ? rg->npages : 16;
	while (ncap < np)
		ncap *= 2;
	pages = realloc(rg->pages, ncap * sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	rg->pages = pages;
	dirty = realloc(rg->dirty, ncap);
	if (!dirty)
		return -ENOMEM;
	rg->dirty = dirty;
	memset(rg->pages + rg->npages, 0, (ncap - rg->npages) * sizeof(*pages));
	memset(rg->dirty + rg->npages, 0, ncap - rg->npages);
	rg->npages = ncap;
	return 0;
}

static int mark_dirty(struct ipc_store *st, struct ipc_region *rg, uint64_t pg)
{
	if (st->sync == IPC_SYNC_MEMORY || rg->dirty[pg])
		return 0;
	if (rg->ndirty == rg->capdirty) {
		size_t nc = rg->capdirty ? rg->capdirty * 2 : 64;
		uint64_t *nv = realloc(rg->dirtyv, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rg->dirtyv = nv;
		rg->capdirty = nc;
	}
	rg->dirtyv[rg->ndirty++] = pg;
	rg->dirty[pg] = 1;
	return 0;
}

int region_read(struct ipc_node *n, uint64_t off, size_t size, struct ipc_msg **out)
{
	struct ipc_region *rg = n->rg;
	struct ipc_msg *m;
	size_t done = 0;

	*out = NULL;
	if (off >= rg->size || size == 0)
		return 0;
	if (size > rg->size - off)
		size = (size_t)(rg->size - off);
	m = ipc_msg_new(NULL, 0, size);
	if (!m)
		return -ENOMEM;
	while (done < size) {
		uint64_t pos = off + done, pg = pos / IPC_PAGE;
		size_t in = (size_t)(pos % IPC_PAGE), k = IPC_PAGE - in;
		if (k > size - done)
			k = size - done;
		if (pg < rg->npages && rg->pages[pg])
			memcpy(m->data + done, rg->pages[pg]->data + in, k);
		else
			memset(m->data + done, 0, k);
		done += k;
	}
	m->len = (uint32_t)size;
	*out = m;
	return (int)size;
}

/* A page that may be written: allocated, and not shared with a snapshot. */
static struct ipc_msg *writable_page(struct ipc_store *st, struct ipc_region *rg, uint64_t pg)
{
	struct ipc_msg *p = rg->pages[pg], *c;

	if (!p) {
		if (store_charge(st, page_charge()))
			return NULL;
		p = ipc_msg_new(NULL, 0, IPC_PAGE);
		if (!p) {
			store_uncharge(st, page_charge());
			return NULL;
		}
		memset(p->data, 0, IPC_PAGE);
		p->len = IPC_PAGE;
		rg->pages[pg] = p;
		rg->nalloc++;
		return p;
	}
	if (atomic_load_explicit(&p->ref, memory_order_acquire) == 1)
		return p;
	c = ipc_msg_new(p->data, IPC_PAGE, IPC_PAGE);
	if (!c)
		return NULL;
	rg->pages[pg] = c;
	ipc_msg_unref(p);
	return c;
}

int region_write(struct ipc_store *st, struct ipc_node *n, uint64_t off, const void *buf,
		 size_t len)
{
	struct ipc_region *rg = n->rg;
	uint64_t end = off + len, first, last, need = 0;
	size_t done = 0;

	if (len == 0)
		return 0;
	if (end < off || end > n->set.max_bytes)
		return -EFBIG;
	first = off / IPC_PAGE;
	last = (end - 1) / IPC_PAGE;
	if (grow_table(rg, last + 1))
		return -ENOMEM;
	for (uint64_t pg = first; pg <= last; pg++)
		if (!rg->pages[pg])
			need++;
	if (st->mem_used + need * page_charge() > st->lim.max_memory)
		return -ENOSPC;
	while (done < len) {
		uint64_t pos = off + done, pg = pos / IPC_PAGE;
		size_t in = (size_t)(pos % IPC_PAGE), k = IPC_PAGE - in;
		struct ipc_msg *p;
		if (k > len - done)
			k = len - done;
		p = writable_page(st, rg, pg);
		if (!p || mark_dirty(st, rg, pg))
			return -ENOMEM; /* bytes before this page are written */
		memcpy(p->data + in, (const char *)buf + done, k);
		done += k;
	}
	if (end > rg->size) {
		rg->size = end;
		store_touch_meta(st, n);
	}
	store_now(&n->mtime);
	store_touch_meta(st, n);
	store_touch_data(st, n);
	return 0;
}

int region_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size)
{
	struct ipc_region *rg = n->rg;
	uint64_t keep = pages_for(size);

	if (size > n->set.max_bytes)
		return -EFBIG;
	if (size < rg->size) {
		/* Drop whole pages past the end; zero the tail of the last one. */
		for (uint64_t pg = keep; pg < rg->npages; pg++) {
			if (rg->pages[pg]) {
				ipc_msg_unref(rg->pages[pg]);
				rg->pages[pg] = NULL;
				rg->nalloc--;
				store_uncharge(st, page_charge());
			}
		}
		if (size % IPC_PAGE && keep - 1 < rg->npages && rg->pages[keep - 1]) {
			struct ipc_msg *p = writable_page(st, rg, keep - 1);
			if (!p || mark_dirty(st, rg, keep - 1))
				return -ENOMEM;
			memset(p->data + size % IPC_PAGE, 0, IPC_PAGE - size % IPC_PAGE);
		}
		if (keep < rg->trunc_from && st->sync != IPC_SYNC_MEMORY)
			rg->trunc_from = keep;
	}
	rg->size = size;
	store_now(&n->mtime);
	n->ctime = n->mtime;
	store_touch_meta(st, n);
	store_touch_data(st, n);
	return 0;
}

int region_load_page(struct ipc_store *st, struct ipc_node *n, uint64_t pgno, const void *data,
		     size_t len)
{
	struct ipc_region *rg = n->rg;
	struct ipc_msg *p;

	if (!rg || len > IPC_PAGE || pgno >= pages_for(rg->size) || grow_table(rg, pgno + 1) ||
	    rg->pages[pgno])
		return -EINVAL;
	if (store_charge(st, page_charge()))
		return -ENOSPC;
	p = ipc_msg_new(NULL, 0, IPC_PAGE);
	if (!p) {
		store_uncharge(st, page_charge());
		return -ENOMEM;
	}
	memcpy(p->data, data, len);
	memset(p->data + len, 0, IPC_PAGE - len);
	p->len = IPC_PAGE;
	rg->pages[pgno] = p;
	rg->nalloc++;
	return 0;
}

/* --- the kind --- */

static void shm_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.framing = 0;
	n->set.max_messages = 0;
	n->set.max_bytes = st->lim.max_obj_bytes;
	/* Without memory the node has no region; every operation fails. */
	region_init(n);
}

static int shm_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	(void)w;
	if (!h->node->rg)
		return -ENOMEM;
	if ((oflags & O_TRUNC) && (h->acc & IPC_ACC_WRITE))
		return region_truncate(h->st, h->node, 0);
	return 0;
}

static int shm_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		    struct ipc_rdres *rd)
{
	(void)h;
	(void)size;
	(void)oflags;
	(void)w;
	(void)rd;
	return -ESPIPE; /* regions are read at an offset (ipc_pread) */
}

static int shm_pread(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m;
	int r = region_read(h->node, off, size, &m);

	if (r <= 0)
		return r;
	rdres_add(rd, m, 0, (size_t)r);
	ipc_msg_unref(m);
	return 0;
}

static int shm_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off,
		     int oflags, struct ipc_waiter *w, size_t *written)
{
	int r;

	(void)w;
	if (oflags & O_APPEND)
		off = h->node->rg->size;
	r = region_write(h->st, h->node, off, buf, len);
	if (!r)
		*written = len;
	return r;
}

static void shm_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	(void)h;
	(void)rd; /* a copy was read; nothing to give back */
}

static unsigned shm_poll(struct ipc_handle *h)
{
	(void)h;
	return POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
}

static uint64_t shm_size(const struct ipc_node *n)
{
	return n->rg ? n->rg->size : 0;
}

static int shm_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size)
{
	return n->rg ? region_truncate(st, n, size) : -ENOMEM;
}

const struct ipc_kind_ops shm_ops = {
	.init = shm_init,
	.open = shm_open,
	.read = shm_read,
	.pread = shm_pread,
	.unread = shm_unread,
	.write = shm_write,
	.poll = shm_poll,
	.size = shm_size,
	.truncate = shm_truncate,
};
