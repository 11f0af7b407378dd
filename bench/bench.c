/* bench.c - ipcfs-bench: options, the machine, the plan, running the workloads, the report. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "bench/bench.h"
#include "ipcfs-config.h"

struct bench_cfg cfg;
struct plan plan;

static const struct {
	char letter;
	const char *name;
	void (*run)(void);
	const char *what;
} workloads[] = {
	{ 'a', "messages", wl_messages, "small-message throughput: mailbox vs POSIX mq, SEQPACKET, floor" },
	{ 'b', "stream", wl_stream, "bulk stream: ipcfs FIFO vs kernel FIFO, floor" },
	{ 'c', "latency", wl_latency, "64 B round trips: mailbox, FIFO vs pipe, mq, eventfd, floor" },
	{ 'd', "regions", wl_regions, "mapped region vs /dev/shm: first touch, memcpy, msync" },
	{ 'e', "durability", wl_durability, "--sync full vs SQLite; --sync normal vs --memory" },
	{ 'f', "scale", wl_scale, "1,000,000 queued messages; 10,000 blocked readers" },
	{ 'g', "cost", wl_cost, "instructions per message in the daemon (callgrind) vs the floor" },
};
#define NWL (sizeof(workloads) / sizeof(workloads[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ipcfs-bench [options]\n"
		"\n"
		"Mounts its own ipcfs instances and a FUSE floor (a do-nothing FUSE file system)\n"
		"in a temporary directory, runs the workloads side by side with the kernel's own\n"
		"IPC, prints medians (min, max) and ratios, and unmounts everything.\n"
		"\n"
		"Options:\n"
		"  --quick            a short version (seconds; for CI); skips scale\n"
		"  --only NAME        one workload (a letter or a name, below)\n"
		"  --json             JSON on stdout instead of the table\n"
		"  --reps N           repetitions (default 5; --quick 3)\n"
		"  --ipcfs PATH       the ipcfs daemon (default: next to this program in the build dir)\n"
		"  --floor PATH       the fuse-floor daemon (default: next to this program)\n"
		"  --daemon-threads N run both daemons with --threads N (default: their single-threaded loop)\n"
		"  --timeout SECONDS  a run taking longer is a hang (default 300; --quick 60)\n"
		"  --scale-messages N scale: messages queued (default 1000000)\n"
		"  --scale-readers N  scale: blocked readers (default 10000; a multiple of 10)\n"
		"  -h, --help         this help\n"
		"\n"
		"Workloads:\n");
	for (size_t i = 0; i < NWL; i++)
		fprintf(out, "  %c %-11s %s\n", workloads[i].letter, workloads[i].name, workloads[i].what);
	fprintf(out, "\nRun as root: FUSE mounts, mq and writeback limits need it.\n");
}

static bool executable(const char *p)
{
	return access(p, X_OK) == 0;
}

/* The binaries next to ours: build/X/bench/ipcfs-bench -> build/X/ipcfs. */
static void find_binaries(void)
{
	char self[PATH_MAX], dir[PATH_MAX], p[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *paths[] = { "/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3" };

	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		if (!cfg.ipcfs[0]) {
			snprintf(p, sizeof(p), "%s/../ipcfs", dir);
			if (!executable(p))
				snprintf(p, sizeof(p), "%s/ipcfs", dir);
			if (executable(p) && !realpath(p, cfg.ipcfs))
				cfg.ipcfs[0] = '\0';
		}
		if (!cfg.floor[0]) {
			snprintf(p, sizeof(p), "%s/fuse-floor", dir);
			if (executable(p) && !realpath(p, cfg.floor))
				cfg.floor[0] = '\0';
		}
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !cfg.fusermount[0]; i++)
		if (executable(paths[i]))
			snprintf(cfg.fusermount, sizeof(cfg.fusermount), "%s", paths[i]);
}

static void machine_info(struct machine *m)
{
	struct utsname u;
	char line[256], *colon;
	FILE *f;

	memset(m, 0, sizeof(*m));
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	m->mem_mb = sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024;
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
	snprintf(m->libfuse, sizeof(m->libfuse), "%s", fuse_pkgversion());
	snprintf(m->sqlite, sizeof(m->sqlite), "%s", sqlite3_libversion());
	snprintf(m->cpu, sizeof(m->cpu), "?");
	f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "model name", 10) == 0 && (colon = strchr(line, ':'))) {
			colon += 1 + (colon[1] == ' ');
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
			break;
		}
	if (f)
		fclose(f);
	snprintf(m->ipcfs, sizeof(m->ipcfs), "%s", IPCFS_VERSION);
}

static double loadavg(void)
{
	char buf[128];

	return read_text("/proc/loadavg", buf, sizeof(buf)) ? 0 : strtod(buf, NULL);
}

static void make_plan(void)
{
	if (cfg.quick) {
		plan = (struct plan){
			.a_fuse = { 2000, 1000 }, .a_kern = { 20000, 10000 },
			.b_total = { 16 * MiB, 128 * MiB },
			.c_fuse = 500, .c_kern = 2000, .c_warm = 50,
			.d_size = 16 * MiB, .d_passes = 3,
			.e_secs = 0.3,
			.f_msgs = 1000000, .f_readers = 10000, .f_reps = 1,
		};
	} else {
		plan = (struct plan){
			.a_fuse = { 30000, 20000 }, .a_kern = { 300000, 150000 },
			.b_total = { 128 * MiB, 1024 * MiB },
			.c_fuse = 10000, .c_kern = 50000, .c_warm = 200,
			.d_size = 64 * MiB, .d_passes = 5,
			.e_secs = 2.0,
			.f_msgs = 1000000, .f_readers = 10000, .f_reps = 3,
		};
	}
}

