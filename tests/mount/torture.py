#!/usr/bin/env python3
"""torture.py - crash torture: kill -9 the daemon under load, restart, check.

    python3 tests/mount/torture.py --quick|--long [--seed N] [--kills N]
                                   [--duration S] [--keep] [-v]

IPCFS_BIN names the daemon (as for every mount test); IPCFS_TEST_SLOW scales
the timeouts (the ASan pass sets 3). tests/mount/test_torture.py runs the
quick mode as part of the suite.

One run uses one database in a fresh temporary directory. Each cycle starts
the daemon on it (`--sync full` in most cycles, `--sync normal` in some),
runs producers and consumers (separate processes) against several objects
(in some cycles producers only, so that a backlog builds up, with or without
a bulk producer of large messages that makes the database checkpoint often,
or consumers only, so that the kill comes in the middle of a drain), and kills
the daemon with SIGKILL at a random (seeded) moment; the next cycle starts it
again on the same database. After the last kill a final daemon (full mode) is
started, the consumers drain what is left, the daemon is stopped cleanly, and
every log is checked. Objects:

  mbox/w    write framing: producers send "p<prod>-<seq>-<len>-<crc>:<body>"
            messages (40 B .. 512 KiB), one write(2) each; a seq is logged as
            acknowledged (fsync'd append, outside the mount) when its write
            returned success.
  mbox/o    open framing: the same messages, each one open, 1-4 writes, close;
            acknowledged when close() returned 0.
  fifo/f    fixed-size records (R <= 4096 bytes, so every write is atomic);
            the consumer reads multiples of R and splits the byte stream.
  shm/r     a region; its writer pwrites whole pages "r<page>-<version>-..."
            and fsyncs; versions fsync acknowledged are logged.
  shm/m     the same through a MAP_SHARED mapping and msync(MS_SYNC).
  mbox/dro, mbox/drw, mbox/kw   the dying-reader and dying-writer scenarios.

Checks (after the final drain; region pages after every restart):
  - every message acknowledged in a full-mode cycle was received at least once;
    in a normal-mode cycle, every one acknowledged more than WINDOW+MARGIN
    before the kill (those newer that are missing are counted, not failed);
  - nothing received is corrupt (body/checksum), partial, or unknown (never
    written); per producer the first receipts come in increasing seq order;
    duplicates are counted and must come from a later daemon life than the
    first receipt (that is, around a kill);
  - FIFO records are never torn, corrupt, unknown or out of order;
  - every region page holds a valid version, at least as new as the last one
    fsync acknowledged for it (all zeros only if none was);
  - the daemon starts after every kill (the database opens), it never dies by
    itself, its log shows no sanitizer report, no worker hangs, and no worker
    sees an error while the daemon is alive;
  - dying readers: a reader SIGKILLed while blocked takes nothing with it; one
    killed in the middle of a message leaves it queued whole for the next;
  - dying writer (open framing): see c_killed_writer for what happens.

The last line is the summary:
  torture: kills survived K, messages checked M, lost L, duplicated D, corrupt C, ...
and the exit status is non-zero if anything acknowledged was lost or corrupt,
or any other check failed.
"""
import argparse
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import SLOW  # noqa: E402

PAGE = 4096
WINDOW = 0.100        # the documented commit window of --sync normal
MARGIN = 1.0          # generous: a loaded 2-core machine, maybe under ASan
NPAGES = 64           # pages in shm/r
MAX_MSG = 512 * 1024  # largest workload message (1% are 64..512 KiB)
READ_BUF = 1 << 20
NPROD_W, NPROD_O, NPROD_F = 3, 2, 2
REGIONS = {"r": False, "m": True}  # region name -> written through a mapping
# The quick mode's cycles: who runs between a start and its kill.
QUICK_LOADS = ("both", "bulk", "both", "consumers", "bulk")
mono = time.monotonic

# --------------------------------------------------------------------------
# Messages: self-describing and deterministic, so any byte out of place shows.


