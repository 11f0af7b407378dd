/* test-persist.c - unit tests of lib/persist.c on real SQLite files: save, reload, refusals. */
#include "tests/unit/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/persist.h"

#define BUF 256

/* A temporary directory with one database path, the store and persistence
 * over it, and waiters the writer thread may complete. */
struct pfix {
	char dir[64];
	char path[128];
	struct ipc_store *st;
	struct ipc_persist *p;
	struct t_waiter w[2];
};

static int setup(void **state)
{
	struct pfix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/ipcfs-test-persist.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/ipcfs.db", f->dir);
	for (int i = 0; i < 2; i++)
		t_waiter_init(&f->w[i], NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct pfix *f = *state;
	struct dirent *de;
	DIR *d;

	persist_close(f->p);
	store_free(f->st);
	for (int i = 0; i < 2; i++)
		t_waiter_fini(&f->w[i]);
	d = opendir(f->dir);
	while (d && (de = readdir(d))) {
		char p[400];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Opens (creating) the database into a new store; the writer thread is
 * started only when start is true. */
static void db_open(struct pfix *f, enum ipc_sync sync, bool start)
{
	struct ipc_limits l = t_limits();
	char err[256] = "";

	assert_null(f->st);
	f->st = t_store_lim(&l, sync, NULL);
	for (int i = 0; i < 2; i++)
		f->w[i].st = f->st;
	if (persist_open(f->path, sync, &f->p, err, sizeof(err)) != 0)
		fail_msg("persist_open: %s", err);
	assert_non_null(f->p);
	err[0] = '\0';
	if (persist_load(f->p, f->st, err, sizeof(err)) != 0)
		fail_msg("persist_load: %s", err);
	if (start)
		assert_int_equal(persist_start(f->p, f->st), 0);
}

static void db_start(struct pfix *f)
{
	assert_int_equal(persist_start(f->p, f->st), 0);
}

/* Commits, stops and closes; frees the store. */
static void db_close(struct pfix *f)
{
	assert_int_equal(persist_close(f->p), 0);
	f->p = NULL;
	store_free(f->st);
	f->st = NULL;
}

/* --- operations that may wait for a commit --- */

static void put_sync(struct pfix *f, struct ipc_handle *h, const char *s)
{
	struct t_waiter *tw = &f->w[0];
	size_t n = 0;
	int r;

	t_waiter_reset(tw);
	r = ipc_write(h, s, strlen(s), 0, 0, &tw->w, &n);
	if (r == IPC_E_PARKED) {
		t_waiter_wait(tw);
		assert_int_equal(tw->result, (int)strlen(s));
		assert_true(tw->lock_was_free);
		ipc_waiter_end(&tw->w, true);
	} else {
		assert_int_equal(r, 0);
		assert_int_equal(n, strlen(s));
	}
}

static void flush_sync(struct pfix *f, struct ipc_handle *h)
{
	struct t_waiter *tw = &f->w[0];
	int r;

	t_waiter_reset(tw);
	r = ipc_flush(h, &h->cred, &tw->w);
	if (r == IPC_E_PARKED) {
		t_waiter_wait(tw);
		assert_int_equal(tw->result, 0);
		ipc_waiter_end(&tw->w, true);
	} else {
		assert_int_equal(r, 0);
	}
}

static void fsync_sync(struct pfix *f, struct ipc_handle *h)
{
	struct t_waiter *tw = &f->w[0];
	int r;

	t_waiter_reset(tw);
	r = ipc_fsync(h, &tw->w);
	if (r == IPC_E_PARKED) {
		t_waiter_wait(tw);
		assert_int_equal(tw->result, 0);
		ipc_waiter_end(&tw->w, true);
	} else {
		assert_int_equal(r, 0);
	}
}

/* Open framing: one message through one open, committed on close. */
static void send_open(struct pfix *f, uint64_t id, const char *s)
{
	struct ipc_handle *w = t_open(f->st, id, O_WRONLY);

	put_sync(f, w, s);
	flush_sync(f, w);
	ipc_release(w);
}

static void expect_read(struct ipc_handle *r, size_t size, const char *s)
{
	char buf[BUF];

	assert_int_equal(t_read(r, size, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
}

static void expect_open(struct ipc_store *st, uint64_t id, const char *s)
{
	struct ipc_handle *r = t_open(st, id, O_RDONLY);

	expect_read(r, BUF - 1, s);
	expect_read(r, BUF - 1, "");
	ipc_release(r);
}

static uint64_t lookup(struct ipc_store *st, uint64_t parent, const char *name, struct stat *sb)
{
	assert_int_equal(store_lookup(st, parent, name, sb), 0);
	return sb->st_ino;
}

static void expect_attr(struct ipc_store *st, uint64_t id, const char *key, const char *v)
{
	char name[64], buf[64] = { 0 };

	snprintf(name, sizeof(name), IPC_XATTR_PREFIX "%s", key);
	assert_int_equal(attr_get(st, id, name, buf, sizeof(buf) - 1), (int)strlen(v));
	assert_string_equal(buf, v);
}

/* --- direct SQLite access --- */

static sqlite3 *sql_open(const char *path, int flags)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		fail_msg("cannot open %s with sqlite3", path);
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		print_error("sqlite: %s: %s\n", sql, msg ? msg : "?");
	sqlite3_free(msg);
	assert_int_equal(rc, SQLITE_OK);
}

/* Runs statements on the file with a connection of our own. */
static void sql_run(const char *path, const char *sql)
{
	sqlite3 *db = sql_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	sql_exec(db, sql);
	sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
}

/* The messages rows of an object, in sequence order: "skip:data;..." */
static void sql_messages(const char *path, uint64_t obj, char *out, size_t cap)
{
	sqlite3 *db = sql_open(path, SQLITE_OPEN_READONLY);
	sqlite3_stmt *s = NULL;
	size_t n = 0;

	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT skip, data FROM messages WHERE obj=? ORDER BY seq",
					    -1, &s, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)obj);
	while (sqlite3_step(s) == SQLITE_ROW) {
		int r = snprintf(out + n, cap - n, "%d:%.*s;", sqlite3_column_int(s, 0),
				 sqlite3_column_bytes(s, 1), (const char *)sqlite3_column_blob(s, 1));
		assert_true(r > 0 && (size_t)r < cap - n);
		n += (size_t)r;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static int sql_count(const char *path, const char *sql)
{
	sqlite3 *db = sql_open(path, SQLITE_OPEN_READONLY);
	sqlite3_stmt *s = NULL;
	int v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* --- file contents --- */

struct blob {
	unsigned char *data;
	size_t len;
};

static struct blob slurp(const char *path)
{
	struct blob b = { NULL, 0 };
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	b.len = (size_t)sb.st_size;
	b.data = malloc(b.len + 1);
	assert_non_null(b.data);
	assert_int_equal(pread(fd, b.data, b.len, 0), (ssize_t)b.len);
	close(fd);
	return b;
}

static void spit(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* persist_open must refuse the file with -EINVAL and leave it as it was. */
static void expect_refused(struct pfix *f)
{
	struct blob before = slurp(f->path), after;
	struct ipc_persist *p = NULL;
	char err[256] = "";

	assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p, err, sizeof(err)), -EINVAL);
	assert_null(p);
	/* with a reason for the user */
	assert_true(strlen(err) > 0);
	after = slurp(f->path);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.data, before.data, before.len);
	free(before.data);
	free(after.data);
	/* and it is not locked afterwards */
	assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p, err, sizeof(err)), -EINVAL);
}

/* A valid ipcfs database holding one object with one message. */
static void make_db(struct pfix *f)
{
	uint64_t id;

	db_open(f, IPC_SYNC_NORMAL, true);
	id = t_create(f->st, T_MBOX_DIR, "q");
	send_open(f, id, "payload");
	db_close(f);
}

/* --- tests --- */

static void test_new_database(void **state)
{
	struct pfix *f = *state;
	struct blob b;

	db_open(f, IPC_SYNC_NORMAL, true);
	db_close(f);
	b = slurp(f->path);
	assert_true(b.len >= 100);
	assert_memory_equal(b.data, "SQLite format 3", 16);
	free(b.data);
	assert_int_equal(sql_count(f->path, "PRAGMA application_id"), IPC_APPLICATION_ID);
	assert_int_equal(sql_count(f->path, "PRAGMA user_version"), IPC_SCHEMA_VERSION);
	assert_int_equal(sql_count(f->path, "SELECT count(*) FROM nodes"), 0);
	/* an empty database loads into an empty store */
	db_open(f, IPC_SYNC_NORMAL, false);
	assert_int_equal(f->st->nnodes, 0);
	db_close(f);
}

static void test_roundtrip(void **state, enum ipc_sync sync)
{
	struct pfix *f = *state;
	struct ipc_cred c = t_cred(1234, 567, 100);
	uint64_t app, jobs, open_id, line, fid, gid, sgdir, newest;
	struct ipc_handle *w, *r;
	struct stat sb, attr;
	char rows[BUF];

	db_open(f, sync, true);
	/* a directory and objects with their modes, owners and settings */
	assert_int_equal(store_mkdir(f->st, T_MBOX_DIR, "app", 0750, &c, &sb), 0);
	app = sb.st_ino;
	assert_int_equal(store_create(f->st, app, "jobs", 0640, &c, &sb), 0);
	jobs = sb.st_ino;
	assert_int_equal(attr_set(f->st, jobs, "user.ipcfs.framing", "write", 5, 0, &c), 0);
	assert_int_equal(attr_set(f->st, jobs, "user.ipcfs.max_messages", "7", 1, 0, &c), 0);
	assert_int_equal(attr_set(f->st, jobs, "user.ipcfs.max_bytes", "1000", 4, 0, &c), 0);
	w = t_open(f->st, jobs, O_WRONLY);
	put_sync(f, w, "j1");
	put_sync(f, w, "j2");
	put_sync(f, w, "j3");
	ipc_release(w);
	r = t_open(f->st, jobs, O_RDONLY);
	expect_read(r, 100, "j1");
	ipc_release(r);

	open_id = t_create(f->st, T_MBOX_DIR, "open");
	send_open(f, open_id, "hello world");
	send_open(f, open_id, "second");
	assert_int_equal(store_rename(f->st, T_MBOX_DIR, "open", app, "renamed", 0), 0);

	line = t_create(f->st, T_MBOX_DIR, "line");
	t_set(f->st, line, "framing", "line");
	w = t_open(f->st, line, O_WRONLY);
	put_sync(f, w, "l1\nl2\nl3");
	ipc_release(w); /* commits the partial line */

	/* a FIFO whose first segment is partly consumed after it was saved */
	fid = t_create(f->st, T_FIFO_DIR, "f");
	w = t_open(f->st, fid, O_WRONLY);
	put_sync(f, w, "0123456789");
	fsync_sync(f, w);
	r = t_open(f->st, fid, O_RDONLY);
	expect_read(r, 4, "0123");
	put_sync(f, w, "abc");
	ipc_release(w);
	ipc_release(r);

	gid = t_create(f->st, T_FIFO_DIR, "g");
	t_set(f->st, gid, "max_bytes", "4096");
	assert_int_equal(store_mkdir(f->st, T_FIFO_DIR, "sg", 0770, &c, &sb), 0);
	sgdir = sb.st_ino;
	memset(&attr, 0, sizeof(attr));
	attr.st_mode = 02770;
	assert_int_equal(store_setattr(f->st, sgdir, &attr, IPC_SET_MODE, &c, &sb), 0);

	db_close(f);

	/* the rows as written */
	sql_messages(f->path, fid, rows, sizeof(rows));
	assert_string_equal(rows, "4:0123456789;0:abc;");
	sql_messages(f->path, jobs, rows, sizeof(rows));
	assert_string_equal(rows, "0:j2;0:j3;");

	/* everything comes back */
	db_open(f, sync, true);
	assert_int_equal(lookup(f->st, T_MBOX_DIR, "app", &sb), app);
	assert_int_equal(sb.st_mode, S_IFDIR | 0750);
	assert_int_equal(sb.st_uid, 1234);
	assert_int_equal(sb.st_gid, 567);
	assert_int_equal(lookup(f->st, app, "jobs", &sb), jobs);
	assert_int_equal(sb.st_mode, S_IFREG | 0640);
	assert_int_equal(sb.st_uid, 1234);
	assert_int_equal(sb.st_size, 4);
	expect_attr(f->st, jobs, "framing", "write");
	expect_attr(f->st, jobs, "max_messages", "7");
	expect_attr(f->st, jobs, "max_bytes", "1000");
	expect_attr(f->st, jobs, "messages", "2");
	r = t_open(f->st, jobs, O_RDONLY);
	expect_read(r, 100, "j2");
	expect_read(r, 100, "j3");
	ipc_release(r);

	assert_int_equal(lookup(f->st, app, "renamed", &sb), open_id);
	assert_int_equal(store_lookup(f->st, T_MBOX_DIR, "open", &sb), -ENOENT);
	expect_attr(f->st, open_id, "framing", "open");
	expect_open(f->st, open_id, "hello world");
	expect_open(f->st, open_id, "second");

	assert_int_equal(lookup(f->st, T_MBOX_DIR, "line", &sb), line);
	r = t_open(f->st, line, O_RDONLY);
	expect_read(r, 100, "l1\n");
	expect_read(r, 100, "l2\n");
	expect_read(r, 100, "l3");
	ipc_release(r);

	assert_int_equal(lookup(f->st, T_FIFO_DIR, "f", &sb), fid);
	assert_int_equal(sb.st_size, 9);
	r = t_open(f->st, fid, O_RDONLY);
	expect_read(r, 100, "456789abc");
	expect_read(r, 100, "");
	ipc_release(r);

	assert_int_equal(lookup(f->st, T_FIFO_DIR, "g", &sb), gid);
	assert_int_equal(sb.st_size, 0);
	expect_attr(f->st, gid, "max_bytes", "4096");
	assert_int_equal(lookup(f->st, T_FIFO_DIR, "sg", &sb), sgdir);
	assert_int_equal(sb.st_mode, S_IFDIR | 02770);

	newest = t_create(f->st, T_MBOX_DIR, "newest");
	assert_true(newest > gid && newest > sgdir);
	db_close(f);

	/* what was consumed after the reload is gone for good */
	sql_messages(f->path, jobs, rows, sizeof(rows));
	assert_string_equal(rows, "");
	sql_messages(f->path, fid, rows, sizeof(rows));
	assert_string_equal(rows, "");
	assert_int_equal(sql_count(f->path, "SELECT count(*) FROM messages"), 0);
}

static void test_roundtrip_normal(void **state)
{
	test_roundtrip(state, IPC_SYNC_NORMAL);
}

static void test_roundtrip_full(void **state)
{
	test_roundtrip(state, IPC_SYNC_FULL);
}

/* A removed object and its messages do not come back; its id is not
 * handed out again. */
static void test_unlinked_not_reloaded(void **state)
{
	struct pfix *f = *state;
	struct stat sb;
	uint64_t keep, gone, newest;
	char rows[BUF];

	db_open(f, IPC_SYNC_NORMAL, true);
	keep = t_create(f->st, T_MBOX_DIR, "keep");
	gone = t_create(f->st, T_MBOX_DIR, "gone");
	send_open(f, gone, "lost");
	{
		struct ipc_handle *w = t_open(f->st, gone, O_WRONLY);
		fsync_sync(f, w);
		ipc_release(w);
	}
	sql_messages(f->path, gone, rows, sizeof(rows));
	assert_string_equal(rows, "0:lost;");
	assert_int_equal(store_unlink(f->st, T_MBOX_DIR, "gone"), 0);
	db_close(f);
	sql_messages(f->path, gone, rows, sizeof(rows));
	assert_string_equal(rows, "");

	db_open(f, IPC_SYNC_NORMAL, true);
	assert_int_equal(store_lookup(f->st, T_MBOX_DIR, "gone", &sb), -ENOENT);
	assert_int_equal(lookup(f->st, T_MBOX_DIR, "keep", &sb), keep);
	newest = t_create(f->st, T_MBOX_DIR, "newest");
	assert_true(newest > gone);
	db_close(f);
}

/* Bytes a FIFO reader gives back after another reader read on come back
 * first, once, and also after a restart. */
static void test_fifo_given_back_survives(void **state)
{
	struct pfix *f = *state;
	struct ipc_handle *w, *a, *b;
	struct ipc_rdres rd;
	char buf[BUF];
	uint64_t id;

	db_open(f, IPC_SYNC_NORMAL, true);
	id = t_create(f->st, T_FIFO_DIR, "f");
	w = t_open(f->st, id, O_WRONLY);
	a = t_open(f->st, id, O_RDONLY);
	b = t_open(f->st, id, O_RDONLY);
	put_sync(f, w, "abcdef");
	fsync_sync(f, w);
	assert_int_equal(ipc_read(a, 3, 0, NULL, &rd), 0);
	t_rd_copy(&rd, buf, sizeof(buf));
	assert_string_equal(buf, "abc");
	expect_read(b, 2, "de");
	ipc_read_done(a, &rd, false);
	fsync_sync(f, w);
	ipc_release(w);
	ipc_release(a);
	ipc_release(b);
	db_close(f);

	db_open(f, IPC_SYNC_NORMAL, true);
	a = t_open(f->st, id, O_RDONLY);
	expect_read(a, 100, "abcf");
	expect_read(a, 100, "");
	ipc_release(a);
	db_close(f);
}

/* Full mode: a write is acknowledged only once its row is committed. */
static void test_full_write_durable_when_acked(void **state)
{
	struct pfix *f = *state;
	struct ipc_handle *w;
	size_t n = 0;
	char rows[BUF];
	uint64_t id;

	db_open(f, IPC_SYNC_FULL, true);
	id = t_create(f->st, T_MBOX_DIR, "q");
	t_set(f->st, id, "framing", "write");
	w = t_open(f->st, id, O_WRONLY);
	/* without a waiter a full-mode write cannot complete */
	assert_int_equal(ipc_write(w, "x", 1, 0, 0, NULL, &n), IPC_E_AGAIN);
	assert_int_equal(t_count(f->st, id), 0);
	put_sync(f, w, "m1");
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "0:m1;");
	put_sync(f, w, "m2");
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "0:m1;0:m2;");
	ipc_release(w);

	/* open framing: the opener's close returns once committed */
	id = t_create(f->st, T_MBOX_DIR, "o");
	w = t_open(f->st, id, O_WRONLY);
	put_sync(f, w, "whole");
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "");
	flush_sync(f, w);
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "0:whole;");
	ipc_release(w);
	db_close(f);
}

