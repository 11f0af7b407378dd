/* status.c - /.ipcfs/stats and /.ipcfs/metrics, synthesized when opened. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcfs-config.h"
#include "lib/err.h"
#include "lib/kind.h"
#include "lib/region.h"

/*
 * Each open of a status file takes a snapshot of the store (under st->lock)
 * into a buffer held by the handle (h->cur); reads are served from it at
 * their offset, so a reader sees one consistent picture. The files are
 * opened direct_io (not cached), so every open shows fresh figures.
 */

struct totals {
	uint64_t objects[IPC_KIND_COUNT], dirs;
	uint64_t queued_msgs, queued_bytes, region_bytes;
	uint64_t blocked_readers, blocked_writers, readers, writers, subscribers, dropped;
	struct ipc_stats io;
};

static void sum(struct ipc_store *st, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	t->io = st->retired;
	for (size_t b = 0; b < st->tab_size; b++) {
		for (struct ipc_node *n = st->id_tab[b]; n; n = n->id_next) {
			if (n->fixed || n->unlinked)
				continue;
			if (n->is_dir) {
				t->dirs++;
				continue;
			}
			t->objects[n->kind]++;
			if (n->kind == IPC_KIND_MBOX || n->kind == IPC_KIND_FIFO) {
				t->queued_msgs += n->kind == IPC_KIND_MBOX ? n->q.count : 0;
				t->queued_bytes += n->q.bytes;
			}
			if (n->rg)
				t->region_bytes += n->rg->nalloc * IPC_PAGE;
			t->blocked_readers += n->readers.n;
			t->blocked_writers += n->space.n + n->openers.n;
			t->readers += n->nreaders;
			t->writers += n->nwriters;
			t->subscribers += n->nsubs;
			t->dropped += n->dropped;
			t->io.in_msgs += n->stats.in_msgs;
			t->io.out_msgs += n->stats.out_msgs;
			t->io.in_bytes += n->stats.in_bytes;
			t->io.out_bytes += n->stats.out_bytes;
		}
	}
}

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		{
			size_t ncap = (o->cap + (size_t)n) * 2;
			char *nb = realloc(o->buf, ncap);
			if (!nb) {
				o->oom = true;
				return;
			}
			o->buf = nb;
			o->cap = ncap;
		}
	}
}

static const char *sync_name(enum ipc_sync s)
{
	return s == IPC_SYNC_FULL ? "full" : s == IPC_SYNC_NORMAL ? "normal" : "memory";
}

static void stats_text(struct ipc_store *st, struct out *o)
{
	struct totals t;
	struct timespec now;
	uint64_t objs = 0;

	sum(st, &t);
	store_now(&now);
	for (int k = 1; k < IPC_KIND_STATUS; k++)
		objs += t.objects[k];
	put(o, "ipcfs %s, up %" PRId64 " s, sync %s\n", IPCFS_VERSION,
	    (int64_t)(now.tv_sec - st->started.tv_sec), sync_name(st->sync));
	put(o, "database: %s", st->db_path ? st->db_path : "none (--memory)");
	if (st->db_path)
		put(o, " (%" PRIu64 " bytes)", st->db_bytes);
	put(o, "\nobjects: %" PRIu64 " (", objs);
	for (int k = 1; k < IPC_KIND_STATUS; k++)
		put(o, "%s%s %" PRIu64, k > 1 ? ", " : "", store_kind_name(k), t.objects[k]);
	put(o, "), directories: %" PRIu64 ", limit %" PRIu64 "\n", t.dirs, st->lim.max_nodes);
	put(o, "memory: %" PRIu64 " of %" PRIu64 " bytes\n", st->mem_used, st->lim.max_memory);
	put(o, "queued: %" PRIu64 " messages, %" PRIu64 " bytes; regions: %" PRIu64 " bytes\n",
	    t.queued_msgs, t.queued_bytes, t.region_bytes);
	put(o, "in: %" PRIu64 " messages, %" PRIu64 " bytes; out: %" PRIu64 " messages, %" PRIu64
	    " bytes\n", t.io.in_msgs, t.io.in_bytes, t.io.out_msgs, t.io.out_bytes);
	put(o, "open: %" PRIu64 " readers, %" PRIu64 " writers, %" PRIu64
	    " subscribers; blocked: %" PRIu64 " readers, %" PRIu64 " writers\n",
	    t.readers, t.writers, t.subscribers, t.blocked_readers, t.blocked_writers);
	put(o, "topics: %" PRIu64 " messages dropped for slow subscribers\n", t.dropped);
	put(o, "commits: %" PRIu64 " ok, %" PRIu64 " failed, last %.3f ms, mean %.3f ms\n",
	    st->commits_ok, st->commits_failed, (double)st->commit_ns_last / 1e6,
	    st->commits_ok ? (double)st->commit_ns_sum / 1e6 / (double)st->commits_ok : 0.0);
	put(o, "database errors: %s\n", st->db_error ? "the last commit FAILED (retrying)" : "none");
}

static void metric(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP ipcfs_%s %s\n# TYPE ipcfs_%s %s\n", name, help, name, type);
}

