"""test_shm.py - shared-memory regions (shm/NAME) on a real mount.

DESIGN.md section 2 "Region" and section 5: a region is a regular, seekable
file sized with truncate/ftruncate; read/write/pread/pwrite and
mmap(MAP_SHARED) see the same bytes; processes mapping it see each other's
stores at once (one page cache); fsync/fdatasync/msync(MS_SYNC) return when
the bytes are durable; a restart brings back size, bytes, owner and mode;
max_bytes bounds the size (EFBIG past it, changing nothing).

The C helper tests/progs/shmmap is found through IPCFS_PROGS (default: the
directory of IPCFS_BIN + "/tests/progs"). Every process a test starts is
waited for or killed (by its own pid) before the mount is taken down.
"""
import errno
import hashlib
import mmap
import os
import random
import select
import signal
import stat
import subprocess
import sys

import harness
from harness import SLOW, MountTest

PY = sys.executable or "python3"
PAGE = 4096
KIB = 1 << 10
MIB = 1 << 20
PROGS = os.environ.get("IPCFS_PROGS") or os.path.join(os.path.dirname(harness.BIN), "tests",
                                                      "progs")
SHMMAP = os.path.join(PROGS, "shmmap")
# Wait budget handed to helper programs (they poll their mapping), in ms.
WAIT_MS = str(int(10000 * SLOW))


def patbyte(seed, pos):
    """The byte shmmap's `pat`/`check` commands use at position pos."""
    m = (1 << 64) - 1
    x = (((pos + 1) * 0x9E3779B97F4A7C15) & m) ^ ((seed * 0xD1B54A32D192ED03) & m)
    x ^= x >> 29
    x = (x * 0xBF58476D1CE4E5B9) & m
    x ^= x >> 32
    return x & 0xFF


def pattern(seed, off, length):
    return bytes(patbyte(seed, p) for p in range(off, off + length))


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def map_all(path):
    """The whole file through a fresh MAP_SHARED mapping (b"" when empty)."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return b""
        with mmap.mmap(fd, size) as m:
            return bytes(m)
    finally:
        os.close(fd)


# A python3 partner for shmmap: maps argv[1] MAP_SHARED and plays its side of
# the handshake and ping-pong; never msyncs.
PY_PARTNER = r"""
import mmap, os, sys, time
path, ms, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDWR)
m = mmap.mmap(fd, os.fstat(fd).st_size)
def wait(pred, what):
    end = time.monotonic() + ms / 1000
    while not pred():
        if time.monotonic() > end:
            sys.exit("python partner: timed out waiting for " + what)
        time.sleep(0.0002)
wait(lambda: m[100:112] == b"hello-from-c", "hello-from-c")
m[200:213] = b"hello-from-py"
for i in range(1, rounds + 1):
    wait(lambda: m[0] == i, "round %d" % i)
    m[1] = i
m.close()
os.close(fd)
print("py done")
"""


class ShmTest(MountTest):
    def setUp(self):
        super().setUp()
        self._undo = []
        self.addCleanup(self._undo_all)

    def _undo_all(self):
        while self._undo:
            fn = self._undo.pop()
            fn()

    def later(self, fn, *args):
        """Runs fn(*args) at the end of the test, before the unmount (unlike
        addCleanup, whose functions run after tearDown)."""
        self._undo.append(lambda: fn(*args))

    def tearDown(self):
        try:
            self._undo_all()
        finally:
            super().tearDown()

    def need_progs(self):
        if not os.access(SHMMAP, os.X_OK):
            self.fail("%s not built (set IPCFS_PROGS to the folder of the helper programs)"
                      % SHMMAP)

    def spawn(self, argv, **kw):
        """A child in its own session; killed (by pid) at cleanup if still running."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, **kw)

        def end():
            if p.poll() is None:
                p.kill()
            if p.stdin is not None and p.stdin.closed:
                p.stdin = None
            p.communicate()
        self.later(end)
        return p

    def run_prog(self, argv, timeout=30, check=True):
        r = subprocess.run(argv, capture_output=True, timeout=timeout * SLOW)
        if check and r.returncode != 0:
            self.fail("%s exited %d\nstdout: %s\nstderr: %s" % (
                argv, r.returncode, r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))
        return r

    def shmmap(self, *args, **kw):
        self.need_progs()
        return self.run_prog([SHMMAP] + [str(a) for a in args], **kw)

    def fail_if_daemon_died(self, what):
        """When the daemon is gone: clear the dead mount and fail with its
        exit status and log (one failure instead of an ENOTCONN cascade)."""
        proc = self.m.proc
        if proc is None:
            return
        try:
            rc = proc.wait(timeout=5 * SLOW)
        except subprocess.TimeoutExpired:
            return
        log = self.m.stderr()
        self.m.kill()  # the process is gone; this only clears the mount
        self.fail("%s: the ipcfs daemon died (exit status %d)\n%s" % (what, rc, log[-3000:]))

    def restart(self):
        self.m.stop()
        self.m.start()

    def assert_bytes(self, got, want, what):
        if got != want:
            i = first_diff(got, want)
            self.fail("%s: %d bytes, want %d; first difference at %s (got %r, want %r)" % (
                what, len(got), len(want), i, got[i:i + 16], want[i:i + 16]))

    def assert_region(self, path, want, what):
        """The region holds exactly want: by stat, read() and a fresh mapping."""
        self.assertEqual(os.stat(path).st_size, len(want), what + ": st_size")
        self.assert_bytes(read_all(path), want, what + " (read)")
        self.assert_bytes(map_all(path), want, what + " (mmap)")


