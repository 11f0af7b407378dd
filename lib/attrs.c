/* attrs.c - user.ipcfs.* settings and statistics. */
#include "lib/attrs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "lib/kind.h"
#include "lib/region.h"

enum {
	A_DIR = 1 << IPC_KIND_DIR,
	A_MBOX = 1 << IPC_KIND_MBOX,
	A_FIFO = 1 << IPC_KIND_FIFO,
	A_SHM = 1 << IPC_KIND_SHM,
	A_SEM = 1 << IPC_KIND_SEM,
	A_EVENT = 1 << IPC_KIND_EVENT,
	A_TOPIC = 1 << IPC_KIND_TOPIC,
};
#define A_MSGS (A_MBOX | A_TOPIC)
#define A_STREAM (A_MBOX | A_FIFO | A_SEM | A_EVENT | A_TOPIC)
#define A_OBJ (A_STREAM | A_SHM)

enum akey {
	K_KIND,
	K_FRAMING,
	K_MAX_MESSAGES,
	K_MAX_BYTES,
	K_MESSAGES,
	K_BYTES,
	K_IN_MESSAGES,
	K_OUT_MESSAGES,
	K_IN_BYTES,
	K_OUT_BYTES,
	K_READERS,
	K_WRITERS,
	K_BLOCKED_READERS,
	K_BLOCKED_WRITERS,
	K_SIZE,
	K_PAGES,
	K_UNDO,
	K_LATCHED,
	K_RETAIN,
	K_OVERFLOW,
	K_VALUE,
	K_SET,
	K_SUBSCRIBERS,
	K_DROPPED,
};

static const struct attr_def {
	const char *key;
	enum akey id;
	unsigned kinds;
	bool setting;
} defs[] = {
	{ "kind", K_KIND, A_OBJ | A_DIR, false },
	{ "framing", K_FRAMING, A_MSGS, true },
	{ "max_messages", K_MAX_MESSAGES, A_MSGS, true },
	{ "max_bytes", K_MAX_BYTES, A_MBOX | A_FIFO | A_SHM | A_EVENT | A_TOPIC, true },
	{ "undo", K_UNDO, A_SEM, true },
	{ "latched", K_LATCHED, A_EVENT, true },
	{ "retain", K_RETAIN, A_TOPIC, true },
	{ "overflow", K_OVERFLOW, A_TOPIC, true },
	{ "value", K_VALUE, A_SEM, true },
	{ "set", K_SET, A_EVENT, false },
	{ "messages", K_MESSAGES, A_MSGS, false },
	{ "bytes", K_BYTES, A_MBOX | A_FIFO, false },
	{ "size", K_SIZE, A_SHM, false },
	{ "pages", K_PAGES, A_SHM, false },
	{ "subscribers", K_SUBSCRIBERS, A_TOPIC, false },
	{ "dropped", K_DROPPED, A_TOPIC, false },
	{ "in_messages", K_IN_MESSAGES, A_MSGS | A_EVENT | A_SEM, false },
	{ "out_messages", K_OUT_MESSAGES, A_MSGS | A_EVENT | A_SEM, false },
	{ "in_bytes", K_IN_BYTES, A_MBOX | A_FIFO | A_EVENT | A_TOPIC, false },
	{ "out_bytes", K_OUT_BYTES, A_MBOX | A_FIFO | A_EVENT | A_TOPIC, false },
	{ "readers", K_READERS, A_STREAM, false },
	{ "writers", K_WRITERS, A_STREAM, false },
	{ "blocked_readers", K_BLOCKED_READERS, A_STREAM, false },
	{ "blocked_writers", K_BLOCKED_WRITERS, A_STREAM, false },
};

static const char *const framings[] = { "open", "write", "line", "record" };

const char *attr_framing_name(uint8_t framing)
{
	return framing < sizeof(framings) / sizeof(framings[0]) ? framings[framing] : "?";
}

/* Strips one trailing newline. */
static size_t trim(const char *s, size_t len)
{
	return len && s[len - 1] == '\n' ? len - 1 : len;
}

