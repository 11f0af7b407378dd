/* wl_shm.c - ipcfs-bench workload d: a shared region mapped MAP_SHARED, ipcfs vs a /dev/shm file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench/bench.h"

/*
 * One process: a fresh file of plan.d_size bytes (ftruncate), mapped
 * MAP_SHARED. Figures (wres.v): [0] first touch: memset of the fresh
 * mapping, seconds; [1] warm write: memcpy into the mapping, GB/s (median of
 * the passes); [2] warm read: memcpy out of it, GB/s; [3] msync(MS_SYNC)
 * after a full write (memset), seconds: the region's first write-back;
 * [4] the same again: a write-back of pages the daemon already holds.
 */

struct shmjob {
	char path[PATH_MAX];
};

static void child(int idx, void *arg, struct wres *r)
{
	struct shmjob *j = arg;
	size_t size = plan.d_size;
	char *src = aligned_buf(size), *dst = aligned_buf(size), *p;
	double w[MAX_REPS], rd[MAX_REPS], t;
	int fd, passes = plan.d_passes < MAX_REPS ? plan.d_passes : MAX_REPS;

	(void)idx;
	fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		child_fail(r, "open %s: %s", j->path, strerror(errno));
	if (ftruncate(fd, (off_t)size))
		child_fail(r, "ftruncate: %s", strerror(errno));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		child_fail(r, "mmap MAP_SHARED: %s", strerror(errno));
	child_ready();

	t = now();
	memset(p, 1, size);
	r->v[0] = now() - t;
	for (int i = 0; i < passes; i++) {
		src[0] = (char)i;
		t = now();
		memcpy(p, src, size);
		w[i] = (double)size / (now() - t) / 1e9;
	}
	for (int i = 0; i < passes; i++) {
		t = now();
		memcpy(dst, p, size);
		rd[i] = (double)size / (now() - t) / 1e9;
		if (dst[0] != src[0] || dst[size - 1] != src[size - 1])
			child_fail(r, "the mapping does not hold what was written");
	}
	r->v[1] = median(w, passes);
	r->v[2] = median(rd, passes);
	for (int k = 0; k < 2; k++) {
		memset(p, 2 + k, size);
		t = now();
		if (msync(p, size, MS_SYNC))
			child_fail(r, "msync: %s", strerror(errno));
		r->v[3 + k] = now() - t;
	}
	r->t_end = now();
	munmap(p, size);
	close(fd);
}

enum { V_DB, V_MEM, V_DEVSHM, NV };
enum { NM = 5 }; /* figures */

void wl_regions(void)
{
	static const char *const what[NM] = {
		"first touch: memset of the fresh mapping",
		"warm write: memcpy into the mapping",
		"warm read: memcpy out of the mapping",
		"msync(MS_SYNC) after a full write (first write-back)",
		"msync(MS_SYNC) after another full write",
	};
	static const char *const units[NM] = { "ms", "GB/s", "GB/s", "ms", "ms" };
	static const char *const labels[NV] = {
		"ipcfs shm/ (--db, --sync normal)",
		"ipcfs shm/ (--memory)",
		"/dev/shm file",
	};
	struct group *g[NM];
	struct row *rows[NM][NV];

	for (int m = 0; m < NM; m++) {
		g[m] = group_new('d', m == 1 || m == 2 ? HIGHER : LOWER, units[m],
				 "region of %llu MiB, MAP_SHARED: %s", (unsigned long long)(plan.d_size / MiB),
				 what[m]);
		for (int v = 0; v < NV; v++)
			rows[m][v] = v == V_DEVSHM ? row_ref(g[m], "%s", labels[v])
						   : row_ipcfs(g[m], "%s", labels[v]);
	}
	group_note(g[1], "median of %d passes in each repetition.", plan.d_passes);
	group_note(g[3], "ipcfs --db: msync returns once the pages are in the database; the first"
			 " write-back also fills the daemon's own copy of the region.");
	for (int rep = 0; rep < cfg.reps; rep++) {
		progress("d. regions: repetition %d/%d", rep + 1, cfg.reps);
		for (int v = 0; v < NV; v++) {
			struct shmjob j;
			struct inst *in = NULL;
			struct run run = { 0 };
			const char *ierr = NULL;
			char name[64];

			if (!row_live(rows[0][v]))
				continue;
			if (v != V_DEVSHM) {
				in = inst_shared(v == V_DB ? "normal" : "memory", &ierr);
				if (!in) {
					for (int m = 0; m < NM; m++)
						row_err(rows[m][v], "%s", ierr);
					continue;
				}
				fresh_name(name, sizeof(name), "shm/bench");
				inst_path(in, name, j.path, sizeof(j.path));
			} else {
				fresh_name(name, sizeof(name), "shm");
				snprintf(j.path, sizeof(j.path), "/dev/shm/ipcfs-bench-%d-%s", (int)getpid(),
					 name);
				reg_path(j.path);
			}
			if (run_procs(1, child, &j, in, cfg.timeout, &run)) {
				for (int m = 0; m < NM; m++)
					row_err(rows[m][v], "%s", run.err);
			} else {
				row_add(rows[0][v], run.res[0].v[0] * 1e3);
				row_add(rows[1][v], run.res[0].v[1]);
				row_add(rows[2][v], run.res[0].v[2]);
				row_add(rows[3][v], run.res[0].v[3] * 1e3);
				row_add(rows[4][v], run.res[0].v[4] * 1e3);
			}
			run_free(&run);
			unlink(j.path);
			if (v == V_DEVSHM)
				unreg_path(j.path);
		}
	}
}