class TestRegionBasics(ShmTest):
    def test_kind_directory_and_xattrs(self):
        self.assertIn("shm", os.listdir(self.m.mnt))
        self.assertEqual(stat.S_IMODE(os.stat(self.p("shm")).st_mode), 0o1777)
        p = self.p("shm", "r")
        self.sh("touch shm/r")
        st = os.stat(p)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, 0)
        self.assertEqual(self.xattr(p, "kind"), "shm")
        self.assertEqual(self.xattr(p, "size"), "0")
        self.assertEqual(self.xattr(p, "pages"), "0")
        self.assertEqual(self.xattr(p, "max_bytes"), str(1 << 30))
        # Growing by truncate is sparse: no page is held.
        os.truncate(p, 100 * MIB)
        self.assertEqual(self.xattr(p, "size"), str(100 * MIB))
        self.assertEqual(self.xattr(p, "pages"), "0")
        with open(p, "r+b") as f:
            f.seek(5 * PAGE + 10)
            f.write(b"x" * (PAGE + 1))  # touches pages 5 and 6
        self.assertEqual(self.xattr(p, "pages"), "2")
        self.assertEqual(self.xattr(p, "size"), str(100 * MIB))
        for name in ("size", "pages", "kind"):
            with self.assertRaises(OSError, msg=name) as cm:
                self.set_xattr(p, name, "7")
            self.assertIn(cm.exception.errno, (errno.EPERM, errno.EACCES), name)
        self.assertEqual(self.xattr(p, "size"), str(100 * MIB))

    def test_ls_l_shows_size(self):
        self.sh("truncate -s 123457 shm/a")
        fields = self.sh("ls -l shm/a").stdout.split()
        self.assertEqual(fields[0][0], "-")
        self.assertEqual(fields[4], "123457")
        self.sh("truncate -s 77 shm/a")
        self.assertEqual(self.sh("ls -l shm/a").stdout.split()[4], "77")
        self.assertEqual(self.sh("stat -c %s shm/a").stdout.strip(), "77")
        self.sh("head -c 5000 /dev/zero | tr '\\0' z >> shm/a")
        self.assertEqual(self.sh("ls -l shm/a").stdout.split()[4], "5077")
        self.assertEqual(self.sh("wc -c < shm/a").stdout.strip(), "5077")

    def test_lseek_and_sequential_io(self):
        p = self.p("shm", "s")
        with open(p, "w+b") as f:
            f.write(b"0123456789")
            f.seek(4)
            self.assertEqual(f.read(3), b"456")
            f.seek(2)
            f.write(b"ab")
            f.seek(0, os.SEEK_END)
            self.assertEqual(f.tell(), 10)
            f.seek(20)
            f.write(b"Z")  # a hole reads as zeros
        self.assertEqual(read_all(p), b"01ab456789" + bytes(10) + b"Z")


