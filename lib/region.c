/* region.c - shared memory regions: pages, copy-on-write, dirty tracking. */
#include "lib/region.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/err.h"
#include "lib/kind.h"

static uint64_t pages_for(uint64_t size)
{
	return (size + IPC_PAGE - 1) / IPC_PAGE;
}

#define HUGE (2u << 20)

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
	if (rg->base)
		munmap(rg->base, rg->reserved);
	store_uncharge(st, rg->nalloc * IPC_PAGE);
	free(rg->present);
	free(rg->dirty);
	free(rg->dirtyv);
	free(rg);
	n->rg = NULL;
}

/* Makes the mapping and the page arrays cover `bytes`. */
static int reserve(struct ipc_region *rg, uint64_t bytes)
{
	uint64_t want = rg->reserved ? rg->reserved : 4 * HUGE, np;
	uint8_t *present, *dirty;
	void *base;

	if (bytes <= rg->reserved)
		return 0;
	while (want < bytes)
		want *= 2;
	if (rg->base)
		base = mremap(rg->base, rg->reserved, want, MREMAP_MAYMOVE);
	else
		base = mmap(NULL, want, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	madvise(base, want, MADV_HUGEPAGE);
	rg->base = base;
	rg->reserved = want;
	np = want / IPC_PAGE;
	present = realloc(rg->present, np);
	if (present)
		rg->present = present;
	dirty = present ? realloc(rg->dirty, np) : NULL;
	if (dirty)
		rg->dirty = dirty;
	if (!present || !dirty)
		return -ENOMEM; /* the mapping grew; the arrays keep their size */
	memset(rg->present + rg->npages, 0, np - rg->npages);
	memset(rg->dirty + rg->npages, 0, np - rg->npages);
	rg->npages = np;
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
		size_t k = IPC_PAGE - (size_t)(pos % IPC_PAGE);
		if (k > size - done)
			k = size - done;
		/* Copy runs of present pages at once; zeros for the holes. */
		if (pg < rg->npages && rg->present[pg]) {
			while (done + k < size && (off + done + k) / IPC_PAGE < rg->npages &&
			       rg->present[(off + done + k) / IPC_PAGE]) {
				size_t more = size - done - k;
				k += more < IPC_PAGE ? more : IPC_PAGE;
			}
			memcpy(m->data + done, rg->base + pos, k);
		} else {
			memset(m->data + done, 0, k);
		}
		done += k;
	}
	m->len = (uint32_t)size;
	*out = m;
	return (int)size;
}