static void metrics_text(struct ipc_store *st, struct out *o)
{
	struct totals t;

	sum(st, &t);
	metric(o, "objects", "gauge", "Objects by kind.");
	for (int k = 1; k < IPC_KIND_STATUS; k++)
		put(o, "ipcfs_objects{kind=\"%s\"} %" PRIu64 "\n", store_kind_name(k), t.objects[k]);
	metric(o, "directories", "gauge", "User directories.");
	put(o, "ipcfs_directories %" PRIu64 "\n", t.dirs);
	metric(o, "messages_in_total", "counter", "Messages written (mailboxes, topics, events).");
	put(o, "ipcfs_messages_in_total %" PRIu64 "\n", t.io.in_msgs);
	metric(o, "messages_out_total", "counter", "Messages delivered to readers.");
	put(o, "ipcfs_messages_out_total %" PRIu64 "\n", t.io.out_msgs);
	metric(o, "bytes_in_total", "counter", "Payload bytes written to streams.");
	put(o, "ipcfs_bytes_in_total %" PRIu64 "\n", t.io.in_bytes);
	metric(o, "bytes_out_total", "counter", "Payload bytes delivered from streams.");
	put(o, "ipcfs_bytes_out_total %" PRIu64 "\n", t.io.out_bytes);
	metric(o, "messages_queued", "gauge", "Messages queued in mailboxes.");
	put(o, "ipcfs_messages_queued %" PRIu64 "\n", t.queued_msgs);
	metric(o, "bytes_queued", "gauge", "Bytes queued in mailboxes and FIFOs.");
	put(o, "ipcfs_bytes_queued %" PRIu64 "\n", t.queued_bytes);
	metric(o, "region_bytes", "gauge", "Bytes of region pages held.");
	put(o, "ipcfs_region_bytes %" PRIu64 "\n", t.region_bytes);
	metric(o, "blocked_readers", "gauge", "Reads parked waiting for data.");
	put(o, "ipcfs_blocked_readers %" PRIu64 "\n", t.blocked_readers);
	metric(o, "blocked_writers", "gauge", "Writes and opens parked waiting for room.");
	put(o, "ipcfs_blocked_writers %" PRIu64 "\n", t.blocked_writers);
	metric(o, "subscribers", "gauge", "Topic subscriptions.");
	put(o, "ipcfs_subscribers %" PRIu64 "\n", t.subscribers);
	metric(o, "dropped_total", "counter", "Topic messages dropped for slow subscribers.");
	put(o, "ipcfs_dropped_total %" PRIu64 "\n", t.dropped);
	metric(o, "commits_total", "counter", "Database transactions.");
	put(o, "ipcfs_commits_total{result=\"ok\"} %" PRIu64 "\n", st->commits_ok);
	put(o, "ipcfs_commits_total{result=\"failed\"} %" PRIu64 "\n", st->commits_failed);
	metric(o, "commit_seconds", "summary", "Time spent writing committed transactions.");
	put(o, "ipcfs_commit_seconds_sum %.6f\n", (double)st->commit_ns_sum / 1e9);
	put(o, "ipcfs_commit_seconds_count %" PRIu64 "\n", st->commits_ok);
	metric(o, "database_bytes", "gauge", "Database and WAL file size.");
	put(o, "ipcfs_database_bytes %" PRIu64 "\n", st->db_bytes);
	metric(o, "database_error", "gauge", "1 when the last commit failed.");
	put(o, "ipcfs_database_error %d\n", st->db_error ? 1 : 0);
	metric(o, "memory_bytes", "gauge", "Payload bytes charged against the memory limit.");
	put(o, "ipcfs_memory_bytes %" PRIu64 "\n", st->mem_used);
	metric(o, "memory_limit_bytes", "gauge", "The memory limit (--max-memory).");
	put(o, "ipcfs_memory_limit_bytes %" PRIu64 "\n", st->lim.max_memory);
}

static int status_open(struct ipc_handle *h, int oflags, struct ipc_waiter *w)
{
	struct out o = { NULL, 0, 0, false };

	(void)w;
	if (h->acc & IPC_ACC_WRITE)
		return -EPERM;
	(void)oflags;
	if (h->node->id == IPC_STATUS_METRICS_ID)
		metrics_text(h->st, &o);
	else
		stats_text(h->st, &o);
	if (o.oom) {
		free(o.buf);
		return -ENOMEM;
	}
	h->cur = ipc_msg_new(o.buf, o.len, o.len);
	free(o.buf);
	return h->cur ? 0 : -ENOMEM;
}

static int status_read(struct ipc_handle *h, size_t size, int oflags, struct ipc_waiter *w,
		       struct ipc_rdres *rd)
{
	(void)h;
	(void)size;
	(void)oflags;
	(void)w;
	(void)rd;
	return -ESPIPE;
}

static int status_pread(struct ipc_handle *h, uint64_t off, size_t size, struct ipc_rdres *rd)
{
	struct ipc_msg *m = h->cur;

	if (!m || off >= m->len)
		return 0;
	if (size > m->len - off)
		size = (size_t)(m->len - off);
	rdres_add(rd, m, (size_t)off, size);
	return 0;
}

static int status_write(struct ipc_handle *h, const void *buf, size_t len, uint64_t off,
			int oflags, struct ipc_waiter *w, size_t *written)
{
	(void)h;
	(void)buf;
	(void)len;
	(void)off;
	(void)oflags;
	(void)w;
	(void)written;
	return -EPERM;
}

static void status_release(struct ipc_handle *h)
{
	ipc_msg_unref(h->cur);
	h->cur = NULL;
}

static unsigned status_poll(struct ipc_handle *h)
{
	(void)h;
	return POLLIN | POLLRDNORM;
}

static uint64_t status_size(const struct ipc_node *n)
{
	(void)n;
	return 0;
}

const struct ipc_kind_ops status_ops = {
	.open = status_open,
	.read = status_read,
	.pread = status_pread,
	.write = status_write,
	.release = status_release,
	.poll = status_poll,
	.size = status_size,
};
