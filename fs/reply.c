/* reply.c - lib/ results to FUSE replies; hand-built open replies (FOPEN_STREAM). */
#include <errno.h>
#include <linux/fuse.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>

#include "fs/fs.h"
#include "lib/err.h"

int fs_errno(int r)
{
	if (r < 0)
		return -r;
	switch (r) {
	case IPC_E_AGAIN:
		return EAGAIN;
	default:
		return EIO; /* a positive code that escaped its caller: a bug */
	}
}

/* Stream files: no page cache, no file position (FOPEN_STREAM), so one fd
 * shared by a reader thread and a writer thread cannot deadlock on f_pos,
 * and every read()/write() starts at offset 0. libfuse 3.14 has no field for
 * FOPEN_STREAM, so the reply is built here; it is the kernel ABI struct. */
static uint32_t stream_flags(void)
{
	return FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM;
}

int fs_reply_open(fuse_req_t req, struct fs_open *fo)
{
	struct fuse_open_out out;

	if (!fo->stream) {
		struct fuse_file_info fi;
		memset(&fi, 0, sizeof(fi));
		fi.fh = (uintptr_t)fo;
		fi.keep_cache = fo->cached;
		fi.noflush = fo->cached;
		fi.direct_io = !fo->cached;
		return fuse_reply_open(req, &fi);
	}
	memset(&out, 0, sizeof(out));
	out.fh = (uintptr_t)fo;
	out.open_flags = stream_flags();
	return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

static uint64_t tsec(double t)
{
	return t > 0 ? (uint64_t)t : 0;
}

static uint32_t tnsec(double t)
{
	return t > 0 ? (uint32_t)((t - (double)(uint64_t)t) * 1e9) : 0;
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	a->ino = st->st_ino;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->blksize = (uint32_t)st->st_blksize;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
}

int fs_reply_create(fuse_req_t req, const struct stat *attr, double attr_timeout,
		    double entry_timeout, struct fs_open *fo)
{
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;

	if (!fo->stream) {
		struct fuse_entry_param e;
		struct fuse_file_info fi;
		memset(&e, 0, sizeof(e));
		memset(&fi, 0, sizeof(fi));
		e.ino = attr->st_ino;
		e.generation = 1;
		e.attr = *attr;
		e.attr_timeout = attr_timeout;
		e.entry_timeout = entry_timeout;
		fi.fh = (uintptr_t)fo;
		fi.keep_cache = 1;
		fi.noflush = 1;
		return fuse_reply_create(req, &e, &fi);
	}
	memset(&out, 0, sizeof(out));
	out.e.nodeid = attr->st_ino;
	out.e.generation = 1;
	out.e.entry_valid = tsec(entry_timeout);
	out.e.entry_valid_nsec = tnsec(entry_timeout);
	out.e.attr_valid = tsec(attr_timeout);
	out.e.attr_valid_nsec = tnsec(attr_timeout);
	fill_attr(&out.e.attr, attr);
	out.o.fh = (uintptr_t)fo;
	out.o.open_flags = stream_flags();
	return fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

int fs_reply_rd(fuse_req_t req, const struct ipc_rdres *rd)
{
	struct iovec iov[IPC_RD_SEGS];

	for (unsigned i = 0; i < rd->nseg; i++) {
		iov[i].iov_base = rd->seg[i].msg->data + rd->seg[i].off;
		iov[i].iov_len = rd->seg[i].len;
	}
	if (rd->nseg == 0)
		return fuse_reply_buf(req, NULL, 0);
	return fuse_reply_iov(req, iov, (int)rd->nseg);
}

void fs_err(struct fs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (fs && fs->syslog) {
		vsyslog(LOG_ERR, fmt, ap);
	} else {
		fputs("ipcfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

void fs_db_state(void *ctx, const char *error)
{
	struct fs *fs = ctx;

	if (error)
		fs_err(fs, "database commits fail (%s): serving from memory, retrying; "
			   "full-mode writes get EIO until it recovers", error);
	else
		fs_err(fs, "database commits work again");
}

void fs_log(struct fs *fs, const char *fmt, ...)
{
	va_list ap;

	if (fs && !fs->debug)
		return;
	va_start(ap, fmt);
	fputs("ipcfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