static int pick(const char *name)
{
	for (size_t i = 0; i < NWL; i++)
		if ((name[0] == workloads[i].letter && !name[1]) || strcmp(name, workloads[i].name) == 0)
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "only", required_argument, NULL, 'O' },
		{ "reps", required_argument, NULL, 'r' },
		{ "ipcfs", required_argument, NULL, 'I' },
		{ "floor", required_argument, NULL, 'F' },
		{ "daemon-threads", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "scale-messages", required_argument, NULL, 'M' },
		{ "scale-readers", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct machine m;
	struct rlimit rl;
	char cmdline[4096];
	size_t pos = 0;
	int c, only = -1, errors;
	unsigned long long scale_msgs = 0, scale_readers = 0;

	for (int i = 0; i < argc && pos < sizeof(cmdline) - 1; i++)
		pos += (size_t)snprintf(cmdline + pos, sizeof(cmdline) - pos, "%s%s", i ? " " : "",
					argv[i]);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': cfg.quick = true; break;
		case 'j': cfg.json = true; break;
		case 'O': cfg.only = optarg; break;
		case 'r':
			cfg.reps = atoi(optarg);
			if (cfg.reps < 1 || cfg.reps > MAX_REPS) {
				fprintf(stderr, "ipcfs-bench: --reps takes 1..%d\n", MAX_REPS);
				return 2;
			}
			break;
		case 'I':
			if (!realpath(optarg, cfg.ipcfs)) {
				fprintf(stderr, "ipcfs-bench: %s: %s\n", optarg, strerror(errno));
				return 2;
			}
			break;
		case 'F':
			if (!realpath(optarg, cfg.floor)) {
				fprintf(stderr, "ipcfs-bench: %s: %s\n", optarg, strerror(errno));
				return 2;
			}
			break;
		case 't':
			cfg.threads = (unsigned)atoi(optarg);
			if (cfg.threads < 1 || cfg.threads > 64) {
				fprintf(stderr, "ipcfs-bench: --daemon-threads takes 1..64\n");
				return 2;
			}
			break;
		case 'T':
			cfg.timeout = strtod(optarg, NULL);
			if (cfg.timeout <= 0) {
				fprintf(stderr, "ipcfs-bench: bad --timeout\n");
				return 2;
			}
			break;
		case 'M':
			scale_msgs = strtoull(optarg, NULL, 10);
			if (!scale_msgs) {
				fprintf(stderr, "ipcfs-bench: bad --scale-messages\n");
				return 2;
			}
			break;
		case 'R':
			scale_readers = strtoull(optarg, NULL, 10);
			if (scale_readers < 10 || scale_readers % 10 || scale_readers > 100000) {
				fprintf(stderr, "ipcfs-bench: --scale-readers takes a multiple of 10, up to 100000\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (cfg.only && (only = pick(cfg.only)) < 0) {
		fprintf(stderr, "ipcfs-bench: no workload '%s'\n", cfg.only);
		return 2;
	}
	if (!cfg.reps)
		cfg.reps = cfg.quick ? 3 : 5;
	if (!cfg.timeout)
		cfg.timeout = cfg.quick ? 60 : 300;
	find_binaries();
	if (!cfg.ipcfs[0] || !cfg.floor[0] || !cfg.fusermount[0]) {
		fprintf(stderr, "ipcfs-bench: cannot find %s (use --ipcfs/--floor)\n",
			!cfg.ipcfs[0] ? "the ipcfs binary" : !cfg.floor[0] ? "fuse-floor" : "fusermount3");
		return 1;
	}
	if (geteuid() != 0)
		progress("warning: not root: mounts, mq limits and the writeback tuning of regions may fail");
	make_plan();
	if (scale_msgs)
		plan.f_msgs = scale_msgs;
	if (scale_readers)
		plan.f_readers = scale_readers;
	if (plan.f_reps > cfg.reps)
		plan.f_reps = cfg.reps;
	snprintf(cfg.tmp, sizeof(cfg.tmp), "/tmp/ipcfs-bench.XXXXXX");
	cleanup_init();
	if (!mkdtemp(cfg.tmp)) {
		perror("ipcfs-bench: mkdtemp");
		return 1;
	}
	/* Deeper POSIX mqs: the soft limit up to the hard one (raising the
	 * hard one needs CAP_SYS_RESOURCE; the depth adapts, see wl_msg.c). */
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	machine_info(&m);
	m.load_start = loadavg();
	progress("ipcfs %s, fuse-floor %s, temporary directory %s", cfg.ipcfs, cfg.floor, cfg.tmp);

	for (size_t i = 0; i < NWL; i++) {
		m.load_before[i] = -1;
		if (only >= 0 && (int)i != only)
			continue;
		if (only < 0 && cfg.quick && workloads[i].letter == 'f')
			continue; /* minutes, not seconds: only with --only scale */
		if (only < 0 && cfg.quick && workloads[i].letter == 'g')
			continue; /* valgrind is slow: only with --only cost */
		m.load_before[i] = loadavg();
		workloads[i].run();
	}

	m.load_end = loadavg();
	inst_stop_all();
	sysctl_restore_all();
	inst_print_logs(stderr);
	remove_tree(cfg.tmp);
	if (cfg.json)
		report_json(stdout, &m, cmdline);
	else
		report_text(stdout, &m, cmdline);
	errors = report_errors();
	if (errors)
		progress("%d row%s failed (see the error cells)", errors, errors > 1 ? "s" : "");
	return errors ? 1 : 0;
}
