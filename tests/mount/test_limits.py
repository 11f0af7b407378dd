"""test_limits.py - every limit gives a clear errno and leaves the stored state
intact (ipcfs(7), LIMITS and ERRORS).

- name length: 255 bytes; beyond, ENAMETOOLONG (test_namespace has the rest);
- one message: over max_bytes (or 1 MiB - 4 KiB in write framing, or 64 MiB
  in any framing) EFBIG, nothing of it queued; an event payload over its
  max_bytes EFBIG;
- queue depth and bytes (max_messages, max_bytes): writers wait, EAGAIN with
  O_NONBLOCK;
- region size: past max_bytes EFBIG, size and bytes unchanged;
- settings: out of their range EINVAL, a semaphore past 2^31-1 EOVERFLOW;
- objects and directories (--max-objects): ENOSPC beyond, again possible
  after a removal; a database holding more is refused at start;
- payload memory (--max-memory): ENOSPC for mailboxes, FIFOs, regions and a
  growing open-framing message, never a crash or an unbounded daemon; the
  status files show memory within the limit; after draining, writes work;
- many open files: they work and are released.

Every check asserts the exact errno and that what was stored before is
still there and readable afterwards.
"""
import errno
import json
import mmap
import os
import re
import resource
import signal
import subprocess
import sys
import unittest

from harness import SLOW, WRAPPER, MountTest, wait_until

PY = sys.executable or "python3"
KIB, MIB = 1 << 10, 1 << 20
WRITE_MSG_MAX = MIB - 4 * KIB
# What the daemon may hold beyond its payload limit (code, SQLite, libfuse
# buffers, malloc slack): generous; a leak of the payload is far beyond it.
RSS_OVERHEAD = 64 * MIB


class LimitTest(MountTest):
    def setUp(self):
        self._procs = []
        self._fds = []
        super().setUp()

    def tearDown(self):
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        for p in self._procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10 * SLOW)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        super().tearDown()

    # --- helpers ---

    def open(self, path, flags, mode=0o644):
        fd = os.open(path, flags, mode)
        self._fds.append(fd)
        return fd

    def close(self, fd):
        self._fds.remove(fd)
        os.close(fd)

    def err(self, want, fn, *args):
        """Asserts that fn(*args) fails with errno want."""
        with self.assertRaises(OSError, msg="%s%r" % (fn.__name__, args)) as cm:
            fn(*args)
        self.assertEqual(errno.errorcode.get(cm.exception.errno), errno.errorcode[want],
                         "%s%r" % (fn.__name__, args))

    def spawn(self, code, *args):
        p = subprocess.Popen([PY, "-c", code] + [str(a) for a in args], cwd=self.m.mnt,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        self._procs.append(p)
        return p

    def finish(self, p, timeout=30):
        out, err = p.communicate(timeout=timeout * SLOW)
        self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
        return out.decode()

    def num(self, path, name):
        return int(self.xattr(path, name))

    def mbox(self, name, **settings):
        path = self.p("mbox", name)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
        for k, v in settings.items():
            self.set_xattr(path, k, v)
        return path

    def send(self, path, data):
        """One open-framing message (or one write in write framing)."""
        fd = os.open(path, os.O_WRONLY)
        try:
            self.assertEqual(os.write(fd, data), len(data))
        finally:
            os.close(fd)

    def drain(self, path, size=2 * MIB):
        """Every message queued, each by its own open (any framing)."""
        out = []
        while True:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                data = os.read(fd, size)
            except BlockingIOError:
                return out
            finally:
                os.close(fd)
            out.append(data)

    def metrics(self):
        with open(self.p(".ipcfs", "metrics")) as f:
            text = f.read()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stats(self):
        with open(self.p(".ipcfs", "stats")) as f:
            return f.read()

    def mem(self):
        m = self.metrics()
        return int(m["ipcfs_memory_bytes"]), int(m["ipcfs_memory_limit_bytes"])

    def daemon_rss(self):
        with open("/proc/%d/status" % self.m.proc.pid) as f:
            return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1)) * KIB

    def rss_bound(self, limit):
        """The most the daemon may hold with `limit` payload bytes in memory.
        A sanitizer build holds freed memory in quarantine (ASan: 256 MiB by
        default) and shadow memory besides (ASan, TSan)."""
        with open("/proc/%d/maps" % self.m.proc.pid) as f:
            maps = f.read()
        # ThreadSanitizer keeps shadow memory and history for every access.
        sanitizer = "libasan" in maps or "libtsan" in maps
        return limit + RSS_OVERHEAD + (256 * MIB if sanitizer else 0)

    def assert_alive(self):
        self.assertIsNone(self.m.proc.poll(), "the daemon died:\n" + self.m.stderr()[-3000:])
        os.stat(self.m.mnt)


