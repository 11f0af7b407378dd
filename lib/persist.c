/* persist.c - SQLite persistence: schema, checks, loading, write-behind. */
#include "lib/persist.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/attrs.h"
#include "lib/region.h"

/* One batch of changes, taken under the store lock, written without it. */
struct row {
	struct ipc_node_row r;
	char *name;
};
struct ins {
	uint64_t obj;
	int64_t seq;
	uint32_t skip, len;
	struct ipc_msg *m; /* reference */
};
struct del {
	uint64_t obj;
	int64_t seq;
	uint32_t skip; /* skip updates only */
};

#define VEC(T) struct { T *v; size_t n, cap; }

struct page {
	uint64_t obj, pgno;
	struct ipc_msg *m; /* reference; NULL: delete the page */
};

struct batch {
	uint64_t gen;
	VEC(struct row) rows;
	VEC(struct ins) ins;
	VEC(struct page) pages;
	VEC(struct del) truncs; /* obj, seq = first page number dropped */
	VEC(struct del) skips;
	VEC(struct del) dels;
	VEC(uint64_t) tombs;
	bool has_next_id;
	uint64_t next_id;
	bool oom; /* a vector could not grow: the batch is incomplete */
};

struct ipc_persist {
	char *path;
	int lockfd;
	sqlite3 *db;
	enum ipc_sync sync;
	struct ipc_store *st;
	pthread_t thread;
	bool running;
	struct batch retry; /* a batch whose commit failed, to be retried */
	bool have_retry;
	bool failing;       /* writer thread: the last commit failed */
	char errmsg[256];   /* writer thread: why */
	sqlite3_stmt *s_node, *s_ins, *s_skip, *s_del, *s_tomb_node, *s_tomb_msgs, *s_meta;
	sqlite3_stmt *s_page, *s_page_del, *s_trunc, *s_tomb_pages;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* One line (SQLite's own messages may hold newlines). */
	for (char *c = err; *c; c++)
		if (*c == '\n')
			*c = ' ';
}

#define VEC_PUSH(b, vec, val)                                                          \
	do {                                                                           \
		if ((vec).n == (vec).cap) {                                            \
			size_t nc = (vec).cap ? (vec).cap * 2 : 16;                    \
			void *nv = realloc((vec).v, nc * sizeof(*(vec).v));            \
			if (!nv) {                                                     \
				(b)->oom = true;                                       \
				break;                                                 \
			}                                                              \
			(vec).v = nv;                                                  \
			(vec).cap = nc;                                                \
		}                                                                      \
		(vec).v[(vec).n++] = (val);                                            \
	} while (0)

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->rows.n; i++)
		free(b->rows.v[i].name);
	for (size_t i = 0; i < b->ins.n; i++)
		ipc_msg_unref(b->ins.v[i].m);
	for (size_t i = 0; i < b->pages.n; i++)
		ipc_msg_unref(b->pages.v[i].m);
	b->rows.n = b->ins.n = b->skips.n = b->dels.n = b->tombs.n = 0;
	b->pages.n = b->truncs.n = 0;
	b->has_next_id = false;
	b->oom = false;
}

static void batch_free(struct batch *b)
{
	batch_clear(b);
	free(b->rows.v);
	free(b->ins.v);
	free(b->skips.v);
	free(b->dels.v);
	free(b->tombs.v);
	free(b->pages.v);
	free(b->truncs.v);
	memset(b, 0, sizeof(*b));
}

static bool batch_empty(const struct batch *b)
{
	return !b->rows.n && !b->ins.n && !b->skips.n && !b->dels.n && !b->tombs.n &&
	       !b->pages.n && !b->truncs.n && !b->has_next_id;
}

/* --- schema --- */

/* Boolean and small settings packed in nodes.flags. */
enum { F_UNDO = 1, F_LATCHED = 2, F_OVERFLOW_BLOCK = 4 };

static int64_t flags_of(const struct ipc_settings *set)
{
	return (set->undo ? F_UNDO : 0) | (set->latched ? F_LATCHED : 0) |
	       (set->overflow == IPC_OVERFLOW_BLOCK ? F_OVERFLOW_BLOCK : 0);
}


