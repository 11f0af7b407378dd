/* wl_dur.c - ipcfs-bench workload e: durable messages (ipcfs --sync full vs SQLite), and the cost of --sync normal. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

/*
 * W writer processes, each appending 64-byte messages for plan.e_secs
 * seconds, each a durable commit before the next:
 *   ipcfs --sync full: each writer its own mailbox (write framing); a write
 *     returns once its message is committed (the daemon's group commit).
 *   SQLite: one database file, each writer its own connection and its own
 *     table, one INSERT = one transaction, synchronous=FULL; writers are
 *     serialized by SQLite's file lock (busy_timeout 60 s). Rollback journal
 *     (SQLite's default) and WAL.
 * Figure: messages committed by all writers / (last writer's end - go).
 */

#define MSG 64

enum dv { DV_IPCFS, DV_SQL_DELETE, DV_SQL_WAL, NDV };

struct durjob {
	enum dv v;
	int writers;
	char path[64][PATH_MAX]; /* mailboxes; [0]: the database */
};

static void ipcfs_writer(struct durjob *j, int idx, struct wres *r)
{
	char msg[MSG];
	uint64_t n = 0;
	double end;
	int fd = open(j->path[idx], O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		child_fail(r, "open %s: %s", j->path[idx], strerror(errno));
	memset(msg, 'm', sizeof(msg));
	child_ready();
	end = now() + plan.e_secs;
	while (now() < end) {
		ssize_t k;
		memcpy(msg, &n, sizeof(n));
		k = write(fd, msg, sizeof(msg));
		if (k != (ssize_t)sizeof(msg))
			child_fail(r, "write: %s", k < 0 ? strerror(errno) : "short");
		n++;
	}
	r->t_end = now();
	r->count = n;
	close(fd);
}

static void sql_writer(struct durjob *j, int idx, struct wres *r)
{
	char sql[128], msg[MSG];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	double end;
	int rc;

	rc = sqlite3_open_v2(j->path[0], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 60000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	snprintf(sql, sizeof(sql), "INSERT INTO t%d(data) VALUES(?)", idx);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		child_fail(r, "sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	memset(msg, 'm', sizeof(msg));
	child_ready();
	end = now() + plan.e_secs;
	while (now() < end) {
		memcpy(msg, &n, sizeof(n));
		sqlite3_bind_blob(st, 1, msg, sizeof(msg), SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			child_fail(r, "sqlite insert: %s", sqlite3_errmsg(db));
		sqlite3_reset(st);
		n++;
	}
	r->t_end = now();
	r->count = n;
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void child(int idx, void *arg, struct wres *r)
{
	struct durjob *j = arg;

	if (j->v == DV_IPCFS)
		ipcfs_writer(j, idx, r);
	else
		sql_writer(j, idx, r);
}

static void sql_remove(const char *db)
{
	static const char *const sfx[] = { "", "-journal", "-wal", "-shm" };
	char p[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", db, sfx[i]);
		unlink(p);
	}
}

static int sql_create(struct durjob *j, char *err, size_t len)
{
	sqlite3 *db = NULL;
	char sql[128], name[64];
	int rc;

	fresh_name(name, sizeof(name), "sqlite");
	snprintf(j->path[0], sizeof(j->path[0]), "%s/%s.db", cfg.tmp, name);
	rc = sqlite3_open(j->path[0], &db);
	if (rc == SQLITE_OK && j->v == DV_SQL_WAL)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	for (int i = 0; i < j->writers && rc == SQLITE_OK; i++) {
		snprintf(sql, sizeof(sql), "CREATE TABLE t%d(id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
			 i);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK)
		snprintf(err, len, "sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int dur_run(struct durjob *j, double *rate, char *err, size_t len)
{
	struct inst *in = NULL;
	struct run run = { 0 };
	const char *ierr = NULL;
	uint64_t total = 0;
	int r = 0, made = 0;

	if (j->v == DV_IPCFS) {
		char name[64];
		in = inst_shared("full", &ierr);
		if (!in) {
			snprintf(err, len, "%s", ierr);
			return -1;
		}
		for (; made < j->writers && !r; made++) {
			fresh_name(name, sizeof(name), "mbox/dur");
			inst_path(in, name, j->path[made], sizeof(j->path[made]));
			r = make_obj(j->path[made]);
			if (!r)
				r = set_xattr(j->path[made], "framing", "write");
			if (!r)
				r = set_xattr(j->path[made], "max_messages", "1000000");
			if (r)
				snprintf(err, len, "creating %s: %s", name, strerror(-r));
		}
	} else {
		r = sql_create(j, err, len);
	}
	if (!r) {
		r = run_procs(j->writers, child, j, in, cfg.timeout, &run);
		if (r)
			snprintf(err, len, "%s", run.err);
		for (int i = 0; !r && i < j->writers; i++)
			total += run.res[i].count;
		if (!r)
			*rate = (double)total / (run_end(&run, 0, j->writers) - run.t0);
		run_free(&run);
	}
	if (j->v == DV_IPCFS)
		for (int i = 0; i < made; i++)
			unlink(j->path[i]);
	else
		sql_remove(j->path[0]);
	return r;
}

/* e, part 2: the same ipcfs workload on --sync normal and on --memory. */
static void normal_vs_memory(void)
{
	struct group *ga, *gb;
	struct row *ra[2], *rb[2];
	const char *names[2] = { "normal", "memory" };

	ga = group_new('e', HIGHER, "msg/s", "--sync normal vs --memory: workload a, 64 B, write framing");
	gb = group_new('e', HIGHER, "MB/s", "--sync normal vs --memory: workload b, 1 MiB writes, FIFO");
	ra[0] = row_ipcfs(ga, "ipcfs --db, --sync normal");
	ra[1] = row_ref(ga, "ipcfs --memory");
	rb[0] = row_ipcfs(gb, "ipcfs --db, --sync normal");
	rb[1] = row_ref(gb, "ipcfs --memory");
	group_note(ga, "the ratio is normal/memory: what the write-behind database costs.");
	for (int rep = 0; rep < cfg.reps; rep++) {
		progress("e. --sync normal vs --memory: repetition %d/%d", rep + 1, cfg.reps);
		for (int v = 0; v < 2; v++) {
			char err[512];
			const char *ierr = NULL;
			struct inst *in = inst_shared(names[v], &ierr);
			double x = 0;

			if (!in) {
				row_err(ra[v], "%s", ierr);
				row_err(rb[v], "%s", ierr);
				continue;
			}
			if (row_live(ra[v])) {
				if (msg_mbox_run(in, 64, plan.a_fuse[0], &x, err, sizeof(err)))
					row_err(ra[v], "%s", err);
				else
					row_add(ra[v], x);
			}
			if (row_live(rb[v])) {
				if (stream_fifo_run(in, 1 * MiB, plan.b_total[1], &x, err, sizeof(err)))
					row_err(rb[v], "%s", err);
				else
					row_add(rb[v], x);
			}
		}
	}
}

void wl_durability(void)
{
	static const int writers[3] = { 1, 8, 64 };
	static const char *const labels[NDV] = {
		"ipcfs --sync full, a mailbox per writer",
		"SQLite, rollback journal, synchronous=FULL",
		"SQLite, WAL, synchronous=FULL",
	};

	for (int w = 0; w < 3; w++) {
		struct group *g = group_new('e', HIGHER, "msg/s",
					    "durable 64 B messages, %d writer process%s", writers[w],
					    writers[w] > 1 ? "es" : "");
		struct row *rows[NDV];

		for (int v = 0; v < NDV; v++)
			rows[v] = v == DV_IPCFS ? row_ipcfs(g, "%s", labels[v]) : row_ref(g, "%s", labels[v]);
		if (w == 0)
			group_note(g, "each message durable before the writer's next one; SQLite: one INSERT"
				      " transaction per message, one database file, a connection and a table"
				      " per writer (SQLite's lock serializes the writers); %.1f s per run.",
				   plan.e_secs);
		for (int rep = 0; rep < cfg.reps; rep++) {
			progress("e. durability, %d writers: repetition %d/%d", writers[w], rep + 1, cfg.reps);
			for (int v = 0; v < NDV; v++) {
				struct durjob *j;
				char err[512];
				double rate = 0;

				if (!row_live(rows[v]))
					continue;
				j = calloc(1, sizeof(*j));
				if (!j) {
					row_err(rows[v], "out of memory");
					continue;
				}
				j->v = (enum dv)v;
				j->writers = writers[w];
				if (dur_run(j, &rate, err, sizeof(err)))
					row_err(rows[v], "%s", err);
				else
					row_add(rows[v], rate);
				free(j);
			}
		}
	}
	normal_vs_memory();
}
