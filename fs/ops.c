/* ops.c - the low-level FUSE operations: short handlers, one reply each. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/fs.h"
#include "lib/attrs.h"
#include "lib/err.h"

/* Names change only through this mount, so the kernel may cache them;
 * object attributes (size = bytes queued) change by themselves. */
#define ENTRY_TIMEOUT 1.0
#define DIR_ATTR_TIMEOUT 1.0

enum fw_kind { FW_READ, FW_WRITE, FW_OPEN, FW_CREATE, FW_SYNC };

/* A parked request. */
struct fs_wait {
	struct ipc_waiter w;
	fuse_req_t req;
	enum fw_kind kind;
	struct fs_open *fo;
	struct stat attr; /* FW_CREATE */
};

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_open *fo_of(const struct fuse_file_info *fi)
{
	return (struct fs_open *)(uintptr_t)fi->fh;
}

static struct ipc_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct ipc_cred cr = { c->uid, c->gid, (uint32_t)c->pid, c->umask };

	return cr;
}

/* Streams report their queue as st_size, so file attributes are not cached.
 * (Regions need no GETATTR on their data path: AUTO_INVAL_DATA is off, and
 * the kernel keeps i_size itself across writes and truncates.) */
static double attr_timeout(const struct stat *st)
{
	return S_ISDIR(st->st_mode) ? DIR_ATTR_TIMEOUT : 0.0;
}

static void reply_entry(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = st->st_ino;
	e.generation = 1;
	e.attr = *st;
	e.attr_timeout = attr_timeout(st);
	e.entry_timeout = ENTRY_TIMEOUT;
	/* Not delivered (interrupted): the kernel holds no reference. */
	if (fuse_reply_entry(req, &e))
		store_forget(fs_of(req)->st, st->st_ino, 1);
}

static void reply_status(fuse_req_t req, int r)
{
	fuse_reply_err(req, r ? fs_errno(r) : 0);
}

/* --- parking --- */

static void fs_complete(struct ipc_waiter *iw);

static void fs_interrupt(fuse_req_t req, void *data)
{
	struct fs_wait *fw = data;

	store_cancel(fs_of(req)->st, &fw->w);
}

static struct fs_wait *wait_new(fuse_req_t req, enum fw_kind kind, struct fs_open *fo)
{
	struct fs_wait *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return NULL;
	waiter_init(&fw->w, fs_complete, fw);
	fw->req = req;
	fw->kind = kind;
	fw->fo = fo;
	/* Register first: an interrupt that comes before the wait is queued
	 * marks the waiter CANCELLED and the operation returns EINTR. */
	fuse_req_interrupt_func(req, fs_interrupt, fw);
	return fw;
}

/* The operation finished without parking: stop interrupts, free. */
static void wait_drop(struct fs_wait *fw)
{
	fuse_req_interrupt_func(fw->req, NULL, NULL);
	free(fw);
}

static void open_failed(struct fs *fs, struct fs_open *fo, const struct stat *created)
{
	ipc_release(fo->h);
	free(fo);
	if (created)
		store_forget(fs->st, created->st_ino, 1);
}

static void fs_complete(struct ipc_waiter *iw)
{
	struct fs_wait *fw = iw->user;
	struct fs *fs = fs_of(fw->req);
	int res = iw->result, rc;

	if (!iw->interrupted)
		fuse_req_interrupt_func(fw->req, NULL, NULL);
	switch (fw->kind) {
	case FW_READ:
		if (res < 0) {
			fuse_reply_err(fw->req, -res);
			ipc_waiter_end(iw, true);
		} else {
			rc = fs_reply_rd(fw->req, &iw->rd);
			ipc_waiter_end(iw, rc == 0);
		}
		break;
	case FW_WRITE:
		if (res < 0)
			fuse_reply_err(fw->req, -res);
		else
			fuse_reply_write(fw->req, (size_t)res);
		ipc_waiter_end(iw, true);
		break;
	case FW_OPEN:
	case FW_CREATE:
		ipc_waiter_end(iw, true);
		if (res < 0) {
			fuse_reply_err(fw->req, -res);
			open_failed(fs, fw->fo, fw->kind == FW_CREATE ? &fw->attr : NULL);
			break;
		}
		if (fw->kind == FW_CREATE)
			rc = fs_reply_create(fw->req, &fw->attr, 0.0, ENTRY_TIMEOUT, fw->fo);
		else
			rc = fs_reply_open(fw->req, fw->fo);
		if (rc)
			open_failed(fs, fw->fo, fw->kind == FW_CREATE ? &fw->attr : NULL);
		break;
	case FW_SYNC:
		ipc_waiter_end(iw, true);
		fuse_reply_err(fw->req, res < 0 ? -res : 0);
		break;
	}
	free(fw);
}

