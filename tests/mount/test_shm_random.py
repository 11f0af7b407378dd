"""test_shm_random.py - randomized operations on one region from several
processes, checked against a shadow bytearray, across restarts and kill -9.

The driver (this process) starts WORKERS python3 worker processes. Each opens
the region with its own descriptor and maps it MAP_SHARED with its own
mapping; the driver hands them operations one at a time over pipes, so the
order is known and the shadow is exact: pwrite/pread, lseek+write/read,
stores and loads through the mapping (slice assignment), ftruncate (grow and
shrink; a worker remaps before touching its mapping after a size change, and
mappings are only touched inside the current size, so no SIGBUS), fsync,
fdatasync and msync. Every CHECK_EVERY operations and at the end the whole
region is compared with the shadow through read() and through a fresh mapping;
then the mount is taken down cleanly and mounted again on the same database
and every byte is compared again. The kill variant makes everything durable
(msync in every worker, fsync), does a few more unsynced writes, kills the
daemon with SIGKILL, mounts again and checks every byte that was synced and
not touched since.

Environment:
  IPCFS_SHM_SEED     seed (default: a new one per run, printed as a TAP comment)
  IPCFS_SHM_OPS      operations in total over the tests of this file (default 3000)
  IPCFS_SHM_MAXSIZE  largest region size in bytes (default 512 KiB)
"""
import mmap
import os
import pickle
import random
import select
import struct
import subprocess
import sys
import time

from harness import SLOW, MountTest

PY = sys.executable or "python3"
PAGE = 4096
KIB = 1 << 10
WORKERS = 3
CHECK_EVERY = 250
SEED = int(os.environ.get("IPCFS_SHM_SEED") or random.SystemRandom().randrange(1 << 32))
OPS = int(os.environ.get("IPCFS_SHM_OPS") or 3000)
MAXSIZE = int(os.environ.get("IPCFS_SHM_MAXSIZE") or 512 * KIB)
REPLY_TIMEOUT = 30 * SLOW

# One worker: its own descriptor and mapping of argv[1]. Requests and replies
# are pickled tuples, each preceded by its length (4 bytes, little-endian).
WORKER = r"""
import mmap, os, pickle, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
inp, out = sys.stdin.buffer, sys.stdout.buffer
m, mlen = None, 0

def remap(n):
    global m, mlen
    if m is not None:
        m.close()
        m = None
    mlen = n
    if n:
        m = mmap.mmap(fd, n)

def pread_full(off, n):
    parts = []
    while n > 0:
        b = os.pread(fd, n, off)
        if not b:
            break
        parts.append(b)
        off += len(b)
        n -= len(b)
    return b"".join(parts)

def mapall():
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    with mmap.mmap(fd, size) as f:
        return bytes(f)

def run(op, a):
    if op == "pwrite":
        return os.pwrite(fd, a[1], a[0])
    if op == "pread":
        return pread_full(a[0], a[1])
    if op == "write":
        os.lseek(fd, a[0], os.SEEK_SET)
        return os.write(fd, a[1])
    if op == "read":
        os.lseek(fd, a[0], os.SEEK_SET)
        return os.read(fd, a[1])
    if op == "remap":
        return remap(a[0])
    if op == "store":
        m[a[0]:a[0] + len(a[1])] = a[1]
        return None
    if op == "load":
        return m[a[0]:a[0] + a[1]]
    if op == "trunc":
        return os.ftruncate(fd, a[0])
    if op == "fsync":
        return os.fsync(fd)
    if op == "fdatasync":
        return os.fdatasync(fd)
    if op == "msync":
        if m is not None:
            m.flush()
        return None
    if op == "size":
        return os.fstat(fd).st_size
    if op == "readall":
        return pread_full(0, os.fstat(fd).st_size + 2 * 4096)
    if op == "mapall":
        return mapall()
    raise ValueError("unknown op " + op)

while True:
    h = inp.read(4)
    if len(h) < 4:
        break
    op, *a = pickle.loads(inp.read(struct.unpack("<I", h)[0]))
    if op == "quit":
        if m is not None:
            m.close()
        os.close(fd)
        res = ("ok", None)
    else:
        try:
            res = ("ok", run(op, a))
        except OSError as e:
            res = ("err", e.errno, str(e))
    b = pickle.dumps(res)
    out.write(struct.pack("<I", len(b)) + b)
    out.flush()
    if op == "quit":
        break
"""