class TestSharedMapping(ShmTest):
    def test_c_and_python_see_each_others_stores_without_msync(self):
        self.need_progs()
        p = self.p("shm", "pp")
        with open(p, "wb") as f:
            f.truncate(2 * PAGE)
        rounds = "200"
        c = self.spawn([SHMMAP, p, "str", "100", "hello-from-c",
                        "waitstr", "200", "hello-from-py", WAIT_MS,
                        "pingpong", "0", "1", rounds, WAIT_MS,
                        "print", "200", "13", "say", "c done"])
        py = self.spawn([PY, "-c", PY_PARTNER, p, WAIT_MS, rounds])
        out, err = py.communicate(timeout=60 * SLOW)
        self.assertEqual(py.returncode, 0, "python partner: " + err.decode(errors="replace"))
        self.assertEqual(out, b"py done\n")
        out, err = c.communicate(timeout=60 * SLOW)
        self.assertEqual(c.returncode, 0, "shmmap: " + err.decode(errors="replace"))
        self.assertEqual(out, b"hello-from-py\nc done\n")
        # Everyone else sees the same bytes: read(), a new mapping, another program.
        data = read_all(p)
        self.assertEqual(len(data), 2 * PAGE)
        self.assertEqual(data[0:2], bytes([200, 200]))
        self.assertEqual(data[100:112], b"hello-from-c")
        self.assertEqual(data[200:213], b"hello-from-py")
        self.assertEqual(self.shmmap(p, "print", 100, 12).stdout, b"hello-from-c\n")

    def test_two_mappings_in_one_process_and_a_writer(self):
        """Two mappings (two opens) of one region alias; write() shows in both."""
        p = self.p("shm", "alias")
        fd1 = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        self.later(os.close, fd1)
        os.ftruncate(fd1, 3 * PAGE)
        fd2 = os.open(p, os.O_RDWR)
        self.later(os.close, fd2)
        m1 = mmap.mmap(fd1, 3 * PAGE)
        self.later(m1.close)
        m2 = mmap.mmap(fd2, 2 * PAGE, offset=PAGE)  # pages 1 and 2 only
        self.later(m2.close)
        m1[PAGE + 5:PAGE + 10] = b"alias"
        self.assertEqual(m2[5:10], b"alias")
        m2[PAGE:PAGE + 3] = b"two"
        self.assertEqual(m1[2 * PAGE:2 * PAGE + 3], b"two")
        os.pwrite(fd2, b"written", 2 * PAGE + 100)
        self.assertEqual(m1[2 * PAGE + 100:2 * PAGE + 107], b"written")
        self.assertEqual(m2[PAGE + 100:PAGE + 107], b"written")
        self.assertEqual(self.shmmap(p, "print", PAGE + 5, 5).stdout, b"alias\n")

    def test_mixed_read_write_pread_pwrite_mmap_agree(self):
        self.need_progs()
        p = self.p("shm", "mix")
        size = 3 * PAGE + 100
        model = bytearray(size)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        fd_open = [True]
        self.later(lambda: os.close(fd) if fd_open[0] else None)
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        self.later(m.close)

        def put(off, data):
            model[off:off + len(data)] = data

        # pwrite across a page boundary -> the mapping sees it
        os.pwrite(fd, b"A" * 10, PAGE - 6)
        put(PAGE - 6, b"A" * 10)
        self.assertEqual(m[PAGE - 6:PAGE + 4], b"A" * 10)
        # a store through the mapping -> pread sees it
        m[8000:8005] = b"mmap!"
        put(8000, b"mmap!")
        self.assertEqual(os.pread(fd, 5, 8000), b"mmap!")
        # lseek + write (the file position) -> the mapping sees it
        os.lseek(fd, 3 * PAGE + 10, os.SEEK_SET)
        self.assertEqual(os.write(fd, b"seq"), 3)
        put(3 * PAGE + 10, b"seq")
        self.assertEqual(m[3 * PAGE + 10:3 * PAGE + 13], b"seq")
        os.lseek(fd, 0, os.SEEK_SET)
        self.assertEqual(os.read(fd, size + 100), bytes(model))
        # another process: it reads our stores and its stores reach us
        self.assertEqual(self.shmmap(p, "print", 8000, 5).stdout, b"mmap!\n")
        self.assertEqual(self.shmmap(p, "hex", PAGE - 6, 10).stdout, b"41" * 10 + b"\n")
        self.shmmap(p, "str", 100, "other", "pat", 2 * PAGE, PAGE, 3)
        put(100, b"other")
        put(2 * PAGE, pattern(3, 2 * PAGE, PAGE))
        self.assertEqual(m[100:105], b"other")
        self.assert_bytes(os.pread(fd, PAGE, 2 * PAGE), pattern(3, 2 * PAGE, PAGE),
                          "pread of another process's mapped stores")
        # a pwrite past the end grows the file; a new mapping covers it
        os.pwrite(fd, b"tail", size + 50)
        model += bytes(50) + b"tail"
        self.assertEqual(os.fstat(fd).st_size, len(model))
        self.assertEqual(m[:], bytes(model[:size]))
        self.assert_region(p, bytes(model), "after mixed access")
        self.shmmap(p, "check", 2 * PAGE, PAGE, 3)
        # and all of it is what comes back after a restart
        m.close()
        os.fsync(fd)
        os.close(fd)
        fd_open[0] = False
        self.restart()
        self.assert_region(p, bytes(model), "after restart")


