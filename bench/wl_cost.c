/* wl_cost.c - workload g: instructions per message in the daemon (callgrind). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/*
 * The daemon runs under valgrind --tool=callgrind, which counts the
 * instructions it executes (all its threads): the same count on a noisy
 * machine as on a quiet one. Two runs of n1 and n2 64-byte messages (one
 * WRITE and one READ request each: ipcfs mailbox in write framing, the
 * floor's pipe) give instructions per message as the difference divided by
 * n2 - n1, so start-up and shut-down cancel out.
 */

static const char *valgrind(void)
{
	static const char *const dirs[] = { "/usr/bin/valgrind", "/usr/local/bin/valgrind" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (access(dirs[i], X_OK) == 0)
			return dirs[i];
	return NULL;
}

/* The total Ir of a callgrind output file, or -1. */
static double total_ir(const char *path)
{
	char line[512];
	double v = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "totals:", 7) || !strncmp(line, "summary:", 8))
			v = strtod(strchr(line, ':') + 1, NULL);
	}
	fclose(f);
	return v;
}

/* One daemon under callgrind, n messages; the instructions it executed. */
static int count_run(enum inst_kind kind, uint64_t n, double *ir, char *err, size_t errlen)
{
	struct inst in;
	char out[200], opt[232];
	double rate;
	int r;

	snprintf(out, sizeof(out), "%s/callgrind-%s-%llu.out", cfg.tmp,
		 kind == INST_FLOOR ? "floor" : "ipcfs", (unsigned long long)n);
	inst_init(&in, kind == INST_FLOOR ? "cg-floor" : "cg-ipcfs", kind);
	if (kind == INST_IPCFS)
		inst_arg(&in, "--memory");
	snprintf(in.wrap[in.nwrap++], sizeof(in.wrap[0]), "%s", valgrind());
	snprintf(in.wrap[in.nwrap++], sizeof(in.wrap[0]), "--tool=callgrind");
	snprintf(opt, sizeof(opt), "--callgrind-out-file=%s", out);
	snprintf(in.wrap[in.nwrap++], sizeof(in.wrap[0]), "%s", opt);
	snprintf(in.wrap[in.nwrap++], sizeof(in.wrap[0]), "--dump-instr=no");
	if (inst_start(&in)) {
		snprintf(err, errlen, "%s", in.err);
		return -1;
	}
	r = kind == INST_FLOOR ? msg_floor_run(&in, 64, n, &rate, err, errlen)
			       : msg_mbox_run(&in, 64, n, &rate, err, errlen);
	if (inst_stop(&in) && !r) {
		snprintf(err, errlen, "the daemon under valgrind did not exit cleanly");
		r = -1;
	}
	*ir = total_ir(out);
	unlink(out);
	if (!r && *ir < 0) {
		snprintf(err, errlen, "no callgrind totals in %s", out);
		r = -1;
	}
	return r;
}

void wl_cost(void)
{
	uint64_t n1 = cfg.quick ? 200 : 500, n2 = cfg.quick ? 1000 : 2500;
	struct group *g = group_new('g', LOWER, "instr",
				    "instructions per 64 B message in the daemon (write + read request)");
	struct row *ri = row_ipcfs(g, "ipcfs mbox, write framing, --memory");
	struct row *rf = row_ref(g, "FUSE floor pipe");
	const char *vg = valgrind();
	int reps = cfg.reps < 2 ? cfg.reps : 2; /* the count repeats itself */

	group_note(g, "valgrind --tool=callgrind on the daemon, all its threads; (Ir(%llu msgs) - "
		   "Ir(%llu msgs)) / %llu, so start-up and shut-down cancel out; one message is "
		   "one WRITE and one READ request.",
		   (unsigned long long)n2, (unsigned long long)n1, (unsigned long long)(n2 - n1));
	if (!vg) {
		row_na(ri, "valgrind is not installed");
		row_na(rf, "valgrind is not installed");
		return;
	}
	for (int rep = 0; rep < reps; rep++) {
		struct row *rows[2] = { ri, rf };
		enum inst_kind kinds[2] = { INST_IPCFS, INST_FLOOR };
		for (int k = 0; k < 2; k++) {
			double a, b;
			char err[1100];
			if (!row_live(rows[k]))
				continue;
			progress("g. cost: %s, repetition %d/%d", k ? "floor" : "ipcfs", rep + 1, reps);
			if (count_run(kinds[k], n1, &a, err, sizeof(err)) ||
			    count_run(kinds[k], n2, &b, err, sizeof(err))) {
				row_err(rows[k], "%s", err);
				continue;
			}
			row_add(rows[k], (b - a) / (double)(n2 - n1));
		}
	}
}