class WorkerError(Exception):
    pass


class Worker:
    def __init__(self, idx, path):
        self.idx = idx
        self.mlen = None  # length of its mapping; None: not mapped yet
        self.proc = subprocess.Popen([PY, "-c", WORKER, path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def _read(self, n):
        buf = b""
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + REPLY_TIMEOUT
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerError("worker %d: no reply within %.0f s" % (self.idx,
                                                                         REPLY_TIMEOUT))
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                self.proc.wait(timeout=5)
                raise WorkerError("worker %d died (status %s): %s" % (
                    self.idx, self.proc.returncode,
                    self.proc.stderr.read().decode(errors="replace")[-2000:]))
            buf += chunk
        return buf

    def call(self, *req):
        b = pickle.dumps(req)
        self.proc.stdin.write(struct.pack("<I", len(b)) + b)
        self.proc.stdin.flush()
        n = struct.unpack("<I", self._read(4))[0]
        res = pickle.loads(self._read(n))
        if res[0] != "ok":
            raise WorkerError("worker %d: %r failed: %s" % (self.idx, req[0], res[2]))
        return res[1]

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.call("quit")
                self.proc.wait(timeout=10 * SLOW)
            except (WorkerError, OSError, subprocess.TimeoutExpired):
                pass
        self.end()

    def end(self):
        """Kills it if still running (by its own pid) and reaps it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def describe(op):
    """An operation without its data, for the history."""
    out = []
    for a in op:
        out.append("<%d bytes>" % len(a) if isinstance(a, (bytes, bytearray)) else repr(a))
    return " ".join(out)


class TestShmRandom(MountTest):
    def setUp(self):
        super().setUp()
        self.workers = []
        self.addCleanup(self.end_workers)

    def tearDown(self):
        self.end_workers()
        super().tearDown()

    def end_workers(self):
        while self.workers:
            self.workers.pop().quit()

    def start_workers(self, path):
        self.workers = [Worker(i, path) for i in range(WORKERS)]

    def begin(self, name, nops):
        self.seed = "%d:%s" % (SEED, name)
        self.rng = random.Random(self.seed)
        self.nops = nops
        self.history = []
        self.done = 0
        print("# %s: seed %d, %d operations, %d workers, max size %d "
              "(IPCFS_SHM_SEED=%d IPCFS_SHM_OPS=%d to repeat)"
              % (name, SEED, nops, WORKERS, MAXSIZE, SEED, OPS), flush=True)

    def problem(self, msg):
        tail = "\n".join("  %5d %s" % h for h in self.history[-25:])
        self.fail("%s\nseed %d (IPCFS_SHM_SEED=%d IPCFS_SHM_OPS=%d to repeat), after %d "
                  "operations; the last ones (index worker op):\n%s"
                  % (msg, SEED, SEED, OPS, self.done, tail))

    def daemon_check(self, what):
        if self.m.proc is not None and self.m.proc.poll() is not None:
            rc = self.m.proc.returncode
            log = self.m.stderr()
            self.end_workers()
            self.m.kill()  # only clears the dead mount
            self.problem("%s: the ipcfs daemon died (exit status %d)\n%s" % (what, rc,
                                                                             log[-3000:]))

    def call(self, w, *op):
        self.history.append((self.done, "w%d %s" % (w.idx, describe(op))))
        try:
            return w.call(*op)
        except WorkerError as e:
            self.daemon_check(str(e))
            self.problem(str(e))

    def compare(self, got, want, what):
        if bytes(got) == bytes(want):
            return
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                 min(len(got), len(want)))
        self.problem("%s: %d bytes, want %d; first difference at byte %d (page %d): "
                     "got %r, want %r" % (what, len(got), len(want), i, i // PAGE,
                                          bytes(got[i:i + 12]), bytes(want[i:i + 12])))

    # --- random operations ---

    def rand_off(self, size, slack):
        """An offset in [0, size + slack], often near a page boundary or the end."""
        r = self.rng.random()
        top = size + slack
        if r < 0.25 and top >= PAGE:
            base = self.rng.randrange(0, top // PAGE + 1) * PAGE
            return max(0, min(top, base + self.rng.randint(-3, 3)))
        if r < 0.4:
            return max(0, min(top, size - self.rng.randint(0, 64)))
        return self.rng.randint(0, top)

    def rand_len(self):
        r = self.rng.random()
        if r < 0.4:
            return self.rng.randint(1, 16)
        if r < 0.85:
            return self.rng.randint(1, 3 * PAGE)
        return self.rng.randint(1, 64 * KIB)

    def rand_data(self, n):
        r = self.rng.random()
        if r < 0.1:
            return bytes(n)
        if r < 0.2:
            return bytes([self.rng.randrange(256)]) * n
        return self.rng.randbytes(n)

    def rand_size(self, size):
        r = self.rng.random()
        if r < 0.08:
            return 0
        if r < 0.3:
            return self.rng.randrange(0, MAXSIZE // PAGE + 1) * PAGE
        if r < 0.6:
            return max(0, size - self.rng.randint(1, 4 * PAGE))
        if r < 0.85:
            return min(MAXSIZE, size + self.rng.randint(1, 4 * PAGE))
        return self.rng.randint(0, MAXSIZE)

    def mapped(self, w):
        """w's mapping covers exactly the current size (it remaps when not)."""
        size = len(self.shadow)
        if w.mlen != size:
            self.call(w, "remap", size)
            w.mlen = size

    def one_op(self, w, allow_resize=True):
        sh = self.shadow
        size = len(sh)
        r = self.rng.random()
        if r < 0.20 or (r < 0.5 and size == 0):
            # pwrite, possibly past the end (the file grows)
            off = self.rand_off(size, 2 * PAGE if allow_resize else 0)
            n = min(self.rand_len(), MAXSIZE - off)
            if not allow_resize:
                n = min(n, size - off)
            if n <= 0:
                return
            data = self.rand_data(n)
            seq = self.rng.random() < 0.25
            got = self.call(w, "write" if seq else "pwrite", off, data)
            if got != n:
                self.problem("%s of %d bytes returned %r" % ("write" if seq else "pwrite",
                                                             n, got))
            if off > size:
                sh.extend(bytes(off - size))
            sh[off:off + n] = data
            self.touch(off, n)
        elif r < 0.35:
            off = self.rand_off(size, PAGE)
            n = self.rand_len()
            seq = self.rng.random() < 0.25
            got = self.call(w, "read" if seq else "pread", off, n)
            if seq:
                # one read(2) may return less than asked; what it returns must match
                want = sh[off:off + n]
                if len(got) == 0 and len(want) > 0:
                    self.problem("read at %d returned 0 bytes, want %d" % (off, len(want)))
                self.compare(got, want[:len(got)], "read(%d, %d)" % (off, n))
            else:
                self.compare(got, sh[off:off + n], "pread(%d, %d)" % (off, n))
        elif r < 0.58:
            if size == 0:
                return
            self.mapped(w)
            off = self.rand_off(size - 1, 0)
            n = min(self.rand_len(), size - off)
            data = self.rand_data(n)
            self.call(w, "store", off, data)
            sh[off:off + n] = data
            self.touch(off, n)
        elif r < 0.78:
            if size == 0:
                return
            self.mapped(w)
            off = self.rand_off(size - 1, 0)
            n = min(self.rand_len(), size - off)
            self.compare(self.call(w, "load", off, n), sh[off:off + n],
                         "load through the mapping (%d, %d)" % (off, n))
        elif r < 0.88:
            if not allow_resize:
                return
            new = self.rand_size(size)
            self.call(w, "trunc", new)
            if new < size:
                del sh[new:]
            else:
                sh.extend(bytes(new - size))
        elif r < 0.92:
            got = self.call(w, "size")
            if got != size:
                self.problem("fstat size %d, want %d" % (got, size))
        else:
            self.call(w, self.rng.choice(("fsync", "fdatasync", "msync", "msync")))

    def touch(self, off, n):
        if self.touched is not None:
            self.touched.append((off, n))

    def full_check(self, what):
        """Every byte, through read() and a fresh mapping, in one worker, and
        through this process's own read() and mapping."""
        want = bytes(self.shadow)
        w = self.workers[(self.done // CHECK_EVERY) % len(self.workers)]
        got = self.call(w, "size")
        if got != len(want):
            self.problem("%s: size %d, want %d" % (what, got, len(want)))
        self.compare(self.call(w, "readall"), want, what + ": read() in worker %d" % w.idx)
        self.compare(self.call(w, "mapall"), want, what + ": fresh mapping in worker %d" % w.idx)

    def check_here(self, path, want, what):
        try:
            st = os.stat(path)
            with open(path, "rb") as f:
                got = f.read()
            fd = os.open(path, os.O_RDONLY)
            try:
                mapped = b"" if st.st_size == 0 else bytes(mmap.mmap(fd, st.st_size,
                                                                    prot=mmap.PROT_READ))
            finally:
                os.close(fd)
        except OSError as e:
            self.daemon_check("%s: %s" % (what, e))
            raise
        if st.st_size != len(want):
            self.problem("%s: st_size %d, want %d" % (what, st.st_size, len(want)))
        self.compare(got, want, what + " (read)")
        self.compare(mapped, want, what + " (mmap)")

    def run_ops(self, n, allow_resize=True):
        for _ in range(n):
            w = self.rng.choice(self.workers)
            self.one_op(w, allow_resize)
            self.done += 1
            if self.done % CHECK_EVERY == 0:
                self.full_check("full check after %d operations" % self.done)

    def new_region(self, name):
        path = self.m.path("shm", name)
        size = self.rng.randint(0, 64 * KIB)
        with open(path, "wb") as f:
            f.truncate(size)
        self.shadow = bytearray(size)
        self.touched = None
        return path

    # --- the tests ---

    def test_random_ops_then_clean_restarts(self):
        nops = max(20, OPS * 2 // 3)
        self.begin("test_random_ops_then_clean_restarts", nops)
        path = self.new_region("rnd")
        rounds = 2
        for rnd in range(rounds):
            self.start_workers(path)
            self.run_ops(nops // rounds)
            self.full_check("round %d: end" % rnd)
            self.end_workers()
            self.check_here(path, bytes(self.shadow), "round %d: before unmount" % rnd)
            self.m.stop()
            self.m.start()
            self.check_here(path, bytes(self.shadow),
                            "round %d: after a clean unmount and mount" % rnd)

    def test_random_ops_then_kill9_after_sync(self):
        nops = max(20, OPS - OPS * 2 // 3)
        self.begin("test_random_ops_then_kill9_after_sync", nops)
        path = self.new_region("crash")
        self.start_workers(path)
        self.run_ops(nops)
        self.full_check("end")
        # make everything durable: msync in every worker (each has mapped it)
        for w in self.workers:
            self.mapped(w)
            self.call(w, "msync")
        self.call(self.rng.choice(self.workers), "fsync")
        synced = bytes(self.shadow)
        # more writes and stores, not synced, inside the size; their bytes may
        # or may not survive the kill, every other byte must
        self.touched = []
        self.run_ops(min(60, nops), allow_resize=False)
        self.assertEqual(len(self.shadow), len(synced))
        self.m.kill()
        self.end_workers()
        self.m.start()
        with open(path, "rb") as f:
            got = f.read()
        if len(got) != len(synced):
            self.problem("after kill -9: size %d, want %d (the synced size)" % (len(got),
                                                                             len(synced)))
        maybe = bytearray(len(synced))
        for off, n in self.touched:
            maybe[off:off + n] = b"\1" * n
        for i in range(len(synced)):
            if got[i] != synced[i] and not maybe[i]:
                self.problem("after kill -9: byte %d (page %d) is %d, synced %d"
                             % (i, i // PAGE, got[i], synced[i]))
        # the region works on: the shadow is what is there now
        self.shadow = bytearray(got)
        self.touched = None
        self.start_workers(path)
        self.run_ops(min(100, nops))
        self.full_check("after kill -9 and more operations")
        self.end_workers()
        self.m.stop()
        self.m.start()
        self.check_here(path, bytes(self.shadow), "after the final clean restart")