class TestTruncate(ShmTest):
    def test_grow_reads_zeros_shrink_discards(self):
        p = self.p("shm", "t")
        data = pattern(1, 0, 10000)
        with open(p, "wb") as f:
            f.write(data)
        self.assert_region(p, data, "written")
        # grow: new bytes are zero, old ones kept
        os.truncate(p, 20000)
        self.assert_region(p, data + bytes(10000), "grown to 20000")
        self.assertEqual(self.xattr(p, "size"), "20000")
        # shrink into a page: the rest is gone
        os.truncate(p, 5000)
        self.assert_region(p, data[:5000], "shrunk to 5000")
        # grow again: what was cut off reads as zeros, in that page and beyond
        with open(p, "r+b") as f:
            f.truncate(12000)
        self.assert_region(p, data[:5000] + bytes(7000), "grown again to 12000")
        # shrink to a page boundary and to zero
        os.truncate(p, PAGE)
        self.assert_region(p, data[:PAGE], "shrunk to one page")
        self.sh("truncate -s 0 shm/t")
        self.assert_region(p, b"", "shrunk to 0")
        self.assertEqual(self.xattr(p, "pages"), "0")
        self.sh("truncate -s 6000 shm/t")
        self.assert_region(p, bytes(6000), "grown from 0")

    def test_truncate_seen_by_a_mapping_and_persisted(self):
        self.need_progs()
        p = self.p("shm", "tm")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 4 * PAGE)
            with mmap.mmap(fd, 4 * PAGE) as m:
                m[:] = b"\xee" * (4 * PAGE)  # dirty mapped pages, no msync
            os.ftruncate(fd, PAGE + 10)   # shrink inside page 1
            os.ftruncate(fd, 3 * PAGE)    # grow again
            with mmap.mmap(fd, 3 * PAGE) as m:
                self.assertEqual(m[:PAGE + 10], b"\xee" * (PAGE + 10))
                self.assertEqual(m[PAGE + 10:], bytes(2 * PAGE - 10))
            # another process's fresh mapping agrees
            self.assertEqual(self.shmmap(p, "hex", PAGE + 8, 4).stdout, b"eeee0000\n")
            # a truncate done by another process is seen here
            self.shmmap(p, "trunc", 2 * PAGE + 1, "fill", 2 * PAGE, 1, 0x7A)
            self.assertEqual(os.fstat(fd).st_size, 2 * PAGE + 1)
            self.assertEqual(os.pread(fd, 8, 2 * PAGE - 4), bytes(4) + b"z")
        finally:
            os.close(fd)
        want = b"\xee" * (PAGE + 10) + bytes(PAGE - 10) + b"z"
        self.assert_region(p, want, "before restart")
        self.restart()
        self.assert_region(p, want, "after restart")

    def test_o_trunc_open_empties_a_region(self):
        p = self.p("shm", "o")
        with open(p, "wb") as f:
            f.write(pattern(2, 0, 3 * PAGE))
        self.assertEqual(self.xattr(p, "pages"), "3")
        with open(p, "r+b") as f:  # no O_TRUNC: nothing changes
            self.assertEqual(os.fstat(f.fileno()).st_size, 3 * PAGE)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            self.assertEqual(os.fstat(fd).st_size, 0)
            self.assertEqual(os.stat(p).st_size, 0)
        finally:
            os.close(fd)
        self.assert_region(p, b"", "after O_TRUNC")
        self.assertEqual(self.xattr(p, "pages"), "0")
        self.assertEqual(self.xattr(p, "size"), "0")
        self.sh("echo hi > shm/o")
        self.assert_region(p, b"hi\n", "after echo >")
        self.sh("echo more >> shm/o")
        self.assert_region(p, b"hi\nmore\n", "after echo >>")
        self.restart()
        self.assert_region(p, b"hi\nmore\n", "after restart")

    def test_o_trunc_while_another_program_writes_back_mapped_stores(self):
        """An O_TRUNC open empties the region even while another program's
        dirty mapped pages are being written back; a write-back of a page
        that was cut off must not make the region grow again. (That program
        dies of SIGBUS at its next store: its pages are past the end.)"""
        self.need_progs()
        p = self.p("shm", "ot")
        size = 4 * MIB
        for attempt in range(30):
            with open(p, "wb") as f:
                f.truncate(size)
            c = self.spawn([SHMMAP, p, "storeloop", "0"])
            fd = c.stdout.fileno()
            ready = select.select([fd], [], [], 20 * SLOW)[0]
            self.assertTrue(ready and os.read(fd, 64) == b"looping\n", "shmmap is not storing")
            os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
            try:
                c.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                c.kill()  # it did not get SIGBUS: its pages came back
                c.wait()
            size_after = os.stat(p).st_size
            if size_after != 0:
                self.fail("attempt %d: %d bytes after the O_TRUNC open, want 0 "
                          "(xattr size %s; the storing program ended with %d)"
                          % (attempt, size_after, self.xattr(p, "size"), c.returncode))

    def test_read_across_the_daemons_reserved_pages_after_growing_truncate(self):
        """A run of present pages that reaches past what the daemon reserved.

        The daemon reserves its copy of a region in steps (8 MiB first);
        truncate grows the size without reserving. A read that starts on the
        last reserved page (written) and goes on past it must return zeros
        for the grown part. (The overrun reads the daemon's heap: an ASan
        build reports it every time; a plain build crashes or returns
        garbage only when the bytes after its page array are not zero.)"""
        p = self.p("shm", "big")
        edge = 8 * MIB
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"\x01" * PAGE, edge - PAGE)  # the last page of 8 MiB
            os.ftruncate(fd, 12 * MIB)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.restart()  # an empty page cache: reads go to the daemon
        try:
            with open(p, "rb") as f:
                f.seek(edge - PAGE)
                got = f.read(256 * KIB)
        except OSError as e:
            self.fail_if_daemon_died("read across the 8 MiB step (%s)" % e)
            raise
        self.assert_bytes(got, b"\x01" * PAGE + bytes(256 * KIB - PAGE),
                          "read across the 8 MiB step")
        self.assertEqual(os.stat(p).st_size, 12 * MIB)