def _body(key, n):
    d = hashlib.sha256(key).digest()
    return (d * (n // len(d) + 1))[:n]


def make_msg(prod, seq, n, tag=b"p"):
    """The message number seq of producer prod, n bytes long in total."""
    if isinstance(prod, str):
        prod = prod.encode()
    head = b"%s%s-%d-%d-" % (tag, prod, seq, n)
    blen = n - len(head) - 9
    if blen < 0:
        raise ValueError("message too short for its header")
    body = _body(head, blen)
    return head + b"%08x:" % zlib.crc32(body) + body


MSG_RE = re.compile(rb"([pFr])([A-Za-z0-9]+)-(\d+)-(\d+)-([0-9a-f]{8}):")


def parse_msg(data):
    """(prod, seq, status): status ok, partial (a true prefix of a valid
    message), or corrupt (prod, seq None when the header is unreadable)."""
    mt = MSG_RE.match(data)
    if not mt:
        return None, None, "corrupt"
    prod, seq, n = mt.group(2).decode(), int(mt.group(3)), int(mt.group(4))
    if n > 2 * 1024 * 1024:
        return prod, seq, "corrupt"
    try:
        want = make_msg(prod, seq, n, mt.group(1))
    except ValueError:
        return prod, seq, "corrupt"
    if data == want:
        return prod, seq, "ok"
    if len(data) < n and want.startswith(data):
        return prod, seq, "partial"
    return prod, seq, "corrupt"


def msg_len(rng):
    x = rng.random()
    if x < 0.69:
        return rng.randint(40, 300)
    if x < 0.94:
        return rng.randint(300, 4096)
    if x < 0.99:
        return rng.randint(4096, 24 * 1024)
    return rng.randint(64 * 1024, MAX_MSG)


def page_data(pg, ver):
    return make_msg("r%d" % pg, ver, PAGE, b"r")


# --------------------------------------------------------------------------
# Child processes. Every process that touches the mount is forked from here
# and runs in a session of its own, so that it can be killed as a group and
# so that a hang of the mount never hangs the driver.

_children = set()


class Child:
    """A forked process running fn(*args); its JSON result comes back on a pipe."""

    def __init__(self, name, fn, *args):
        self.name = name
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                os.setsid()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.close(r)
                res = fn(*args)
                data = json.dumps(res).encode()
                while data:
                    data = data[os.write(w, data):]
                code = 0
            except BaseException:
                try:
                    tb = traceback.format_exc().encode()
                    os.write(w, json.dumps({"exception": tb.decode()}).encode())
                except BaseException:
                    pass
            finally:
                os._exit(code)
        os.close(w)
        self.pid, self.rfd = pid, r
        self.status = None
        self.buf = b""
        _children.add(self)

    def _reap(self, block=False):
        if self.status is not None:
            return True
        pid, st = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status = st
        _children.discard(self)
        return True

    def alive(self):
        return not self._reap()

    def wait(self, timeout):
        """The child's result (None if it returned nothing); raises Hang."""

        end = mono() + timeout
        while self.rfd is not None:
            left = end - mono()
            if left <= 0:
                raise Hang(self)
            rd, _, _ = select.select([self.rfd], [], [], left)
            if rd:
                chunk = os.read(self.rfd, 65536)
                if not chunk:
                    os.close(self.rfd)
                    self.rfd = None
                else:
                    self.buf += chunk
        while not self._reap():
            if mono() > end:
                raise Hang(self)
            time.sleep(0.005)
        if not self.buf:
            return None
        res = json.loads(self.buf.decode())
        if isinstance(res, dict) and "exception" in res:
            raise ChildError("%s raised:\n%s" % (self.name, res["exception"]))
        return res

    def kill(self):
        if self.status is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(block=True)
        if self.rfd is not None:
            os.close(self.rfd)
            self.rfd = None


class Hang(Exception):
    def __init__(self, child):
        super().__init__("%s (pid %d) did not finish in time" % (child.name, child.pid))
        self.child = child


class ChildError(Exception):
    pass


def kill_all_children():
    for c in list(_children):
        c.kill()


def _logw(fd, line):
    os.write(fd, line.encode())


def _openlog(path):
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _err(fd, e):
    _logw(fd, "e %d %.6f %s\n" % (e.errno or 0, mono(), os.strerror(e.errno or 0)))


# --- workers (run in children; they end at the first error, which is the
# --- daemon's death; they never create anything, so a path that resolves
# --- below the cleared mount point fails with ENOENT)


def w_prod_write(path, logpath, name, seed, pace, bulk=False):
    """bulk: only large messages, at full speed (the database's WAL grows past
    its checkpoint threshold, so kills also land inside checkpoints)."""
    rng = random.Random(seed)
    log = _openlog(logpath)
    try:
        fd = os.open(path, os.O_WRONLY)
        seq = 0
        while True:
            seq += 1
            n = rng.randint(256 * 1024, 960 * 1024) if bulk else msg_len(rng)
            msg = make_msg(name, seq, n)
            _logw(log, "a %d %d\n" % (seq, n))
            r = os.write(fd, msg)
            if r != n:
                _logw(log, "s %d %d %.6f\n" % (seq, r, mono()))
                return
            _logw(log, "k %d %.6f\n" % (seq, mono()))
            os.fsync(log)
            time.sleep(rng.uniform(0, pace))
    except OSError as e:
        _err(log, e)


def w_prod_open(path, logpath, name, seed, pace):
    rng = random.Random(seed)
    log = _openlog(logpath)
    seq = 0
    try:
        while True:
            seq += 1
            n = msg_len(rng)
            msg = make_msg(name, seq, n)
            cuts = sorted(rng.sample(range(1, n), min(rng.randint(0, 3), n - 1)))
            parts = [msg[a:b] for a, b in zip([0] + cuts, cuts + [n])]
            _logw(log, "a %d %d\n" % (seq, n))
            fd = os.open(path, os.O_WRONLY)
            try:
                for p in parts:
                    if os.write(fd, p) != len(p):
                        _logw(log, "s %d %.6f\n" % (seq, mono()))
                        return
            finally:
                os.close(fd)  # the close commits; its error is not an ack
            _logw(log, "k %d %.6f\n" % (seq, mono()))
            os.fsync(log)
            time.sleep(rng.uniform(0, pace))
    except OSError as e:
        _err(log, e)


def w_prod_fifo(path, logpath, name, seed, pace, rsize):
    rng = random.Random(seed)
    log = _openlog(logpath)
    try:
        fd = os.open(path, os.O_WRONLY)
        seq = 0
        while True:
            seq += 1
            rec = make_msg(name, seq, rsize, b"F")
            _logw(log, "a %d %d\n" % (seq, rsize))
            r = os.write(fd, rec)
            if r != rsize:
                _logw(log, "s %d %d %.6f\n" % (seq, r, mono()))
                return
            _logw(log, "k %d %.6f\n" % (seq, mono()))
            os.fsync(log)
            time.sleep(rng.uniform(0, pace))
    except OSError as e:
        _err(log, e)


def _receipt(log, data):
    prod, seq, status = parse_msg(data)
    if status == "ok":
        _logw(log, "r %s %d ok\n" % (prod, seq))
    else:
        _logw(log, "r %s %s %s %d %s\n" % (prod or "?", seq if seq is not None else "?",
                                           status, len(data), data[:64].hex()))


def w_cons_write(path, logpath, nonblock=False):
    """Write framing: a read(2) returns at most one message (all of it, unless
    the kernel cut the read into several requests: then the next reads return
    the rest). nonblock: drain, end at EAGAIN."""
    log = _openlog(logpath)
    buf = bytearray(READ_BUF)
    data = b""
    try:
        f = open(os.open(path, os.O_RDONLY | (os.O_NONBLOCK if nonblock else 0)), "rb",
                 buffering=0)
        while True:
            try:
                n = f.readinto(buf)
            except BlockingIOError:
                n = None
            if not n:
                if data:  # the rest of a message must follow its first part
                    _logw(log, "i %d nonblock\n" % len(data))
                if n == 0:
                    _logw(log, "z %.6f\n" % mono())  # write framing never ends
                return
            data += buf[:n]
            if parse_msg(data)[2] != "partial":
                _receipt(log, data)
                data = b""
    except OSError as e:
        if data:
            _logw(log, "i %d %s\n" % (len(data), parse_msg(data)[2]))
        _err(log, e)


def w_cons_open(path, logpath, nonblock=False):
    """Open framing: one open, one message, then EOF."""
    log = _openlog(logpath)
    while True:
        data = b""
        try:
            fd = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if nonblock else 0))
        except OSError as e:
            _err(log, e)
            return
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        except BlockingIOError:
            os.close(fd)
            if data:
                _logw(log, "i %d nonblock\n" % len(data))
            return
        except OSError as e:
            # The daemon died: a message whose bytes all arrived was delivered
            # (the daemon counts it when its last byte is read), so it counts.
            if data and parse_msg(data)[2] == "ok":
                _receipt(log, data)
            elif data:
                _logw(log, "i %d %s\n" % (len(data), parse_msg(data)[2]))
            _err(log, e)
            try:
                os.close(fd)
            except OSError:
                pass
            return
        try:
            os.close(fd)
        except OSError:
            pass
        if not data:
            _logw(log, "z %.6f\n" % mono())  # EOF with no message: never expected
            return
        _receipt(log, data)


