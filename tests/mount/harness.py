"""harness.py - mount ipcfs for real, drive it, unmount it, check its stderr.

Every mount test uses Mount: it starts the daemon in the foreground (-f),
waits for the mount, and on stop() unmounts with fusermount3 -u, waits for
the daemon to exit with status 0, and fails if its stderr shows a sanitizer
report or a crash. Tests never sleep to wait for the daemon; they poll.
"""
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("IPCFS_BIN") or os.path.join(ROOT, "build", "gcc", "ipcfs"))
BAD_STDERR = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
              "LeakSanitizer", "ThreadSanitizer", "Segmentation fault", "double free",
              "fuse: writing device")
# Under sanitizers everything is slower; waits scale with this.
SLOW = float(os.environ.get("IPCFS_TEST_SLOW", "1"))
# A command the daemon runs under (e.g. valgrind ...); its exit status counts.
WRAPPER = shlex.split(os.environ.get("IPCFS_DAEMON_WRAPPER", ""))


def wait_until(pred, timeout=10.0, step=0.01, what="condition"):
    end = time.monotonic() + timeout * SLOW
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


class Mount:
    """One ipcfs daemon on a fresh mount point."""

    def __init__(self, db=None, memory=False, args=(), workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="ipcfs-test-")
        self.mnt = os.path.join(self.workdir, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.db = db if db is not None else (None if memory else os.path.join(self.workdir, "ipcfs.db"))
        self.memory = memory
        self.args = list(args)
        self.proc = None
        self.logpath = None
        self.runs = 0

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def start(self, extra=(), expect_fail=False):
        self.runs += 1
        self.logpath = os.path.join(self.workdir, "daemon-%d.log" % self.runs)
        cmd = WRAPPER + [BIN, "-f"]
        cmd += ["--memory"] if self.memory else ["--db", self.db]
        cmd += self.args + list(extra) + [self.mnt]
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if expect_fail:
            rc = self.proc.wait(timeout=30 * SLOW)
            self.log.close()
            return rc, self.stderr()
        wait_until(lambda: os.path.ismount(self.mnt) or self.proc.poll() is not None,
                   timeout=30, what="the mount")
        if self.proc.poll() is not None:
            raise AssertionError("ipcfs exited with %s: %s" % (self.proc.returncode, self.stderr()))
        # The mount is visible before INIT is answered; one stat waits for it.
        os.stat(self.mnt)
        return self

    def stderr(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def check_stderr(self):
        text = self.stderr()
        for bad in BAD_STDERR:
            if bad in text:
                raise AssertionError("daemon stderr shows %r:\n%s" % (bad, text[-4000:]))

    def stop(self, timeout=30):
        """Clean unmount; the daemon must exit 0 with a clean stderr."""
        if self.proc is None:
            return
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("ipcfs did not exit after unmount:\n" + self.stderr())
        finally:
            self.log.close()
            self.proc = None
        self.check_stderr()
        if rc != 0:
            raise AssertionError("ipcfs exited with %d after unmount:\n%s" % (rc, self.stderr()))
        if r.returncode != 0:
            raise AssertionError("fusermount3 -u failed: " + r.stderr)

    def kill(self, sig=signal.SIGKILL):
        """Kills the daemon (crash simulation) and clears the dead mount."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30 * SLOW)
        self.log.close()
        self.proc = None
        subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        wait_until(lambda: not os.path.ismount(self.mnt), what="the dead mount to go")

    def cleanup(self):
        if self.proc is not None:
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
            try:
                self.proc.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class MountTest(unittest.TestCase):
    """A test case with one mount started per test (self.m)."""
    mount_args = ()
    memory = False

    def setUp(self):
        self.m = Mount(memory=self.memory, args=self.mount_args)
        self.addCleanup(self.m.cleanup)
        self.m.start()

    def tearDown(self):
        # Unmount inside the test so that a dirty exit fails it.
        if self.m.proc is not None:
            self.m.stop()

    def p(self, *parts):
        return self.m.path(*parts)

    def sh(self, script, timeout=20, check=True, **kw):
        r = subprocess.run(["bash", "-c", script], cwd=self.m.mnt, capture_output=True,
                           text=True, timeout=timeout * SLOW, **kw)
        if check and r.returncode != 0:
            self.fail("script failed (%d): %s\nstdout: %s\nstderr: %s" % (
                r.returncode, script, r.stdout, r.stderr))
        return r

    def bg(self, script, **kw):
        """A background shell in its own process group; killed at cleanup."""
        p = subprocess.Popen(["bash", "-c", script], cwd=self.m.mnt, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))
        return p

    def xattr(self, path, name):
        return os.getxattr(path, "user.ipcfs." + name).decode()

    def set_xattr(self, path, name, value):
        os.setxattr(path, "user.ipcfs." + name, str(value).encode())

    def blocked_readers(self, path, n):
        wait_until(lambda: self.xattr(path, "blocked_readers") == str(n),
                   what="%d blocked readers on %s" % (n, path))


def as_user(uid, gid=None):
    """subprocess kwargs running a command as another user."""
    return dict(user=uid, group=gid if gid is not None else uid, extra_groups=[])