static const char schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE nodes("
	" id INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name TEXT NOT NULL,"
	" kind INTEGER NOT NULL, is_dir INTEGER NOT NULL, mode INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	" atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
	" framing INTEGER NOT NULL DEFAULT 0, max_messages INTEGER NOT NULL DEFAULT 0,"
	" max_bytes INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
	" value INTEGER NOT NULL DEFAULT 0, flags INTEGER NOT NULL DEFAULT 0,"
	" retain INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE messages("
	" obj INTEGER NOT NULL, seq INTEGER NOT NULL, skip INTEGER NOT NULL DEFAULT 0,"
	" data BLOB NOT NULL, PRIMARY KEY(obj, seq));"
	"CREATE TABLE pages("
	" obj INTEGER NOT NULL, pgno INTEGER NOT NULL, data BLOB NOT NULL,"
	" PRIMARY KEY(obj, pgno));";

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	if (ts.tv_nsec < 0) {
		ts.tv_nsec += 1000000000LL;
		ts.tv_sec--;
	}
	return ts;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Looks at the file header without SQLite. Returns 1 for a new (empty)
 * file, 0 for a plausible ipcfs database, -EINVAL with a reason otherwise. */
static int check_header(int fd, const char *path, char *err, size_t errlen)
{
	unsigned char h[100];
	struct stat sb;
	ssize_t n;
	uint32_t appid, version;

	if (fstat(fd, &sb) < 0) {
		errf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(sb.st_mode)) {
		errf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (sb.st_size == 0)
		return 1;
	n = pread(fd, h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
		errf(err, errlen, "%s is not an ipcfs database (not an SQLite file); refusing to touch it",
		     path);
		return -EINVAL;
	}
	version = be32(h + 60);
	appid = be32(h + 68);
	if (appid != IPC_APPLICATION_ID) {
		errf(err, errlen, "%s is an SQLite database but not an ipcfs one (application_id %#x); refusing to touch it",
		     path, appid);
		return -EINVAL;
	}
	if (version != IPC_SCHEMA_VERSION) {
		errf(err, errlen, "%s has schema version %u; this ipcfs reads version %d only; refusing to touch it",
		     path, version, IPC_SCHEMA_VERSION);
		return -EINVAL;
	}
	return 0;
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		errf(err, errlen, "database error: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int create_schema(sqlite3 *db, char *err, size_t errlen)
{
	char sql[256];
	int r;

	r = exec(db, "PRAGMA journal_mode=WAL", err, errlen);
	if (!r)
		r = exec(db, "BEGIN", err, errlen);
	if (!r)
		r = exec(db, schema_sql, err, errlen);
	if (!r) {
		snprintf(sql, sizeof(sql),
			 "PRAGMA application_id=%d; PRAGMA user_version=%d;"
			 "INSERT INTO meta VALUES('next_id', %d);",
			 IPC_APPLICATION_ID, IPC_SCHEMA_VERSION, IPC_FIRST_USER_ID);
		r = exec(db, sql, err, errlen);
	}
	if (!r)
		r = exec(db, "COMMIT", err, errlen);
	/* Put the header (application_id, version) in the main file now. */
	if (!r)
		r = exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", err, errlen);
	return r;
}

/* Runs a quick structural check; -EINVAL with a reason when corrupt. */
static int check_db(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	const char *need[] = { "meta", "nodes", "messages" };
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(s, 0);
		if (!res || strcmp(res, "ok") != 0) {
			errf(err, errlen, "%s is corrupt (%s); refusing to touch it", path,
			     res ? res : "?");
			r = -EINVAL;
		}
	} else {
		errf(err, errlen, "%s is corrupt or unreadable (%s); refusing to touch it", path,
		     sqlite3_errmsg(db));
		r = -EINVAL;
	}
	sqlite3_finalize(s);
	for (size_t i = 0; !r && i < sizeof(need) / sizeof(need[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT 1 FROM sqlite_schema WHERE type='table' AND name='%s'",
			 need[i]);
		s = NULL;
		rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
		if (rc != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
			errf(err, errlen, "%s lacks table %s; refusing to touch it", path, need[i]);
			r = -EINVAL;
		}
		sqlite3_finalize(s);
	}
	return r;
}

/* Whether a non-empty write-ahead log lies beside the database. */
static bool has_wal(const char *path)
{
	char wal[PATH_MAX];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &sb) == 0 && sb.st_size > 0;
}

/* check_db() on a read-only, immutable connection (nothing is written, not
 * even -wal/-shm files). A WAL left by a crash is not read here; the real
 * connection recovers it and loading checks what it reads. */
static int check_immutable(const char *path, char *err, size_t errlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path);
	char *uri = malloc(len * 3 + 32), *q;
	sqlite3 *db = NULL;
	int r;

	if (!uri)
		return -ENOMEM;
	q = uri + sprintf(uri, "file:");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("/._-~", *c)) {
			*q++ = (char)*c;
		} else {
			*q++ = '%';
			*q++ = hex[*c >> 4];
			*q++ = hex[*c & 15];
		}
	}
	strcpy(q, "?immutable=1");
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
		errf(err, errlen, "cannot open database %s: %s", path,
		     db ? sqlite3_errmsg(db) : "out of memory");
		r = -EINVAL;
	} else {
		r = check_db(db, path, err, errlen);
	}
	sqlite3_close(db);
	free(uri);
	return r;
}