def w_cons_fifo(path, logpath, rsize, seed, nonblock=False):
    rng = random.Random(seed)
    log = _openlog(logpath)
    left = b""
    try:
        while True:
            fd = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if nonblock else 0))
            while True:
                try:
                    chunk = os.read(fd, rsize * rng.randint(1, 16))
                except BlockingIOError:
                    chunk = None
                if not chunk:
                    break
                if len(chunk) % rsize:
                    # The stream only ever holds whole records: worth a note.
                    _logw(log, "n %d\n" % len(chunk))
                left += chunk
                while len(left) >= rsize:
                    _receipt(log, left[:rsize])
                    left = left[rsize:]
            os.close(fd)
            if nonblock:
                break
            time.sleep(0.002)  # EOF (no writer yet): open again
    except OSError as e:
        _err(log, e)
    if left:
        _logw(log, "t %d %s\n" % (len(left), left[:64].hex()))


def w_region(path, logpath, cycle, seed, pace, use_mmap):
    """pwrite (or stores into a shared mapping), then fsync (or msync)."""
    rng = random.Random(seed)
    log = _openlog(logpath)
    ver = cycle * 1000000
    mm = None
    try:
        fd = os.open(path, os.O_RDWR)
        if use_mmap:
            import mmap
            import resource
            # A store that faults on the dead mount is a SIGBUS: no core file.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            mm = mmap.mmap(fd, NPAGES * PAGE)
        while True:
            done = {}
            for _ in range(rng.randint(1, 4)):
                pg = rng.randrange(NPAGES)
                ver += 1
                _logw(log, "a %d %d\n" % (pg, ver))
                if mm is not None:
                    mm[pg * PAGE:(pg + 1) * PAGE] = page_data(pg, ver)
                elif os.pwrite(fd, page_data(pg, ver), pg * PAGE) != PAGE:
                    _logw(log, "s %d %d\n" % (pg, ver))
                    return
                done[pg] = ver
            if mm is not None:
                mm.flush()  # msync(MS_SYNC)
            else:
                os.fsync(fd)
            _logw(log, "".join("k %d %d %.6f\n" % (pg, v, mono()) for pg, v in done.items()))
            os.fsync(log)
            time.sleep(rng.uniform(0, pace))
    except OSError as e:
        _err(log, e)


# --- one-shot children


def c_setup(mnt):
    """Creates the objects, sets write framing, makes it all durable."""
    for kind, name in (("mbox", "w"), ("mbox", "o"), ("mbox", "dro"), ("mbox", "drw"),
                       ("mbox", "kw"), ("mbox", "probe"), ("fifo", "f"), ("shm", "r"),
                       ("shm", "m")):
        p = os.path.join(mnt, kind, name)
        fd = os.open(p, os.O_RDONLY | os.O_CREAT, 0o666)
        os.close(fd)
    for name in ("w", "drw"):
        os.setxattr(os.path.join(mnt, "mbox", name), "user.ipcfs.framing", b"write")
    for name in ("r", "m"):
        fd = os.open(os.path.join(mnt, "shm", name), os.O_RDWR)
        os.ftruncate(fd, NPAGES * PAGE)
        os.fsync(fd)  # waits for the commit of everything dirty
        os.close(fd)
    return True


def c_region_check(path, acked, attempted):
    """Problems found in the region (acked/attempted: {page: version(s)})."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, NPAGES * PAGE, 0)
    finally:
        os.close(fd)
    bad = []
    if size != NPAGES * PAGE or len(data) != NPAGES * PAGE:
        bad.append("region size %d, read %d bytes" % (size, len(data)))
        return {"bad": bad, "pages": 0}
    zero = bytes(PAGE)
    for pg in range(NPAGES):
        page = data[pg * PAGE:(pg + 1) * PAGE]
        need = acked.get(str(pg), 0)
        if page == zero:
            if need:
                bad.append("page %d is zeros; version %d was fsync acknowledged" % (pg, need))
            continue
        prod, ver, status = parse_msg(page)
        if status != "ok" or prod != "r%d" % pg:
            bad.append("page %d: not a valid version (%s): %s" % (pg, status, page[:48]))
        elif ver < need:
            bad.append("page %d: version %d older than the fsync acknowledged %d" %
                       (pg, ver, need))
        elif ver not in attempted.get(str(pg), ()):
            bad.append("page %d: version %d was never written to it" % (pg, ver))
    return {"bad": bad, "pages": NPAGES}


def _read_child(path, size, report_fd, then_sleep, framing):
    """A reader: reads one message (open framing: to EOF; write framing: one
    read of `size`... until the message is complete), reports it on
    report_fd; with then_sleep, then reads only the first `size` bytes of the
    next message, reports that, and sleeps until killed."""
    fd = os.open(path, os.O_RDONLY)
    if framing == "open":
        data = b""
        while True:
            c = os.read(fd, 65536)
            if not c:
                break
            data += c
        os.close(fd)
    else:
        data = os.read(fd, 1 << 20)
        _, _, st = parse_msg(data)
        while st == "partial":
            data += os.read(fd, 1 << 20)
            _, _, st = parse_msg(data)
    os.write(report_fd, b"%d:" % len(data) + data)
    if not then_sleep:
        return
    if framing == "open":
        fd = os.open(path, os.O_RDONLY)
    part = os.read(fd, size)
    os.write(report_fd, b"%d:" % len(part) + part)
    time.sleep(3600)


class Reports:
    """Length-prefixed reports ("N:" + N bytes) from a reader child."""

    def __init__(self, rfd):
        self.rfd, self.buf = rfd, b""

    def next(self, timeout):

        end = mono() + timeout
        while True:
            if b":" in self.buf:
                n, rest = self.buf.split(b":", 1)
                if len(rest) >= int(n):
                    self.buf = rest[int(n):]
                    return rest[:int(n)]
            left = end - mono()
            if left <= 0:
                raise TimeoutError("no report from the reader")
            rd, _, _ = select.select([self.rfd], [], [], left)
            if not rd:
                raise TimeoutError("no report from the reader")
            c = os.read(self.rfd, 1 << 20)
            if not c:
                raise EOFError("the reader ended without reporting")
            self.buf += c


def _fork_sub(fn, *args):
    """A sub-child in the scenario's process group (killed with it)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _kill_sub(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _send(path, msg, framing):
    fd = os.open(path, os.O_WRONLY)
    try:
        if framing == "write":
            assert os.write(fd, msg) == len(msg)
        else:
            for i in range(0, len(msg), 8192):
                os.write(fd, msg[i:i + 8192])
    finally:
        os.close(fd)


