/* region.h - shared memory regions: a sized, sparse array of pages. */
#ifndef IPCFS_LIB_REGION_H
#define IPCFS_LIB_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/msg.h"

/*
 * A region (shm/NAME) is a regular, seekable file. The kernel's page cache is
 * what programs map and share; the daemon holds the authoritative copy that
 * serves reads of pages not cached and that is persisted. The copy lives in
 * one anonymous mapping per region (transparent huge pages where the kernel
 * allows), reserved ahead of the size and grown with mremap; a page never
 * written is not present (reads as zeros, costs no memory).
 *
 * Dirty tracking: the page numbers changed since the last snapshot (each
 * listed once), and the lowest page number a truncate removed. A snapshot
 * copies dirty pages under the store lock. Every function needs st->lock
 * held (the region belongs to a node of a store).
 */
#define IPC_PAGE 4096u

struct ipc_region {
	uint64_t size;            /* file size in bytes */
	char *base;               /* anonymous mapping of `reserved` bytes */
	uint64_t reserved;
	uint64_t npages;          /* slots in present[] and dirty[] */
	uint8_t *present;         /* [npages] page has been written */
	uint64_t nalloc;          /* present pages (memory charged) */
	uint8_t *dirty;           /* [npages] page listed in dirtyv */
	uint64_t *dirtyv;         /* page numbers changed since the last save */
	size_t ndirty, capdirty;
	uint64_t trunc_from;      /* pages >= this were dropped; UINT64_MAX none */
};

struct ipc_store;
struct ipc_node;

/* Allocates an empty region for n (size 0). Returns 0 or -ENOMEM. */
int region_init(struct ipc_node *n);
/* Frees pages and memory charge. */
void region_fini(struct ipc_store *st, struct ipc_node *n);

/* Copies up to size bytes at off into a new buffer (*out, one reference;
 * NULL when nothing is read, at or past the end). Returns bytes or -ENOMEM. */
int region_read(struct ipc_node *n, uint64_t off, size_t size, struct ipc_msg **out);

/* Writes len bytes at off, growing the file when off + len passes its end.
 * Returns 0, -EFBIG (past max_bytes: nothing written), -ENOSPC (store memory
 * full: nothing written), -ENOMEM. */
int region_write(struct ipc_store *st, struct ipc_node *n, uint64_t off, const void *buf,
		 size_t len);

/* Sets the size (zero-filling growth, discarding past a shrink). Returns 0,
 * -EFBIG (past max_bytes: unchanged), -ENOMEM. */
int region_truncate(struct ipc_store *st, struct ipc_node *n, uint64_t size);

/* A copy of page pgno (zeros when not present), for a snapshot. NULL when
 * out of memory. */
struct ipc_msg *region_copy_page(struct ipc_region *rg, uint64_t pgno);

/* Loads one page from the database (pgno within size). 0, -EINVAL, -ENOSPC. */
int region_load_page(struct ipc_store *st, struct ipc_node *n, uint64_t pgno, const void *data,
		     size_t len);

#endif