/* --- namespace --- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Streams are direct_io; regions keep stable attributes themselves. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	store_lock(fs->st);
	if (conn->max_write > 4096 && conn->max_write - 4096 < fs->st->lim.write_msg_max)
		fs->st->lim.write_msg_max = conn->max_write - 4096;
	store_unlock(fs->st);
	fs_log(fs, "init: protocol %u.%u, max_write %u, max_read %u", conn->proto_major,
	       conn->proto_minor, conn->max_write, conn->max_read);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int r = store_lookup(fs_of(req)->st, parent, name, &st);

	if (r == -ENOENT) {
		/* A negative entry: the kernel may remember the name is free. */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		e.entry_timeout = ENTRY_TIMEOUT;
		fuse_reply_entry(req, &e);
	} else if (r) {
		reply_status(req, r);
	} else {
		reply_entry(req, &st);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	store_forget(fs_of(req)->st, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		store_forget(fs_of(req)->st, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = store_getattr(fs_of(req)->st, ino, &st);

	(void)fi;
	if (r)
		reply_status(req, r);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct ipc_cred cred = cred_of(req);
	struct stat st;
	int which = 0, r;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		which |= IPC_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		which |= IPC_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		which |= IPC_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		which |= IPC_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME)
		which |= IPC_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME)
		which |= IPC_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		which |= IPC_SET_ATIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		which |= IPC_SET_MTIME_NOW;
	if (to_set & FUSE_SET_ATTR_CTIME)
		which |= IPC_SET_CTIME;
	r = store_setattr(fs_of(req)->st, ino, attr, which, &cred, &st);
	if (r)
		reply_status(req, r);
	else
		fuse_reply_attr(req, &st, attr_timeout(&st));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct ipc_cred cred = cred_of(req);
	struct stat st;
	int r = store_mkdir(fs_of(req)->st, parent, name, mode, &cred, &st);

	if (r)
		reply_status(req, r);
	else
		reply_entry(req, &st);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct ipc_cred cred = cred_of(req);
	struct stat st;
	int r;

	(void)rdev;
	/* Only plain files: a FIFO or device node would be served by the
	 * kernel, never reaching ipcfs. */
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = store_create(fs_of(req)->st, parent, name, mode, &cred, &st);
	if (r)
		reply_status(req, r);
	else
		reply_entry(req, &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, store_unlink(fs_of(req)->st, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_status(req, store_rmdir(fs_of(req)->st, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	reply_status(req, store_rename(fs_of(req)->st, parent, name, newparent, newname, flags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ipc_statfs s;
	struct statvfs sv;

	(void)ino;
	store_statfs(fs_of(req)->st, &s);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = s.max_memory / 4096;
	sv.f_bfree = s.mem_used < s.max_memory ? (s.max_memory - s.mem_used) / 4096 : 0;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = s.max_nodes;
	sv.f_ffree = s.nodes < s.max_nodes ? s.max_nodes - s.nodes : 0;
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = IPC_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* --- directories --- */

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, pos;
};

static int dir_add(struct dirbuf *db, const char *name, const struct stat *st, off_t next)
{
	size_t len = fuse_add_direntry(db->req, db->buf + db->pos, db->size - db->pos, name, st,
				       next);

	if (len > db->size - db->pos)
		return 1;
	db->pos += len;
	return 0;
}

static int dir_fill(void *ctx, const char *name, const struct stat *attr, uint64_t cookie)
{
	/* Offsets 1 and 2 follow "." and ".."; a child's is its id + 2. */
	return dir_add(ctx, name, attr, (off_t)(cookie + 2));
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dirbuf db = { req, malloc(size), size, 0 };
	struct stat st;
	int r = 0;

	(void)fi;
	if (!db.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	st.st_ino = ino;
	if (off < 1 && dir_add(&db, ".", &st, 1))
		goto out;
	if (off < 2 && dir_add(&db, "..", &st, 2))
		goto out;
	r = store_readdir(fs_of(req)->st, ino, off > 2 ? (uint64_t)off - 2 : 0, dir_fill, &db);
out:
	if (r)
		reply_status(req, r);
	else
		fuse_reply_buf(req, db.buf, db.pos);
	free(db.buf);
}

/* --- files --- */

/* Opens node `ino` for the request; replies now or parks. created: the
 * attributes of a node this request created (CREATE), else NULL. */
static void do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    const struct stat *created)
{
	struct fs *fs = fs_of(req);
	struct ipc_cred cred = cred_of(req);
	struct fs_open *fo = calloc(1, sizeof(*fo));
	struct fs_wait *fw;
	struct stat st;
	int r, rc;

	if (!fo) {
		fuse_reply_err(req, ENOMEM);
		if (created)
			store_forget(fs->st, created->st_ino, 1);
		return;
	}
	if (created) {
		st = *created;
	} else if ((r = store_getattr(fs->st, ino, &st))) {
		free(fo);
		reply_status(req, r);
		return;
	}
	r = ipc_open(fs->st, ino, fi->flags, &cred, fo, NULL, &fo->h);
	if (r == IPC_E_AGAIN) {
		fw = wait_new(req, created ? FW_CREATE : FW_OPEN, fo);
		if (!fw) {
			r = -ENOMEM;
		} else {
			if (created)
				fw->attr = *created;
			r = ipc_open(fs->st, ino, fi->flags, &cred, fo, &fw->w, &fo->h);
			if (r == IPC_E_PARKED) {
				fo->stream = store_kind_is_stream(fo->h->node->kind);
				fo->cached = store_kind_is_cached(fo->h->node->kind);
				return;
			}
			wait_drop(fw);
		}
	}
	if (r) {
		free(fo);
		reply_status(req, r);
		if (created)
			store_forget(fs->st, created->st_ino, 1);
		return;
	}
	fo->stream = store_kind_is_stream(fo->h->node->kind);
	fo->cached = store_kind_is_cached(fo->h->node->kind);
	rc = created ? fs_reply_create(req, created, 0.0, ENTRY_TIMEOUT, fo)
		     : fs_reply_open(req, fo);
	if (rc)
		open_failed(fs, fo, created);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	do_open(req, ino, fi, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct ipc_cred cred = cred_of(req);
	struct fs *fs = fs_of(req);
	struct stat st;
	int r = store_create(fs->st, parent, name, mode, &cred, &st);

	/* Created meanwhile by someone else: O_CREAT without O_EXCL opens it. */
	if (r == -EEXIST && !(fi->flags & O_EXCL))
		r = store_lookup(fs->st, parent, name, &st);
	if (r) {
		reply_status(req, r);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		store_forget(fs->st, st.st_ino, 1);
		fuse_reply_err(req, EISDIR);
		return;
	}
	do_open(req, st.st_ino, fi, &st);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_open *fo = fo_of(fi);
	struct ipc_handle *h = fo->h;
	struct ipc_rdres rd;
	struct fs_wait *fw;
	int r, rc;

	(void)ino;
	/* After a reply the file may be released at once by another worker
	 * (fo freed); the handle itself lives on while rd references it. */
	if (!fo->stream) {
		r = ipc_pread(h, (uint64_t)off, size, &rd);
		if (r) {
			reply_status(req, r);
			return;
		}
		rc = fs_reply_rd(req, &rd);
		if (rd.total)
			ipc_read_done(h, &rd, rc == 0);
		return;
	}
	/* A continuation chunk of one read(2): one read returns one message. */
	if (off > 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	r = ipc_read(h, size, fi->flags, NULL, &rd);
	if (r == IPC_E_AGAIN) {
		fw = wait_new(req, FW_READ, fo);
		if (!fw) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		r = ipc_read(h, size, fi->flags, &fw->w, &rd);
		if (r == IPC_E_PARKED)
			return;
		wait_drop(fw);
	}
	if (r) {
		reply_status(req, r);
		return;
	}
	rc = fs_reply_rd(req, &rd);
	if (rd.total)
		ipc_read_done(h, &rd, rc == 0);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs_open *fo = fo_of(fi);
	struct fs_wait *fw;
	size_t written = 0;
	int flags = fi->flags, r;

	(void)ino;
	if (fi->writepage)
		flags |= IPC_O_WRITEBACK;
	r = ipc_write(fo->h, buf, size, (uint64_t)off, flags, NULL, &written);
	if (r == IPC_E_AGAIN) {
		fw = wait_new(req, FW_WRITE, fo);
		if (!fw) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		r = ipc_write(fo->h, buf, size, (uint64_t)off, flags, &fw->w, &written);
		if (r == IPC_E_PARKED)
			return;
		wait_drop(fw);
	}
	if (r)
		reply_status(req, r);
	else
		fuse_reply_write(req, written);
}

/* Whether thread tid is exiting because a signal killed it (its FLUSHes
 * then come from the kernel closing its files): /proc/TID/stat has
 * PF_EXITING in its flags and a signal number in its exit code. */
static bool killed_by_signal(uint32_t tid)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	long code = 0;
	ssize_t n;
	int fd, field = 2;

	snprintf(path, sizeof(path), "/proc/%u/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p)
		return false;
	for (char *save = NULL, *tok = strtok_r(p + 1, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 9)
			flags = strtoul(tok, NULL, 10);
		else if (field == 52)
			code = strtol(tok, NULL, 10);
	}
	return (flags & 0x4 /* PF_EXITING */) && (code & 0x7f);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_open *fo = fo_of(fi);
	struct ipc_cred cred = cred_of(req);
	struct fs_wait *fw;
	int r;

	(void)ino;
	/* A writer killed in the middle of an open-framing message leaves no
	 * part of it (the kernel's close of its files must not commit it). */
	if (cred.tid == fo->h->cred.tid && ipc_write_pending(fo->h) && killed_by_signal(cred.tid))
		ipc_abort_write(fo->h);
	r = ipc_flush(fo->h, &cred, NULL);
	if (r == IPC_E_AGAIN) {
		fw = wait_new(req, FW_SYNC, fo);
		if (!fw) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		r = ipc_flush(fo->h, &cred, &fw->w);
		if (r == IPC_E_PARKED)
			return;
		wait_drop(fw);
	}
	reply_status(req, r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_open *fo = fo_of(fi);
	struct fs_wait *fw;
	int r;

	(void)ino;
	(void)datasync;
	r = ipc_fsync(fo->h, NULL);
	if (r == IPC_E_AGAIN) {
		fw = wait_new(req, FW_SYNC, fo);
		if (!fw) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		r = ipc_fsync(fo->h, &fw->w);
		if (r == IPC_E_PARKED)
			return;
		wait_drop(fw);
	}
	reply_status(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_open *fo = fo_of(fi);

	(void)ino;
	ipc_release(fo->h);
	pthread_mutex_lock(&fs->notify_lock);
	if (fo->ph)
		fuse_pollhandle_destroy(fo->ph);
	pthread_mutex_unlock(&fs->notify_lock);
	free(fo);
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fs *fs = fs_of(req);
	struct fs_open *fo = fo_of(fi);
	unsigned revents = 0;

	(void)ino;
	if (ph) {
		pthread_mutex_lock(&fs->notify_lock);
		if (fo->ph)
			fuse_pollhandle_destroy(fo->ph);
		fo->ph = ph;
		pthread_mutex_unlock(&fs->notify_lock);
	}
	ipc_poll(fo->h, fi->poll_events, ph != NULL, &revents);
	fuse_reply_poll(req, revents);
}

/* --- extended attributes --- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct ipc_cred cred = cred_of(req);

	reply_status(req, attr_set(fs_of(req)->st, ino, name, value, size, flags, &cred));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char buf[256];
	int r = attr_get(fs_of(req)->st, ino, name, buf, size < sizeof(buf) ? size : sizeof(buf));

	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[1024];
	int r = attr_list(fs_of(req)->st, ino, buf, size < sizeof(buf) ? size : sizeof(buf));

	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_status(req, attr_remove(fs_of(req)->st, ino, name));
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.symlink = op_symlink,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.readdir = op_readdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.poll = op_poll,
};