def _wait_xattr(path, name, value, timeout):
    end = mono() + timeout
    while mono() < end:
        if os.getxattr(path, "user.ipcfs." + name).decode() == value:
            return True
        time.sleep(0.005)
    return False


def _receive_one_nonblock(path, framing):
    """The next message, or None if the mailbox is empty."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    try:
        while True:
            try:
                c = os.read(fd, 1 << 20)
            except BlockingIOError:
                return data or None
            if not c:
                break
            data += c
            if framing == "write" and parse_msg(data)[2] != "partial":
                break
    finally:
        os.close(fd)
    return data or None


def c_dying_readers(mnt, cycle, seed, timeout):
    """For both framings: a reader SIGKILLed while blocked takes nothing with
    it; a reader SIGKILLed in the middle of a message leaves it queued whole."""
    rng = random.Random(seed)
    fails = []
    redelivered = 0
    for name, framing in (("dro", "open"), ("drw", "write")):
        path = os.path.join(mnt, "mbox", name)
        n, bad = _leftovers(path, framing, cycle)
        redelivered += n
        fails += bad
        m1 = make_msg("d%sx%d" % (name, cycle), 1, rng.randint(40, 2000))
        m2 = make_msg("d%sx%d" % (name, cycle), 2, rng.randint(40000, 90000))
        # 1. blocked, then killed
        r, w = os.pipe()
        pid = _fork_sub(_read_child, path, 4096, w, False, framing)
        os.close(w)
        if not _wait_xattr(path, "blocked_readers", "1", timeout):
            fails.append("%s: the reader did not block" % name)
        _kill_sub(pid)
        os.close(r)
        if os.getxattr(path, "user.ipcfs.blocked_readers") != b"0":
            fails.append("%s: a killed reader is still counted as blocked" % name)
        _send(path, m1, framing)
        _send(path, m2, framing)
        # 2. a second reader gets m1, then the first part of m2, and is killed
        r, w = os.pipe()
        pid = _fork_sub(_read_child, path, rng.choice((1, 100, 4096, 30000)), w, True, framing)
        os.close(w)
        rep = Reports(r)
        try:
            got1 = rep.next(timeout)
            if got1 != m1:
                fails.append("%s: the reader after the killed one got %r..., not m1" %
                             (name, got1[:64]))
            part = rep.next(timeout)
            if not part or not m2.startswith(part):
                fails.append("%s: the first part of m2 read is %r..." % (name, part[:64]))
        except (TimeoutError, EOFError) as e:
            fails.append("%s: reader 2: %s" % (name, e))
        _kill_sub(pid)
        os.close(r)
        # 3. the next reader gets m2 whole, then the mailbox is empty
        got2 = _receive_one_nonblock(path, framing)
        if got2 != m2:
            fails.append("%s: after a reader died mid-message the next got %s (%d bytes), "
                         "not the whole message (%d bytes)" %
                         (name, "nothing" if got2 is None else repr(got2[:48]),
                          len(got2 or b""), len(m2)))
        more = _receive_one_nonblock(path, framing)
        if more is not None:
            fails.append("%s: an extra message after m2: %r" % (name, more[:64]))
    return {"fails": fails, "redelivered": redelivered}


def _leftovers(path, framing, cycle):
    """Messages still queued from earlier cycles: every one was received in
    full before the kill that followed it, so one may come back only as a
    redelivery (its delete was not committed before the kill) - valid, whole,
    and from an earlier cycle."""
    n, bad = 0, []
    while True:
        got = _receive_one_nonblock(path, framing)
        if got is None:
            return n, bad
        prod, _, status = parse_msg(got)
        mt = re.match(r"[a-z]+x(\d+)$", prod or "")
        if status != "ok" or not mt or int(mt.group(1)) >= cycle:
            bad.append("%s: a %s message left over: %r" % (os.path.basename(path), status,
                                                           got[:64]))
        n += 1


def _slow_writer(path, msg, chunk, report_fd, seed):
    rng = random.Random(seed)
    fd = os.open(path, os.O_WRONLY)
    os.write(report_fd, b"o\n")
    for i in range(0, len(msg), chunk):
        os.write(fd, msg[i:i + chunk])
        os.write(report_fd, b"%d\n" % (i + chunk))
        time.sleep(rng.uniform(0.0005, 0.003))
    time.sleep(3600)  # never closes by itself


def c_killed_writer(mnt, cycle, seed, timeout):
    """An open-framing writer SIGKILLed in the middle of its message.

    What happens (asserted here): the kernel closes the dead process's
    descriptor and sends FLUSH with the dying thread's id (the opener's);
    ipcfs sees in /proc that the thread is exiting on a signal and drops the
    message being written, so a killed writer leaves nothing (docs: a writer
    killed mid-message in open framing leaves no part of its message).
    """

    rng = random.Random(seed)
    path = os.path.join(mnt, "mbox", "kw")
    redelivered, fails = _leftovers(path, "open", cycle)
    chunk = rng.choice((100, 1000, 4096))
    msg = make_msg("kwx%d" % cycle, 1, 60 * chunk)
    r, w = os.pipe()
    pid = _fork_sub(_slow_writer, path, msg, chunk, w, seed)
    os.close(w)
    out = b""
    end = mono() + timeout
    while not out.startswith(b"o\n") and mono() < end:
        rd, _, _ = select.select([r], [], [], 0.1)
        if rd:
            out += os.read(r, 4096)
    time.sleep(rng.choice((0, 0.002, 0.01, 0.03, 0.06)))
    _kill_sub(pid)
    while True:
        rd, _, _ = select.select([r], [], [], 0)
        if not rd:
            break
        c = os.read(r, 4096)
        if not c:
            break
        out += c
    os.close(r)
    reported = [int(x) for x in out.split()[1:]] if out.startswith(b"o\n") else []
    acked = reported[-1] if reported else 0
    got = _receive_one_nonblock(path, "open")
    more = _receive_one_nonblock(path, "open")
    outcome = "nothing" if got is None else ("whole" if got == msg else "prefix")
    if got is not None:
        fails.append("killed writer: %d bytes of its unfinished message were committed "
                     "(%d written; a killed writer must leave nothing)" % (len(got), acked))
    if more is not None:
        fails.append("killed writer: a second message: %r" % more[:64])
    return {"fails": fails, "outcome": outcome, "written": acked,
            "committed": len(got or b""), "redelivered": redelivered}


def c_probe(mnt, cycle):
    """The daemon still answers (and, in full mode, commits): one message
    through mbox/probe. Earlier probes may come back after a kill."""
    path = os.path.join(mnt, "mbox", "probe")
    msg = make_msg("probex%d" % cycle, 1, 100)
    _send(path, msg, "open")
    while True:
        got = _receive_one_nonblock(path, "open")
        if got is None or got == msg:
            return got == msg
        prod, _, status = parse_msg(got)
        if status != "ok" or not prod.startswith("probex"):
            return False


def c_queued(mnt):
    res = {}
    for kind, name in (("mbox", "w"), ("mbox", "o"), ("mbox", "dro"), ("mbox", "drw"),
                       ("mbox", "kw")):
        res[name] = int(os.getxattr(os.path.join(mnt, kind, name), "user.ipcfs.messages"))
    res["f"] = os.stat(os.path.join(mnt, "fifo", "f")).st_size
    return res


# --------------------------------------------------------------------------
# The driver.


class Config:
    def __init__(self, quick=True, seed=None, kills=None, duration=None, keep=False,
                 verbose=False, out=None):
        self.quick = quick
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
        self.kills = kills if kills is not None else (5 if quick else 300)
        self.duration = duration
        self.keep = keep
        self.verbose = verbose
        self.out = out or sys.stdout
        # seconds of load before the kill (drawn per cycle)
        self.delay = (0.3, 1.0) if quick else (0.05, 1.5)
        self.pace = 0.002


class Result:
    def __init__(self):
        self.kills = 0
        self.checked = 0
        self.lost = 0
        self.dups = 0
        self.corrupt = 0
        self.unknown = 0
        self.order = 0
        self.bad_dups = 0
        self.window_lost = 0
        self.window_acked = 0
        self.window_age = 0.0  # the oldest of those lost within the window (seconds)
        self.received = 0
        self.region_checks = 0
        self.region_bad = 0
        self.killed_writer = {}
        self.scenario_dups = 0
        self.checkpoint_kills = 0  # kills that came as the main database file was written
        self.failures = []   # other failed checks (hangs, errors, scenarios)
        self.details = []    # first examples of each problem
        self.workdir = None

    def ok(self):
        return not (self.lost or self.corrupt or self.unknown or self.order or
                    self.bad_dups or self.region_bad or self.failures)

    def summary(self):
        kw = ", ".join("%s %d" % kv for kv in sorted(self.killed_writer.items()))
        return ("torture: kills survived %d, messages checked %d, lost %d, duplicated %d, "
                "corrupt %d; kills inside a checkpoint %d, unknown %d, out of order %d, duplicated in one life %d; "
                "normal mode: lost within window+margin %d of %d recent (oldest %.0f ms before "
                "the kill); region checks %d "
                "(bad pages %d); killed open-framing writers: %s; scenario messages "
                "redelivered %d; other failures %d" % (
                    self.kills, self.checked, self.lost, self.dups, self.corrupt,
                    self.checkpoint_kills, self.unknown, self.order, self.bad_dups, self.window_lost,
                    self.window_acked, self.window_age * 1000, self.region_checks,
                    self.region_bad, kw or "none", self.scenario_dups, len(self.failures)))

    def report(self):
        lines = list(self.failures)
        lines += self.details[:40]
        if len(self.details) > 40:
            lines.append("... %d more" % (len(self.details) - 40))
        return "\n".join(lines)


def _lines(path):
    try:
        with open(path) as f:
            return [ln.split() for ln in f.read().splitlines() if ln.strip()]
    except FileNotFoundError:
        return []


class Torture:
    def __init__(self, cfg):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.res = Result()
        self.dir = tempfile.mkdtemp(prefix="ipcfs-torture-")
        self.res.workdir = self.dir
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs)
        self.m = harness.Mount(db=os.path.join(self.dir, "ipcfs.db"), workdir=self.dir)
        self.rsize = self.rng.choice((100, 1000, 4096))
        self.cycles = []      # per cycle: {"mode", "kill": monotonic time}
        self.producers = []   # (object, name, cycle, logpath)
        self.consumers = {"w": [], "o": [], "f": []}  # (life, logpath)
        # per region: page (str) -> newest version fsync acknowledged / versions written
        self.region_acked = {name: {} for name in REGIONS}
        self.region_attempted = {name: {} for name in REGIONS}
        self.cycle_logs = []        # the logs of this cycle's workers
        self.workers = []
        self.t0 = mono()

    def say(self, msg):
        if self.cfg.verbose:
            print("%6.2fs %s" % (mono() - self.t0, msg), file=self.cfg.out, flush=True)

    def fail(self, msg):
        self.res.failures.append(msg)
        self.say("FAIL: " + msg)

    def daemon_log(self):
        try:
            return self.m.stderr()[-3000:]
        except OSError:
            return ""

    def child(self, name, fn, *args, timeout=30):
        c = Child(name, fn, *args)
        try:
            return c.wait(timeout * SLOW)
        except Hang:
            c.kill()
            raise

    # --- region bookkeeping

    def region_note(self, name, path):
        """Adds a finished region writer's log to what the checks expect."""
        acked, attempted = self.region_acked[name], self.region_attempted[name]
        for f in _lines(path):
            if f[0] == "a":
                attempted.setdefault(f[1], set()).add(int(f[2]))
            elif f[0] == "k":
                acked[f[1]] = max(acked.get(f[1], 0), int(f[2]))

    def check_region(self, when):
        for name in REGIONS:
            r = self.child("region check", c_region_check, self.m.path("shm", name),
                           self.region_acked[name], self.region_attempted[name])
            self.res.region_checks += 1
            if r["bad"]:
                self.res.region_bad += len(r["bad"])
                for b in r["bad"]:
                    self.res.details.append("shm/%s after %s: %s" % (name, when, b))

    # --- one cycle

    def start(self, mode, what):
        try:
            self.m.start(extra=["--sync", mode])
        except AssertionError as e:
            last = self.cycles[-2] if what != "final" and len(self.cycles) > 1 else \
                self.cycles[-1] if self.cycles else {}
            self.fail("the daemon did not start (%s) after a kill%s: %s\n%s" % (
                what, " inside a checkpoint" if last.get("checkpoint") else "", e,
                self.sqlite_opinion()))
            return False
        return True

    def sqlite_opinion(self):
        """What SQLite itself says of a copy of the database: with its WAL
        (as any normal open sees it) and of the main file alone."""
        import sqlite3
        tmp = tempfile.mkdtemp(prefix="ipcfs-torture-db-")
        out = []
        try:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.m.db + suffix):
                    shutil.copy(self.m.db + suffix, os.path.join(tmp, "db" + suffix))
            for label, uri in (("with its WAL", "file:%s/db?mode=ro" % tmp),
                               ("main file alone (immutable=1)",
                                "file:%s/db?immutable=1" % tmp)):
                try:
                    c = sqlite3.connect(uri, uri=True)
                    try:
                        r = c.execute("PRAGMA integrity_check").fetchall()
                        n = c.execute("SELECT count(*) FROM messages").fetchone()[0]
                        out.append("sqlite3 %s: integrity_check %s, %d message rows" % (
                            label, r[0][0] if len(r) == 1 else r[:3], n))
                    finally:
                        c.close()
                except sqlite3.Error as e:
                    out.append("sqlite3 %s: %s" % (label, e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return "\n".join(out)

    def spawn(self, name, fn, *args):
        self.workers.append(Child(name, fn, *args))

    def cycle(self, k):
        cfg, rng = self.cfg, self.rng
        mode = "normal" if (k % 3 == 2 or rng.random() < 0.15) else "full"
        if k == 0:
            mode = "full"
        info = {"mode": mode, "kill": None}
        self.cycles.append(info)
        if not self.start(mode, "cycle %d" % k):
            return False
        if k == 0:
            self.child("setup", c_setup, self.m.mnt)
        else:
            self.check_region("kill %d" % k)
        immediate = k > 0 and rng.random() < 0.08
        if cfg.quick:
            load = QUICK_LOADS[k % len(QUICK_LOADS)]
        else:
            x = rng.random()
            load = ("both" if x < 0.6 else "producers" if x < 0.75 else
                    "bulk" if x < 0.87 else "consumers")
        if not immediate:
            self.launch(k, mode, load)
        t_load = mono()
        if not immediate and (cfg.quick or rng.random() < 0.5):
            self.scenarios(k)
        delay = 0 if immediate else rng.uniform(*cfg.delay)
        if mode == "normal" and not immediate:
            # Long enough for some acknowledgements to be older than the margin.
            delay += WINDOW + MARGIN + 0.2
        while mono() < t_load + delay:
            if self.m.proc.poll() is not None:
                break
            time.sleep(min(0.02, max(0, t_load + delay - mono())))
        if self.m.proc.poll() is not None:
            self.fail("the daemon died by itself in cycle %d (status %s):\n%s" %
                      (k, self.m.proc.returncode, self.daemon_log()))
        else:
            self.probe(k)
        if load == "bulk" and not immediate:
            info["checkpoint"] = self.await_checkpoint(2.0 * SLOW)
            self.res.checkpoint_kills += info["checkpoint"]
        info["kill"] = mono()
        self.m.kill()
        self.res.kills += 1
        try:
            self.m.check_stderr()
        except AssertionError as e:
            self.fail("cycle %d: %s" % (k, e))
        self.reap_workers(k, info["kill"])
        self.say("cycle %d (%s): %.2fs of %s%s, %s" % (
            k, mode, delay, "nothing" if immediate else load,
            {True: ", killed in a checkpoint", False: ", no checkpoint seen"}.get(
                info.get("checkpoint"), ""), self.cycle_counts(k)))
        return True

    def launch(self, k, mode, load):
        cfg, rng = self.cfg, self.rng
        mnt = self.m.mnt

        def cons(obj, fn, *args):
            if load in ("producers", "bulk"):
                return
            lp = os.path.join(self.logs, "cons-%s-%d.log" % (obj, k))
            self.consumers[obj].append((k, lp))
            self.cycle_logs.append(lp)
            self.spawn("consumer %s/%d" % (obj, k), fn, *(args[:1] + (lp,) + args[1:]))

        cons("w", w_cons_write, os.path.join(mnt, "mbox", "w"))
        cons("o", w_cons_open, os.path.join(mnt, "mbox", "o"))
        cons("f", w_cons_fifo, os.path.join(mnt, "fifo", "f"), self.rsize, rng.random())
        for obj, fn, n, rel in (("w", w_prod_write, NPROD_W, ("mbox", "w")),
                                ("o", w_prod_open, NPROD_O, ("mbox", "o")),
                                ("f", w_prod_fifo, NPROD_F, ("fifo", "f"))):
            for i in range(n if load != "consumers" else 0):
                name = "%s%dx%d" % (obj, k, i)
                lp = os.path.join(self.logs, "prod-%s.log" % name)
                self.producers.append((obj, name, k, lp))
                self.cycle_logs.append(lp)
                args = [os.path.join(mnt, *rel), lp, name, rng.random(), cfg.pace]
                if obj == "f":
                    args.append(self.rsize)
                self.spawn("producer " + name, fn, *args)
        if load == "bulk":
            name = "w%dx9" % k
            lp = os.path.join(self.logs, "prod-%s.log" % name)
            self.producers.append(("w", name, k, lp))
            self.cycle_logs.append(lp)
            self.spawn("producer " + name, w_prod_write, os.path.join(mnt, "mbox", "w"), lp,
                       name, rng.random(), 0, True)
        for name, use_mmap in REGIONS.items():
            lp = os.path.join(self.logs, "region-%s-%d.log" % (name, k))
            self.cycle_logs.append(lp)
            self.spawn("region writer %s/%d" % (name, k), w_region, self.m.path("shm", name),
                       lp, k + 1, rng.random(), cfg.pace * 5, use_mmap)

    def await_checkpoint(self, timeout):
        """Returns as soon as the main database file is written to, which in
        WAL mode happens only in a checkpoint (so that the kill that follows
        lands inside it), or after timeout. True if a write was seen."""
        def sig():
            try:
                st = os.stat(self.m.db)
                return st.st_mtime_ns, st.st_size
            except OSError:
                return None
        before = sig()
        end = mono() + timeout
        while mono() < end:
            if sig() != before:
                return True
        return False

    def probe(self, k):
        try:
            if not self.child("probe", c_probe, self.m.mnt, k, timeout=15):
                self.fail("cycle %d: the probe message did not come back" % k)
        except Hang:
            self.fail("cycle %d: the daemon hangs: a probe message (one open, write, close "
                      "and read) took more than %.0fs; threads: %s\ndaemon log:\n%s" % (
                          k, 15 * SLOW, self.daemon_threads(), self.daemon_log()))
        except ChildError as e:
            self.fail("cycle %d: probe: %s" % (k, e))

    def daemon_threads(self):
        """Where the daemon's threads wait (for a hang report)."""
        out = []
        try:
            tdir = "/proc/%d/task" % self.m.proc.pid
            for t in sorted(os.listdir(tdir)):
                with open(os.path.join(tdir, t, "wchan")) as f:
                    wchan = f.read()
                with open(os.path.join(tdir, t, "comm")) as f:
                    comm = f.read().strip()
                out.append("%s %s %s" % (t, comm, wchan))
        except OSError:
            pass
        return ", ".join(out)

    def scenarios(self, k):
        try:
            r = self.child("dying readers", c_dying_readers, self.m.mnt, k,
                           self.rng.random(), 10 * SLOW)
            for f in r["fails"]:
                self.fail("cycle %d: dying reader: %s" % (k, f))
            self.res.scenario_dups += r["redelivered"]
            r = self.child("killed writer", c_killed_writer, self.m.mnt, k,
                           self.rng.random(), 10 * SLOW)
            for f in r["fails"]:
                self.fail("cycle %d: %s" % (k, f))
            self.res.scenario_dups += r["redelivered"]
            kw = self.res.killed_writer
            kw[r["outcome"]] = kw.get(r["outcome"], 0) + 1
        except (Hang, ChildError) as e:
            self.fail("cycle %d: scenario: %s\ndaemon log:\n%s" % (k, e, self.daemon_log()))

    def reap_workers(self, k, kill_ts):
        end = mono() + 15 * SLOW
        for c in self.workers:
            while c.alive() and mono() < end:
                time.sleep(0.005)
            if c.alive():
                self.fail("cycle %d: %s hangs after the daemon was killed" % (k, c.name))
            c.kill()
            try:
                c.wait(1)
            except ChildError as e:
                self.fail("cycle %d: %s" % (k, e))
            except Hang:
                pass
        self.workers = []
        # An error seen while the daemon was alive is a failure of its own.
        for path in self.cycle_logs:
            if os.path.basename(path).startswith("region-"):
                self.region_note(os.path.basename(path).split("-")[1], path)
            for f in _lines(path):
                if f[0] == "e" and float(f[2]) < kill_ts:
                    self.fail("cycle %d: %s: error %s (%s) %.3fs before the kill" % (
                        k, os.path.basename(path), f[1], " ".join(f[3:]),
                        kill_ts - float(f[2])))
                elif f[0] in ("s", "z"):
                    self.fail("cycle %d: %s: unexpected %s" % (
                        k, os.path.basename(path), "short write" if f[0] == "s"
                        else "end of stream"))
        self.cycle_logs = []

    def cycle_counts(self, k):
        acks = {}
        for obj, name, kk, lp in self.producers:
            if kk == k:
                acks[obj] = acks.get(obj, 0) + sum(1 for f in _lines(lp) if f[0] == "k")
        return "acked " + " ".join("%s=%d" % kv for kv in sorted(acks.items()))

    # --- the end: drain, then check everything

    def drain(self):
        n = len(self.cycles)
        if not self.start("full", "final"):
            return False
        mnt = self.m.mnt
        drained = True
        try:
            self.check_region("the last kill")
            for obj, fn, args in (
                    ("w", w_cons_write, (os.path.join(mnt, "mbox", "w"),)),
                    ("o", w_cons_open, (os.path.join(mnt, "mbox", "o"),)),
                    ("f", w_cons_fifo, (os.path.join(mnt, "fifo", "f"), self.rsize, 0))):
                lp = os.path.join(self.logs, "cons-%s-drain.log" % obj)
                self.consumers[obj].append((n, lp))
                self.child("drain " + obj, fn, *(args[:1] + (lp,) + args[1:] + (True,)),
                           timeout=120)
                for f in _lines(lp):
                    if f[0] == "e":
                        self.fail("drain %s: error %s" % (obj, " ".join(f[1:])))
            left = self.child("queued", c_queued, mnt)
            for name, v in left.items():
                if v:
                    self.fail("after the drain %s still holds %d %s" % (
                        name, v, "bytes" if name == "f" else "messages"))
        except (Hang, ChildError) as e:
            self.fail("drain: %s\ndaemon log:\n%s" % (e, self.daemon_log()))
            drained = False
        self.say("drained")
        try:
            self.m.stop()
        except AssertionError as e:
            self.fail("clean stop after the drain: %s" % e)
        self.say("stopped")
        return drained

    def analyse(self):
        res = self.res
        for obj in ("w", "o", "f"):
            prods = {}
            for o, name, k, lp in self.producers:
                if o != obj:
                    continue
                att, ack = {}, {}
                for f in _lines(lp):
                    if f[0] == "a":
                        att[int(f[1])] = int(f[2])
                    elif f[0] == "k":
                        ack[int(f[1])] = float(f[2])
                prods[name] = (k, att, ack)
            first = {}       # (prod, seq) -> life of the first receipt
            last_first = {}  # prod -> seq of its latest first receipt
            for life, lp in self.consumers[obj]:
                for f in _lines(lp):
                    if f[0] == "t":
                        res.corrupt += 1
                        res.details.append("%s: a torn record at the end of %s: %s" % (
                            obj, os.path.basename(lp), " ".join(f[1:])))
                        continue
                    if f[0] == "i" and f[2] not in ("ok", "partial"):
                        res.corrupt += 1
                        res.details.append("%s: an incomplete message that was not a "
                                           "prefix of one: %s" % (obj, " ".join(f)))
                        continue
                    if f[0] != "r":
                        continue
                    res.received += 1
                    prod, seq, status = f[1], f[2], f[3]
                    if status != "ok":
                        res.corrupt += 1
                        res.details.append("%s: %s message in %s: %s" % (
                            obj, status, os.path.basename(lp), " ".join(f[1:])))
                        continue
                    seq = int(seq)
                    if prod not in prods or seq not in prods[prod][1]:
                        res.unknown += 1
                        res.details.append("%s: unknown message %s-%d (never written) in %s"
                                           % (obj, prod, seq, os.path.basename(lp)))
                        continue
                    key = (prod, seq)
                    if key in first:
                        res.dups += 1
                        if first[key] == life:
                            res.bad_dups += 1
                            res.details.append("%s: %s-%d received twice in one daemon life"
                                               " (%s)" % (obj, prod, seq,
                                                          os.path.basename(lp)))
                        continue
                    first[key] = life
                    if seq <= last_first.get(prod, 0):
                        res.order += 1
                        res.details.append("%s: %s-%d first received after %s-%d" % (
                            obj, prod, seq, prod, last_first[prod]))
                    last_first[prod] = max(seq, last_first.get(prod, 0))
            for name, (k, att, ack) in sorted(prods.items()):
                info = self.cycles[k]
                for seq, ts in sorted(ack.items()):
                    got = (name, seq) in first
                    if info["mode"] == "full" or ts < info["kill"] - WINDOW - MARGIN:
                        res.checked += 1
                        if not got:
                            res.lost += 1
                            res.details.append(
                                "%s: LOST %s-%d (cycle %d, %s mode, acknowledged %.3fs "
                                "before the kill)" % (obj, name, seq, k, info["mode"],
                                                      info["kill"] - ts))
                    else:
                        res.window_acked += 1
                        if not got:
                            res.window_lost += 1
                            res.window_age = max(res.window_age, info["kill"] - ts)

    def run(self):
        cfg = self.cfg
        print("torture: seed %d, %s mode, %d kills%s, FIFO records of %d bytes, dir %s" % (
            cfg.seed, "quick" if cfg.quick else "long", cfg.kills,
            " or %ds" % cfg.duration if cfg.duration else "", self.rsize, self.dir),
            file=cfg.out, flush=True)
        ok = True
        try:
            for k in range(cfg.kills):
                if cfg.duration and mono() - self.t0 > cfg.duration:
                    break
                try:
                    if not self.cycle(k):
                        ok = False
                        break
                except (Hang, ChildError) as e:
                    self.fail("cycle %d: %s\ndaemon log:\n%s" % (k, e, self.daemon_log()))
                    ok = False
                    break
                if not cfg.verbose and k % 25 == 24:
                    print("torture: %d kills, %.0fs" % (k + 1, mono() - self.t0),
                          file=cfg.out, flush=True)
            if ok and self.drain():
                self.analyse()
            else:
                self.fail("the run stopped early: the messages were not checked")
        finally:
            kill_all_children()
            self.workers = []
            keep = cfg.keep and not self.res.ok()
            if self.m.proc is not None:
                if keep:
                    self.m.kill()
                else:
                    self.m.cleanup()
            if keep:
                # (the mount is gone; the database, daemon logs and worker logs stay)
                print("torture: kept %s" % self.dir, file=cfg.out, flush=True)
            else:
                self.m.cleanup()
                shutil.rmtree(self.dir, ignore_errors=True)
        self.res.elapsed = mono() - self.t0
        return self.res


def run(cfg):
    return Torture(cfg).run()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a handful of kills (the default)")
    g.add_argument("--long", action="store_true", help="hundreds of kills")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--kills", type=int)
    ap.add_argument("--duration", type=float, help="stop starting cycles after S seconds")
    ap.add_argument("--keep", action="store_true",
                    help="keep the directory (database, logs) when a check fails")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    cfg = Config(quick=not a.long, seed=a.seed, kills=a.kills, duration=a.duration,
                 keep=a.keep, verbose=a.verbose)

    def on_term(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    res = run(cfg)
    if not res.ok():
        print(res.report())
        print("torture: FAILED (seed %d)" % cfg.seed)
    print("torture: %.0fs" % res.elapsed)
    print(res.summary(), flush=True)
    return 0 if res.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