class TestSizes(LimitTest):
    def test_name_length(self):
        os.close(os.open(self.p("mbox", "n" * 255), os.O_WRONLY | os.O_CREAT, 0o644))
        self.err(errno.ENAMETOOLONG, os.open, self.p("mbox", "n" * 256),
                 os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertEqual(os.listdir(self.p("mbox")), ["n" * 255])

    def test_message_over_max_bytes_is_efbig_nothing_queued(self):
        for framing in ("open", "write", "line", "record"):
            q = self.mbox(framing, framing=framing)
            self.send(q, b"k1\n" if framing != "record" else b"\x03\x00\x00\x00k1\n")
            self.set_xattr(q, "max_bytes", 1000)
            fd = self.open(q, os.O_WRONLY)
            if framing == "open":
                self.assertEqual(os.write(fd, b"a" * 600), 600)
                self.err(errno.EFBIG, os.write, fd, b"b" * 600)
                # The rest of this open is refused too; close commits nothing.
                self.err(errno.EFBIG, os.write, fd, b"c")
            elif framing == "write":
                self.err(errno.EFBIG, os.write, fd, b"b" * 1001)
            elif framing == "line":
                self.assertEqual(os.write(fd, b"a" * 600), 600)
                self.err(errno.EFBIG, os.write, fd, b"b" * 600 + b"\n")
            else:
                self.err(errno.EFBIG, os.write, fd, (1001).to_bytes(4, "little") + b"r" * 1001)
            self.close(fd)
            # Only the message queued before is there, whole.
            self.assertEqual((self.num(q, "messages"), self.num(q, "bytes")), (1, 3), framing)
            want = b"k1\n" if framing != "record" else b"\x03\x00\x00\x00k1\n"
            self.assertEqual(self.drain(q), [want], framing)

    def test_write_framing_message_over_1mib_minus_4kib_is_efbig(self):
        q = self.mbox("q", framing="write")
        fd = self.open(q, os.O_WRONLY)
        self.assertEqual(os.write(fd, b"k" * 10), 10)
        self.assertEqual(os.write(fd, b"x" * WRITE_MSG_MAX), WRITE_MSG_MAX)
        self.err(errno.EFBIG, os.write, fd, b"y" * (WRITE_MSG_MAX + 1))
        self.close(fd)
        self.assertEqual(self.num(q, "messages"), 2)
        self.assertEqual(self.drain(q), [b"k" * 10, b"x" * WRITE_MSG_MAX])

    def test_any_message_over_64mib_is_efbig(self):
        q = self.mbox("q", max_bytes=1 << 30)
        self.send(q, b"kept")
        fd = self.open(q, os.O_WRONLY)
        chunk = b"z" * MIB
        for _ in range(64):
            self.assertEqual(os.write(fd, chunk), MIB)
        self.err(errno.EFBIG, os.write, fd, b"!")
        self.close(fd)
        self.assertEqual((self.num(q, "messages"), self.num(q, "bytes")), (1, 4))
        self.assertEqual(self.drain(q), [b"kept"])
        self.assertEqual(self.mem()[0], 0)

    def test_event_and_topic_payload_over_max_bytes_is_efbig(self):
        e = self.p("event", "e")
        os.close(os.open(e, os.O_WRONLY | os.O_CREAT, 0o644))
        self.assertEqual(self.num(e, "max_bytes"), 64 * KIB)
        r = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        self.err(errno.EFBIG, self.send, e, b"e" * (64 * KIB + 1))
        self.err(errno.EAGAIN, os.read, r, 100)  # nothing fired
        self.send(e, b"e" * (64 * KIB))
        self.assertEqual(os.read(r, 128 * KIB), b"e" * (64 * KIB))
        t = self.p("topic", "t")
        os.close(os.open(t, os.O_WRONLY | os.O_CREAT, 0o644))
        self.set_xattr(t, "framing", "write")
        self.set_xattr(t, "max_bytes", 100)
        s = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        w = self.open(t, os.O_WRONLY)
        self.assertEqual(os.write(w, b"first"), 5)
        self.err(errno.EFBIG, os.write, w, b"t" * 101)
        self.assertEqual(os.write(w, b"third"), 5)
        self.assertEqual(os.read(s, 1000), b"first")
        self.assertEqual(os.read(s, 1000), b"third")
        self.err(errno.EAGAIN, os.read, s, 1000)

    def test_queue_depth_waits_or_eagain(self):
        q = self.mbox("q", framing="write", max_messages=3)
        fd = self.open(q, os.O_WRONLY | os.O_NONBLOCK)
        for i in range(3):
            self.assertEqual(os.write(fd, b"m%d" % i), 2)
        self.err(errno.EAGAIN, os.write, fd, b"m3")
        self.assertEqual(self.num(q, "messages"), 3)
        # A blocking writer waits for room...
        p = self.spawn("import os\nfd = os.open('mbox/q', os.O_WRONLY)\n"
                       "print(os.write(fd, b'late'))\n")
        wait_until(lambda: self.num(q, "blocked_writers") == 1, what="the blocked writer")
        self.assertIsNone(p.poll())
        self.assertEqual(self.num(q, "messages"), 3)
        # ...and goes on when a reader makes room.
        r = os.open(q, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(os.read(r, 100), b"m0")
        os.close(r)
        self.assertEqual(self.finish(p), "4\n")
        self.assertEqual(self.drain(q), [b"m1", b"m2", b"late"])
        # Open framing: the writer waits at open for a message slot.
        o = self.mbox("o", max_messages=2)
        self.send(o, b"o1")
        self.send(o, b"o2")
        self.err(errno.EAGAIN, os.open, o, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(self.drain(o), [b"o1", b"o2"])
        # Bytes: max_bytes bounds the queue the same way.
        b = self.mbox("b", framing="write", max_bytes=10)
        fd = self.open(b, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(os.write(fd, b"12345678"), 8)
        self.err(errno.EAGAIN, os.write, fd, b"abc")
        self.assertEqual(os.write(fd, b"ab"), 2)
        self.assertEqual(self.drain(b), [b"12345678", b"ab"])
        # A FIFO's buffer likewise.
        f = self.p("fifo", "f")
        os.close(os.open(f, os.O_WRONLY | os.O_CREAT, 0o644))
        self.set_xattr(f, "max_bytes", 100)
        fd = self.open(f, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(os.write(fd, b"f" * 100), 100)
        self.err(errno.EAGAIN, os.write, fd, b"g")
        self.assertEqual(os.stat(f).st_size, 100)
        r = self.open(f, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(os.read(r, 1000), b"f" * 100)

    def test_region_past_max_bytes_is_efbig_unchanged(self):
        r = self.p("shm", "r")
        fd = self.open(r, os.O_RDWR | os.O_CREAT)
        self.set_xattr(r, "max_bytes", MIB)
        os.ftruncate(fd, 512 * KIB)
        os.pwrite(fd, b"region data", 4096)
        self.err(errno.EFBIG, os.truncate, r, MIB + 1)
        self.err(errno.EFBIG, os.ftruncate, fd, 2 * MIB)
        self.assertEqual(os.stat(r).st_size, 512 * KIB)
        os.ftruncate(fd, MIB)  # exactly the limit
        self.err(errno.EFBIG, os.pwrite, fd, b"past", MIB)
        # A write across the limit: the kernel sends a partial last page
        # that is not cached in a request of its own, so the write may stop
        # short at the limit (as a file at RLIMIT_FSIZE does); nothing is
        # stored past it either way.
        try:
            n = os.pwrite(fd, b"across", MIB - 3)
        except OSError as e:
            self.assertEqual(errno.errorcode[e.errno], "EFBIG")
            n = 0
        self.assertIn(n, (0, 3))
        self.assertEqual(os.pread(fd, 3, MIB - 3), b"acr"[:n] + b"\0" * (3 - n))
        self.err(errno.EFBIG, os.pwrite, fd, b"oss", MIB)
        self.assertEqual(os.stat(r).st_size, MIB)
        self.assertEqual(self.num(r, "size"), MIB)
        # The limit cannot go below the size.
        self.err(errno.EINVAL, self.set_xattr, r, "max_bytes", MIB - 1)
        self.assertEqual(self.num(r, "max_bytes"), MIB)
        self.assertEqual(os.pread(fd, 11, 4096), b"region data")
        self.assertEqual(os.pread(fd, 8, MIB - 16), b"\0" * 8)

    def test_settings_out_of_range_are_einval(self):
        q = self.mbox("q")
        self.send(q, b"kept")
        for key, bad, good in (("max_bytes", (0, (1 << 30) + 1, -1), 1 << 30),
                               ("max_messages", (0, (1 << 24) + 1), 1 << 24)):
            for v in bad:
                self.err(errno.EINVAL, self.set_xattr, q, key, v)
            self.set_xattr(q, key, good)
            self.assertEqual(self.num(q, key), good)
        t = self.p("topic", "t")
        os.close(os.open(t, os.O_WRONLY | os.O_CREAT, 0o644))
        self.err(errno.EINVAL, self.set_xattr, t, "retain", (1 << 24) + 1)
        self.set_xattr(t, "retain", 1 << 24)
        s = self.p("sem", "s")
        os.close(os.open(s, os.O_WRONLY | os.O_CREAT, 0o644))
        self.send(s, b"2147483640")
        self.err(errno.EOVERFLOW, self.send, s, b"8")
        self.err(errno.EINVAL, self.set_xattr, s, "value", 2147483648)
        self.assertEqual(self.num(s, "value"), 2147483640)
        self.send(s, b"7")
        self.assertEqual(self.num(s, "value"), 2147483647)
        self.assertEqual(self.drain(q), [b"kept"])


class TestObjectLimit(LimitTest):
    mount_args = ("--max-objects", "50")

    def test_the_51st_object_is_enospc(self):
        for d in range(5):
            os.mkdir(self.p("mbox", "d%d" % d))
        kinds = ("mbox", "fifo", "shm", "sem", "event", "topic")
        made = []
        for i in range(45):
            path = self.p(kinds[i % 6], "o%02d" % i)
            with open(path, "wb") as f:
                f.write(b"%d" % i if kinds[i % 6] != "event" else b"")
            made.append(path)
        sv = os.statvfs(self.m.mnt)
        self.assertEqual((sv.f_files, sv.f_ffree), (50, 0))
        self.assertIn("limit 50", self.stats())
        # Every way of making a node: ENOSPC.
        self.err(errno.ENOSPC, os.open, self.p("mbox", "x"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.err(errno.ENOSPC, os.open, self.p("shm", "x"), os.O_RDWR | os.O_CREAT, 0o644)
        self.err(errno.ENOSPC, os.mkdir, self.p("mbox", "dx"))
        self.err(errno.ENOSPC, os.mkdir, self.p("mbox", "d0", "sub"))
        self.err(errno.ENOSPC, os.mknod, self.p("fifo", "x"), 0o100644)
        r = self.sh("touch mbox/y", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No space left on device", r.stderr)
        for k in kinds:
            self.assertNotIn("x", os.listdir(self.p(k)))
        # What exists still works: opening with O_CREAT, renaming.
        self.sh("echo more >> mbox/o00 && mv mbox/o06 mbox/d1/o06")
        self.assertEqual(self.drain(self.p("mbox", "o00")), [b"0", b"more\n"])
        self.assertEqual(self.drain(self.p("mbox", "d1", "o06")), [b"6"])
        # A removal makes room for one, and only one.
        os.unlink(self.p("fifo", "o01"))
        os.close(os.open(self.p("mbox", "x"), os.O_WRONLY | os.O_CREAT, 0o644))
        self.err(errno.ENOSPC, os.mkdir, self.p("mbox", "dx"))
        os.rmdir(self.p("mbox", "d4"))
        os.mkdir(self.p("mbox", "dx"))
        self.err(errno.ENOSPC, os.open, self.p("mbox", "z"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertEqual(os.statvfs(self.m.mnt).f_ffree, 0)
        # After a restart: the same 50, the same limit.
        self.m.stop()
        self.m.start()
        self.err(errno.ENOSPC, os.open, self.p("mbox", "z"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertEqual(self.drain(self.p("mbox", "o12")), [b"12"])
        self.assertEqual(self.num(self.p("sem", "o03"), "value"), 3)
        # A database holding more than the limit is refused, and left intact.
        self.m.stop()
        rc, err = self.m.start(extra=("--max-objects", "40"), expect_fail=True)
        self.m.proc = None
        self.assertEqual(rc, 1, err)
        self.assertIn("more objects than the limit", err)
        self.m.start()
        self.assertEqual(os.statvfs(self.m.mnt).f_ffree, 0)
        self.assertEqual(self.drain(self.p("mbox", "o18")), [b"18"])


# Writes 64 KiB messages round-robin into the mailboxes given until ENOSPC,
# then 20 more (all must fail alike), then 1 KiB messages until ENOSPC and 5
# more. Each message is "TAG-SEQ-" padded with a byte of the tag. Prints, as
# JSON, the messages written per mailbox and every errno other than ENOSPC.
FLOOD = r"""
import errno, json, os, sys
tag, paths = sys.argv[1], sys.argv[2:]
fds = [os.open(p, os.O_WRONLY) for p in paths]
done = {p: [] for p in paths}
other = []
seq = 0
def msg(size):
    global seq
    seq += 1
    head = ("%s-%d-" % (tag, seq)).encode()
    return head + tag.encode()[-1:] * (size - len(head))
def one(i, size):
    m = msg(size)
    try:
        n = os.write(fds[i % len(fds)], m)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            other.append(errno.errorcode.get(e.errno, str(e.errno)))
        return False
    if n != len(m):
        other.append("short write %d of %d" % (n, len(m)))
    done[paths[i % len(paths)]].append(m.decode())
    return True
i = 0
while one(i, 65536) and i < 100000:
    i += 1
late = [one(i + k, 65536) for k in range(20)]
i += 20
while one(i, 1024) and i < 200000:
    i += 1
late += [one(i + k, 1024) for k in range(5)]
print(json.dumps({"done": done, "other": other, "late": sum(late)}))
"""


class TestMemoryLimit(LimitTest):
    mount_args = ("--max-memory", "8M")
    LIMIT = 8 * MIB

    def check_memory(self, at_least=0):
        used, limit = self.mem()
        self.assertEqual(limit, self.LIMIT)
        self.assertLessEqual(used, limit)
        self.assertGreaterEqual(used, at_least)
        self.assertIn("memory: %d of %d bytes" % (used, limit), self.stats())
        if not WRAPPER:
            rss = self.daemon_rss()
            self.assertLess(rss, self.rss_bound(self.LIMIT),
                            "daemon VmRSS %d with %d payload bytes" % (rss, used))
        return used

    def test_flood_of_mailboxes_from_several_processes(self):
        boxes = [self.mbox("q%d" % i, framing="write") for i in range(4)]
        self.send(boxes[0], b"before")
        procs = [self.spawn(FLOOD, "w%d" % i, *[b for b in boxes[i:] + boxes[:i]])
                 for i in range(4)]
        results = [json.loads(self.finish(p, timeout=120)) for p in procs]
        self.assert_alive()
        for r in results:
            self.assertEqual(r["other"], [], "errors other than ENOSPC")
            self.assertEqual(r["late"], 0, "a write succeeded after ENOSPC without a drain")
        # Full to within one small message, never past the limit.
        self.check_memory(at_least=self.LIMIT - 2 * KIB - 256)
        written = {b: [] for b in boxes}
        for r in results:
            for b, msgs in r["done"].items():
                written[b].append(msgs)
        total = sum(len(m) for b in boxes for m in written[b])
        self.assertGreater(total, 100)
        self.assertEqual(sum(self.num(b, "messages") for b in boxes), total + 1)
        # A restart loads it all within the same limit.
        self.m.stop()
        self.m.start()
        self.check_memory(at_least=self.LIMIT - 2 * KIB - 256)
        # Everything written is there, each writer's messages in its order.
        got = self.drain(boxes[0])
        self.assertEqual(got[0], b"before")
        got = {boxes[0]: got[1:]}
        for b in boxes[1:]:
            got[b] = self.drain(b)
        for b in boxes:
            msgs = [m.decode() for m in got[b]]
            self.assertEqual(sorted(msgs), sorted(m for per in written[b] for m in per), b)
            for per in written[b]:
                mine = set(per)
                self.assertEqual([m for m in msgs if m in mine], per, b)
        self.assertEqual(self.mem()[0], 0)
        # Writes work again.
        for b in boxes:
            fd = self.open(b, os.O_WRONLY)
            self.assertEqual(os.write(fd, b"w" * 65536), 65536)
            self.close(fd)
            self.assertEqual(self.drain(b), [b"w" * 65536])
        self.check_memory()

    def test_flood_of_tiny_messages(self):
        """The limit counts each message's bookkeeping, not only its bytes:
        16-byte messages fill it too, and the daemon stays as bounded."""
        boxes = [self.mbox("t%d" % i, framing="write", max_messages=1 << 24) for i in range(2)]
        code = (
            "import errno, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
            "n = 0\n"
            "try:\n"
            "    while n < 10**6:\n"
            "        os.write(fd, b'%015d' % n)\n"
            "        n += 1\n"
            "except OSError as e:\n"
            "    print(n, errno.errorcode[e.errno])\n")
        procs = [self.spawn(code, b) for b in boxes]
        outs = [self.finish(p, timeout=120).split() for p in procs]
        self.assert_alive()
        for n, err in outs:
            self.assertEqual(err, "ENOSPC")
        counts = [int(n) for n, _ in outs]
        # Each message is charged more than its 16 bytes.
        self.assertLess(sum(counts), self.LIMIT // 16)
        self.check_memory(at_least=self.LIMIT - 256)
        for b, n in zip(boxes, counts):
            self.assertEqual(self.num(b, "messages"), n)
            fd = self.open(b, os.O_RDONLY | os.O_NONBLOCK)
            for i in (0, 1, 2):
                self.assertEqual(os.read(fd, 100), b"%015d" % i)
            self.close(fd)
        # Removing the mailboxes gives it all back (once the kernel forgets
        # their inodes, which it does by itself).
        for b in boxes:
            os.unlink(b)
        wait_until(lambda: self.mem()[0] == 0, what="the memory of removed mailboxes")
        self.check_memory()

    def test_topic_backlog_enospc(self):
        t = self.p("topic", "t")
        os.close(os.open(t, os.O_WRONLY | os.O_CREAT, 0o644))
        self.set_xattr(t, "framing", "write")
        self.set_xattr(t, "max_messages", 1 << 24)
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)  # never reads
        fast = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        w = self.open(t, os.O_WRONLY)
        n = 0
        with self.assertRaises(OSError) as cm:
            while n < 1000:
                os.write(w, b"%06d" % n + b"t" * 65530)
                n += 1
                self.assertEqual(os.read(fast, 65536)[:6], b"%06d" % (n - 1))
        self.assertEqual(errno.errorcode[cm.exception.errno], "ENOSPC")
        self.assertGreater(n, self.LIMIT // 65536 - 3)
        self.err(errno.ENOSPC, os.write, w, b"x" * 65536)
        self.err(errno.EAGAIN, os.read, fast, 65536)
        self.assertEqual(self.num(t, "dropped"), 0)
        self.check_memory(at_least=self.LIMIT - 65536 - 4 * KIB)
        self.assert_alive()
        # The slow subscriber has all of it, in order.
        self.assertEqual(os.read(slow, 65536)[:6], b"000000")
        self.assertEqual(os.read(slow, 65536)[:6], b"000001")
        # When it leaves, the log goes and publishing works again.
        self.close(slow)
        wait_until(lambda: self.mem()[0] == 0, what="the topic log to go")
        self.assertEqual(os.write(w, b"again"), 5)
        self.assertEqual(os.read(fast, 100), b"again")
        self.check_memory()

    def test_fifo_and_region_enospc(self):
        keep = self.mbox("keep")
        self.send(keep, b"kept")
        f = self.p("fifo", "f")
        os.close(os.open(f, os.O_WRONLY | os.O_CREAT, 0o644))
        self.set_xattr(f, "max_bytes", 1 << 30)
        fd = self.open(f, os.O_WRONLY | os.O_NONBLOCK)
        n = 0
        with self.assertRaises(OSError) as cm:
            while n < 2 * self.LIMIT:
                chunk = bytes([n // 65536 % 251]) * 65536
                self.assertEqual(os.write(fd, chunk), 65536)
                n += 65536
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.assertGreater(n, self.LIMIT - 2 * 65536 - 64 * KIB)
        self.err(errno.ENOSPC, os.write, fd, b"x" * 65536)
        self.assertEqual(os.stat(f).st_size, n)
        self.check_memory()
        # The region: ENOSPC on write, nothing of it stored.
        r = self.p("shm", "r")
        rfd = self.open(r, os.O_RDWR | os.O_CREAT)
        os.ftruncate(rfd, 64 * MIB)  # sparse: no memory
        self.err(errno.ENOSPC, os.pwrite, rfd, b"r" * 65536, 0)
        self.assertEqual(self.num(r, "pages"), 0)
        # Drain the FIFO: every byte as written.
        want = b"".join(bytes([k % 251]) * 65536 for k in range(n // 65536))
        rd = self.open(f, os.O_RDONLY | os.O_NONBLOCK)
        got = 0
        while got < n:
            data = os.read(rd, 65536)
            self.assertTrue(data and data == want[got:got + len(data)], got)
            got += len(data)
        self.assertEqual(os.stat(f).st_size, 0)
        self.close(rd)
        # Now the region takes pages until the limit.
        off = 0
        with self.assertRaises(OSError) as cm:
            while off < 2 * self.LIMIT:
                self.assertEqual(os.pwrite(rfd, bytes([off // 65536 % 251 + 1]) * 65536, off),
                                 65536)
                off += 65536
        self.assertEqual(cm.exception.errno, errno.ENOSPC)
        self.assertGreater(off, self.LIMIT - 2 * 65536)
        self.assertEqual(self.num(r, "pages"), off // 4096)
        self.assertEqual(os.stat(r).st_size, 64 * MIB)
        self.check_memory(at_least=self.LIMIT - 65536 - 4 * KIB)
        for o in (0, off // 2 // 65536 * 65536, off - 65536):
            self.assertEqual(os.pread(rfd, 65536, o), bytes([o // 65536 % 251 + 1]) * 65536)
        self.assertEqual(os.pread(rfd, 16, off), b"\0" * 16)
        # Mapped stores past the limit: msync reports ENOSPC, the daemon lives.
        mp = mmap.mmap(rfd, 64 * MIB)
        try:
            for o in range(off, off + 4 * MIB, 4096):
                mp[o] = 1
            self.err(errno.ENOSPC, mp.flush)
        finally:
            mp.close()
        self.assert_alive()
        self.check_memory()
        # Shrinking the region gives the memory back; writes work again.
        os.ftruncate(rfd, 0)
        self.assertEqual(self.num(r, "pages"), 0)
        self.assertEqual(os.write(fd, b"again"), 5)
        self.assertEqual(os.pwrite(rfd, b"region again", 0), 12)
        self.assertEqual(self.drain(keep), [b"kept"])
        self.check_memory()

    def test_open_framing_growth_past_max_bytes_is_efbig(self):
        keep = self.mbox("keep")
        self.send(keep, b"kept")
        q = self.mbox("q", max_bytes=2 * MIB)
        fd = self.open(q, os.O_WRONLY)
        n = 0
        with self.assertRaises(OSError) as cm:
            while n < 4 * MIB:
                os.write(fd, b"g" * 65536)
                n += 65536
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(n, 2 * MIB)
        self.close(fd)
        self.assertEqual(self.num(q, "messages"), 0)
        self.assertEqual(self.drain(keep), [b"kept"])
        self.assertEqual(self.mem()[0], 0)

    def grow_until_enospc(self, q):
        """One open of q written 64 KiB at a time until it fails; returns
        (bytes written, errno, memory in use at the failure)."""
        fd = self.open(q, os.O_WRONLY)
        n, err, used = 0, None, None
        try:
            while n < 4 * self.LIMIT:
                os.write(fd, b"g" * 65536)
                n += 65536
        except OSError as e:
            used = self.mem()[0]
            err = e.errno
            # Every later write on this open fails alike.
            self.err(err, os.write, fd, b"g" * 65536)
        self.assert_alive()
        self.check_memory()
        return fd, n, err, used

    def test_open_framing_growth_stops_at_the_memory_limit(self):
        keep = self.mbox("keep")
        self.send(keep, b"kept")
        q = self.mbox("q")  # max_bytes 64 MiB: beyond the memory limit
        fd, n, err, used = self.grow_until_enospc(q)
        self.assertEqual(errno.errorcode[err], "ENOSPC")
        self.close(fd)
        # ENOSPC means the memory is used up, not half of it.
        self.assertGreater(n, self.LIMIT - 4 * 65536,
                           "ENOSPC after %d bytes with %d of %d in use" % (n, used, self.LIMIT))

    def test_open_framing_message_cut_by_enospc_is_not_queued(self):
        keep = self.mbox("keep")
        self.send(keep, b"kept")
        q = self.mbox("q")
        fd, n, err, used = self.grow_until_enospc(q)
        self.assertEqual(errno.errorcode[err], "ENOSPC")
        self.close(fd)
        # The writer was told its message failed: no reader gets a part of it.
        msgs = self.num(q, "messages")
        first = b""
        if msgs:
            r = os.open(q, os.O_RDONLY | os.O_NONBLOCK)
            first = os.read(r, 16)
            os.close(r)
        self.assertEqual((msgs, self.num(q, "bytes")), (0, 0),
                         "after ENOSPC at %d bytes, close queued a message of %d bytes (%r...)"
                         % (n, self.num(q, "bytes"), first))
        self.assertEqual(self.drain(keep), [b"kept"])
        # Memory is back: a write works.
        self.send(q, b"after")
        self.assertEqual(self.drain(q)[-1:], [b"after"])


class TestOpenFiles(LimitTest):
    N = 1000

    def setUp(self):
        super().setUp()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 2 * self.N + 200
        if soft < need:
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))

    def daemon_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.m.proc.pid))

    def test_2000_opens_of_one_mailbox(self):
        q = self.mbox("q")
        self.send(q, b"kept")
        fds0 = self.daemon_fds()
        writers = [self.open(q, os.O_WRONLY) for _ in range(self.N)]
        readers = [self.open(q, os.O_RDONLY | os.O_NONBLOCK) for _ in range(self.N)]
        self.assertEqual((self.num(q, "writers"), self.num(q, "readers")), (self.N, self.N))
        self.assertIn("open: %d readers, %d writers" % (self.N, self.N), self.stats())
        for i, fd in enumerate(writers):
            self.assertEqual(os.write(fd, b"m%04d" % i), 5)
        self.assertEqual(self.num(q, "messages"), 1)  # nothing committed before close
        for fd in writers:
            self.close(fd)
        self.assertEqual(self.num(q, "messages"), self.N + 1)
        self.assertEqual(self.num(q, "writers"), 0)
        want = [b"kept"] + [b"m%04d" % i for i in range(self.N - 1)]
        self.assertEqual([os.read(fd, 100) for fd in readers], want)
        self.assertEqual([os.read(fd, 100) for fd in readers[:10]], [b""] * 10)  # EOF
        for fd in readers:
            self.close(fd)
        self.assertEqual((self.num(q, "readers"), self.num(q, "writers")), (0, 0))
        self.assertIn("open: 0 readers, 0 writers", self.stats())
        self.assertEqual(self.drain(q), [b"m%04d" % (self.N - 1)])
        self.assertEqual(self.daemon_fds(), fds0)
        self.assertEqual(self.mem()[0], 0)
        # And again: nothing was left behind.
        fds = [self.open(q, os.O_RDWR) for _ in range(2 * self.N)]
        self.assertEqual((self.num(q, "readers"), self.num(q, "writers")),
                         (2 * self.N, 2 * self.N))
        for fd in fds:
            self.close(fd)
        self.assertEqual((self.num(q, "readers"), self.num(q, "writers")), (0, 0))
        self.assertEqual(self.num(q, "messages"), 0)


if __name__ == "__main__":
    unittest.main()