static int prepare(struct ipc_persist *p, sqlite3_stmt **s, const char *sql)
{
	return sqlite3_prepare_v3(p->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) == SQLITE_OK
		? 0 : -EIO;
}

static int prepare_all(struct ipc_persist *p)
{
	int r = 0;

	r |= prepare(p, &p->s_node,
		     "INSERT OR REPLACE INTO nodes(id,parent,name,kind,is_dir,mode,uid,gid,"
		     "atime_ns,mtime_ns,ctime_ns,framing,max_messages,max_bytes,size,value,"
		     "flags,retain) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	r |= prepare(p, &p->s_ins,
		     "INSERT OR REPLACE INTO messages(obj,seq,skip,data) VALUES(?,?,?,?)");
	r |= prepare(p, &p->s_skip, "UPDATE messages SET skip=? WHERE obj=? AND seq=?");
	r |= prepare(p, &p->s_del, "DELETE FROM messages WHERE obj=? AND seq=?");
	r |= prepare(p, &p->s_tomb_node, "DELETE FROM nodes WHERE id=?");
	r |= prepare(p, &p->s_tomb_msgs, "DELETE FROM messages WHERE obj=?");
	r |= prepare(p, &p->s_meta, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)");
	r |= prepare(p, &p->s_page, "INSERT OR REPLACE INTO pages(obj,pgno,data) VALUES(?,?,?)");
	r |= prepare(p, &p->s_page_del, "DELETE FROM pages WHERE obj=? AND pgno=?");
	r |= prepare(p, &p->s_trunc, "DELETE FROM pages WHERE obj=? AND pgno>=?");
	r |= prepare(p, &p->s_tomb_pages, "DELETE FROM pages WHERE obj=?");
	return r ? -EIO : 0;
}

