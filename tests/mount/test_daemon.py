"""test_daemon.py - the ipcfs daemon: options, background start, ending it, the
database lock and the database path."""
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest

import harness
from harness import BIN, SLOW, Mount, wait_until

NOBODY = 65534


def run_ipcfs(args, timeout=20, **kw):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          timeout=timeout * SLOW, **kw)


def send_messages(m, name, msgs):
    """One open-framing message per open/close."""
    for msg in msgs:
        with open(m.path("mbox", name), "w") as f:
            f.write(msg)


def receive_all(test, m, name, msgs):
    """The mailbox holds exactly msgs, in order."""
    test.assertEqual(os.getxattr(m.path("mbox", name), "user.ipcfs.messages").decode(),
                     str(len(msgs)))
    got = []
    for _ in msgs:
        with open(m.path("mbox", name)) as f:
            got.append(f.read())
    test.assertEqual(got, list(msgs))
    test.assertEqual(os.getxattr(m.path("mbox", name), "user.ipcfs.messages").decode(), "0")


def daemon_pids(token):
    """Pids of live ipcfs processes with an argument that contains token (a
    unique path: the mount point, or the database)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if argv and os.path.basename(argv[0]) == b"ipcfs" and \
                any(os.fsencode(token) in a for a in argv[1:]):
            pids.append(int(d))
    return pids


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class TestOptions(unittest.TestCase):
    def setUp(self):
        self.wd = tempfile.mkdtemp(prefix="ipcfs-test-opt-")
        self.mnt = os.path.join(self.wd, "mnt")
        self.mnt2 = os.path.join(self.wd, "mnt2")
        os.mkdir(self.mnt)
        os.mkdir(self.mnt2)
        self.addCleanup(self.cleanup)

    def cleanup(self):
        # A daemon that wrongly accepted its options mounted in the background.
        for mnt in (self.mnt, self.mnt2):
            if os.path.ismount(mnt):
                pids = daemon_pids(mnt)
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
                for pid in pids:
                    try:
                        wait_until(lambda: not alive(pid), timeout=10, what="daemon exit")
                    except AssertionError:
                        os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.wd, ignore_errors=True)

    def test_help(self):
        for opt in ("--help", "-h"):
            r = run_ipcfs([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith("Usage: ipcfs"), r.stdout)
            for word in ("MOUNTPOINT", "--db", "--memory", "--sync", "fusermount3 -u"):
                self.assertIn(word, r.stdout)
            self.assertEqual(r.stderr, "")

    def test_version(self):
        for opt in ("--version", "-V"):
            r = run_ipcfs([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^ipcfs \d+\.\d+(\.\d+)?\S*\n$")

    def check_usage_error(self, args, *words):
        r = run_ipcfs(["--memory"] + args)
        self.assertEqual(r.returncode, 2, "%s: rc %d, stderr %r" % (args, r.returncode, r.stderr))
        self.assertIn("ipcfs --help", r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertFalse(os.path.ismount(self.mnt))
        self.assertFalse(os.path.ismount(self.mnt2))
        return r

    def test_unknown_option(self):
        self.check_usage_error(["--bogus", self.mnt], "--bogus")

    def test_bad_sync_mode(self):
        self.check_usage_error(["--sync", "maybe", self.mnt], "maybe")
        self.check_usage_error(["-o", "sync=maybe", self.mnt])

    def test_no_mountpoint(self):
        self.check_usage_error([], "mount point")

    def test_two_mountpoints(self):
        self.check_usage_error([self.mnt, self.mnt2], "too many")

    def test_bad_numbers(self):
        self.check_usage_error(["--threads", "0", self.mnt], "threads")
        self.check_usage_error(["--threads", "65", self.mnt], "threads")
        self.check_usage_error(["--max-memory", "lots", self.mnt], "lots")
        self.check_usage_error(["--max-objects", "-1", self.mnt], "-1")

    def test_missing_option_argument(self):
        # `ipcfs --db` is a known option without its argument, not an unknown one.
        r = self.check_usage_error(["--db"], "--db")
        self.assertNotIn("unknown option", r.stderr)

    def test_mountpoint_missing(self):
        r = run_ipcfs(["--memory", "-f", os.path.join(self.wd, "nonexistent")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nonexistent", r.stderr)
        self.assertIn("No such file", r.stderr)

    def test_db_is_a_directory(self):
        r = run_ipcfs(["-f", "--db", self.wd, self.mnt])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.wd, r.stderr)
        self.assertFalse(os.path.ismount(self.mnt))


class TestBackground(unittest.TestCase):
    """Without -f the command returns once the mount is ready."""

    def setUp(self):
        self.wd = tempfile.mkdtemp(prefix="ipcfs-test-bg-")
        self.mnt = os.path.join(self.wd, "mnt")
        os.mkdir(self.mnt)
        self.db = os.path.join(self.wd, "bg.db")
        self.addCleanup(self.cleanup)

    def cleanup(self):
        pids = daemon_pids(os.path.basename(self.wd))
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        for pid in pids:
            try:
                wait_until(lambda: not alive(pid), timeout=10, what="daemon exit")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.wd, ignore_errors=True)

    def unmount_and_wait(self, token=None):
        pids = daemon_pids(token or self.mnt)
        self.assertEqual(len(pids), 1, "one daemon process serves the mount: %s" % pids)
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: not alive(pids[0]), timeout=20, what="the daemon to exit")
        self.assertFalse(os.path.ismount(self.mnt))

    def test_returns_when_ready(self):
        # No sleep, no polling: the mount is usable when ipcfs returns.
        script = ('"$0" --db "$1" "$2" && echo hi > "$2/mbox/q" && echo second > "$2/mbox/q"'
                  ' && getfattr --only-values -n user.ipcfs.messages "$2/mbox/q"')
        r = subprocess.run(["bash", "-c", script, BIN, self.db, self.mnt], capture_output=True,
                           text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "2")
        self.assertTrue(os.path.ismount(self.mnt))
        self.unmount_and_wait()
        # What was written is in the database after the unmount.
        m = Mount(db=self.db)
        self.addCleanup(m.cleanup)
        m.start()
        receive_all(self, m, "q", ["hi\n", "second\n"])
        m.stop()

    def test_relative_paths(self):
        # The database and mount point are taken relative to the cwd of the
        # command, even though the daemon changes directory.
        rel = os.path.basename(self.wd) + ".db"  # unique: finds the daemon
        r = subprocess.run(["bash", "-c", '"$0" --db "$1" mnt && echo rel > mnt/mbox/q', BIN, rel],
                           cwd=self.wd, capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.ismount(self.mnt))
        self.assertTrue(os.path.isfile(os.path.join(self.wd, rel)))
        self.assertFalse(os.path.exists("/" + rel))
        self.unmount_and_wait(rel)
        m = Mount(db=os.path.join(self.wd, rel), workdir=self.wd)
        m.start()
        receive_all(self, m, "q", ["rel\n"])
        m.stop()

    def test_startup_failure_reported(self):
        # A refused database fails the command itself, with the reason.
        with open(self.db, "w") as f:
            f.write("not a database\n" * 50)
        r = run_ipcfs(["--db", self.db, self.mnt])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refusing", r.stderr)
        self.assertFalse(os.path.ismount(self.mnt))
        self.assertEqual(daemon_pids(self.mnt), [])


class TestEnding(unittest.TestCase):
    """Every way of ending the foreground daemon exits 0 and commits."""

    def end(self, how, args=()):
        m = Mount(args=args)
        self.addCleanup(m.cleanup)
        m.start()
        msgs = ["%s %d\n" % (how, i) for i in range(20)]
        send_messages(m, "q", msgs)
        with open(m.path("fifo", "f"), "w") as f:
            f.write("stream bytes")
        proc = m.proc
        if how == "fusermount3":
            r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        elif how == "umount":
            r = subprocess.run(["umount", m.mnt], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            proc.send_signal(how)
        try:
            rc = proc.wait(timeout=20 * SLOW)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            m.log.close()
            m.proc = None
        m.check_stderr()
        self.assertEqual(rc, 0, "exit status after %s:\n%s" % (how, m.stderr()))
        self.assertFalse(os.path.ismount(m.mnt), "the daemon left its mount behind")
        m.start()
        receive_all(self, m, "q", msgs)
        with open(m.path("fifo", "f")) as f:
            self.assertEqual(f.read(), "stream bytes")
        m.stop()

    def test_fusermount(self):
        self.end("fusermount3")

    def test_umount(self):
        self.end("umount")

    def test_sigterm(self):
        self.end(signal.SIGTERM)

    def test_sigint(self):
        self.end(signal.SIGINT)

    def test_sigterm_multithreaded(self):
        self.end(signal.SIGTERM, args=("--threads", "4"))

    def test_sigint_sync_full(self):
        self.end(signal.SIGINT, args=("--sync", "full"))

    def test_sigterm_with_blocked_reader(self):
        # A reader parked on an empty mailbox does not keep the daemon from
        # ending; it gets an error, and what was queued elsewhere is kept.
        m = Mount()
        self.addCleanup(m.cleanup)
        m.start()
        send_messages(m, "q", ["kept\n"])
        open(m.path("mbox", "empty"), "w").close()
        reader = subprocess.Popen(["cat", m.path("mbox", "empty")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)

        def stop_reader():
            if reader.poll() is None:
                reader.kill()
                reader.communicate(timeout=10 * SLOW)
        self.addCleanup(stop_reader)
        wait_until(lambda: os.getxattr(m.path("mbox", "empty"),
                                       "user.ipcfs.blocked_readers") == b"1",
                   what="the reader to block")
        proc = m.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20 * SLOW)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            m.log.close()
            m.proc = None
        m.check_stderr()
        self.assertEqual(rc, 0, m.stderr())
        out, err = reader.communicate(timeout=20 * SLOW)
        self.assertNotEqual(reader.returncode, 0)
        self.assertEqual(out, b"")
        if os.path.ismount(m.mnt):
            subprocess.run(["fusermount3", "-uz", m.mnt], capture_output=True)
        m.start()
        receive_all(self, m, "q", ["kept\n"])
        self.assertEqual(os.getxattr(m.path("mbox", "empty"), "user.ipcfs.messages"), b"0")
        m.stop()


class TestThreads(unittest.TestCase):
    def test_many_short_reads_multithreaded(self):
        # Open, read one message, close, many times, with several workers:
        # each RELEASE may run while the READ's handler is still finishing.
        m = Mount(args=("--threads", "4"))
        self.addCleanup(m.cleanup)
        m.start()
        msgs = ["r%d\n" % i for i in range(800)]
        send_messages(m, "q", msgs)
        receive_all(self, m, "q", msgs)
        self.assertIsNone(m.proc.poll(), "the daemon died")
        m.stop()


class TestDatabase(unittest.TestCase):
    def test_second_daemon_refused(self):
        m1 = Mount()
        self.addCleanup(m1.cleanup)
        m1.start()
        send_messages(m1, "q", ["before\n"])
        before = os.stat(m1.db)
        # Same path; and the same file through a symlink.
        link = os.path.join(m1.workdir, "link.db")
        os.symlink(m1.db, link)
        for db in (m1.db, link):
            m2 = Mount(db=db)
            self.addCleanup(m2.cleanup)
            rc, err = m2.start(expect_fail=True)
            self.assertNotEqual(rc, 0, err)
            self.assertIn("in use", err)
            self.assertFalse(os.path.ismount(m2.mnt))
        # In background mode too, the command fails with the reason.
        mnt3 = os.path.join(m1.workdir, "mnt3")
        os.mkdir(mnt3)
        r = run_ipcfs(["--db", m1.db, mnt3])
        if os.path.ismount(mnt3):
            subprocess.run(["fusermount3", "-uz", mnt3], capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("in use", r.stderr)
        # The first daemon works on, with its database untouched by the others.
        send_messages(m1, "q", ["after\n"])
        receive_all(self, m1, "q", ["before\n", "after\n"])
        send_messages(m1, "q", ["kept\n"])
        self.assertEqual(os.stat(m1.db).st_ino, before.st_ino)
        m1.stop()
        # Once the first has gone, the database is free again.
        m2 = Mount(db=m1.db)
        self.addCleanup(m2.cleanup)
        m2.start()
        receive_all(self, m2, "q", ["kept\n"])
        m2.stop()

    def test_memory_leaves_no_database(self):
        home = tempfile.mkdtemp(prefix="ipcfs-test-home-")
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        var_before = os.path.exists("/var/lib/ipcfs/ipcfs.db") and os.stat("/var/lib/ipcfs/ipcfs.db")
        env = dict(os.environ, HOME=home, XDG_STATE_HOME=os.path.join(home, "state"))
        old = os.environ.copy()
        os.environ.clear()
        os.environ.update(env)
        try:
            m = Mount(memory=True)
            self.addCleanup(m.cleanup)
            m.start()
        finally:
            os.environ.clear()
            os.environ.update(old)
        send_messages(m, "q", ["in memory\n"])
        receive_all(self, m, "q", ["in memory\n"])
        send_messages(m, "q", ["gone at exit\n"])
        m.stop()
        self.assertEqual(os.listdir(home), [])
        self.assertEqual(sorted(f for f in os.listdir(m.workdir) if not f.endswith(".log")),
                         ["mnt"])
        var_after = os.path.exists("/var/lib/ipcfs/ipcfs.db") and os.stat("/var/lib/ipcfs/ipcfs.db")
        if var_before:
            self.assertEqual((var_after.st_size, var_after.st_mtime_ns),
                             (var_before.st_size, var_before.st_mtime_ns))
        else:
            self.assertFalse(var_after)
        # Nothing survives a memory-only daemon.
        m.start()
        self.assertFalse(os.path.exists(m.path("mbox", "q")))
        m.stop()

    def test_relative_db_foreground(self):
        wd = tempfile.mkdtemp(prefix="ipcfs-test-rel-")
        self.addCleanup(shutil.rmtree, wd, ignore_errors=True)
        os.mkdir(os.path.join(wd, "mnt"))
        os.mkdir(os.path.join(wd, "sub"))
        mnt = os.path.join(wd, "mnt")
        log = open(os.path.join(wd, "log"), "w")
        self.addCleanup(log.close)
        p = subprocess.Popen([BIN, "-f", "--db", "sub/x.db", "mnt"], cwd=wd, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)

        def stop():
            if p.poll() is None:
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
                try:
                    p.wait(timeout=10 * SLOW)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)
        wait_until(lambda: os.path.ismount(mnt) or p.poll() is not None, what="the mount")
        self.assertIsNone(p.poll())
        os.stat(mnt)
        with open(os.path.join(mnt, "mbox", "q"), "w") as f:
            f.write("relative\n")
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        self.assertEqual(p.wait(timeout=20 * SLOW), 0)
        with open(os.path.join(wd, "sub", "x.db"), "rb") as f:
            self.assertEqual(f.read(16), b"SQLite format 3\0")
        m = Mount(db=os.path.join(wd, "sub", "x.db"))
        self.addCleanup(m.cleanup)
        m.start()
        receive_all(self, m, "q", ["relative\n"])
        m.stop()

    def run_as_nobody_without_db(self, env):
        """Starts ipcfs without --db as an unprivileged user. It may fail to
        mount (no access to /dev/fuse), but it opens its database first."""
        wd = tempfile.mkdtemp(prefix="ipcfs-test-xdg-")
        self.addCleanup(shutil.rmtree, wd, ignore_errors=True)
        os.chmod(wd, 0o755)
        mnt = os.path.join(wd, "mnt")
        os.mkdir(mnt)
        os.chown(mnt, NOBODY, NOBODY)
        env = {k: v.replace("@", wd) for k, v in env.items()}
        for k in ("HOME", "XDG_STATE_HOME"):
            if k in env:
                os.makedirs(env[k], exist_ok=True)
                os.chown(env[k], NOBODY, NOBODY)
        env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
        log = open(os.path.join(wd, "log"), "w")
        p = subprocess.Popen([BIN, "-f", mnt], cwd=wd, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **harness.as_user(NOBODY))
        try:
            wait_until(lambda: p.poll() is not None or os.path.ismount(mnt), timeout=20,
                       what="ipcfs to mount or fail")
        finally:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
            try:
                p.wait(timeout=20 * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        with open(os.path.join(wd, "log")) as f:
            return wd, p.returncode, f.read()

    def check_db_made(self, path):
        self.assertTrue(os.path.isfile(path), path)
        st = os.stat(path)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (NOBODY, 0o600))
        d = os.stat(os.path.dirname(path))
        self.assertEqual((d.st_uid, stat.S_IMODE(d.st_mode)), (NOBODY, 0o700))
        with open(path, "rb") as f:
            head = f.read(100)
        self.assertEqual(head[:16], b"SQLite format 3\0")
        self.assertEqual(head[68:72], b"IPCF")

    def test_default_db_xdg_state_home(self):
        wd, rc, log = self.run_as_nobody_without_db(
            {"HOME": "@/home", "XDG_STATE_HOME": "@/state"})
        self.check_db_made(os.path.join(wd, "state", "ipcfs", "ipcfs.db"))
        self.assertFalse(os.path.exists(os.path.join(wd, "home", ".local")))

    def test_default_db_home(self):
        wd, rc, log = self.run_as_nobody_without_db({"HOME": "@/home"})
        self.check_db_made(os.path.join(wd, "home", ".local", "state", "ipcfs", "ipcfs.db"))

    def test_no_default_db_path(self):
        wd, rc, log = self.run_as_nobody_without_db({})
        self.assertNotEqual(rc, 0)
        self.assertIn("--db", log)

    def test_default_db_root(self):
        if os.path.exists("/var/lib/ipcfs"):
            self.skipTest("/var/lib/ipcfs exists; not touching it")
        home = tempfile.mkdtemp(prefix="ipcfs-test-home-")
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        self.addCleanup(shutil.rmtree, "/var/lib/ipcfs", ignore_errors=True)
        wd = tempfile.mkdtemp(prefix="ipcfs-test-root-")
        self.addCleanup(shutil.rmtree, wd, ignore_errors=True)
        mnt = os.path.join(wd, "mnt")
        os.mkdir(mnt)
        env = dict(os.environ, HOME=home, XDG_STATE_HOME=os.path.join(home, "state"))
        log = open(os.path.join(wd, "log"), "w")
        self.addCleanup(log.close)
        p = subprocess.Popen([BIN, "-f", mnt], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)

        def stop():
            if p.poll() is None:
                subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
                try:
                    p.wait(timeout=10 * SLOW)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)
        wait_until(lambda: os.path.ismount(mnt) or p.poll() is not None, what="the mount")
        self.assertIsNone(p.poll())
        os.stat(mnt)
        with open(os.path.join(mnt, "mbox", "q"), "w") as f:
            f.write("root default\n")
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        self.assertEqual(p.wait(timeout=20 * SLOW), 0)
        self.assertEqual(os.listdir(home), [])
        st = os.stat("/var/lib/ipcfs")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        with open("/var/lib/ipcfs/ipcfs.db", "rb") as f:
            self.assertEqual(f.read(16), b"SQLite format 3\0")
