"""proctest.py - MountTest plus bookkeeping for child processes and descriptors.

Shared by test_sem.py, test_event.py and test_topic.py. Every process a test
starts (in its own session) is killed, and every descriptor it opens on the
mount is closed, before the mount is taken down: a process left blocked on
the mount would keep it busy.
"""
import os
import select
import signal
import subprocess
import sys
import threading

import harness
from harness import MountTest, wait_until

PY = sys.executable or "python3"

# A reader child with SIGINT at its default action (a shell's background job
# would ignore it): opens argv[1] read-only, says "open", blocks in one read,
# prints what it got.
READ_ONE = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stderr.write("open\n"); sys.stderr.flush()
sys.stdout.buffer.write(os.read(fd, 65536))
sys.stdout.flush()
"""


def group_alive(pgid):
    """Whether a process of group pgid is alive (zombies do not count)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class ProcTest(MountTest):
    def setUp(self):
        self._procs = []
        self._fds = []
        super().setUp()

    def tearDown(self):
        self.end_all()
        super().tearDown()

    def end_all(self):
        """Closes the test's descriptors and kills its children."""
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        for p in self._procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self._procs:
            try:
                p.wait(timeout=10 * harness.SLOW)
            except subprocess.TimeoutExpired:
                pass
            # background jobs of a killed shell die on their own time: wait
            # until the whole group is gone, or they keep the mount busy
            try:
                wait_until(lambda: not group_alive(p.pid), what="process group %d" % p.pid)
            except AssertionError:
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    try:
                        f.close()
                    except OSError:
                        pass
        self._procs = []

    # --- descriptors ---
    def open(self, path, flags):
        fd = os.open(path, flags)
        self._fds.append(fd)
        return fd

    def close(self, fd):
        self._fds.remove(fd)
        os.close(fd)

    def read_within(self, fd, n=65536, timeout=10):
        """One read(2) once fd is readable (poll), failing after timeout."""
        po = select.poll()
        po.register(fd, select.POLLIN)
        if not po.poll(timeout * 1000 * harness.SLOW):
            self.fail("fd %d not readable within %ss" % (fd, timeout))
        return os.read(fd, n)

    # --- processes ---
    def spawn(self, argv, text=False, stdin=None, env=None):
        p = subprocess.Popen(argv, cwd=self.m.mnt, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=stdin, start_new_session=True,
                             text=text, env=env)
        self._procs.append(p)
        return p

    def shbg(self, script):
        return self.spawn(["bash", "-c", script], text=True)

    def pybg(self, code, *args, stdin=None):
        return self.spawn([PY, "-c", code] + [str(a) for a in args], stdin=stdin)

    def py(self, code, *args, timeout=20):
        r = subprocess.run([PY, "-c", code] + [str(a) for a in args], cwd=self.m.mnt,
                           capture_output=True, timeout=timeout * harness.SLOW)
        if r.returncode != 0:
            self.fail("python child failed (%d): %s" % (r.returncode, r.stderr.decode()))
        return r.stdout

    def finish(self, p, timeout=10):
        """Waits for a child to end by itself; returns (rc, stdout, stderr)."""
        out, err = p.communicate(timeout=timeout * harness.SLOW)
        return p.returncode, out, err

    def alive(self, p):
        return p.poll() is None

    def expect_line(self, stream, want, timeout=10):
        """Reads one line from a child's pipe (in a thread, with a timeout)."""
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("l", stream.readline()), daemon=True)
        t.start()
        t.join(timeout * harness.SLOW)
        if t.is_alive():
            self.fail("no line %r from the child within %ss" % (want, timeout))
        line = box["l"]
        if isinstance(line, bytes):
            line = line.decode(errors="replace")
        self.assertEqual(line.rstrip("\n"), want)

    # --- xattrs ---
    def num(self, path, name):
        return int(self.xattr(path, name))

    def wait_num(self, path, name, n):
        wait_until(lambda: self.num(path, name) == n, what="%s == %d on %s" % (name, n, path))

    def blocked_writers(self, path, n):
        wait_until(lambda: self.xattr(path, "blocked_writers") == str(n),
                   what="%d blocked writers on %s" % (n, path))

    def sigint_blocked_reader(self, path):
        """Ctrl-C on a reader blocked on path: it dies at once, nobody stays
        blocked. Returns nothing; asserts as it goes."""
        p = self.pybg(READ_ONE, path)
        self.expect_line(p.stderr, "open")
        self.blocked_readers(path, 1)
        p.send_signal(signal.SIGINT)
        rc, out, err = self.finish(p, timeout=5)
        self.assertEqual(rc, -signal.SIGINT, err)
        self.assertEqual(out, b"")
        self.blocked_readers(path, 0)
