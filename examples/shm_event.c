/* shm_event.c - two processes share a region (mmap) and take turns, signalling with events. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/*
 * Usage: shm_event MOUNTPOINT   (or IPCFS_MNT=MOUNTPOINT shm_event)
 *
 * The parent fills a shared region with a block of data, then rings the
 * event "go" with the round number; the child, woken, sums the block in
 * place through its own mapping, stores the sum in the region's header and
 * rings "done". Both events are latched (a manual-reset event: it stays set
 * until the side that consumed it resets it with O_TRUNC), so no ring is
 * lost however the two processes are scheduled. The parent checks every
 * sum; the program exits 0 when all rounds are right.
 */

#define REGION (1u << 20)
#define ROUNDS 50
#define TIMEOUT_MS 20000

struct header {
	uint64_t round; /* written by the parent before "go" */
	uint64_t sum;   /* written by the child before "done" */
	uint64_t len;   /* bytes of data after the header */
};

/* dir_path is shorter, so that dir_path + "/done" always fits. */
static char go_path[4096], done_path[4096], shm_path[4096], dir_path[4000];

/* Reads a latched event's payload, waiting at most TIMEOUT_MS for it.
 * Returns the round number it carries, or -1 (message printed). */
static long wait_event(const char *path)
{
	char buf[64];
	ssize_t n, len = 0;
	struct pollfd p;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		perror(path);
		return -1;
	}
	p.fd = fd;
	p.events = POLLIN;
	if (poll(&p, 1, TIMEOUT_MS) != 1) {
		fprintf(stderr, "shm_event: %s: no signal within %d ms\n", path, TIMEOUT_MS);
		close(fd);
		return -1;
	}
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	if (n < 0) {
		perror(path);
		return -1;
	}
	buf[len] = '\0';
	return strtol(buf, NULL, 10);
}

/* Sets a latched event with a round number as its payload. */
static int ring(const char *path, uint64_t round)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", round);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, buf, (size_t)len) != len || close(fd) < 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* Resets a latched event: an open with O_TRUNC. */
static int reset(const char *path)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || close(fd) < 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* Creates the object and, if given, sets one user.ipcfs.* attribute. */
static int make(const char *path, const char *attr, const char *value)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0) {
		perror(path);
		return -1;
	}
	close(fd);
	if (attr && setxattr(path, attr, value, strlen(value), 0) < 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* Maps the whole region shared; NULL on failure (message printed). */
static uint8_t *map_region(void)
{
	int fd = open(shm_path, O_RDWR | O_CLOEXEC);
	void *p;

	if (fd < 0) {
		perror(shm_path);
		return NULL;
	}
	p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); /* the mapping keeps the region open */
	if (p == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	return p;
}

/* The child: wait for "go", sum the block, answer with "done". */
static int child(void)
{
	uint8_t *base = map_region();
	struct header *h = (struct header *)base;

	if (!base)
		return 1;
	for (uint64_t round = 1; round <= ROUNDS; round++) {
		uint64_t sum = 0;
		long got = wait_event(go_path);
		if (got != (long)round || h->round != round) {
			fprintf(stderr, "shm_event: child: expected round %" PRIu64 ", got %ld\n",
				round, got);
			return 1;
		}
		if (reset(go_path))
			return 1;
		for (uint64_t i = 0; i < h->len; i++)
			sum += base[sizeof(*h) + i];
		h->sum = sum;
		if (ring(done_path, round))
			return 1;
	}
	munmap(base, REGION);
	return 0;
}

/* The parent: fill, ring "go", wait for "done", check. */
static int parent(pid_t pid)
{
	uint8_t *base = map_region();
	struct header *h = (struct header *)base;
	int status, rc = 0;

	if (!base)
		return 1;
	for (uint64_t round = 1; round <= ROUNDS && !rc; round++) {
		uint64_t len = (round * 7919) % (REGION - sizeof(*h)), sum = 0;
		long got;
		for (uint64_t i = 0; i < len; i++) {
			base[sizeof(*h) + i] = (uint8_t)(i * round + (i >> 8));
			sum += base[sizeof(*h) + i];
		}
		h->len = len;
		h->sum = 0;
		h->round = round;
		if (ring(go_path, round)) {
			rc = 1;
			break;
		}
		got = wait_event(done_path);
		if (got != (long)round || reset(done_path)) {
			fprintf(stderr, "shm_event: parent: no answer for round %" PRIu64 "\n", round);
			rc = 1;
		} else if (h->sum != sum) {
			fprintf(stderr, "shm_event: round %" PRIu64 ": sum %" PRIu64 ", expected %" PRIu64
				"\n", round, h->sum, sum);
			rc = 1;
		}
	}
	munmap(base, REGION);
	if (rc)
		kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		rc = 1;
	return rc;
}

/* Makes the events and the region, runs the two sides, removes it all. */
int main(int argc, char **argv)
{
	const char *mnt = argc > 1 ? argv[1] : getenv("IPCFS_MNT");
	char sub[64];
	pid_t pid;
	int rc;

	if (!mnt || argc > 2) {
		fprintf(stderr, "usage: shm_event MOUNTPOINT (or set IPCFS_MNT)\n");
		return 2;
	}
	if (strlen(mnt) > 3900) {
		fprintf(stderr, "shm_event: mount point path too long\n");
		return 2;
	}
	snprintf(sub, sizeof(sub), "shm_event.%d", (int)getpid());
	snprintf(dir_path, sizeof(dir_path), "%s/event/%s", mnt, sub);
	snprintf(go_path, sizeof(go_path), "%s/go", dir_path);
	snprintf(done_path, sizeof(done_path), "%s/done", dir_path);
	snprintf(shm_path, sizeof(shm_path), "%s/shm/%s", mnt, sub);
	if (mkdir(dir_path, 0700) < 0) {
		perror(dir_path);
		return 1;
	}
	rc = make(go_path, "user.ipcfs.latched", "1") || make(done_path, "user.ipcfs.latched", "1") ||
	     make(shm_path, NULL, NULL) || truncate(shm_path, REGION) < 0;
	if (!rc) {
		fflush(NULL);
		pid = fork();
		if (pid == 0)
			_exit(child());
		rc = pid < 0 ? 1 : parent(pid);
	}
	unlink(go_path);
	unlink(done_path);
	unlink(shm_path);
	rmdir(dir_path);
	if (!rc)
		printf("shm_event: %d rounds through a shared region, signalled by events: all sums right\n",
		       ROUNDS);
	return rc ? 1 : 0;
}