static void close_db(struct ipc_persist *p, bool checkpoint)
{
	sqlite3_stmt **all[] = { &p->s_node, &p->s_ins, &p->s_skip, &p->s_del,
				 &p->s_tomb_node, &p->s_tomb_msgs, &p->s_meta, &p->s_page,
				 &p->s_page_del, &p->s_trunc, &p->s_tomb_pages };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
	if (p->db) {
		if (!checkpoint)
			sqlite3_db_config(p->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		sqlite3_close(p->db);
		p->db = NULL;
	}
}

static void persist_free(struct ipc_persist *p)
{
	if (!p)
		return;
	close_db(p, false);
	if (p->lockfd >= 0)
		close(p->lockfd);
	batch_free(&p->retry);
	free(p->path);
	free(p);
}

int persist_open(const char *path, enum ipc_sync sync, struct ipc_persist **out, char *err,
		 size_t errlen)
{
	struct ipc_persist *p = calloc(1, sizeof(*p));
	int r, isnew;

	if (!p)
		return -ENOMEM;
	p->lockfd = -1;
	p->sync = sync;
	p->path = strdup(path);
	if (!p->path) {
		free(p);
		return -ENOMEM;
	}
	p->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->lockfd < 0) {
		r = -errno;
		errf(err, errlen, "cannot open database %s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(p->lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		errf(err, errlen, "database %s is in use by another ipcfs process", path);
		goto fail;
	}
	isnew = check_header(p->lockfd, path, err, errlen);
	if (isnew < 0) {
		r = isnew;
		goto fail;
	}
	if (!isnew && !has_wal(path)) {
		/* Check it read-only, as an immutable file, so that a refused
		 * database gets no -wal/-shm files beside it either. With a WAL
		 * left by a crash the main file alone may be mid-checkpoint: then
		 * only the real connection (which recovers the WAL) can judge. */
		r = check_immutable(path, err, errlen);
		if (r)
			goto fail;
	}
	if (sqlite3_open_v2(path, &p->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		errf(err, errlen, "cannot open database %s: %s", path,
		     p->db ? sqlite3_errmsg(p->db) : "out of memory");
		r = -EIO;
		goto fail;
	}
	sqlite3_extended_result_codes(p->db, 1);
	r = isnew ? create_schema(p->db, err, errlen) : check_db(p->db, path, err, errlen);
	if (r)
		goto fail;
	*out = p;
	return 0;
fail:
	persist_free(p);
	return r;
}

/* --- loading --- */

static int load_fail(char *err, size_t errlen, const char *what, const char *path)
{
	errf(err, errlen, "%s is corrupt (%s); refusing to touch it", path, what);
	return -EINVAL;
}

/* Reads the node rows and inserts them parents first (a node may have been
 * moved under a directory created after it). */
static int load_nodes(struct ipc_persist *p, struct ipc_store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	struct ipc_node_row *rows = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0, left;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(p->db,
				"SELECT id,parent,name,kind,is_dir,mode,uid,gid,atime_ns,mtime_ns,"
				"ctime_ns,framing,max_messages,max_bytes,size,value,flags,retain "
				"FROM nodes",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct ipc_node_row *row;
		const char *name = (const char *)sqlite3_column_text(s, 2);
		int nlen = sqlite3_column_bytes(s, 2);
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *nr = realloc(rows, nc * sizeof(*rows));
			void *nn = nr ? realloc(names, nc * sizeof(*names)) : NULL;
			if (nr)
				rows = nr;
			if (!nr || !nn) {
				r = -ENOMEM;
				errf(err, errlen, "out of memory loading %s", p->path);
				break;
			}
			names = nn;
			cap = nc;
		}
		if (!name || nlen < 1 || nlen > IPC_NAME_MAX || (int)strlen(name) != nlen ||
		    strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
			r = load_fail(err, errlen, "a node has a bad name", p->path);
			break;
		}
		names[n] = strdup(name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		row = &rows[n];
		memset(row, 0, sizeof(*row));
		row->id = (uint64_t)sqlite3_column_int64(s, 0);
		row->parent = (uint64_t)sqlite3_column_int64(s, 1);
		row->name = names[n];
		row->kind = (uint8_t)sqlite3_column_int(s, 3);
		row->is_dir = sqlite3_column_int(s, 4) != 0;
		row->mode = (uint32_t)sqlite3_column_int64(s, 5);
		row->uid = (uint32_t)sqlite3_column_int64(s, 6);
		row->gid = (uint32_t)sqlite3_column_int64(s, 7);
		row->atime = ns_ts(sqlite3_column_int64(s, 8));
		row->mtime = ns_ts(sqlite3_column_int64(s, 9));
		row->ctime = ns_ts(sqlite3_column_int64(s, 10));
		row->set.framing = (uint8_t)sqlite3_column_int(s, 11);
		row->set.max_messages = (uint64_t)sqlite3_column_int64(s, 12);
		row->set.max_bytes = (uint64_t)sqlite3_column_int64(s, 13);
		row->size = (uint64_t)sqlite3_column_int64(s, 14);
		row->value = (uint64_t)sqlite3_column_int64(s, 15);
		{
			int64_t f = sqlite3_column_int64(s, 16);
			row->set.undo = (f & F_UNDO) != 0;
			row->set.latched = (f & F_LATCHED) != 0;
			row->set.overflow = (f & F_OVERFLOW_BLOCK) ? IPC_OVERFLOW_BLOCK
								   : IPC_OVERFLOW_DROP;
		}
		row->set.retain = (uint64_t)sqlite3_column_int64(s, 17);
		n++;
		if (sqlite3_column_int(s, 3) < 0 || sqlite3_column_int(s, 3) >= IPC_KIND_COUNT) {
			r = load_fail(err, errlen, "a node has an unknown kind", p->path);
			break;
		}
		if (!row->is_dir) {
			const struct ipc_settings *set = &row->set;
			bool bad = set->max_bytes < 1 || set->max_bytes > st->lim.max_obj_bytes;
			if (row->kind == IPC_KIND_MBOX || row->kind == IPC_KIND_TOPIC)
				bad |= set->framing > IPC_FRAMING_RECORD || set->max_messages < 1 ||
				       set->max_messages > st->lim.max_obj_messages;
			bad |= set->retain > st->lim.max_obj_messages;
			if (row->kind == IPC_KIND_SHM)
				bad |= row->size > set->max_bytes;
			else
				bad |= row->size != 0;
			if (bad) {
				r = load_fail(err, errlen, "an object has settings out of range",
					      p->path);
				break;
			}
		}
	}
	if (!r && rc != SQLITE_DONE)
		r = load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	sqlite3_finalize(s);

	/* Insert in rounds: each round adds the rows whose parent exists. */
	left = r ? 0 : n;
	while (left) {
		size_t added = 0;
		for (size_t i = 0; i < n; i++) {
			if (!rows[i].name || !store_node(st, rows[i].parent))
				continue;
			rc = store_load_node(st, &rows[i]);
			if (rc == -ENOSPC) {
				errf(err, errlen, "%s holds more objects than the limit (--max-objects)",
				     p->path);
				r = rc;
				break;
			}
			if (rc) {
				r = load_fail(err, errlen, "a node is inconsistent", p->path);
				break;
			}
			rows[i].name = NULL;
			added++;
		}
		if (r)
			break;
		if (!added) {
			r = load_fail(err, errlen, "a node has no parent", p->path);
			break;
		}
		left -= added;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(rows);
	return r;
}

static int load_messages(struct ipc_persist *p, struct ipc_store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(p->db, "SELECT obj,seq,skip,data FROM messages ORDER BY obj,seq",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t obj = (uint64_t)sqlite3_column_int64(s, 0);
		int64_t skip = sqlite3_column_int64(s, 2);
		const void *data = sqlite3_column_blob(s, 3);
		int len = sqlite3_column_bytes(s, 3);
		struct ipc_node *n = store_node(st, obj);
		struct ipc_msg *m;

		if (!n || n->is_dir || len <= 0 || skip < 0 || skip >= len ||
		    (n->kind == IPC_KIND_MBOX && skip != 0)) {
			r = load_fail(err, errlen, "a message does not fit its object", p->path);
			break;
		}
		m = ipc_msg_new(data, (size_t)len, (size_t)len);
		if (!m) {
			r = -ENOMEM;
			errf(err, errlen, "out of memory loading %s", p->path);
			break;
		}
		m->seq = sqlite3_column_int64(s, 1);
		m->head = (uint32_t)skip;
		r = store_load_msg(st, obj, m);
		if (r) {
			ipc_msg_unref(m);
			if (r == -ENOSPC)
				errf(err, errlen, "%s holds more data than the memory limit (--max-memory)",
				     p->path);
			else
				load_fail(err, errlen, "a message does not fit its object", p->path);
			break;
		}
	}
	if (!r && rc != SQLITE_DONE)
		r = load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	sqlite3_finalize(s);
	return r;
}

static int load_pages(struct ipc_persist *p, struct ipc_store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(p->db, "SELECT obj,pgno,data FROM pages", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t pgno = sqlite3_column_int64(s, 1);
		r = pgno < 0 ? -EINVAL
			     : store_load_page(st, (uint64_t)sqlite3_column_int64(s, 0),
					       (uint64_t)pgno, sqlite3_column_blob(s, 2),
					       (size_t)sqlite3_column_bytes(s, 2));
		if (r == -ENOSPC) {
			errf(err, errlen, "%s holds more data than the memory limit (--max-memory)",
			     p->path);
			break;
		}
		if (r) {
			r = load_fail(err, errlen, "a region page does not fit its region", p->path);
			break;
		}
	}
	if (!r && rc != SQLITE_DONE)
		r = load_fail(err, errlen, sqlite3_errmsg(p->db), p->path);
	sqlite3_finalize(s);
	return r;
}

int persist_load(struct ipc_persist *p, struct ipc_store *st, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int r;

	if (exec(p->db, "BEGIN", err, errlen))
		return -EIO;
	if (sqlite3_prepare_v2(p->db, "SELECT value FROM meta WHERE key='next_id'", -1, &s,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		store_set_next_id(st, (uint64_t)sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	r = load_nodes(p, st, err, errlen);
	if (!r)
		r = load_messages(p, st, err, errlen);
	if (!r)
		r = load_pages(p, st, err, errlen);
	if (!r)
		store_loaded(st);
	exec(p->db, "COMMIT", NULL, 0);
	if (!r) {
		const char *sync = p->sync == IPC_SYNC_FULL ? "PRAGMA synchronous=FULL"
							    : "PRAGMA synchronous=NORMAL";
		r = exec(p->db, "PRAGMA journal_mode=WAL", err, errlen);
		if (!r)
			r = exec(p->db, sync, err, errlen);
		if (!r && prepare_all(p)) {
			errf(err, errlen, "database error: %s", sqlite3_errmsg(p->db));
			r = -EIO;
		}
	}
	return r;
}

/* --- write-behind --- */

/* Takes the store's dirty state into b (st->lock held). */
static void snapshot(struct ipc_store *st, struct batch *b)
{
	struct ipc_list *pos, *tmp;

	b->gen = ++st->snap_gen;
	ipc_list_for_each_safe(pos, tmp, &st->dirty) {
		struct ipc_node *n = ipc_container_of(pos, struct ipc_node, dirty_link);
		struct ipc_msgq *q = &n->q;

		ipc_list_del(pos);
		if (n->meta_dirty) {
			struct row row;
			store_node_row(n, &row.r);
			row.name = strdup(n->name);
			if (row.name) {
				row.r.name = row.name;
				VEC_PUSH(b, b->rows, row);
			} else {
				b->oom = true;
			}
			n->meta_dirty = false;
		}
		for (size_t i = 0; i < q->nunsaved; i++) {
			struct ipc_msg *m = q->unsaved[i];
			struct ins in;
			m->pending = false;
			/* A topic saves only the messages it retains. */
			if (m->done || (n->kind == IPC_KIND_TOPIC &&
					m->seq < q->next_seq - (int64_t)n->set.retain)) {
				ipc_msg_unref(m);
				continue;
			}
			m->in_db = true;
			m->sealed = true;
			in.obj = n->id;
			in.seq = m->seq;
			in.skip = m->head;
			in.len = m->len;
			in.m = m;
			VEC_PUSH(b, b->ins, in);
		}
		q->nunsaved = 0;
		for (size_t i = 0; i < q->ndeleted; i++) {
			struct del d = { n->id, q->deleted[i], 0 };
			VEC_PUSH(b, b->dels, d);
		}
		q->ndeleted = 0;
		if (n->rg) {
			struct ipc_region *rg = n->rg;
			if (rg->trunc_from != UINT64_MAX) {
				struct del d = { n->id, (int64_t)rg->trunc_from, 0 };
				VEC_PUSH(b, b->truncs, d);
				rg->trunc_from = UINT64_MAX;
			}
			for (size_t i = 0; i < rg->ndirty; i++) {
				uint64_t pg = rg->dirtyv[i];
				struct page pe = { n->id, pg, NULL };
				rg->dirty[pg] = 0;
				if (pg * IPC_PAGE >= rg->size)
					continue; /* beyond the end: the truncate covers it */
				if (rg->present[pg]) {
					pe.m = region_copy_page(rg, pg);
					if (!pe.m) {
						b->oom = true;
						continue;
					}
				}
				VEC_PUSH(b, b->pages, pe);
			}
			rg->ndirty = 0;
		}
		for (size_t i = 0; i < q->nskips; i++) {
			struct ipc_msg *m = q->skips[i];
			m->skip_pending = false;
			if (!m->done && m->in_db) {
				struct del d = { n->id, m->seq, m->head };
				VEC_PUSH(b, b->skips, d);
			}
			ipc_msg_unref(m);
		}
		q->nskips = 0;
	}
	ipc_list_for_each_safe(pos, tmp, &st->deleted) {
		struct ipc_tomb *t = ipc_container_of(pos, struct ipc_tomb, link);
		ipc_list_del(pos);
		VEC_PUSH(b, b->tombs, t->id);
		free(t);
	}
	if (st->meta_global_dirty) {
		b->has_next_id = true;
		b->next_id = st->next_id;
		st->meta_global_dirty = false;
	}
}

static int step(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Writes b in one transaction (no lock held). Returns 0 or an SQLite code. */
static int write_batch(struct ipc_persist *p, const struct batch *b)
{
	int rc = sqlite3_exec(p->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	for (size_t i = 0; !rc && i < b->rows.n; i++) {
		const struct ipc_node_row *r = &b->rows.v[i].r;
		sqlite3_stmt *s = p->s_node;
		sqlite3_bind_int64(s, 1, (int64_t)r->id);
		sqlite3_bind_int64(s, 2, (int64_t)r->parent);
		sqlite3_bind_text(s, 3, r->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, r->kind);
		sqlite3_bind_int(s, 5, r->is_dir);
		sqlite3_bind_int64(s, 6, r->mode);
		sqlite3_bind_int64(s, 7, r->uid);
		sqlite3_bind_int64(s, 8, r->gid);
		sqlite3_bind_int64(s, 9, ts_ns(r->atime));
		sqlite3_bind_int64(s, 10, ts_ns(r->mtime));
		sqlite3_bind_int64(s, 11, ts_ns(r->ctime));
		sqlite3_bind_int(s, 12, r->set.framing);
		sqlite3_bind_int64(s, 13, (int64_t)r->set.max_messages);
		sqlite3_bind_int64(s, 14, (int64_t)r->set.max_bytes);
		sqlite3_bind_int64(s, 15, (int64_t)r->size);
		sqlite3_bind_int64(s, 16, (int64_t)r->value);
		sqlite3_bind_int64(s, 17, flags_of(&r->set));
		sqlite3_bind_int64(s, 18, (int64_t)r->set.retain);
		rc = step(s);
	}
	for (size_t i = 0; !rc && i < b->ins.n; i++) {
		const struct ins *in = &b->ins.v[i];
		sqlite3_stmt *s = p->s_ins;
		sqlite3_bind_int64(s, 1, (int64_t)in->obj);
		sqlite3_bind_int64(s, 2, in->seq);
		sqlite3_bind_int64(s, 3, in->skip);
		sqlite3_bind_blob(s, 4, in->m->data, (int)in->len, SQLITE_STATIC);
		rc = step(s);
	}
	for (size_t i = 0; !rc && i < b->truncs.n; i++) {
		sqlite3_bind_int64(p->s_trunc, 1, (int64_t)b->truncs.v[i].obj);
		sqlite3_bind_int64(p->s_trunc, 2, b->truncs.v[i].seq);
		rc = step(p->s_trunc);
	}
	for (size_t i = 0; !rc && i < b->pages.n; i++) {
		const struct page *pe = &b->pages.v[i];
		sqlite3_stmt *s = pe->m ? p->s_page : p->s_page_del;
		sqlite3_bind_int64(s, 1, (int64_t)pe->obj);
		sqlite3_bind_int64(s, 2, (int64_t)pe->pgno);
		if (pe->m)
			sqlite3_bind_blob(s, 3, pe->m->data, IPC_PAGE, SQLITE_STATIC);
		rc = step(s);
	}
	for (size_t i = 0; !rc && i < b->skips.n; i++) {
		const struct del *d = &b->skips.v[i];
		sqlite3_bind_int64(p->s_skip, 1, d->skip);
		sqlite3_bind_int64(p->s_skip, 2, (int64_t)d->obj);
		sqlite3_bind_int64(p->s_skip, 3, d->seq);
		rc = step(p->s_skip);
	}
	for (size_t i = 0; !rc && i < b->dels.n; i++) {
		const struct del *d = &b->dels.v[i];
		sqlite3_bind_int64(p->s_del, 1, (int64_t)d->obj);
		sqlite3_bind_int64(p->s_del, 2, d->seq);
		rc = step(p->s_del);
	}
	for (size_t i = 0; !rc && i < b->tombs.n; i++) {
		sqlite3_bind_int64(p->s_tomb_node, 1, (int64_t)b->tombs.v[i]);
		rc = step(p->s_tomb_node);
		if (!rc) {
			sqlite3_bind_int64(p->s_tomb_msgs, 1, (int64_t)b->tombs.v[i]);
			rc = step(p->s_tomb_msgs);
		}
		if (!rc) {
			sqlite3_bind_int64(p->s_tomb_pages, 1, (int64_t)b->tombs.v[i]);
			rc = step(p->s_tomb_pages);
		}
	}
	if (!rc && b->has_next_id) {
		sqlite3_bind_text(p->s_meta, 1, "next_id", -1, SQLITE_STATIC);
		sqlite3_bind_int64(p->s_meta, 2, (int64_t)b->next_id);
		rc = step(p->s_meta);
	}
	if (!rc)
		rc = sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
	if (rc) {
		snprintf(p->errmsg, sizeof(p->errmsg), "%s", sqlite3_errmsg(p->db));
		sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

/* After a commit attempt of generation gen (st->lock held). */
static void finish(struct ipc_store *st, uint64_t gen, bool ok)
{
	struct ipc_waiter *w;

	if (ok) {
		st->committed_gen = gen;
		st->db_error = 0;
		st->commits_ok++;
	} else {
		st->db_error = -EIO;
		st->commits_failed++;
	}
	while ((w = waitq_first(&st->commits)) && w->gen <= gen)
		store_complete(st, w, ok ? w->commit_result : -EIO);
}

/* Completes every commit waiter with -EIO (st->lock held). */
static void fail_waiters(struct ipc_store *st)
{
	struct ipc_waiter *w;

	while ((w = waitq_first(&st->commits)))
		store_complete(st, w, -EIO);
}

/* Waits ms milliseconds (st->lock held), waking early only to stop. */
static void sleep_for(struct ipc_store *st, long ms)
{
	struct timespec until, now;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (ms % 1000) * 1000000L;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (!st->stopping) {
		if (pthread_cond_timedwait(&st->dirty_cv, &st->lock, &until))
			break;
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			break;
	}
}

/* Tells the caller (hooks.db_state) that the database failed (with SQLite's
 * message) or recovered (NULL), once per change. No lock held. */
static void report(struct ipc_persist *p, const char *error)
{
	bool failing = error != NULL;

	if (failing == p->failing)
		return;
	p->failing = failing;
	if (p->st->hooks.db_state)
		p->st->hooks.db_state(p->st->hooks.ctx, error);
}

static bool pending(const struct ipc_store *st)
{
	return !ipc_list_empty(&st->dirty) || !ipc_list_empty(&st->deleted) ||
	       st->meta_global_dirty;
}

static void *writer(void *arg)
{
	struct ipc_persist *p = arg;
	struct ipc_store *st = p->st;
	struct batch b = { 0 };
	long backoff = 50;
	uint64_t db_size;

	store_lock(st);
	for (;;) {
		if (p->have_retry) {
			/* Earlier batches must land before later ones. */
			int rc;
			store_unlock(st);
			rc = write_batch(p, &p->retry);
			store_lock(st);
			if (rc) {
				/* Nothing can be made durable meanwhile: everyone waiting
				 * for a commit learns it now rather than hanging. */
				fail_waiters(st);
				store_unlock(st);
				store_lock(st);
				if (st->stopping)
					break;
				sleep_for(st, backoff);
				backoff = backoff < 2000 ? backoff * 2 : 2000;
				continue;
			}
			p->have_retry = false;
			batch_clear(&p->retry);
			finish(st, p->retry.gen, true);
			backoff = 50;
			store_unlock(st); /* runs the completions */
			report(p, NULL);
			store_lock(st);
			continue;
		}
		if (!pending(st)) {
			if (st->stopping)
				break;
			pthread_cond_wait(&st->dirty_cv, &st->lock);
			continue;
		}
		if (p->sync == IPC_SYNC_NORMAL) {
			/* Let changes gather for the window (or until someone waits). */
			struct timespec until, now;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += IPC_COMMIT_WINDOW_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			while (!st->commit_now && !st->stopping) {
				if (pthread_cond_timedwait(&st->dirty_cv, &st->lock, &until))
					break;
				clock_gettime(CLOCK_REALTIME, &now);
				if (now.tv_sec > until.tv_sec ||
				    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
					break;
			}
		}
		snapshot(st, &b);
		st->commit_now = false;
		if (batch_empty(&b)) {
			finish(st, b.gen, true);
			store_unlock(st); /* runs the completions */
			store_lock(st);
			continue;
		}
		store_unlock(st);
		{
			struct timespec t0, t1;
			int rc;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			rc = write_batch(p, &b);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			db_size = persist_db_size(p);
			store_lock(st);
			st->db_bytes = db_size;
			st->commit_ns_last = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
							(t1.tv_nsec - t0.tv_nsec));
			if (!rc)
				st->commit_ns_sum += st->commit_ns_last;
			if (rc) {
				/* Keep it and retry; meanwhile waiters learn of the failure. */
				finish(st, b.gen, false);
				batch_free(&p->retry);
				p->retry = b;
				memset(&b, 0, sizeof(b));
				p->have_retry = true;
				store_unlock(st); /* runs the completions */
				report(p, p->errmsg);
				store_lock(st);
				sleep_for(st, backoff);
				continue;
			}
		}
		finish(st, b.gen, true);
		batch_clear(&b);
		store_unlock(st); /* runs the completions */
		store_lock(st);
	}
	store_unlock(st);
	batch_free(&b);
	return NULL;
}

int persist_start(struct ipc_persist *p, struct ipc_store *st)
{
	sigset_t all, old;
	int r;

	p->st = st;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&p->thread, NULL, writer, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	p->running = true;
	return 0;
}

int persist_close(struct ipc_persist *p)
{
	int r = 0;

	if (!p)
		return 0;
	if (p->running) {
		store_lock(p->st);
		p->st->stopping = true;
		pthread_cond_signal(&p->st->dirty_cv);
		store_unlock(p->st);
		pthread_join(p->thread, NULL);
		p->running = false;
		store_lock(p->st);
		if (p->have_retry || pending(p->st))
			r = -EIO;
		store_unlock(p->st);
	}
	close_db(p, true);
	persist_free(p);
	return r;
}

unsigned long long persist_db_size(struct ipc_persist *p)
{
	char wal[PATH_MAX];
	struct stat sb;
	unsigned long long size = 0;

	if (!p || stat(p->path, &sb) < 0)
		return 0;
	size = (unsigned long long)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", p->path);
	if (stat(wal, &sb) == 0)
		size += (unsigned long long)sb.st_size;
	return size;
}
