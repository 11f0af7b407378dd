/* shmmap.c - maps a region file MAP_SHARED and runs a list of commands on it.
 *
 * Usage: shmmap [-c] [-s SIZE] [-l LEN] FILE CMD [ARGS]... [CMD [ARGS]...]...
 *   -c        create FILE (O_CREAT, mode 0644) if missing
 *   -s SIZE   ftruncate FILE to SIZE before mapping
 *   -l LEN    map LEN bytes (default: the file size after -s; at least 1)
 * Commands, run in order (numbers: decimal or 0x hex):
 *   fill OFF LEN BYTE        store BYTE at [OFF, OFF+LEN) through the mapping
 *   str OFF TEXT             store the bytes of TEXT at OFF
 *   pat OFF LEN SEED         store pattern byte(OFF+i) = patbyte(SEED, OFF+i)
 *   check OFF LEN SEED       exit 4 unless [OFF, OFF+LEN) holds that pattern
 *   wait OFF BYTE MS         poll the mapping (no msync) until the byte at OFF
 *                            is BYTE; exit 3 after MS milliseconds
 *   waitstr OFF TEXT MS      the same for the bytes of TEXT
 *   pingpong MINE THEIRS N MS
 *                            for i in 1..N (N <= 255): store i at MINE, then
 *                            wait until THEIRS holds i (a partner answers)
 *   storeloop N              N rounds (0: until killed) of: store the round
 *                            number in the first byte of every page, fsync;
 *                            prints "looping" after the second round
 *   sync                     msync(MS_SYNC) of the whole mapping
 *   async                    msync(MS_ASYNC)
 *   fsync                    fsync(fd)
 *   hex OFF LEN              print the bytes as hex, one line
 *   print OFF LEN            print the bytes raw, then a newline
 *   say TEXT                 print TEXT and a newline (a progress mark)
 *   hold                     wait for a line (or EOF) on stdin: the mapping
 *                            stays in place until the driver says go on
 *   trunc SIZE               ftruncate and remap to the new size
 *   sleepms MS               sleep (only for manual experiments)
 * stdout is flushed after every command so a driver can follow progress.
 * Exit status: 0 ok, 2 usage or system error, 3 wait timeout, 4 check failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fd = -1;
static volatile unsigned char *map;
static size_t maplen;

static void die(const char *what)
{
	fprintf(stderr, "shmmap: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(const char *msg)
{
	fprintf(stderr, "shmmap: %s (see the comment at the top of shmmap.c)\n", msg);
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0')
		usage("bad number");
	return (uint64_t)v;
}

static unsigned char patbyte(uint64_t seed, uint64_t pos)
{
	uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ (seed * 0xD1B54A32D192ED03ull);

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (unsigned char)x;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void range(uint64_t off, uint64_t len)
{
	if (off > maplen || len > maplen - off) {
		fprintf(stderr, "shmmap: range %" PRIu64 "+%" PRIu64 " outside the mapping (%zu)\n",
			off, len, maplen);
		exit(2);
	}
}

static void do_map(size_t len)
{
	void *p;

	if (map)
		munmap((void *)map, maplen);
	maplen = len ? len : 1;
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	map = p;
}

/* Polls until [off, off+len) equals want; 0 or -1 on timeout. */
static int wait_bytes(uint64_t off, const unsigned char *want, size_t len, uint64_t ms)
{
	double end = now_ms() + (double)ms;
	struct timespec pause = { 0, 200000 };

	range(off, len);
	for (;;) {
		size_t i;
		for (i = 0; i < len && map[off + i] == want[i]; i++)
			;
		if (i == len)
			return 0;
		if (now_ms() > end)
			return -1;
		nanosleep(&pause, NULL);
	}
}

