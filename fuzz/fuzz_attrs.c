/* fuzz_attrs.c - libFuzzer target: the xattr value parsers and attr_set. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/attrs.h"
#include "lib/object.h"
#include "lib/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"user.ipcfs.framing", "user.ipcfs.max_messages", "user.ipcfs.max_bytes",
	"user.ipcfs.undo", "user.ipcfs.latched", "user.ipcfs.retain",
	"user.ipcfs.overflow", "user.ipcfs.value", "user.ipcfs.messages",
	"user.ipcfs.bogus", "user.other",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *dirs[] = { NULL, "mbox", "fifo", "shm", "sem", "event", "topic" };
	struct ipc_cred cred = { 0, 0, 1, 022 };
	struct ipc_limits lim;
	struct ipc_store *st;
	struct stat sb;
	uint64_t v;
	uint8_t f;
	char buf[64];
	int kind, r;

	/* The strict parsers never read past len and agree with themselves. */
	if (attr_parse_u64((const char *)data, size, 0, UINT64_MAX, &v) == 0) {
		int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
		uint64_t v2;
		if (attr_parse_u64(buf, (size_t)n, 0, UINT64_MAX, &v2) || v2 != v)
			abort();
	}
	if (attr_parse_framing((const char *)data, size, &f) == 0 &&
	    strcmp(attr_framing_name(f), "?") == 0)
		abort();
	if (size < 2)
		return 0;

	/* attr_set on an object of each kind: EINVAL leaves the value as it was. */
	store_default_limits(&lim);
	if (store_new(&lim, IPC_SYNC_MEMORY, NULL, &st))
		return 0;
	kind = 1 + data[0] % 6;
	if (store_create(st, IPC_ROOT_ID + (uint64_t)kind, "x", 0644, &cred, &sb) == 0) {
		const char *name = names[data[1] % (sizeof(names) / sizeof(names[0]))];
		char before[64], after[64];
		int lb = attr_get(st, sb.st_ino, name, before, sizeof(before));
		r = attr_set(st, sb.st_ino, name, (const char *)data + 2, size - 2, 0, &cred);
		int la = attr_get(st, sb.st_ino, name, after, sizeof(after));
		if (r && (lb != la || (lb > 0 && memcmp(before, after, (size_t)lb))))
			abort(); /* a refused value changed something */
		(void)dirs;
		store_forget(st, sb.st_ino, 1);
	}
	store_free(st);
	return 0;
}
