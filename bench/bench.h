/* bench.h - ipcfs-bench: what its files share (options, daemons, timed runs, results). */
#ifndef IPCFS_BENCH_BENCH_H
#define IPCFS_BENCH_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * ipcfs-bench runs every workload in one process tree: it mounts its own
 * ipcfs instances and its own FUSE floor in a temporary directory, forks the
 * producer and consumer processes of each run, and unmounts and ends all of
 * it on every path out, including signals (cleanup.c). Figures are the
 * median of several repetitions, with min and max; the variants of one
 * workload are interleaved within each repetition so that the noise of a
 * busy machine spreads over all of them alike.
 */

#define MAX_REPS 32
#define NWL_MAX 7 /* workloads a..g */
#define KiB 1024ULL
#define MiB (1024ULL * 1024ULL)

/* --- options and the plan (bench.c) --- */

struct bench_cfg {
	bool quick, json;
	const char *only;      /* a workload name, or NULL for all */
	int reps;
	unsigned threads;      /* --daemon-threads: --threads N for both daemons */
	char ipcfs[PATH_MAX];  /* the ipcfs binary */
	char floor[PATH_MAX];  /* the fuse-floor binary */
	char fusermount[PATH_MAX];
	char tmp[128];         /* our temporary directory */
	double timeout;        /* seconds a run may take before it is a hang */
};
extern struct bench_cfg cfg;

/* Sizes of the workloads (full or --quick). */
struct plan {
	uint64_t a_fuse[2], a_kern[2]; /* messages: 64 B, 4 KiB; FUSE-based / kernel */
	uint64_t b_total[2];           /* stream bytes: 4 KiB writes, 1 MiB writes */
	uint64_t c_fuse, c_kern, c_warm;/* round trips measured; warm-up round trips */
	uint64_t d_size;               /* region bytes */
	int d_passes;
	double e_secs;                 /* seconds each durability run writes */
	uint64_t f_msgs, f_readers;
	int f_reps;
};
extern struct plan plan;

/* --- util.c --- */

double now(void);                       /* CLOCK_MONOTONIC, seconds */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Shared anonymous memory survives fork (MAP_SHARED); zeroed. Exits on failure. */
void *shared_alloc(size_t size);
void shared_free(void *p, size_t size);
/* Page-aligned private memory, touched. Exits on failure. */
void *aligned_buf(size_t size);
double median(const double *v, int n);
/* Sorts v; the p-quantile (0..1), nearest rank. */
double percentile(double *v, size_t n, double p);
/* The regular file an IPC object is (mknod S_IFREG 0644). 0 or -errno. */
int make_obj(const char *path);
int set_xattr(const char *path, const char *key, const char *val);     /* 0 or -errno */
int get_xattr_u64(const char *path, const char *key, uint64_t *out); /* 0 or -errno */
/* A number from /proc/PID/status ("VmRSS" in kB, "Threads"); -1 if absent. */
long proc_status(pid_t pid, const char *field);
int write_text(const char *path, const char *s);           /* 0 or -errno */
int read_text(const char *path, char *buf, size_t size);  /* 0 or -errno; trailing \n cut */
/* Writes all of buf (loops over short writes). 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
bool is_mounted(const char *mnt);
/* Runs argv (a path and arguments), waits; its exit status, or -1. Output
 * goes to /dev/null. */
int run_cmd(char *const argv[]);
/* rm -r of our own directory, not crossing mounts. */
void remove_tree(const char *dir);
const char *fmt_num(double v, char *buf, size_t len);

/* --- cleanup.c: what must be undone on any way out, signals included --- */

void cleanup_init(void);        /* installs the signal handlers */
void reg_worker(pid_t pid);     /* a process of a run: SIGKILLed on a signal */
void unreg_worker(pid_t pid);
int reg_daemon(pid_t pid, const char *mnt);  /* a slot: unmounted + ended on a signal */
void unreg_daemon(int slot);
void reg_path(const char *path);   /* unlinked on a signal (/dev/shm files) */
void unreg_path(const char *path);
void reg_mq(const char *name);     /* mq_unlink on a signal */
void unreg_mq(const char *name);
/* Writes val into a /proc/sys file, restoring the old value at exit or on a
 * signal. 0 or -errno. */
int sysctl_raise(const char *path, long val);
void sysctl_restore_all(void);
/* In a forked child: default signal dispositions, die with the parent. */
void child_after_fork(int deathsig);

/* --- daemon.c: ipcfs and fuse-floor instances --- */

enum inst_kind { INST_IPCFS, INST_FLOOR };

struct inst {
	char name[32];        /* memory, normal, full, floor, scale */
	enum inst_kind kind;
	char args[4][256];    /* daemon options before -f, e.g. --sync full */
	int nargs;
	char wrap[6][256];    /* a command the daemon runs under (valgrind ...) */
	int nwrap;
	char mnt[192], log[192];
	pid_t pid;            /* 0: not running */
	int slot;             /* in cleanup's registry */
	bool failed;          /* could not start: do not retry */
	char err[1024];
};