int region_write(struct ipc_store *st, struct ipc_node *n, uint64_t off, const void *buf,
		 size_t len)
{
	struct ipc_region *rg = n->rg;
	uint64_t end = off + len, first, last, need = 0;

	if (len == 0)
		return 0;
	if (end < off || end > n->set.max_bytes)
		return -EFBIG;
	if (reserve(rg, end))
		return -ENOMEM;
	first = off / IPC_PAGE;
	last = (end - 1) / IPC_PAGE;
	for (uint64_t pg = first; pg <= last; pg++)
		need += !rg->present[pg];
	if (store_charge(st, need * IPC_PAGE))
		return -ENOSPC;
	for (uint64_t pg = first; pg <= last; pg++) {
		if (mark_dirty(st, rg, pg)) {
			store_uncharge(st, need * IPC_PAGE);
			return -ENOMEM; /* nothing written yet */
		}
	}
	for (uint64_t pg = first; pg <= last; pg++) {
		if (!rg->present[pg]) {
			rg->present[pg] = 1;
			rg->nalloc++;
		}
	}
	memcpy(rg->base + off, buf, len);
	if (end > rg->size)
		rg->size = end;
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
		uint64_t tail = size % IPC_PAGE;
		/* Zero the tail of the last kept page; release pages past it. */
		if (tail && keep - 1 < rg->npages && rg->present[keep - 1]) {
			if (mark_dirty(st, rg, keep - 1))
				return -ENOMEM;
			memset(rg->base + size, 0, IPC_PAGE - tail);
		}
		for (uint64_t pg = keep; pg < rg->npages; pg++) {
			if (rg->present[pg]) {
				rg->present[pg] = 0;
				rg->nalloc--;
				store_uncharge(st, IPC_PAGE);
			}
		}
		if (keep * IPC_PAGE < rg->reserved)
			madvise(rg->base + keep * IPC_PAGE, rg->reserved - keep * IPC_PAGE,
				MADV_DONTNEED);
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

struct ipc_msg *region_copy_page(struct ipc_region *rg, uint64_t pgno)
{
	struct ipc_msg *p = ipc_msg_new(NULL, 0, IPC_PAGE);

	if (!p)
		return NULL;
	if (pgno < rg->npages && rg->present[pgno])
		memcpy(p->data, rg->base + pgno * IPC_PAGE, IPC_PAGE);
	else
		memset(p->data, 0, IPC_PAGE);
	p->len = IPC_PAGE;
	return p;
}

int region_load_page(struct ipc_store *st, struct ipc_node *n, uint64_t pgno, const void *data,
		     size_t len)
{
	struct ipc_region *rg = n->rg;

	if (!rg || len > IPC_PAGE || pgno >= pages_for(rg->size) ||
	    reserve(rg, (pgno + 1) * IPC_PAGE) || rg->present[pgno])
		return -EINVAL;
	if (store_charge(st, IPC_PAGE))
		return -ENOSPC;
	memcpy(rg->base + pgno * IPC_PAGE, data, len);
	memset(rg->base + pgno * IPC_PAGE + len, 0, IPC_PAGE - len);
	rg->present[pgno] = 1;
	rg->nalloc++;
	return 0;
}

/* --- the kind --- */

static void rgk_init(struct ipc_store *st, struct ipc_node *n)
{
	n->set.framing = 0;
	n->set.max_messages = 0;
	n->set.max_bytes = st->lim.max_obj_bytes;
	/* Without memory the node has no region; every operation fails. */
	region_init(n);
}

static int rgk_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	(void)w;
	if (!h->node->rg)
		return -ENOMEM;
	if ((oflags & O_TRUNC) && (h->acc & IPC_ACC_WRITE))
		return region_truncate(h->st, h->node, 0);
	return 0;
}

static int rgk_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		    struct ipc_rdres *rd)
{
	(void)h;
	(void)size;
	(void)oflags;
	(void)w;
	(void)rd;
	return -ESPIPE; /* regions are read at an offset (ipc_pread) */
}

static int rgk_pread(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m;
	int r = region_read(h->node, off, size, &m);

	if (r <= 0)
		return r;
	rdres_add(rd, m, 0, (size_t)r);
	ipc_msg_unref(m);
	return 0;
}

static int rgk_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off,
		     int oflags, struct ipc_waiter *w, size_t *written)
{
	int r;

	(void)w;
	if (oflags & IPC_O_WRITEBACK) {
		/* Writeback never grows a region: pages past the end are stale
		 * (a truncate, e.g. an O_TRUNC open, raced with the writeback). */
		uint64_t size = h->node->rg->size;
		size_t keep = off >= size ? 0 : (size_t)(size - off < len ? size - off : len);
		r = keep ? region_write(h->st, h->node, off, buf, keep) : 0;
		if (!r)
			*written = len;
		return r;
	}
	if (oflags & O_APPEND)
		off = h->node->rg->size;
	r = region_write(h->st, h->node, off, buf, len);
	if (!r)
		*written = len;
	return r;
}

static void rgk_unread(struct ipc_handle *h, struct ipc_rdres *rd)
{
	(void)h;
	(void)rd; /* a copy was read; nothing to give back */
}

static unsigned rgk_poll(struct ipc_handle *h)
{
	(void)h;
	return POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
}

static uint64_t rgk_size(const struct ipc_node *n)
{
	return n->rg ? n->rg->size : 0;
}

static int rgk_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size)
{
	return n->rg ? region_truncate(st, n, size) : -ENOMEM;
}

const struct ipc_kind_ops shm_ops = {
	.init = rgk_init,
	.open = rgk_open,
	.read = rgk_read,
	.pread = rgk_pread,
	.unread = rgk_unread,
	.write = rgk_write,
	.poll = rgk_poll,
	.size = rgk_size,
	.truncate = rgk_truncate,
};