int attr_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	len = trim(s, len);
	if (len == 0)
		return -EINVAL;
	while (len > 1 && s[0] == '0') {
		s++;
		len--;
	}
	if (len > 20)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int attr_parse_framing(const char *s, size_t len, uint8_t *out)
{
	len = trim(s, len);
	for (size_t i = 0; i < sizeof(framings) / sizeof(framings[0]); i++) {
		if (strlen(framings[i]) == len && memcmp(s, framings[i], len) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct attr_def *find(const char *name, unsigned kindbit)
{
	const char *key;

	if (strncmp(name, IPC_XATTR_PREFIX, strlen(IPC_XATTR_PREFIX)) != 0)
		return NULL;
	key = name + strlen(IPC_XATTR_PREFIX);
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strcmp(defs[i].key, key) == 0 && (defs[i].kinds & kindbit))
			return &defs[i];
	return NULL;
}

static struct ipc_node *visible(struct ipc_store *st, uint64_t id)
{
	struct ipc_node *n = store_node(st, id);

	if (!n || (n->fixed && n->id != IPC_ROOT_ID && !store_kind_enabled(n->kind)))
		return NULL;
	return n;
}

static unsigned kind_bit(const struct ipc_node *n)
{
	return n->is_dir ? A_DIR : 1u << n->kind;
}

/* Formats an attribute's value (lock held). */
static int format(const struct ipc_node *n, enum akey id, char *out, size_t size)
{
	uint64_t v;

	switch (id) {
	case K_KIND:
		return snprintf(out, size, "%s", n->is_dir ? "dir" : store_kind_name(n->kind));
	case K_FRAMING:
		return snprintf(out, size, "%s", attr_framing_name(n->set.framing));
	case K_MAX_MESSAGES: v = n->set.max_messages; break;
	case K_MAX_BYTES: v = n->set.max_bytes; break;
	case K_MESSAGES: v = n->q.count; break;
	case K_BYTES: v = n->q.bytes; break;
	case K_IN_MESSAGES: v = n->stats.in_msgs; break;
	case K_OUT_MESSAGES: v = n->stats.out_msgs; break;
	case K_IN_BYTES: v = n->stats.in_bytes; break;
	case K_OUT_BYTES: v = n->stats.out_bytes; break;
	case K_READERS: v = n->nreaders; break;
	case K_WRITERS: v = n->nwriters; break;
	case K_BLOCKED_READERS: v = n->readers.n; break;
	case K_BLOCKED_WRITERS: v = n->space.n + n->openers.n; break;
	case K_SIZE: v = n->rg ? n->rg->size : 0; break;
	case K_UNDO: v = n->set.undo; break;
	case K_LATCHED: v = n->set.latched; break;
	case K_RETAIN: v = n->set.retain; break;
	case K_OVERFLOW:
		return snprintf(out, size, "%s",
				n->set.overflow == IPC_OVERFLOW_BLOCK ? "block" : "drop");
	case K_VALUE: v = n->value; break;
	case K_SET: v = n->ev_set; break;
	case K_SUBSCRIBERS: v = n->nsubs; break;
	case K_DROPPED: v = n->dropped; break;
	case K_PAGES: v = n->rg ? n->rg->nalloc : 0; break;
	default: return -ENODATA;
	}
	return snprintf(out, size, "%" PRIu64, v);
}

int attr_get(struct ipc_store *st, uint64_t id, const char *name, char *buf, size_t size)
{
	const struct attr_def *d;
	struct ipc_node *n;
	char tmp[64];
	int len;

	store_lock(st);
	n = visible(st, id);
	if (!n) {
		len = -ENOENT;
		goto out;
	}
	d = find(name, kind_bit(n));
	if (!d) {
		len = -ENODATA;
		goto out;
	}
	len = format(n, d->id, tmp, sizeof(tmp));
	if (len >= 0 && size) {
		if ((size_t)len > size)
			len = -ERANGE;
		else
			memcpy(buf, tmp, (size_t)len);
	}
out:
	store_unlock(st);
	return len;
}

int attr_list(struct ipc_store *st, uint64_t id, char *buf, size_t size)
{
	struct ipc_node *n;
	size_t len = 0;
	int r;

	store_lock(st);
	n = visible(st, id);
	if (!n) {
		r = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		size_t l;
		if (!(defs[i].kinds & kind_bit(n)))
			continue;
		l = strlen(IPC_XATTR_PREFIX) + strlen(defs[i].key) + 1;
		if (size && len + l <= size)
			snprintf(buf + len, l, "%s%s", IPC_XATTR_PREFIX, defs[i].key);
		len += l;
	}
	r = size && len > size ? -ERANGE : (int)len;
out:
	store_unlock(st);
	return r;
}

/* Framing may change while nothing is queued (mailbox), being written or
 * being read. */
static bool framing_free(const struct ipc_node *n)
{
	struct ipc_list *pos;

	if ((n->kind == IPC_KIND_MBOX && n->q.count) || n->pending_bytes)
		return false;
	ipc_list_for_each(pos, &n->handles)
		if (ipc_container_of(pos, struct ipc_handle, node_link)->cur)
			return false;
	return true;
}

int attr_set(struct ipc_store *st, uint64_t id, const char *name, const char *value,
	     size_t len, int flags, const struct ipc_cred *cred)
{
	const struct attr_def *d;
	struct ipc_node *n;
	uint64_t v = 0;
	uint8_t f = 0;
	int r;

	store_lock(st);
	n = visible(st, id);
	if (!n) {
		r = -ENOENT;
		goto out;
	}
	d = find(name, kind_bit(n));
	if (!d) {
		r = -ENOTSUP;
		goto out;
	}
	if (!d->setting || (cred->uid != 0 && cred->uid != n->uid)) {
		r = -EPERM;
		goto out;
	}
	if (flags & XATTR_CREATE) {
		r = -EEXIST;
		goto out;
	}
	switch (d->id) {
	case K_FRAMING:
		r = attr_parse_framing(value, len, &f);
		if (!r && f != n->set.framing && !framing_free(n))
			r = -EBUSY;
		if (!r)
			n->set.framing = f;
		break;
	case K_MAX_MESSAGES:
		r = attr_parse_u64(value, len, 1, st->lim.max_obj_messages, &v);
		if (!r)
			n->set.max_messages = v;
		break;
	case K_UNDO:
	case K_LATCHED:
		r = attr_parse_u64(value, len, 0, 1, &v);
		if (!r && d->id == K_UNDO && v != n->set.undo && n->held_undo)
			r = -EBUSY; /* units are held under the old rule */
		if (!r && d->id == K_UNDO)
			n->set.undo = v != 0;
		else if (!r)
			n->set.latched = v != 0;
		break;
	case K_RETAIN:
		r = attr_parse_u64(value, len, 0, st->lim.max_obj_messages, &v);
		if (!r)
			n->set.retain = v;
		break;
	case K_OVERFLOW:
		r = 0;
		len = len && value[len - 1] == '\n' ? len - 1 : len;
		if (len == 4 && !memcmp(value, "drop", 4))
			n->set.overflow = IPC_OVERFLOW_DROP;
		else if (len == 5 && !memcmp(value, "block", 5))
			n->set.overflow = IPC_OVERFLOW_BLOCK;
		else
			r = -EINVAL;
		break;
	case K_VALUE:
		r = attr_parse_u64(value, len, 0, 2147483647ULL, &v);
		if (!r)
			n->value = v;
		break;
	case K_MAX_BYTES:
		r = attr_parse_u64(value, len, 1, st->lim.max_obj_bytes, &v);
		/* A region's limit cannot go below its size. */
		if (!r && n->rg && v < n->rg->size)
			r = -EINVAL;
		if (!r)
			n->set.max_bytes = v;
		break;
	default:
		r = -EPERM;
		break;
	}
	if (!r) {
		store_now(&n->ctime);
		store_touch_meta(st, n);
		ipc_object_changed(st, n);
	}
out:
	store_unlock(st);
	return r;
}

int attr_remove(struct ipc_store *st, uint64_t id, const char *name)
{
	struct ipc_node *n;
	int r;

	store_lock(st);
	n = visible(st, id);
	if (!n)
		r = -ENOENT;
	else if (find(name, kind_bit(n)))
		r = -EPERM;
	else
		r = -ENODATA;
	store_unlock(st);
	return r;
}