/* A message taken by a reader but not finished stays in the database. */
static void test_unfinished_read_survives(void **state)
{
	struct pfix *f = *state;
	struct ipc_handle *r;
	uint64_t id;

	db_open(f, IPC_SYNC_NORMAL, true);
	id = t_create(f->st, T_MBOX_DIR, "q");
	send_open(f, id, "abcdef");
	r = t_open(f->st, id, O_RDONLY);
	fsync_sync(f, r);
	expect_read(r, 2, "ab");
	/* the daemon stops with the reader mid-message */
	db_close(f);
	db_open(f, IPC_SYNC_NORMAL, true);
	expect_open(f->st, id, "abcdef");
	db_close(f);
}

/* A message consumed before the writer thread ever saw it costs no row. */
static void test_consumed_before_commit_never_written(void **state)
{
	struct pfix *f = *state;
	struct ipc_handle *w, *r;
	char rows[BUF];
	uint64_t id;

	/* a database that logs every insert into messages */
	db_open(f, IPC_SYNC_NORMAL, true);
	db_close(f);
	sql_run(f->path, "CREATE TABLE ins_log(obj INTEGER, seq INTEGER, data BLOB);"
			 "CREATE TRIGGER log_ins AFTER INSERT ON messages BEGIN"
			 " INSERT INTO ins_log VALUES(new.obj, new.seq, new.data); END;");

	/* changes are made before the writer thread runs: nothing is saved
	 * until it starts, deterministically */
	db_open(f, IPC_SYNC_NORMAL, false);
	id = t_create(f->st, T_MBOX_DIR, "q");
	t_set(f->st, id, "framing", "write");
	w = t_open(f->st, id, O_WRONLY);
	r = t_open(f->st, id, O_RDONLY);
	put_sync(f, w, "transient");
	expect_read(r, 100, "transient");
	put_sync(f, w, "kept");
	db_start(f);
	fsync_sync(f, w);
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "0:kept;");
	/* a saved message that is consumed: inserted once, then deleted */
	put_sync(f, w, "old");
	fsync_sync(f, w);
	expect_read(r, 100, "kept");
	expect_read(r, 100, "old");
	ipc_release(w);
	ipc_release(r);
	db_close(f);
	sql_messages(f->path, id, rows, sizeof(rows));
	assert_string_equal(rows, "");
	assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ins_log"
					    " WHERE CAST(data AS TEXT)='transient'"),
			 0);
	assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ins_log WHERE CAST(data AS TEXT)"
					    " IN ('kept', 'old')"),
			 2);
	assert_int_equal(sql_count(f->path, "SELECT count(*) FROM ins_log"), 2);
}