class TestTools(ShmTest):
    def test_cp_dd_cmp_sha256sum(self):
        src = os.path.join(self.m.workdir, "src.bin")
        rnd = random.Random(1234)
        data = bytearray(rnd.randbytes(300001))
        data[40000:120000] = bytes(80000)  # a run of zeros cp may treat as a hole
        with open(src, "wb") as f:
            f.write(data)
        self.sh("cp %s shm/c && cmp %s shm/c" % (src, src))
        sha = hashlib.sha256(data).hexdigest()
        self.assertEqual(self.sh("sha256sum < shm/c").stdout.split()[0], sha)
        self.assert_region(self.p("shm", "c"), bytes(data), "after cp")
        # dd conv=notrunc patches in place, keeping the size
        patch = os.path.join(self.m.workdir, "patch.bin")
        with open(patch, "wb") as f:
            f.write(b"P" * 10000)
        self.sh("dd if=%s of=shm/c bs=1000 seek=7 conv=notrunc status=none" % patch)
        data[7000:17000] = b"P" * 10000
        self.sh("dd if=%s of=shm/c bs=1 seek=299995 count=3 conv=notrunc status=none" % patch)
        data[299995:299998] = b"PPP"
        self.assertEqual(os.stat(self.p("shm", "c")).st_size, 300001)
        self.assert_region(self.p("shm", "c"), bytes(data), "after dd conv=notrunc")
        # dd past the end grows it
        self.sh("dd if=%s of=shm/c bs=4096 seek=100 count=1 conv=notrunc status=none" % patch)
        data += bytes(100 * 4096 - len(data)) + b"P" * 4096
        self.assert_region(self.p("shm", "c"), bytes(data), "after dd past the end")
        # cp out, cp region to region, cmp, sha256sum of both
        out = os.path.join(self.m.workdir, "out.bin")
        self.sh("cp shm/c %s && cmp shm/c %s && cp shm/c shm/d && cmp shm/c shm/d" % (out, out))
        with open(out, "rb") as f:
            self.assert_bytes(f.read(), bytes(data), "copied out")
        sums = self.sh("sha256sum shm/c shm/d %s" % out).stdout.split()
        want = hashlib.sha256(data).hexdigest()
        self.assertEqual(sums[0::2], [want] * 3)
        # cmp finds a difference
        with open(self.p("shm", "d"), "r+b") as f:
            f.seek(5)
            f.write(b"!" if data[5] != ord("!") else b"?")
        r = self.sh("LC_ALL=C cmp shm/c shm/d", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"differ: (byte|char) 6,")
        # cp onto an existing, larger region leaves exactly the source
        small = os.path.join(self.m.workdir, "small.bin")
        with open(small, "wb") as f:
            f.write(b"small\n")
        self.sh("cp %s shm/d && cmp %s shm/d" % (small, small))
        self.assert_region(self.p("shm", "d"), b"small\n", "cp onto a larger region")


