/* record.c - record framing helpers in C: many length-prefixed messages per write(2) and read(2). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/*
 * In record framing (user.ipcfs.framing=record) each message on the wire is
 * a 32-bit little-endian length and that many bytes. One write(2) may carry
 * any number of records and one read(2) returns as many whole records as fit
 * in its buffer, so thousands of small messages cost a handful of requests.
 *
 * The helpers below are the whole protocol; copy them. main() is a self-test:
 *   record MOUNTPOINT   (or IPCFS_MNT=MOUNTPOINT record)
 * sends N messages in batches and reads them back in big reads, checking
 * every byte; exits 0 on success.
 */

struct recbuf {
	unsigned char *data;
	size_t len, cap;
};

/* Appends one record (length + bytes) to b, growing it. Returns 0 or -ENOMEM. */
static int rec_put(struct recbuf *b, const void *msg, uint32_t len)
{
	if (b->len + 4 + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *d;
		while (cap < b->len + 4 + len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	b->data[b->len] = (unsigned char)len;
	b->data[b->len + 1] = (unsigned char)(len >> 8);
	b->data[b->len + 2] = (unsigned char)(len >> 16);
	b->data[b->len + 3] = (unsigned char)(len >> 24);
	memcpy(b->data + b->len + 4, msg, len);
	b->len += 4 + (size_t)len;
	return 0;
}

/* Writes the batch in b with one write(2) (the daemon takes all of it or
 * waits for room) and empties b. Returns 0 or -errno. */
static int rec_flush(int fd, struct recbuf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	b->len = 0;
	return 0;
}

/* Calls fn(msg, len, arg) for every record in buf (one read's worth).
 * Returns the number of records, or -EPROTO if buf is not whole records. */
static long rec_each(const unsigned char *buf, size_t len,
		     int (*fn)(const unsigned char *msg, uint32_t len, void *arg), void *arg)
{
	size_t p = 0;
	long count = 0;

	while (p < len) {
		uint32_t rl;
		if (len - p < 4)
			return -EPROTO;
		rl = (uint32_t)buf[p] | (uint32_t)buf[p + 1] << 8 | (uint32_t)buf[p + 2] << 16 |
		     (uint32_t)buf[p + 3] << 24;
		if (len - p - 4 < rl)
			return -EPROTO;
		if (fn && fn(buf + p + 4, rl, arg))
			return -EPROTO;
		p += 4 + (size_t)rl;
		count++;
	}
	return count;
}

/* --- the self-test --- */

#define COUNT 20000
#define BATCH 500

/* Message i: "msg <i>" padded with i % 50 bytes of a pattern. */
static uint32_t make_msg(long i, char *out)
{
	int n = sprintf(out, "msg %ld ", i);
	for (long k = 0; k < i % 50; k++)
		out[n++] = (char)('a' + (i + k) % 26);
	return (uint32_t)n;
}

/* Checks that each record is the next expected message. */
static int check_one(const unsigned char *msg, uint32_t len, void *arg)
{
	long *next = arg;
	char want[128];
	uint32_t wl = make_msg(*next, want);

	if (len != wl || memcmp(msg, want, len)) {
		fprintf(stderr, "record: message %ld is wrong: '%.*s'\n", *next, (int)len,
			(const char *)msg);
		return -1;
	}
	(*next)++;
	return 0;
}

/* The self-test: COUNT messages out in batches, back in big reads. */
int main(int argc, char **argv)
{
	const char *mnt = argc > 1 ? argv[1] : getenv("IPCFS_MNT");
	struct recbuf b = { NULL, 0, 0 };
	unsigned char *rbuf = NULL;
	char path[4096], msg[128];
	long next = 0, reads = 0, writes = 0;
	int fd = -1, rc = 1;

	if (!mnt || argc > 2) {
		fprintf(stderr, "usage: record MOUNTPOINT (or set IPCFS_MNT)\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/mbox/record-c.%d", mnt, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	/* Record framing, and room for all the messages at once. */
	snprintf(msg, sizeof(msg), "%d", COUNT);
	if (fsetxattr(fd, "user.ipcfs.framing", "record", 6, 0) < 0 ||
	    fsetxattr(fd, "user.ipcfs.max_messages", msg, strlen(msg), 0) < 0) {
		perror(path);
		goto out;
	}
	for (long i = 0; i < COUNT; i++) {
		if (rec_put(&b, msg, make_msg(i, msg))) {
			perror("record");
			goto out;
		}
		if ((i + 1) % BATCH == 0 || i + 1 == COUNT) {
			int r = rec_flush(fd, &b);
			if (r) {
				fprintf(stderr, "record: write: %s\n", strerror(-r));
				goto out;
			}
			writes++;
		}
	}
	rbuf = malloc(65536);
	if (!rbuf)
		goto out;
	while (next < COUNT) {
		ssize_t n = read(fd, rbuf, 65536); /* many whole records per read */
		long k;
		if (n <= 0) {
			fprintf(stderr, "record: read: %s\n", n < 0 ? strerror(errno) : "end of file");
			goto out;
		}
		k = rec_each(rbuf, (size_t)n, check_one, &next);
		if (k < 0)
			goto out;
		reads++;
	}
	printf("record: %d messages in %ld writes and %ld reads\n", COUNT, writes, reads);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(b.data);
	free(rbuf);
	return rc;
}
