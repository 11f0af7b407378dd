/* fuzz_db.c - libFuzzer target: the database loader given damaged files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/persist.h"
#include "lib/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is written as a database file (the corpus holds real ipcfs
 * databases, which the fuzzer damages), then opened and loaded as the
 * daemon does. Either it is refused with a message or it loads; never a
 * crash, a leak, or an out-of-memory. A refused file must be unchanged.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/ipcfs-fuzzdb-XXXXXX", path[64], err[512];
	struct ipc_persist *p = NULL;
	struct ipc_limits lim;
	struct ipc_store *st = NULL;
	FILE *f;
	int r;

	if (!mkdtemp(dir))
		return 0;
	snprintf(path, sizeof(path), "%s/db", dir);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size) {
		if (f)
			fclose(f);
		goto out;
	}
	fclose(f);
	store_default_limits(&lim);
	lim.max_memory = 64 << 20;
	lim.max_nodes = 10000;
	r = persist_open(path, IPC_SYNC_NORMAL, &p, err, sizeof(err));
	if (r) {
		/* Refused: the file must be as it was. */
		FILE *g = fopen(path, "rb");
		uint8_t *back = malloc(size + 1);
		size_t n = g && back ? fread(back, 1, size + 1, g) : 0;
		if (g)
			fclose(g);
		if (size && (n != size || memcmp(back, data, size)))
			abort();
		free(back);
		goto out;
	}
	if (store_new(&lim, IPC_SYNC_NORMAL, NULL, &st) == 0)
		persist_load(p, st, err, sizeof(err));
	persist_close(p);
	store_free(st);
out:
	unlink(path);
	{
		char wal[80], shm[80];
		snprintf(wal, sizeof(wal), "%s-wal", path);
		snprintf(shm, sizeof(shm), "%s-shm", path);
		unlink(wal);
		unlink(shm);
	}
	rmdir(dir);
	return 0;
}
