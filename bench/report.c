/* report.c - ipcfs-bench: result groups and rows, printed as a text table or as JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define MAX_GROUPS 64

static struct group groups[MAX_GROUPS];
static int ngroups;

static const char *const wl_names[] = {
	"messages", "stream", "latency", "regions", "durability", "scale", "cost",
};

struct group *group_new(char wl, enum better b, const char *unit, const char *fmt, ...)
{
	struct group *g;
	va_list ap;

	if (ngroups == MAX_GROUPS) {
		fprintf(stderr, "ipcfs-bench: too many result groups\n");
		exit(1);
	}
	g = &groups[ngroups++];
	memset(g, 0, sizeof(*g));
	g->wl = wl;
	g->better = b;
	snprintf(g->unit, sizeof(g->unit), "%s", unit);
	va_start(ap, fmt);
	vsnprintf(g->title, sizeof(g->title), fmt, ap);
	va_end(ap);
	return g;
}

void group_note(struct group *g, const char *fmt, ...)
{
	size_t len = strlen(g->note);
	va_list ap;

	if (len && len + 2 < sizeof(g->note)) {
		strcpy(g->note + len, " ");
		len++;
	}
	va_start(ap, fmt);
	vsnprintf(g->note + len, sizeof(g->note) - len, fmt, ap);
	va_end(ap);
}

static struct row *row_new(struct group *g, char tag, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static struct row *row_new(struct group *g, char tag, const char *fmt, va_list ap)
{
	struct row *r;

	if (g->nrows == (int)(sizeof(g->rows) / sizeof(g->rows[0]))) {
		fprintf(stderr, "ipcfs-bench: too many rows in a group\n");
		exit(1);
	}
	r = &g->rows[g->nrows++];
	memset(r, 0, sizeof(*r));
	r->tag = tag;
	vsnprintf(r->label, sizeof(r->label), fmt, ap);
	return r;
}

struct row *row_ipcfs(struct group *g, const char *fmt, ...)
{
	char tag = 'A';
	struct row *r;
	va_list ap;

	for (int i = 0; i < g->nrows; i++)
		if (g->rows[i].tag)
			tag++;
	va_start(ap, fmt);
	r = row_new(g, tag, fmt, ap);
	va_end(ap);
	return r;
}

struct row *row_ref(struct group *g, const char *fmt, ...)
{
	struct row *r;
	va_list ap;

	va_start(ap, fmt);
	r = row_new(g, 0, fmt, ap);
	va_end(ap);
	return r;
}

void row_add(struct row *r, double v)
{
	if (r->st == RS_OK && r->n < MAX_REPS)
		r->s[r->n++] = v;
}

static void row_mark(struct row *r, enum rstate st, const char *prefix, const char *fmt,
		     va_list ap) __attribute__((format(printf, 4, 0)));

static void row_mark(struct row *r, enum rstate st, const char *prefix, const char *fmt,
		     va_list ap)
{
	size_t len;

	if (r->st != RS_OK)
		return;
	r->st = st;
	len = (size_t)snprintf(r->note, sizeof(r->note), "%s", prefix);
	vsnprintf(r->note + len, sizeof(r->note) - len, fmt, ap);
	/* One line: daemon messages may carry newlines. */
	for (char *p = r->note; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

void row_na(struct row *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	row_mark(r, RS_NA, "n/a: ", fmt, ap);
	va_end(ap);
}

void row_err(struct row *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	row_mark(r, RS_ERR, "error: ", fmt, ap);
	va_end(ap);
}

bool row_live(const struct row *r)
{
	return r->st == RS_OK;
}

int report_errors(void)
{
	int n = 0;

	for (int i = 0; i < ngroups; i++)
		for (int j = 0; j < groups[i].nrows; j++)
			n += groups[i].rows[j].st == RS_ERR;
	return n;
}

static bool row_has(const struct row *r)
{
	return r->st == RS_OK && r->n > 0;
}

static double row_min(const struct row *r)
{
	double m = r->s[0];

	for (int i = 1; i < r->n; i++)
		if (r->s[i] < m)
			m = r->s[i];
	return m;
}

static double row_max(const struct row *r)
{
	double m = r->s[0];

	for (int i = 1; i < r->n; i++)
		if (r->s[i] > m)
			m = r->s[i];
	return m;
}

static const char *wl_name(char wl)
{
	return wl >= 'a' && wl <= 'g' ? wl_names[wl - 'a'] : "?";
}

static int ntags(const struct group *g)
{
	int n = 0;

	for (int i = 0; i < g->nrows; i++)
		n += g->rows[i].tag != 0;
	return n;
}

static const struct row *tagged(const struct group *g, int k)
{
	for (int i = 0; i < g->nrows; i++)
		if (g->rows[i].tag == 'A' + k)
			return &g->rows[i];
	return NULL;
}

static void fmt_ratio(double v, char *buf, size_t len)
{
	if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.3g", v);
}

/* --- text --- */

#define LABEL_W 46

void report_text(FILE *f, const struct machine *m, const char *cmdline)
{
	char wl = 0;

	fprintf(f, "ipcfs-bench: ipcfs %s side by side with kernel IPC and the FUSE floor\n",
		m->ipcfs);
	fprintf(f, "machine: %ld CPUs (%s), %ld MiB RAM, kernel %s, libfuse %s, SQLite %s\n",
		m->nproc, m->cpu, m->mem_mb, m->kernel, m->libfuse, m->sqlite);
	fprintf(f, "load average (1 min): %.2f at start;", m->load_start);
	for (int i = 0; i < NWL_MAX; i++)
		if (m->load_before[i] >= 0)
			fprintf(f, " %.2f before %c,", m->load_before[i], 'a' + i);
	fprintf(f, " %.2f at end\n", m->load_end);
	fprintf(f, "each figure: median of %d repetitions, with min and max; variants interleaved.\n",
		cfg.reps);
	fprintf(f, "ratio X/ref = ipcfs row X / reference row (medians); for rates above 1 means\n"
		   "ipcfs is faster, for times and latencies above 1 means ipcfs is slower.\n");
	for (int i = 0; i < ngroups; i++) {
		const struct group *g = &groups[i];
		int nt = ntags(g);
		char h[64];

		if (g->wl != wl) {
			wl = g->wl;
			fprintf(f, "\n== %c. %s ==\n", wl, wl_name(wl));
		}
		fprintf(f, "\n%c. %s  [%s, %s is better]\n", g->wl, g->title, g->unit,
			g->better == HIGHER ? "higher" : "lower");
		fprintf(f, "  %-*s %9s %9s %9s", LABEL_W, "", "median", "min", "max");
		for (int k = 0; k < nt; k++) {
			snprintf(h, sizeof(h), "%c/ref", 'A' + k);
			fprintf(f, " %7s", h);
		}
		fputc('\n', f);
		for (int j = 0; j < g->nrows; j++) {
			const struct row *r = &g->rows[j];
			char a[32], b[32], c[32], lab[sizeof(r->label) + 4];

			snprintf(lab, sizeof(lab), "%c %s", r->tag ? r->tag : ' ', r->label);
			if (!row_has(r)) {
				fprintf(f, "  %-*s %s\n", LABEL_W, lab,
					r->st == RS_OK ? "(no data)" : r->note);
				continue;
			}
			fprintf(f, "  %-*s %9s %9s %9s", LABEL_W, lab,
				fmt_num(median(r->s, r->n), a, sizeof(a)),
				fmt_num(row_min(r), b, sizeof(b)), fmt_num(row_max(r), c, sizeof(c)));
			if (!r->tag) {
				for (int k = 0; k < nt; k++) {
					const struct row *x = tagged(g, k);
					double ref = median(r->s, r->n);
					if (x && row_has(x) && ref > 0) {
						fmt_ratio(median(x->s, x->n) / ref, a, sizeof(a));
						fprintf(f, " %7s", a);
					} else {
						fprintf(f, " %7s", "-");
					}
				}
			}
			fputc('\n', f);
		}
		if (g->note[0])
			fprintf(f, "  note: %s\n", g->note);
	}
	fprintf(f, "\ncommand: %s\n", cmdline);
}

/* --- JSON --- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void report_json(FILE *f, const struct machine *m, const char *cmdline)
{
	fprintf(f, "{\n  \"machine\": {\"nproc\": %ld, \"cpu\": ", m->nproc);
	json_str(f, m->cpu);
	fprintf(f, ", \"mem_mib\": %ld, \"kernel\": ", m->mem_mb);
	json_str(f, m->kernel);
	fputs(", \"libfuse\": ", f);
	json_str(f, m->libfuse);
	fputs(", \"sqlite\": ", f);
	json_str(f, m->sqlite);
	fputs(", \"ipcfs\": ", f);
	json_str(f, m->ipcfs);
	fprintf(f, ", \"load_start\": %.2f, \"load_end\": %.2f, \"load_before\": {", m->load_start,
		m->load_end);
	for (int i = 0, first = 1; i < NWL_MAX; i++)
		if (m->load_before[i] >= 0) {
			fprintf(f, "%s\"%c\": %.2f", first ? "" : ", ", 'a' + i, m->load_before[i]);
			first = 0;
		}
	fputs("}},\n", f);
	fprintf(f, "  \"repetitions\": %d,\n  \"quick\": %s,\n  \"groups\": [", cfg.reps,
		cfg.quick ? "true" : "false");
	for (int i = 0; i < ngroups; i++) {
		const struct group *g = &groups[i];
		int nt = ntags(g);

		fprintf(f, "%s\n    {\"workload\": \"%c\", \"name\": \"%s\", \"title\": ", i ? "," : "",
			g->wl, wl_name(g->wl));
		json_str(f, g->title);
		fputs(", \"unit\": ", f);
		json_str(f, g->unit);
		fprintf(f, ", \"better\": \"%s\", \"note\": ", g->better == HIGHER ? "higher" : "lower");
		json_str(f, g->note);
		fputs(",\n     \"rows\": [", f);
		for (int j = 0; j < g->nrows; j++) {
			const struct row *r = &g->rows[j];
			fprintf(f, "%s\n       {\"label\": ", j ? "," : "");
			json_str(f, r->label);
			fprintf(f, ", \"role\": \"%s\"", r->tag ? "ipcfs" : "reference");
			if (r->tag)
				fprintf(f, ", \"tag\": \"%c\"", r->tag);
			fprintf(f, ", \"status\": \"%s\"",
				r->st == RS_OK ? (r->n ? "ok" : "no data") : r->st == RS_NA ? "n/a" : "error");
			if (r->st != RS_OK) {
				fputs(", \"note\": ", f);
				json_str(f, r->note);
			}
			if (row_has(r)) {
				fprintf(f, ", \"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"samples\": [",
					median(r->s, r->n), row_min(r), row_max(r));
				for (int k = 0; k < r->n; k++)
					fprintf(f, "%s%.6g", k ? ", " : "", r->s[k]);
				fputc(']', f);
			}
			if (!r->tag && row_has(r)) {
				fputs(", \"ratios\": {", f);
				for (int k = 0, first = 1; k < nt; k++) {
					const struct row *x = tagged(g, k);
					double ref = median(r->s, r->n);
					if (!x || !row_has(x) || ref <= 0)
						continue;
					fprintf(f, "%s\"%c\": %.4g", first ? "" : ", ", 'A' + k,
						median(x->s, x->n) / ref);
					first = 0;
				}
				fputc('}', f);
			}
			fputc('}', f);
		}
		fputs("]}", f);
	}
	fputs("\n  ],\n  \"command\": ", f);
	json_str(f, cmdline);
	fputs("\n}\n", f);
}
