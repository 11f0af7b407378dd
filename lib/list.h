/* list.h - intrusive circular doubly linked list (header only). */
#ifndef IPCFS_LIB_LIST_H
#define IPCFS_LIB_LIST_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A list head and a list node are the same type. An empty head points to
 * itself. A node that is on no list should be kept initialised (ipc_list_init)
 * so that ipc_list_linked() can tell. No locking: the owner's lock guards it.
 */
struct ipc_list {
	struct ipc_list *next, *prev;
};

#define IPC_LIST_INIT(name) { &(name), &(name) }

#define ipc_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void ipc_list_init(struct ipc_list *l)
{
	l->next = l;
	l->prev = l;
}

static inline bool ipc_list_empty(const struct ipc_list *l)
{
	return l->next == l;
}

/* True when the node is on a list (it was initialised, then added). */
static inline bool ipc_list_linked(const struct ipc_list *n)
{
	return n->next != n && n->next != NULL;
}

static inline void ipc_list_insert_after(struct ipc_list *pos, struct ipc_list *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

static inline void ipc_list_add_tail(struct ipc_list *head, struct ipc_list *n)
{
	ipc_list_insert_after(head->prev, n);
}

static inline void ipc_list_add_head(struct ipc_list *head, struct ipc_list *n)
{
	ipc_list_insert_after(head, n);
}

/* Unlinks n and leaves it initialised (self-linked). */
static inline void ipc_list_del(struct ipc_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n;
	n->prev = n;
}

/* Moves every node of src to the tail of dst; src is left empty. */
static inline void ipc_list_splice_tail(struct ipc_list *dst, struct ipc_list *src)
{
	if (ipc_list_empty(src))
		return;
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	ipc_list_init(src);
}

#define ipc_list_first(head, type, member) \
	(ipc_list_empty(head) ? NULL : ipc_container_of((head)->next, type, member))

#define ipc_list_for_each(pos, head) \
	for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define ipc_list_for_each_safe(pos, tmp, head) \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