class TestPersistence(ShmTest):
    def test_restart_keeps_size_bytes_owner_and_mode(self):
        p = self.p("shm", "keep")
        q = self.p("shm", "sparse")
        size = 5 * PAGE + 321
        data = bytearray(pattern(9, 0, size))
        data[2 * PAGE:3 * PAGE] = bytes(PAGE)
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, 1234, 5678)
        os.chmod(p, 0o640)
        self.set_xattr(p, "max_bytes", 2 * MIB)
        self.sh("truncate -s 3M shm/sparse")
        with open(q, "r+b") as f:
            f.seek(2 * MIB + 7)
            f.write(b"far")
        before = (os.stat(p), os.stat(q), self.xattr(p, "pages"), self.xattr(q, "pages"))
        self.restart()
        st, sq = os.stat(p), os.stat(q)
        self.assertEqual((st.st_size, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (size, 1234, 5678, 0o640))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_mtime_ns, before[0].st_mtime_ns)
        self.assertEqual(sq.st_size, 3 * MIB)
        self.assertEqual(self.xattr(p, "max_bytes"), str(2 * MIB))
        self.assertEqual(self.xattr(p, "size"), str(size))
        self.assertEqual(self.xattr(p, "pages"), before[2])
        self.assertEqual(self.xattr(q, "pages"), before[3])
        self.assert_region(p, bytes(data), "region after restart")
        got = read_all(q)
        self.assertEqual(got[2 * MIB + 7:2 * MIB + 10], b"far")
        self.assertEqual(got.count(0), 3 * MIB - 3)
        # a second restart after changes made by the restarted daemon
        with open(p, "r+b") as f:
            f.seek(size - 1)
            f.write(b"E")
        data[-1] = ord("E")
        os.chmod(p, 0o604)
        self.restart()
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o604)
        self.assert_region(p, bytes(data), "region after the second restart")

    def test_rename_and_unlink_persist(self):
        a, b = self.p("shm", "a"), self.p("shm", "b")
        with open(a, "wb") as f:
            f.write(pattern(4, 0, 2 * PAGE + 9))
        self.sh("mv shm/a shm/b")
        self.restart()
        self.assertFalse(os.path.exists(a))
        self.assert_region(b, pattern(4, 0, 2 * PAGE + 9), "renamed, after restart")
        # unlinked while mapped: its stores and msync go nowhere visible
        fd = os.open(b, os.O_RDWR)
        try:
            with mmap.mmap(fd, 2 * PAGE) as m:
                os.unlink(b)
                m[0:4] = b"gone"
                m.flush()
                with open(b, "wb") as f:
                    f.write(b"new region")
                self.assertEqual(read_all(b), b"new region")
                self.assertEqual(m[0:4], b"gone")
        finally:
            os.close(fd)
        self.restart()
        self.assert_region(b, b"new region", "recreated, after restart")
        self.assertEqual(os.listdir(self.p("shm")), ["b"])

    def test_stores_in_a_mapping_survive_a_clean_unmount(self):
        """Mapped stores never msynced, mapping closed, then a clean unmount."""
        self.need_progs()
        p = self.p("shm", "unsynced")
        size = 3 * PAGE + 5
        self.shmmap("-c", "-s", size, p, "pat", 0, size, 21)
        self.restart()
        self.assert_region(p, pattern(21, 0, size), "after clean unmount")

    def test_sigterm_writes_back_stores_of_a_live_mapping(self):
        """SIGTERM ends the daemon cleanly; stores a running program made in
        its mapping (never msynced, still mapped) are written back first."""
        self.need_progs()
        p = self.p("shm", "live")
        size = 4 * MIB + 3  # several WRITE requests' worth of dirty pages
        c = self.spawn([SHMMAP, "-c", "-s", str(size), p, "fill", "0", str(size), "0x5a",
                        "pat", "0", str(PAGE), "11", "say", "stored", "hold"],
                       stdin=subprocess.PIPE)
        fd = c.stdout.fileno()
        ready = select.select([fd], [], [], 20 * SLOW)[0]
        self.assertTrue(ready, "shmmap did not store its pattern")
        self.assertEqual(os.read(fd, 64), b"stored\n")
        proc = self.m.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30 * SLOW)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.m.log.close()
            self.m.proc = None
        self.m.check_stderr()
        self.assertEqual(rc, 0, self.m.stderr())
        c.stdin.close()  # let the program unmap and exit (on the old mount)
        c.wait(timeout=20 * SLOW)
        if os.path.ismount(self.m.mnt):
            subprocess.run(["fusermount3", "-uz", self.m.mnt], capture_output=True)
        self.m.start()
        self.assert_region(p, pattern(11, 0, PAGE) + b"Z" * (size - PAGE), "after SIGTERM")

    def test_kill9_after_msync_keeps_every_synced_byte(self):
        self.need_progs()
        p = self.p("shm", "crash")
        q = self.p("shm", "crash2")
        size = 6 * PAGE + 77
        # C: stores through the mapping, msync(MS_SYNC)
        r = self.shmmap("-c", "-s", size, p, "pat", 0, size, 5, "sync", "say", "synced")
        self.assertEqual(r.stdout, b"synced\n")
        # python: mapped stores and msync (mmap.flush), then pwrite and fdatasync
        fd = os.open(q, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, 2 * PAGE)
            with mmap.mmap(fd, 2 * PAGE) as m:
                m[10:20] = b"0123456789"
                m.flush()
            os.pwrite(fd, b"fdatasync", 3 * PAGE)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        want_q = bytearray(3 * PAGE + 9)
        want_q[10:20] = b"0123456789"
        want_q[3 * PAGE:] = b"fdatasync"
        self.m.kill()
        self.m.start()
        self.assert_region(p, pattern(5, 0, size), "msynced region after kill -9")
        self.assert_region(q, bytes(want_q), "synced region after kill -9")
        self.assertEqual(stat.S_IMODE(os.stat(q).st_mode), 0o600)

    def test_kill9_after_fsync_of_truncates(self):
        """Size changes made durable by fsync come back after kill -9."""
        p = self.p("shm", "tr")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"\xaa" * (4 * PAGE), 0)
            os.ftruncate(fd, PAGE + 1)
            os.ftruncate(fd, 3 * PAGE)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.m.kill()
        self.m.start()
        self.assert_region(p, b"\xaa" * (PAGE + 1) + bytes(2 * PAGE - 1), "after kill -9")


