/* attrs.h - per-object settings and statistics as user.ipcfs.* xattrs. */
#ifndef IPCFS_LIB_ATTRS_H
#define IPCFS_LIB_ATTRS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/store.h"

/*
 * Names are "user.ipcfs.<key>". Settings (framing, max_messages, max_bytes)
 * may be changed by the object's owner or root; statistics (kind, messages,
 * bytes, in_messages, out_messages, in_bytes, out_bytes, readers, writers,
 * blocked_readers, blocked_writers) are read-only. Values are plain ASCII
 * without a trailing newline; a set value may end in one newline.
 *
 * All functions lock st->lock. Lengths are returned as non-negative ints.
 */

#define IPC_XATTR_PREFIX "user.ipcfs."

/* Copies the value into buf (size 0: just returns the length). Returns the
 * length, -ENODATA (no such attribute), -ERANGE (buf too small), -ENOENT. */
int attr_get(struct ipc_store *st, uint64_t id, const char *name, char *buf, size_t size);

/* The NUL-separated list of names. Returns the length, -ERANGE, -ENOENT. */
int attr_list(struct ipc_store *st, uint64_t id, char *buf, size_t size);

/* Changes a setting. Returns 0, -EINVAL (bad value: nothing changed),
 * -EPERM (not the owner, or a read-only statistic), -EBUSY (framing of a
 * mailbox that is not empty), -ENOTSUP (not an ipcfs attribute), -EEXIST
 * (XATTR_CREATE: they always exist), -ENOENT. */
int attr_set(struct ipc_store *st, uint64_t id, const char *name, const char *value,
	     size_t len, int flags, const struct ipc_cred *cred);

/* Attributes cannot be removed: -EPERM for ipcfs names, -ENODATA others. */
int attr_remove(struct ipc_store *st, uint64_t id, const char *name);

/* Strict parsers (exposed for tests and fuzzing). A decimal number with no
 * sign, spaces or other characters, optionally followed by one '\n', within
 * [min, max]. Returns 0 or -EINVAL. */
int attr_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);
/* "open", "write", "line", "record" (optionally followed by '\n'). 0 or
 * -EINVAL. */
int attr_parse_framing(const char *s, size_t len, uint8_t *out);
const char *attr_framing_name(uint8_t framing);

#endif
