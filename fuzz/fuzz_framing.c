/* fuzz_framing.c - libFuzzer target: writes in every framing, then reads. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/attrs.h"
#include "lib/err.h"
#include "lib/object.h"
#include "lib/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the kind (mailbox, topic, FIFO, semaphore, event) and
 * framing; byte 1 small limits or not; the rest is cut into writes at the
 * lengths that bytes of it give. Everything written is then read back
 * without blocking. Checks: no crash, no leak, bytes read <= bytes written
 * (plus record headers), and the memory charge returns to zero.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const framings[] = { "open", "write", "line", "record" };
	static const int kinds[] = { IPC_KIND_MBOX, IPC_KIND_TOPIC, IPC_KIND_FIFO,
				     IPC_KIND_SEM, IPC_KIND_EVENT };
	struct ipc_cred cred = { 0, 0, 7, 022 };
	struct ipc_handle *w = NULL, *r = NULL;
	struct ipc_limits lim;
	struct ipc_store *st;
	struct stat sb;
	size_t pos = 2, in = 0, out = 0, written;
	int kind;

	if (size < 2)
		return 0;
	store_default_limits(&lim);
	lim.max_memory = 1 << 20;
	if (store_new(&lim, IPC_SYNC_MEMORY, NULL, &st))
		return 0;
	kind = kinds[data[0] % 5];
	if (store_create(st, IPC_ROOT_ID + (uint64_t)kind, "x", 0644, &cred, &sb))
		goto out;
	if (kind == IPC_KIND_MBOX || kind == IPC_KIND_TOPIC) {
		const char *f = framings[(data[0] / 5) % 4];
		attr_set(st, sb.st_ino, "user.ipcfs.framing", f, strlen(f), 0, &cred);
	}
	if (data[1] & 1) {
		attr_set(st, sb.st_ino, "user.ipcfs.max_messages", "3", 1, 0, &cred);
		attr_set(st, sb.st_ino, "user.ipcfs.max_bytes", "100", 3, 0, &cred);
	}
	/* The reader first (topics and events deliver to open readers). */
	if (ipc_open(st, sb.st_ino, O_RDONLY | O_NONBLOCK, &cred, NULL, NULL, &r))
		r = NULL;
	if (ipc_open(st, sb.st_ino, O_WRONLY | O_NONBLOCK, &cred, NULL, NULL, &w))
		goto out_close;
	while (pos < size) {
		size_t len = 1 + data[pos++] % 64;
		if (len > size - pos)
			len = size - pos;
		written = 0;
		if (ipc_write(w, data + pos, len, 0, O_NONBLOCK, NULL, &written) == 0)
			in += written;
		pos += len;
		if (data[pos - 1] % 7 == 0)
			ipc_flush(w, &cred, NULL);
	}
	ipc_flush(w, &cred, NULL);
	ipc_release(w);
	w = NULL;
	for (int i = 0; r && i < 10000; i++) {
		struct ipc_rdres rd;
		int rc = ipc_read(r, 1 + (size_t)(i % 97), O_NONBLOCK, NULL, &rd);
		if (rc)
			break;
		out += rd.total;
		if (!rd.total)
			break;
		ipc_read_done(r, &rd, i % 11 != 5);
	}
	/* Record framing adds 4 bytes of header per message; sem reads "1\n". */
	if (kind != IPC_KIND_SEM && out > in * 5 + 16)
		abort();
out_close:
	if (r)
		ipc_release(r);
	if (w)
		ipc_release(w);
	store_forget(st, sb.st_ino, 1);
	store_unlink(st, IPC_ROOT_ID + (uint64_t)kind, "x");
	if (st->mem_used)
		abort(); /* the charge must come back when everything is gone */
out:
	store_free(st);
	return 0;
}