class TestLimits(ShmTest):
    def test_efbig_past_max_bytes_changes_nothing(self):
        p = self.p("shm", "lim")
        self.sh("touch shm/lim")
        self.set_xattr(p, "max_bytes", MIB)
        self.assertEqual(self.xattr(p, "max_bytes"), str(MIB))
        os.truncate(p, MIB)  # exactly the limit is fine
        self.assertEqual(os.stat(p).st_size, MIB)
        with self.assertRaises(OSError) as cm:
            os.truncate(p, MIB + 1)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(os.stat(p).st_size, MIB)
        self.assertEqual(self.xattr(p, "size"), str(MIB))
        r = self.sh("LC_ALL=C truncate -s 2M shm/lim", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("File too large", r.stderr)
        self.assertEqual(os.stat(p).st_size, MIB)
        # writes: within is fine; past the limit is EFBIG and writes nothing
        os.truncate(p, 1000)
        fd = os.open(p, os.O_RDWR)
        try:
            self.assertEqual(os.pwrite(fd, b"w" * 100, 500), 100)
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"x" * 8192, MIB - 4096)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"y", MIB)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
            with self.assertRaises(OSError) as cm:
                os.ftruncate(fd, 2 * MIB)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
            self.assertEqual(os.fstat(fd).st_size, 1000)
            self.assertEqual(os.pwrite(fd, b"z", MIB - 1), 1)  # the very last byte
        finally:
            os.close(fd)
        want = bytes(500) + b"w" * 100 + bytes(MIB - 601) + b"z"
        self.assert_region(p, want, "after EFBIG")
        # raising the limit lets it grow
        self.set_xattr(p, "max_bytes", 2 * MIB)
        os.truncate(p, 2 * MIB)
        self.assertEqual(os.stat(p).st_size, 2 * MIB)

    def test_max_bytes_below_size_is_einval(self):
        p = self.p("shm", "lo")
        self.sh("truncate -s 100000 shm/lo")
        for bad in (99999, 0, "abc", "-1", 2 << 30):
            with self.assertRaises(OSError, msg=str(bad)) as cm:
                self.set_xattr(p, "max_bytes", bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL, str(bad))
        self.assertEqual(self.xattr(p, "max_bytes"), str(1 << 30))
        self.set_xattr(p, "max_bytes", 100000)  # equal to the size is fine
        self.assertEqual(self.xattr(p, "max_bytes"), "100000")
        self.assertEqual(os.stat(p).st_size, 100000)
        with self.assertRaises(OSError) as cm:
            os.truncate(p, 100001)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        os.truncate(p, 10)
        self.set_xattr(p, "max_bytes", 10)
        self.assertEqual(self.xattr(p, "max_bytes"), "10")