/* The shared instances, started on first use: "memory" (ipcfs --memory),
 * "normal" (--db, --sync normal), "full" (--db, --sync full), "floor".
 * NULL when it cannot start; *err then says why. */
struct inst *inst_shared(const char *name, const char **err);
void inst_init(struct inst *in, const char *name, enum inst_kind kind);
void inst_arg(struct inst *in, const char *arg);
/* Starts the daemon in the foreground as our child and waits for the mount
 * (and its first answer). 0, or -1 with in->err. */
int inst_start(struct inst *in);
/* fusermount3 -u (retried, then -uz), waits for the daemon to exit (SIGTERM,
 * SIGKILL after a while). 0 when it exited with 0. */
int inst_stop(struct inst *in);
/* After a hang: lazy unmount, SIGKILL. Stuck requests fail, processes go. */
void inst_abort(struct inst *in);
void inst_stop_all(void);
/* mnt/rel into buf. */
char *inst_path(const struct inst *in, const char *rel, char *buf, size_t len);
/* Prints what the daemons wrote on stderr (warnings), if anything. */
void inst_print_logs(FILE *out);

/* --- run.c: one timed run of forked processes --- */

/* What a process of a run reports (in shared memory). */
struct wres {
	int failed;
	char msg[256];
	double t_start, t_end;  /* after the go; when it finished its part */
	uint64_t count, bytes;
	double v[8];            /* workload-specific figures */
};

typedef void (*child_fn)(int idx, void *arg, struct wres *r);

struct run {
	int n;
	struct wres *res;       /* n entries, shared */
	double t0;              /* when the go was given */
	char err[512];          /* why the run failed */
	/* Optional: called after every process is ready, before the go;
	 * pids (n of them) is valid during the call. */
	int (*before_go)(void *arg, char *err, size_t len);
	void *hook_arg;
	const pid_t *pids;
};

/* Forks n processes running fn(idx, arg, res). Each sets itself up, calls
 * child_ready(), which returns at the common go, does its part and returns
 * (or child_fail()s). Waits at most timeout seconds for all of them; after
 * a timeout, or when processes cannot be reaped, the instance (if any) is
 * aborted. 0, or -1 with run->err. Free with run_free(). */
int run_procs(int n, child_fn fn, void *arg, struct inst *in, double timeout, struct run *run);
void run_free(struct run *run);
void child_ready(void);
void child_fail(struct wres *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Latest t_end of processes [from, to). */
double run_end(const struct run *run, int from, int to);

/* --- report.c: groups of rows, the text table and JSON --- */

enum better { HIGHER, LOWER };
enum rstate { RS_OK, RS_NA, RS_ERR };

struct row {
	char label[112];
	char tag;               /* 'A', 'B', ... for ipcfs rows; 0 for references */
	double s[MAX_REPS];
	int n;
	enum rstate st;
	char note[320];
};

struct group {
	char wl;                /* 'a' .. 'f' */
	char title[160];
	char unit[40];
	enum better better;
	struct row rows[12];
	int nrows;
	char note[400];
};

struct group *group_new(char wl, enum better b, const char *unit, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void group_note(struct group *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct row *row_ipcfs(struct group *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct row *row_ref(struct group *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void row_add(struct row *r, double v);
void row_na(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void row_err(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool row_live(const struct row *r);  /* neither n/a nor failed */
int report_errors(void);             /* rows that failed */

struct machine {
	long nproc;
	char cpu[128], kernel[128], libfuse[32], sqlite[32], ipcfs[64];
	double load_start, load_end;
	double load_before[NWL_MAX]; /* before workloads a..g; < 0: not run */
	long mem_mb;
};
void report_text(FILE *f, const struct machine *m, const char *cmdline);
void report_json(FILE *f, const struct machine *m, const char *cmdline);

/* --- workloads --- */

void wl_messages(void);    /* a */
void wl_stream(void);      /* b */
void wl_latency(void);     /* c */
void wl_regions(void);     /* d */
void wl_durability(void);  /* e */
void wl_scale(void);       /* f */
void wl_cost(void);        /* g */

/* Pieces e reuses: one run of a (ipcfs mailbox, write framing) and of b
 * (ipcfs FIFO) on instance in. 0 with the figure, or -1 with err. */
int msg_mbox_run(struct inst *in, size_t size, uint64_t count, double *rate, char *err,
		 size_t errlen);
int msg_floor_run(struct inst *in, size_t size, uint64_t count, double *rate, char *err,
		  size_t errlen);
int stream_fifo_run(struct inst *in, size_t wsize, uint64_t total, double *mbs, char *err,
		    size_t errlen);
/* A fresh name for an object or file: prefix-N. */
void fresh_name(char *buf, size_t len, const char *prefix);

#endif