static void test_second_open_busy(void **state)
{
	struct pfix *f = *state;
	struct ipc_persist *p2 = NULL;
	char err[256] = "";
	uint64_t id;

	db_open(f, IPC_SYNC_NORMAL, true);
	assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p2, err, sizeof(err)), -EBUSY);
	assert_null(p2);
	assert_true(strlen(err) > 0);
	/* the first one is unharmed */
	id = t_create(f->st, T_MBOX_DIR, "q");
	send_open(f, id, "still here");
	db_close(f);
	db_open(f, IPC_SYNC_NORMAL, false);
	expect_open(f->st, id, "still here");
	db_close(f);
	/* closed: the lock is free */
	db_open(f, IPC_SYNC_NORMAL, false);
	db_close(f);
}

static void test_refuse_not_sqlite(void **state)
{
	struct pfix *f = *state;
	char junk[4096];

	spit(f->path, "hello, this is not a database\n", 30);
	expect_refused(f);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	spit(f->path, junk, sizeof(junk));
	expect_refused(f);
	/* an SQLite-looking start, cut short */
	spit(f->path, "SQLite format 3", 16);
	expect_refused(f);
}

static void test_refuse_other_sqlite(void **state)
{
	struct pfix *f = *state;

	/* an SQLite database of some other program */
	sql_run(f->path, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
	expect_refused(f);
}

static void test_refuse_wrong_application_id(void **state)
{
	struct pfix *f = *state;

	make_db(f);
	sql_run(f->path, "PRAGMA application_id=305419896");
	assert_int_equal(sql_count(f->path, "PRAGMA application_id"), 305419896);
	expect_refused(f);
}

static void test_refuse_wrong_version(void **state)
{
	struct pfix *f = *state;
	char sql[64];

	make_db(f);
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", IPC_SCHEMA_VERSION + 1);
	sql_run(f->path, sql);
	expect_refused(f);
	sql_run(f->path, "PRAGMA user_version=0");
	expect_refused(f);
}

static void test_refuse_corrupt_page(void **state)
{
	struct pfix *f = *state;
	struct blob b;
	size_t pgsz;

	make_db(f);
	b = slurp(f->path);
	pgsz = (size_t)b.data[16] << 8 | b.data[17];
	if (pgsz == 1)
		pgsz = 65536;
	assert_true(b.len >= 2 * pgsz);
	/* every page but the first (which holds the header) is garbage */
	for (size_t i = pgsz; i < b.len; i++)
		b.data[i] = (unsigned char)(0xa5 ^ (i * 31));
	spit(f->path, b.data, b.len);
	free(b.data);
	expect_refused(f);
}

static void test_refuse_missing_table(void **state)
{
	struct pfix *f = *state;

	make_db(f);
	sql_run(f->path, "DROP TABLE messages");
	expect_refused(f);
}

/* Rows that SQLite finds fine but ipcfs cannot accept are refused at load,
 * and the file is left as it was. */
static void test_refuse_bad_rows_at_load(void **state)
{
	struct pfix *f = *state;
	const char *bad[] = {
		"UPDATE nodes SET max_bytes=0",
		"UPDATE nodes SET framing=9",
		"UPDATE nodes SET parent=999999",
		"UPDATE nodes SET name='a/b'",
		"UPDATE messages SET skip=3",
		"UPDATE messages SET obj=999999",
	};

	/* the database as made loads: what follows is refused for its rows */
	make_db(f);
	db_open(f, IPC_SYNC_NORMAL, false);
	db_close(f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ipc_limits l = t_limits();
		struct ipc_store *st = t_store_lim(&l, IPC_SYNC_NORMAL, NULL);
		struct ipc_persist *p = NULL;
		struct blob before, after;
		char err[256] = "";

		unlink(f->path);
		make_db(f);
		sql_run(f->path, bad[i]);
		before = slurp(f->path);
		assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p, err, sizeof(err)), 0);
		assert_int_equal(persist_load(p, st, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
		assert_int_equal(persist_close(p), 0);
		store_free(st);
		after = slurp(f->path);
		assert_int_equal(after.len, before.len);
		assert_memory_equal(after.data, before.data, before.len);
		free(before.data);
		free(after.data);
	}
}

/* A commit that fails is reported to its waiters as -EIO, and a failing
 * database never leaves later waiters parked for good (commit waits cannot
 * be interrupted, so a FUSE request would hang unkillable). */
static void test_commit_failure_reported(void **state)
{
	struct pfix *f = *state;
	struct t_waiter *tw = &f->w[0];
	struct ipc_handle *w;
	size_t n = 0;
	uint64_t id;
	int r;

	db_open(f, IPC_SYNC_FULL, true);
	db_close(f);
	/* every commit carrying this payload fails, as a full disk would */
	sql_run(f->path, "CREATE TRIGGER poison BEFORE INSERT ON messages"
			 " WHEN CAST(new.data AS TEXT)='poison'"
			 " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
	db_open(f, IPC_SYNC_FULL, true);
	id = t_create(f->st, T_MBOX_DIR, "q");
	t_set(f->st, id, "framing", "write");
	w = t_open(f->st, id, O_WRONLY);
	put_sync(f, w, "fine");

	t_waiter_reset(tw);
	r = ipc_write(w, "poison", 6, 0, 0, &tw->w, &n);
	assert_int_equal(r, IPC_E_PARKED);
	t_waiter_wait(tw);
	assert_int_equal(tw->result, -EIO);
	ipc_waiter_end(&tw->w, true);

	/* the next durable write ends too (whatever its result) */
	t_waiter_reset(tw);
	r = ipc_write(w, "later", 5, 0, 0, &tw->w, &n);
	if (r == IPC_E_PARKED) {
		assert_true(t_waiter_wait_ms(tw, 6000));
		ipc_waiter_end(&tw->w, true);
	} else {
		assert_true(r == 0 || r == -EIO);
	}
	ipc_release(w);
}

/* A database holding more than the limits allow is refused at load. */
static void test_load_over_limits(void **state)
{
	struct pfix *f = *state;
	struct ipc_limits l = t_limits();
	struct ipc_persist *p = NULL;
	char err[256] = "";

	make_db(f);
	l.max_nodes = 0;
	f->st = t_store_lim(&l, IPC_SYNC_NORMAL, NULL);
	assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p, err, sizeof(err)), 0);
	f->p = p;
	assert_int_equal(persist_load(p, f->st, err, sizeof(err)), -ENOSPC);
	assert_true(strlen(err) > 0);
	assert_int_equal(persist_close(p), 0);
	f->p = NULL;
	store_free(f->st);
	f->st = NULL;

	l = t_limits();
	l.max_memory = 1;
	f->st = t_store_lim(&l, IPC_SYNC_NORMAL, NULL);
	assert_int_equal(persist_open(f->path, IPC_SYNC_NORMAL, &p, err, sizeof(err)), 0);
	f->p = p;
	assert_int_equal(persist_load(p, f->st, err, sizeof(err)), -ENOSPC);
}

int main(void)
{
#define PT(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		PT(test_new_database),
		PT(test_roundtrip_normal),
		PT(test_roundtrip_full),
		PT(test_unlinked_not_reloaded),
		PT(test_fifo_given_back_survives),
		PT(test_full_write_durable_when_acked),
		PT(test_unfinished_read_survives),
		PT(test_consumed_before_commit_never_written),
		PT(test_second_open_busy),
		PT(test_commit_failure_reported),
		PT(test_refuse_not_sqlite),
		PT(test_refuse_other_sqlite),
		PT(test_refuse_wrong_application_id),
		PT(test_refuse_wrong_version),
		PT(test_refuse_corrupt_page),
		PT(test_refuse_missing_table),
		PT(test_refuse_bad_rows_at_load),
		PT(test_load_over_limits),
	};
#undef PT

	return cmocka_run_group_tests(tests, NULL, NULL);
}