class TestFullSync(ShmTest):
    """--sync full: a write(2) is acknowledged after its commit."""
    mount_args = ("--sync", "full")

    def test_acknowledged_writes_survive_kill9(self):
        self.need_progs()
        p = self.p("shm", "full")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"acknowledged", 3 * PAGE - 5)
            os.pwrite(fd, b"second", 10)
        finally:
            os.close(fd)
        r = self.shmmap(p, "str", 100, "mapped", "sync", "hex", 100, 6)
        self.assertEqual(r.stdout, b"6d6170706564\n")
        want = bytearray(3 * PAGE + 7)
        want[3 * PAGE - 5:] = b"acknowledged"
        want[10:16] = b"second"
        want[100:106] = b"mapped"
        self.m.kill()
        self.m.start()
        self.assert_region(p, bytes(want), "after kill -9 in full mode")


class TestConcurrent(ShmTest):
    """Several programs at once, disjoint ranges (the default single-threaded
    loop; TestConcurrentThreads runs the same with worker threads)."""

    def test_concurrent_mapped_stores_and_pwrites(self):
        self.need_progs()
        p = self.p("shm", "conc")
        slices = 4
        with open(p, "wb") as f:
            f.truncate(slices * MIB)
        # three C programs store patterns in their own MiB through their own
        # mappings and msync; meanwhile this process pwrites the fourth MiB
        cs = [self.spawn([SHMMAP, p, "pat", str(k * MIB), str(MIB), str(100 + k), "sync",
                          "check", str(k * MIB), str(MIB), str(100 + k), "say", "ok"])
              for k in range(slices - 1)]
        data = random.Random(7).randbytes(MIB)
        fd = os.open(p, os.O_RDWR)
        try:
            for off in range(0, MIB, 64 * KIB):
                os.pwrite(fd, data[off:off + 64 * KIB], (slices - 1) * MIB + off)
            os.fsync(fd)
        finally:
            os.close(fd)
        for k, c in enumerate(cs):
            out, err = c.communicate(timeout=60 * SLOW)
            self.assertEqual((c.returncode, out), (0, b"ok\n"),
                             "writer %d: %s" % (k, err.decode(errors="replace")))

        def check(what):
            self.assertEqual(os.stat(p).st_size, slices * MIB, what)
            for k in range(slices - 1):
                self.shmmap(p, "check", k * MIB, MIB, 100 + k)
            whole = read_all(p)
            self.assert_bytes(whole[(slices - 1) * MIB:], data, what + ": pwritten part")
            self.assert_bytes(map_all(p), whole, what + ": mapping and read() agree")
        check("after the writers")
        self.restart()
        check("after restart")


# Opens a region, drops its cached pages, reads one byte (the kernel reads
# ahead asynchronously), closes at once; many times.
READ_CLOSE = r"""
import os, random, sys
path, n, rng = sys.argv[1], int(sys.argv[2]), random.Random(int(sys.argv[3]))
size = os.stat(path).st_size
for i in range(n):
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.pread(fd, 1, rng.randrange(size))
    os.close(fd)
"""


class TestConcurrentThreads(TestConcurrent):
    """The same with a multi-threaded daemon (--threads 4)."""
    mount_args = ("--threads", "4")

    def test_reads_racing_with_closes(self):
        """A read reply completes the kernel's read-ahead, which drops the last
        reference of a closed file: the RELEASE can be handled by another
        thread while the thread that replied still uses its open file."""
        p = self.p("shm", "ra")
        with open(p, "wb") as f:
            f.truncate(64 * MIB)
            f.write(b"r" * (8 * MIB))
        procs = [self.spawn([PY, "-c", READ_CLOSE, p, "1500", str(k)]) for k in range(3)]
        for k, c in enumerate(procs):
            out, err = c.communicate(timeout=120 * SLOW)
            if c.returncode != 0:
                self.fail_if_daemon_died("reader %d" % k)
            self.assertEqual(c.returncode, 0, "reader %d: %s" % (k, err.decode(errors="replace")))
        self.assertIsNone(self.m.proc.poll(), "the daemon died")
        self.assertEqual(os.stat(p).st_size, 64 * MIB)