int main(int argc, char **argv)
{
	int opt, create = 0;
	long long setsize = -1, maparg = -1;
	struct stat sb;
	int i;

	while ((opt = getopt(argc, argv, "+cs:l:")) != -1) {
		switch (opt) {
		case 'c': create = 1; break;
		case 's': setsize = (long long)num(optarg); break;
		case 'l': maparg = (long long)num(optarg); break;
		default: usage("bad option");
		}
	}
	if (optind >= argc)
		usage("no file");
	fd = open(argv[optind], O_RDWR | (create ? O_CREAT : 0), 0644);
	if (fd < 0)
		die(argv[optind]);
	if (setsize >= 0 && ftruncate(fd, (off_t)setsize) < 0)
		die("ftruncate");
	if (fstat(fd, &sb) < 0)
		die("fstat");
	do_map(maparg >= 0 ? (size_t)maparg : (size_t)sb.st_size);

	for (i = optind + 1; i < argc;) {
		const char *c = argv[i];
#define NEED(n) do { if (i + (n) >= argc) usage("missing arguments"); } while (0)
		if (!strcmp(c, "fill")) {
			NEED(3);
			uint64_t off = num(argv[i + 1]), len = num(argv[i + 2]);
			unsigned char b = (unsigned char)num(argv[i + 3]);
			range(off, len);
			for (uint64_t k = 0; k < len; k++)
				map[off + k] = b;
			i += 4;
		} else if (!strcmp(c, "str")) {
			NEED(2);
			uint64_t off = num(argv[i + 1]);
			size_t len = strlen(argv[i + 2]);
			range(off, len);
			for (size_t k = 0; k < len; k++)
				map[off + k] = (unsigned char)argv[i + 2][k];
			i += 3;
		} else if (!strcmp(c, "pat") || !strcmp(c, "check")) {
			NEED(3);
			uint64_t off = num(argv[i + 1]), len = num(argv[i + 2]), seed = num(argv[i + 3]);
			range(off, len);
			for (uint64_t k = off; k < off + len; k++) {
				if (c[0] == 'p') {
					map[k] = patbyte(seed, k);
				} else if (map[k] != patbyte(seed, k)) {
					printf("mismatch at %" PRIu64 ": 0x%02x, want 0x%02x\n", k,
					       map[k], patbyte(seed, k));
					fflush(stdout);
					return 4;
				}
			}
			i += 4;
		} else if (!strcmp(c, "wait")) {
			NEED(3);
			unsigned char b = (unsigned char)num(argv[i + 2]);
			if (wait_bytes(num(argv[i + 1]), &b, 1, num(argv[i + 3]))) {
				fprintf(stderr, "shmmap: timed out waiting for byte 0x%02x at %s\n", b,
					argv[i + 1]);
				return 3;
			}
			i += 4;
		} else if (!strcmp(c, "waitstr")) {
			NEED(3);
			const char *s = argv[i + 2];
			if (wait_bytes(num(argv[i + 1]), (const unsigned char *)s, strlen(s),
				       num(argv[i + 3]))) {
				fprintf(stderr, "shmmap: timed out waiting for \"%s\" at %s\n", s,
					argv[i + 1]);
				return 3;
			}
			i += 4;
		} else if (!strcmp(c, "pingpong")) {
			NEED(4);
			uint64_t mine = num(argv[i + 1]), theirs = num(argv[i + 2]);
			uint64_t n = num(argv[i + 3]), ms = num(argv[i + 4]);
			if (n > 255)
				usage("pingpong: at most 255 rounds");
			range(mine, 1);
			for (uint64_t r = 1; r <= n; r++) {
				unsigned char b = (unsigned char)r;
				map[mine] = b;
				if (wait_bytes(theirs, &b, 1, ms)) {
					fprintf(stderr, "shmmap: pingpong: no answer %u at %" PRIu64 "\n",
						b, theirs);
					return 3;
				}
			}
			i += 5;
		} else if (!strcmp(c, "storeloop")) {
			NEED(1);
			uint64_t n = num(argv[i + 1]);
			for (uint64_t r = 1; n == 0 || r <= n; r++) {
				for (size_t k = 0; k < maplen; k += 4096)
					map[k] = (unsigned char)r;
				if (r == 2) {
					puts("looping");
					fflush(stdout);
				}
				if (fsync(fd) < 0)
					die("fsync");
			}
			i += 2;
		} else if (!strcmp(c, "sync") || !strcmp(c, "async")) {
			if (msync((void *)map, maplen, c[0] == 's' ? MS_SYNC : MS_ASYNC) < 0)
				die("msync");
			i += 1;
		} else if (!strcmp(c, "fsync")) {
			if (fsync(fd) < 0)
				die("fsync");
			i += 1;
		} else if (!strcmp(c, "hex") || !strcmp(c, "print")) {
			NEED(2);
			uint64_t off = num(argv[i + 1]), len = num(argv[i + 2]);
			range(off, len);
			for (uint64_t k = off; k < off + len; k++) {
				if (c[0] == 'h')
					printf("%02x", map[k]);
				else
					putchar(map[k]);
			}
			putchar('\n');
			i += 3;
		} else if (!strcmp(c, "say")) {
			NEED(1);
			puts(argv[i + 1]);
			i += 2;
		} else if (!strcmp(c, "hold")) {
			char line[64];
			if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
				die("stdin");
			i += 1;
		} else if (!strcmp(c, "trunc")) {
			NEED(1);
			uint64_t size = num(argv[i + 1]);
			if (ftruncate(fd, (off_t)size) < 0)
				die("ftruncate");
			do_map((size_t)size);
			i += 2;
		} else if (!strcmp(c, "sleepms")) {
			NEED(1);
			uint64_t ms = num(argv[i + 1]);
			struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			i += 2;
		} else {
			fprintf(stderr, "shmmap: unknown command %s\n", c);
			return 2;
		}
		fflush(stdout);
	}
	munmap((void *)map, maplen);
	close(fd);
	return 0;
}
