"""test_ipcctl.py - ipcctl against real mounts: every subcommand, its output and exit
codes; /.ipcfs/metrics moving with traffic; mounting with mount -t fuse.ipcfs, from an
fstab line, and by the commands of the systemd unit."""
import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import termios
import time
import unittest

import harness
from harness import BIN, ROOT, SLOW, wait_until

IPCCTL = os.path.join(os.path.dirname(BIN), "tools", "ipcctl")
UNIT = os.path.join(os.path.dirname(BIN), "systemd", "ipcfs.service")
NOBODY = 65534
OK, ERR, USAGE, NOTFOUND, PERM, TIMEOUT = 0, 1, 2, 3, 4, 5


def daemon_pids(mnt):
    """Pids of live ipcfs processes whose command line names mnt."""
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
        if state != "Z" and argv and os.path.basename(argv[0]) == b"ipcfs" and \
                os.fsencode(mnt) in argv:
            pids.append(int(d))
    return pids


def mounted(mnt):
    """Whether mnt is a mount point, also a dead FUSE mount (which
    os.path.ismount cannot stat)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def reap_daemons(mnt):
    """Ends daemons a failed test left on mnt (ours: started for that mount
    point); returns how many there were."""
    pids = daemon_pids(mnt)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        wait_until(lambda: not daemon_pids(mnt), timeout=10, what="the daemon to exit")
    except AssertionError:
        for pid in daemon_pids(mnt):
            os.kill(pid, signal.SIGKILL)
    if mounted(mnt):
        subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
    return len(pids)


def parse_metrics(test, text):
    """Prometheus text -> {name{labels}: value}; checks the format as it goes."""
    vals, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (ipcfs_\w+) (.+)$", line)
            test.assertTrue(m, "bad comment line %r" % line)
            if m.group(1) == "TYPE":
                test.assertIn(m.group(3), ("counter", "gauge", "summary", "histogram"))
                typed.add(m.group(2))
            continue
        m = re.match(r'^(ipcfs_\w+)(\{\w+="[^"]*"(,\w+="[^"]*")*\})? (-?[0-9.]+(e[+-]?\d+)?)$', line)
        test.assertTrue(m, "bad sample line %r" % line)
        base = re.sub(r"_(sum|count)$", "", m.group(1))
        test.assertTrue(m.group(1) in typed or base in typed, "no TYPE for %r" % line)
        vals[m.group(1) + (m.group(2) or "")] = float(m.group(4))
    return vals


class CtlTest(harness.MountTest):
    """A memory mount with allow_other (so another uid can be tried)."""
    memory = True
    mount_args = ("-o", "allow_other")

    def setUp(self):
        self.assertTrue(os.access(IPCCTL, os.X_OK), "ipcctl not built: " + IPCCTL)
        super().setUp()
        os.chmod(self.m.workdir, 0o755)  # other users reach the mount through it
        self.procs = []
        old = os.umask(0o022)  # modes below assume it; ipcctl inherits it
        self.addCleanup(os.umask, old)

    def tearDown(self):
        # Background commands end before the unmount (else it would be busy).
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        super().tearDown()

    def ctl(self, *args, input=None, user=None, cwd=None, timeout=20, text=True):
        kw = harness.as_user(user) if user is not None else {}
        exe = IPCCTL
        if user is not None:
            # A copy where any user can run it.
            exe = os.path.join(self.m.workdir, "ipcctl")
            if not os.path.exists(exe):
                shutil.copy(IPCCTL, exe)
                os.chmod(exe, 0o755)
        if input is not None and text and isinstance(input, bytes):
            text = False
        return subprocess.run([exe] + [str(a) for a in args], input=input, capture_output=True,
                              text=text, cwd=cwd or self.m.mnt, timeout=timeout * SLOW, **kw)

    def ctl_bg(self, *args, **kw):
        p = subprocess.Popen([IPCCTL] + [str(a) for a in args], cwd=self.m.mnt,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        self.procs.append(p)
        return p

    def done(self, p, timeout=20):
        out, err = p.communicate(timeout=timeout * SLOW)
        return p.returncode, out, err

    def rc(self, r, code, *in_stderr):
        if isinstance(r.stderr, bytes):
            r.stderr = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, code, "rc %d, wanted %d\nstdout: %s\nstderr: %s" % (
            r.returncode, code, r.stdout, r.stderr))
        for s in in_stderr:
            self.assertIn(s, r.stderr)
        if code != OK:
            self.assertTrue(r.stderr.startswith("ipcctl"), r.stderr)
        return r

    def ok(self, *args, **kw):
        return self.rc(self.ctl(*args, **kw), OK)

    def put(self, path, *msgs):
        """One open-framing message per open/close."""
        for m in msgs:
            with open(self.p(path), "w") as f:
                f.write(m)


class TestHelpAndUsage(CtlTest):
    COMMANDS = ("create", "ls", "stat", "set", "send", "recv", "wait", "drain", "top", "help")

    def test_help(self):
        r = self.ok("--help")
        self.assertTrue(r.stdout.startswith("Usage: ipcctl COMMAND"), r.stdout)
        for c in self.COMMANDS:
            self.assertRegex(r.stdout, r"\n  %s " % c)
        for word in ("3 not found", "4 permission", "5 timeout"):
            self.assertIn(word, r.stdout.replace("\n", " "))
        for c in self.COMMANDS:
            r = self.ok(c, "--help")
            self.assertTrue(r.stdout.startswith("Usage: ipcctl %s" % c), r.stdout)
            self.assertEqual(r.stderr, "")
            self.assertEqual(self.ok("help", c).stdout, r.stdout)
        self.assertIn("--max-messages", self.ok("create", "--help").stdout)
        self.assertIn("--timeout", self.ok("recv", "-h").stdout)
        self.assertRegex(self.ok("--version").stdout, r"^ipcctl \d+\.\d+")

    def test_usage_errors(self):
        self.plain = os.path.join(self.m.workdir, "plain")  # a file outside the mount
        open(self.plain, "w").close()
        self.put("mbox/q", "x")
        open(self.p("shm/r"), "w").close()
        open(self.p("event/e"), "w").close()
        open(self.p("topic/t"), "w").close()
        cases = [
            ([], None), (["bogus"], "unknown command"),
            (["recv"], "missing operand"), (["recv", "mbox/q", "mbox/q"], "too many"),
            (["recv", "mbox/q", "--bogus"], "unknown option"),
            (["recv", "mbox/q", "--timeout"], "needs an argument"),
            (["recv", "mbox/q", "--timeout", "soon"], "--timeout"),
            (["recv", "mbox/q", "--count", "-1"], "--count"),
            (["top", "--interval", "0"], "--interval"),
            (["create", "mbox"], "missing operand"),
            (["create", "queue", "mbox/x"], "unknown kind"),
            (["create", "mbox", "mbox/x", "--undo"], "--undo does not apply"),
            (["create", "sem", "sem/x", "--framing", "line"], "--framing does not apply"),
            (["create", "mbox", "mbox/x", "--framing", "lines"], "--framing"),
            (["create", "mbox", "mbox/x", "--max-messages", "ten"], "--max-messages"),
            (["create", "mbox", "mbox/x", "--mode", "rw"], "--mode"),
            (["create", "shm", "shm/x", "--size", "1Q"], "--size"),
            (["create", "mbox", "fifo/x"], "must be created under"),
            (["create", "mbox", "x"], "must be created under"),
            (["create", "mbox", "/tmp/not-ipcfs-%d" % os.getpid()], "not inside an ipcfs mount"),
            (["create", "mbox", "mbox/"], "not a name"),
            (["set", "mbox/q", "framing", "lines"], "bad value"),
            (["set", "mbox/q", "messages", "3"], "read-only"),
            (["set", "mbox/q", "undo", "1"], "not a setting"),
            (["set", self.plain, "framing", "open"], "not an object"),
            (["stat", self.plain], "not an object"),
            (["send", "shm/r"], "send writes to"),
            (["recv", "event/e"], "recv reads"),
            (["wait", "mbox/q"], "wait waits"),
            (["drain", "topic/t"], "drain empties"),
        ]
        for args, msg in cases:
            r = self.ctl(*args)
            self.assertEqual(r.returncode, USAGE, "%s: rc %d: %s" % (args, r.returncode, r.stderr))
            self.assertEqual(r.stdout, "", args)
            if msg:
                self.assertIn(msg, r.stderr, args)
        # Nothing was made by a refused create, and nothing was set.
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["q"])
        self.assertEqual(sorted(os.listdir(self.p("fifo"))), [])
        self.assertEqual(self.xattr(self.p("mbox/q"), "framing"), "open")
        self.assertFalse(os.path.exists("/tmp/not-ipcfs-%d" % os.getpid()))
        self.assertEqual(os.listxattr(self.plain), [])

    def test_not_found(self):
        for args in (["stat", "mbox/nope"], ["ls", "mbox/nope"], ["set", "mbox/nope", "framing", "line"],
                     ["send", "mbox/nope"], ["recv", "mbox/nope"], ["wait", "event/nope"],
                     ["drain", "mbox/nope"], ["create", "mbox", "mbox/nodir/q"],
                     ["top", "--once", os.path.join(self.m.mnt, "nodir")]):
            r = self.ctl(*args, input="x")
            self.assertEqual(r.returncode, NOTFOUND, "%s: rc %d: %s" % (args, r.returncode, r.stderr))
            self.assertIn("No such file or directory", r.stderr, args)


class TestCreate(CtlTest):
    def test_every_kind(self):
        self.ok("create", "mbox", "mbox/jobs", "--max-messages", "5", "--max-bytes", "64K",
                "--framing", "line", "--mode", "0640")
        self.ok("create", "fifo", "fifo/f", "--max-bytes", "2M")
        self.ok("create", "shm", "shm/r", "--size", "1M", "--max-bytes", "4M")
        self.ok("create", "sem", "sem/s", "--value", "3", "--undo")
        self.ok("create", "event", "event/e", "--latched", "--max-bytes", "100")
        self.ok("create", "topic", self.p("topic/t"), "--retain", "4", "--overflow", "block",
                "--framing", "record", "--max-messages", "50")
        x = lambda path, key: self.xattr(self.p(path), key)
        self.assertEqual([x("mbox/jobs", k) for k in ("framing", "max_messages", "max_bytes")],
                         ["line", "5", "65536"])
        self.assertEqual(stat.S_IMODE(os.stat(self.p("mbox/jobs")).st_mode), 0o640)
        self.assertEqual(x("fifo/f", "max_bytes"), str(2 << 20))
        self.assertEqual((os.stat(self.p("shm/r")).st_size, x("shm/r", "max_bytes")),
                         (1 << 20, str(4 << 20)))
        self.assertEqual((x("sem/s", "value"), x("sem/s", "undo")), ("3", "1"))
        self.assertEqual((x("event/e", "latched"), x("event/e", "max_bytes")), ("1", "100"))
        self.assertEqual([x("topic/t", k) for k in ("retain", "overflow", "framing", "max_messages")],
                         ["4", "block", "record", "50"])
        for path in ("fifo/f", "shm/r", "sem/s", "event/e", "topic/t"):
            self.assertEqual(stat.S_IMODE(os.stat(self.p(path)).st_mode), 0o644, path)
        # In a subdirectory, by a relative path from inside the kind directory.
        os.mkdir(self.p("mbox/app1"))
        self.ok("create", "mbox", "app1/q", cwd=self.p("mbox"))
        self.assertEqual(x("mbox/app1/q", "kind"), "mbox")

    def test_exists_and_refused_settings(self):
        self.ok("create", "mbox", "mbox/q")
        self.put("mbox/q", "keep me")
        r = self.rc(self.ctl("create", "mbox", "mbox/q", "--framing", "write"), ERR, "already exists")
        self.assertEqual((self.xattr(self.p("mbox/q"), "framing"), open(self.p("mbox/q")).read()),
                         ("open", "keep me"))
        # A value the daemon refuses (over the 1 GiB ceiling): nothing left behind.
        r = self.ctl("create", "mbox", "mbox/big", "--max-bytes", "2G")
        self.rc(r, USAGE, "bad value")
        r = self.ctl("create", "shm", "shm/big", "--size", "2M", "--max-bytes", "1M")
        self.assertNotEqual(r.returncode, OK)
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["q"])
        self.assertEqual(os.listdir(self.p("shm")), [])


class TestListAndStat(CtlTest):
    def setup_objects(self):
        self.ok("create", "mbox", "mbox/jobs", "--max-messages", "100")
        self.put("mbox/jobs", "one\n", "two\n")
        os.mkdir(self.p("mbox/app"))
        self.ok("create", "mbox", "mbox/app/q", "--framing", "write", "--mode", "0600")
        self.ok("create", "fifo", "fifo/f")
        with open(self.p("fifo/f"), "w") as f:
            f.write("x" * 2048)
        self.ok("create", "shm", "shm/r", "--size", "64K")
        self.ok("create", "sem", "sem/s", "--value", "2")
        self.ok("create", "event", "event/e", "--latched")
        self.ok("create", "topic", "topic/t", "--retain", "3")

    def test_ls_table(self):
        self.setup_objects()
        out = self.ok("ls").stdout.splitlines()
        self.assertEqual(out[0].split(), ["KIND", "NAME", "DEPTH", "LIMITS", "OWNER", "MODE"])
        rows = {line.split()[1]: line for line in out[1:]}
        self.assertEqual(list(rows), ["event/e", "fifo/f", "mbox/app/q", "mbox/jobs", "sem/s",
                                      "shm/r", "topic/t"])  # sorted by name
        self.assertRegex(rows["mbox/jobs"], r"^mbox +mbox/jobs +2 msgs 8B +100 msgs 64M open +root +0644$")
        self.assertRegex(rows["mbox/app/q"], r"0 msgs 0B +10000 msgs 64M write +root +0600$")
        self.assertRegex(rows["fifo/f"], r"^fifo +fifo/f +2K +1M ")
        self.assertRegex(rows["shm/r"], r"^shm +shm/r +64K +1G ")
        self.assertRegex(rows["sem/s"], r"^sem +sem/s +value 2 +- ")
        self.assertRegex(rows["event/e"], r"^event +event/e +clear +latched ")
        self.assertRegex(rows["topic/t"], r"^topic +topic/t +0 subs 0 msgs +1000 msgs open drop retain 3 ")
        # Relative to the directory listed; one object; an empty directory.
        out = self.ok("ls", "mbox").stdout.splitlines()
        self.assertEqual([line.split()[1] for line in out[1:]], ["app/q", "jobs"])
        out = self.ok("ls", self.p("sem/s")).stdout.splitlines()
        self.assertEqual(len(out), 2)
        self.assertIn("value 2", out[1])
        os.mkdir(self.p("fifo/empty"))
        self.assertEqual(self.ok("ls", "fifo/empty").stdout, "")
        self.assertEqual(json.loads(self.ok("ls", "--json", "fifo/empty").stdout), [])

    def test_ls_json(self):
        self.setup_objects()
        objs = json.loads(self.ok("ls", "--json").stdout)
        by = {o["name"]: o for o in objs}
        self.assertEqual(len(objs), 7)
        jobs = by["mbox/jobs"]
        self.assertEqual((jobs["kind"], jobs["owner"], jobs["uid"], jobs["mode"], jobs["path"]),
                         ("mbox", "root", 0, "0644", "mbox/jobs"))
        self.assertEqual(jobs["settings"], {"framing": "open", "max_messages": 100,
                                            "max_bytes": 64 << 20})
        self.assertEqual((jobs["statistics"]["messages"], jobs["statistics"]["bytes"],
                          jobs["statistics"]["in_messages"]), (2, 8, 2))
        self.assertEqual(by["sem/s"]["settings"], {"undo": 0, "value": 2})
        self.assertEqual(by["shm/r"]["statistics"]["size"], 65536)
        self.assertEqual(by["topic/t"]["settings"]["overflow"], "drop")
        self.assertEqual(by["event/e"]["settings"]["latched"], 1)
        self.assertIsInstance(jobs["mtime"], float)
        # Absolute paths stay absolute.
        objs = json.loads(self.ok("ls", "--json", self.p("mbox")).stdout)
        self.assertEqual(sorted(o["path"] for o in objs),
                         [self.p("mbox/app/q"), self.p("mbox/jobs")])

    def test_stat(self):
        self.setup_objects()
        out = self.ok("stat", "mbox/jobs").stdout
        self.assertTrue(out.startswith("mbox/jobs\n"), out)
        self.assertRegex(out, r"\n  kind +mbox\n")
        self.assertRegex(out, r"\n  owner +root \(0\)\n")
        self.assertRegex(out, r"\nsettings\n  framing +open\n  max_messages +100\n  max_bytes +67108864 \(64M\)\n")
        self.assertRegex(out, r"\nstatistics\n  messages +2\n  bytes +8\n")
        for key in ("in_messages", "out_messages", "readers", "writers", "blocked_readers",
                    "blocked_writers"):
            self.assertRegex(out, r"\n  %s +\d+\n" % key)
        j = json.loads(self.ok("stat", "--json", "topic/t").stdout)
        self.assertEqual((j["kind"], j["settings"]["retain"], j["statistics"]["subscribers"]),
                         ("topic", 3, 0))
        self.assertEqual(set(j["settings"]), {"framing", "max_messages", "max_bytes", "retain",
                                              "overflow"})
        d = json.loads(self.ok("stat", "--json", "mbox/app").stdout)
        self.assertEqual((d["kind"], d["settings"], d["statistics"]), ("dir", {}, {}))


class TestSet(CtlTest):
    def test_set(self):
        self.ok("create", "mbox", "mbox/q")
        self.assertEqual(self.ok("set", "mbox/q", "framing", "write").stdout, "")
        self.assertEqual(self.xattr(self.p("mbox/q"), "framing"), "write")
        self.ok("set", "mbox/q", "user.ipcfs.max_messages", "7")
        self.assertEqual(self.xattr(self.p("mbox/q"), "max_messages"), "7")
        with open(self.p("mbox/q"), "w") as f:
            f.write("queued")
        self.rc(self.ctl("set", "mbox/q", "framing", "line"), ERR, "only while nothing is queued")
        self.assertEqual(self.xattr(self.p("mbox/q"), "framing"), "write")
        self.ok("create", "sem", "sem/s")
        self.ok("set", "sem/s", "value", "9")
        self.assertEqual(self.xattr(self.p("sem/s"), "value"), "9")
        self.rc(self.ctl("set", "sem/s", "value", "2147483648"), USAGE, "bad value")
        self.rc(self.ctl("set", "mbox", "framing", "line"), USAGE, "not a setting of dir")


class TestSendRecv(CtlTest):
    def test_open_framing(self):
        self.ok("create", "mbox", "mbox/q")
        self.assertEqual(self.ok("send", "mbox/q", input="from stdin\n").stdout, "")
        src = os.path.join(self.m.workdir, "file")
        with open(src, "wb") as f:
            f.write(b"from a file, no newline")
        self.ok("send", "mbox/q", src)
        self.ok("send", "mbox/q", "-", input="third\n")
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "3")
        self.assertEqual(self.ok("recv", "mbox/q").stdout, "from stdin\n")
        self.assertEqual(self.ok("recv", "mbox/q", "--raw").stdout, "from a file, no newline")
        self.assertEqual(self.ok("recv", "mbox/q", "--count", "1").stdout, "third\n")
        # Nothing queued: timeout, exit 5, nothing printed.
        r = self.rc(self.ctl("recv", "mbox/q", "--timeout", "0.2"), TIMEOUT, "timed out")
        self.assertEqual(r.stdout, "")
        # Fewer than --count: what came is printed, then the timeout.
        self.put("mbox/q", "a", "b")
        r = self.rc(self.ctl("recv", "mbox/q", "--count", "3", "--timeout", "0.3"), TIMEOUT,
                    "2 received")
        self.assertEqual(r.stdout, "a\nb\n")
        # --count 0: everything until quiet, exit 0 once something came.
        self.put("mbox/q", "c", "d", "e")
        self.assertEqual(self.ok("recv", "mbox/q", "--count", "0", "--timeout", "0.3").stdout,
                         "c\nd\ne\n")
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "0")
        # Empty input sends nothing.
        self.rc(self.ctl("send", "mbox/q", input=""), ERR, "nothing sent")
        self.assertEqual(self.xattr(self.p("mbox/q"), "in_messages"), "8")
        # A big message stays one message.
        big = os.urandom(3 << 20)
        self.ok("send", "mbox/q", input=big)
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "1")
        r = self.ctl("recv", "mbox/q", "--raw", text=False)
        self.assertEqual((r.returncode, r.stdout), (0, big))

    def test_message_too_big(self):
        self.ok("create", "mbox", "mbox/q", "--max-bytes", "10")
        self.rc(self.ctl("send", "mbox/q", input="0123456789ABC"), ERR, "larger than")
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "0")

    def test_write_line_record_framings(self):
        self.ok("create", "mbox", "mbox/w", "--framing", "write")
        self.ok("send", "mbox/w", input="first")
        self.ok("send", "mbox/w", input="second\nstill second\n")
        self.assertEqual(self.xattr(self.p("mbox/w"), "messages"), "2")
        self.assertEqual(self.ok("recv", "mbox/w", "--count", "2").stdout,
                         "first\nsecond\nstill second\n")
        self.ok("create", "mbox", "mbox/l", "--framing", "line")
        self.ok("send", "mbox/l", input="l1\nl2\nl3\n")
        self.assertEqual(self.xattr(self.p("mbox/l"), "messages"), "3")
        self.assertEqual(self.ok("recv", "mbox/l").stdout, "l1\n")
        self.assertEqual(self.ok("recv", "mbox/l", "--count", "2").stdout, "l2\nl3\n")
        self.ok("create", "mbox", "mbox/r", "--framing", "record")
        recs = [b"alpha", b"", b"gamma" * 100]
        self.ok("send", "mbox/r", input=b"".join(struct.pack("<I", len(m)) + m for m in recs))
        self.assertEqual(self.xattr(self.p("mbox/r"), "messages"), "3")
        r = self.ctl("recv", "mbox/r", "--count", "3", text=False)
        self.assertEqual((r.returncode, r.stdout), (0, b"alpha\n\n" + b"gamma" * 100 + b"\n"))
        # A cut record is refused.
        r = self.ctl("send", "mbox/r", input=struct.pack("<I", 10) + b"short")
        self.rc(r, USAGE, "not whole records")

    def test_recv_waits_for_a_message(self):
        self.ok("create", "mbox", "mbox/q")
        p = self.ctl_bg("recv", "mbox/q", "--timeout", str(20 * SLOW))
        wait_until(lambda: self.xattr(self.p("mbox/q"), "readers") == "1", what="the reader")
        self.ok("send", "mbox/q", input="wake up\n")
        self.assertEqual(self.done(p), (0, "wake up\n", ""))

    def test_topic(self):
        self.ok("create", "topic", "topic/t")
        subs = [self.ctl_bg("recv", "topic/t", "--count", "2", "--timeout", str(20 * SLOW))
                for _ in range(2)]
        wait_until(lambda: self.xattr(self.p("topic/t"), "subscribers") == "2",
                   what="two subscribers")
        self.ok("send", "topic/t", input="news 1\n")
        self.ok("send", "topic/t", input="news 2\n")
        for p in subs:
            self.assertEqual(self.done(p), (0, "news 1\nnews 2\n", ""))

    def test_fifo(self):
        self.ok("create", "fifo", "fifo/f")
        self.ok("send", "fifo/f", input="some ")
        self.ok("send", "fifo/f", input="bytes")
        self.assertEqual(self.ok("recv", "fifo/f").stdout, "some bytes")
        self.rc(self.ctl("recv", "fifo/f", "--count", "2"), USAGE, "--count")

    def test_sem_and_event_send(self):
        self.ok("create", "sem", "sem/s")
        self.ok("send", "sem/s", input="4\n")
        self.assertEqual(self.xattr(self.p("sem/s"), "value"), "4")
        self.rc(self.ctl("send", "sem/s", input="many\n"), USAGE, "decimal")
        self.ok("create", "event", "event/e", "--latched")
        self.ok("send", "event/e", input="ring\n")
        self.assertEqual(self.xattr(self.p("event/e"), "set"), "1")


class TestWaitDrain(CtlTest):
    def test_wait_event(self):
        self.ok("create", "event", "event/e")
        p = self.ctl_bg("wait", "event/e", "--timeout", str(20 * SLOW))
        wait_until(lambda: self.xattr(self.p("event/e"), "readers") == "1", what="the waiter")
        with open(self.p("event/e"), "w") as f:
            f.write("reload\n")
        self.assertEqual(self.done(p), (0, "reload\n", ""))
        # No firing: timeout, exit 5.
        r = self.rc(self.ctl("wait", "event/e", "--timeout", "0.2"), TIMEOUT, "timed out")
        self.assertEqual(r.stdout, "")
        # A latched event that is set answers at once.
        self.ok("set", "event/e", "latched", "1")
        self.ok("send", "event/e", input="set!")
        self.assertEqual(self.ok("wait", "event/e", "--timeout", str(10 * SLOW)).stdout, "set!")

    def test_wait_sem(self):
        self.ok("create", "sem", "sem/s", "--value", "1")
        self.assertEqual(self.ok("wait", "sem/s").stdout, "")
        self.assertEqual(self.xattr(self.p("sem/s"), "value"), "0")
        self.rc(self.ctl("wait", "sem/s", "--timeout", "0.2"), TIMEOUT, "timed out")
        p = self.ctl_bg("wait", "sem/s", "--timeout", str(20 * SLOW))
        wait_until(lambda: self.xattr(self.p("sem/s"), "readers") == "1", what="the waiter")
        with open(self.p("sem/s"), "w") as f:
            f.write("1")
        self.assertEqual(self.done(p), (0, "", ""))
        self.assertEqual(self.xattr(self.p("sem/s"), "value"), "0")

    def test_drain(self):
        self.ok("create", "mbox", "mbox/q")
        self.put("mbox/q", *["m%d" % i for i in range(5)])
        self.assertEqual(self.ok("drain", "mbox/q").stdout, "5\n")
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "0")
        self.assertEqual(self.ok("drain", "mbox/q").stdout, "0\n")
        self.ok("create", "mbox", "mbox/w", "--framing", "write")
        for i in range(3):
            self.ok("send", "mbox/w", input="w%d" % i)
        self.assertEqual(self.ok("drain", "mbox/w").stdout, "3\n")
        self.ok("create", "mbox", "mbox/r", "--framing", "record")
        self.ok("send", "mbox/r", input=b"".join(struct.pack("<I", 2) + b"%02d" % i for i in range(40)))
        self.assertEqual(self.ok("drain", "mbox/r").stdout, "40\n")
        self.ok("create", "fifo", "fifo/f")
        self.ok("send", "fifo/f", input="x" * 5000)
        self.assertEqual(self.ok("drain", "fifo/f").stdout, "5000\n")
        self.assertEqual(self.xattr(self.p("fifo/f"), "bytes"), "0")
        self.ok("create", "sem", "sem/s", "--value", "3")
        self.assertEqual(self.ok("drain", "sem/s").stdout, "3\n")
        self.assertEqual(self.xattr(self.p("sem/s"), "value"), "0")
        self.ok("create", "sem", "sem/u", "--value", "3", "--undo")
        self.rc(self.ctl("drain", "sem/u"), ERR, "undo")
        self.assertEqual(self.xattr(self.p("sem/u"), "value"), "3")


class TestPermissions(CtlTest):
    def test_other_user(self):
        self.ok("create", "mbox", "mbox/private", "--mode", "0600")
        self.put("mbox/private", "secret")
        self.ok("create", "mbox", "mbox/shared", "--mode", "0666")
        for args in (["recv", "mbox/private", "--timeout", "1"], ["send", "mbox/private"],
                     ["drain", "mbox/private"], ["stat", "mbox/private"],
                     ["set", "mbox/shared", "max_messages", "1"]):
            r = self.ctl(*args, input="x", user=NOBODY)
            self.assertEqual(r.returncode, PERM, "%s: rc %d: %s" % (args, r.returncode, r.stderr))
            self.assertRegex(r.stderr, "Permission denied|only the owner")
        self.assertEqual(self.xattr(self.p("mbox/private"), "messages"), "1")
        self.assertEqual(self.xattr(self.p("mbox/shared"), "max_messages"), "10000")
        # What the mode bits allow works; the creator owns what it makes.
        r = self.ctl("send", "mbox/shared", input="hello\n", user=NOBODY)
        self.assertEqual(r.returncode, OK, r.stderr)
        r = self.ctl("create", "mbox", "mbox/mine", "--max-messages", "3", user=NOBODY)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual(os.stat(self.p("mbox/mine")).st_uid, NOBODY)
        r = self.ctl("set", "mbox/mine", "max_messages", "4", user=NOBODY)
        self.assertEqual(r.returncode, OK, r.stderr)
        # ls shows what it can read and reports the rest.
        r = self.ctl("ls", "mbox", user=NOBODY)
        self.assertEqual(r.returncode, PERM, r.stderr)
        self.assertIn("mbox/private", r.stderr)
        names = [line.split()[1] for line in r.stdout.splitlines()[1:]]
        self.assertEqual(names, ["mine", "shared"])


class TestMetricsAndTop(CtlTest):
    def metrics(self):
        with open(self.p(".ipcfs", "metrics")) as f:
            return parse_metrics(self, f.read())

    def test_metrics_move(self):
        self.ok("create", "mbox", "mbox/before")
        m0 = self.metrics()
        for key in ("ipcfs_messages_in_total", "ipcfs_messages_out_total", "ipcfs_bytes_in_total",
                    "ipcfs_messages_queued", 'ipcfs_objects{kind="mbox"}',
                    'ipcfs_commits_total{result="ok"}', "ipcfs_memory_limit_bytes"):
            self.assertIn(key, m0)
        self.ok("create", "mbox", "mbox/q")
        self.ok("create", "topic", "topic/t")
        for i in range(10):
            self.ok("send", "mbox/q", input="message %d\n" % i)
        m1 = self.metrics()
        self.assertEqual(m1['ipcfs_objects{kind="mbox"}'] - m0['ipcfs_objects{kind="mbox"}'], 1)
        self.assertEqual(m1['ipcfs_objects{kind="topic"}'] - m0['ipcfs_objects{kind="topic"}'], 1)
        self.assertEqual(m1["ipcfs_messages_in_total"] - m0["ipcfs_messages_in_total"], 10)
        self.assertEqual(m1["ipcfs_messages_queued"] - m0["ipcfs_messages_queued"], 10)
        self.assertEqual(m1["ipcfs_bytes_in_total"] - m0["ipcfs_bytes_in_total"],
                         sum(len("message %d\n" % i) for i in range(10)))
        self.assertEqual(m1["ipcfs_messages_out_total"], m0["ipcfs_messages_out_total"])
        self.assertEqual(self.ok("recv", "mbox/q", "--count", "10").stdout.count("\n"), 10)
        m2 = self.metrics()
        self.assertEqual(m2["ipcfs_messages_out_total"] - m1["ipcfs_messages_out_total"], 10)
        self.assertEqual(m2["ipcfs_bytes_out_total"] - m1["ipcfs_bytes_out_total"],
                         m1["ipcfs_bytes_in_total"] - m0["ipcfs_bytes_in_total"])
        self.assertEqual(m2["ipcfs_messages_queued"], m0["ipcfs_messages_queued"])
        # A blocked reader shows up as a gauge.
        p = self.ctl_bg("recv", "topic/t", "--timeout", str(20 * SLOW))
        wait_until(lambda: self.metrics()["ipcfs_subscribers"] == m0["ipcfs_subscribers"] + 1,
                   what="the subscriber in the metrics")
        self.ok("send", "topic/t", input="bye\n")
        self.assertEqual(self.done(p), (0, "bye\n", ""))

    def setup_traffic(self):
        self.ok("create", "mbox", "mbox/jobs")
        os.mkdir(self.p("mbox/app"))
        self.ok("create", "mbox", "mbox/app/q")
        self.ok("create", "fifo", "fifo/f")
        self.ok("create", "shm", "shm/r", "--size", "8K")
        self.ok("create", "sem", "sem/s", "--value", "1")
        self.put("mbox/jobs", "a", "b", "c")

    def test_top_once(self):
        self.setup_traffic()
        # From a directory inside the mount: the root is found upwards.
        r = self.ok("top", "--once", "--interval", "0.1", cwd=self.p("mbox", "app"))
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ipcfs "), lines[0])
        self.assertTrue(any(l.startswith("objects: 5 ") for l in lines), r.stdout)
        head = [i for i, l in enumerate(lines) if l.split()[:2] == ["KIND", "NAME"]]
        self.assertEqual(len(head), 1, r.stdout)
        self.assertEqual(lines[head[0]].split(),
                         ["KIND", "NAME", "DEPTH", "IN/s", "OUT/s", "OPEN", "r/w", "BLOCKED", "r/w"])
        rows = {l.split()[1]: l.split() for l in lines[head[0] + 1:]}
        self.assertEqual(sorted(rows), ["fifo/f", "mbox/app/q", "mbox/jobs", "sem/s", "shm/r"])
        self.assertEqual(rows["mbox/jobs"][:5], ["mbox", "mbox/jobs", "3", "msgs", "3B"])
        self.assertRegex(" ".join(rows["mbox/jobs"][5:]), r"^\d+\.\d \d+\.\d 0/0 0/0$")
        self.assertEqual(rows["shm/r"], ["shm", "shm/r", "8K", "-", "-", "-", "-"])
        self.assertEqual(rows["sem/s"][2:4], ["value", "1"])
        self.assertNotIn("\033", r.stdout)  # no terminal codes when not a terminal
        # With the mount point as the argument; outside any mount.
        self.assertIn("mbox/jobs", self.ok("top", "--once", "--interval", "0.05", self.m.mnt).stdout)
        self.rc(self.ctl("top", "--once", cwd="/"), USAGE, "not inside an ipcfs mount")

    def test_top_rates_and_live(self):
        self.setup_traffic()
        out = os.path.join(self.m.workdir, "top.out")
        with open(out, "w") as f:
            p = subprocess.Popen([IPCCTL, "top", "--interval", "0.1"], cwd=self.m.mnt, stdout=f,
                                 stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        frames = lambda: open(out).read().count("\nKIND ")
        wait_until(lambda: frames() >= 2, what="two frames")
        # Rates come from in_messages deltas between frames.
        self.put("mbox/jobs", *["x"] * 20)
        wait_until(lambda: frames() >= 4, what="two more frames")
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=10 * SLOW), 0, p.stderr.read())
        text = open(out).read()
        self.assertIn("\nrates: ", text)
        jobs = [l.split() for l in text.splitlines() if l.startswith("mbox ") and "mbox/jobs" in l]
        self.assertTrue(any(float(r[5]) > 0 for r in jobs if r[5] != "-"), text)
        self.assertEqual(jobs[0][5], "-")  # the first frame has no rate yet

    def test_top_terminal(self):
        self.setup_traffic()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        p = subprocess.Popen([IPCCTL, "top", "--interval", "0.1"], cwd=self.m.mnt, stdin=slave,
                             stdout=slave, stderr=slave)
        self.procs.append(p)
        os.close(slave)
        buf = b""
        end = time.monotonic() + 20 * SLOW
        quit_sent = False
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break  # the other side closed: top ended
                if not chunk:
                    break
                buf += chunk
            if not quit_sent and buf.count(b"\033[H\033[2J") >= 2:
                os.write(master, b"q")
                quit_sent = True
            if quit_sent and p.poll() is not None:
                break
        os.close(master)
        self.assertTrue(quit_sent, buf[-2000:])
        self.assertEqual(p.wait(timeout=10 * SLOW), 0)
        self.assertIn(b"mbox/jobs", buf)
        self.assertIn(b"\033[?25l", buf)  # cursor hidden while running...
        self.assertTrue(buf.rstrip(b"\r\n").endswith(b"\033[?25h"), buf[-200:])  # ...and shown again


class TestSystemIntegration(unittest.TestCase):
    """mount -t fuse.ipcfs through mount.fuse3, the fstab line of ipcfs(1), and the
    commands of the systemd unit, each for real."""

    def setUp(self):
        self.wd = tempfile.mkdtemp(prefix="ipcfs-test-sys-")
        self.addCleanup(shutil.rmtree, self.wd, ignore_errors=True)
        self.mnt = os.path.join(self.wd, "mnt")
        os.mkdir(self.mnt)
        self.addCleanup(self.leftovers)

    def leftovers(self):
        n = reap_daemons(self.mnt)
        self.assertEqual(n, 0, "a daemon was left running on " + self.mnt)

    def fstab_line(self):
        """The example /etc/fstab line of man/ipcfs.1, as written there."""
        with open(os.path.join(ROOT, "man", "ipcfs.1")) as f:
            for line in f:
                m = re.match(r'^\.B "\s*(ipcfs\s+/mnt/ipc\s+fuse\.ipcfs\s+.*)"$', line)
                if m:
                    return m.group(1).replace("\\-", "-")
        self.fail("no fstab line in man/ipcfs.1")

    def test_mount_t_and_fstab(self):
        for tool in ("unshare", "mount", "umount", "findmnt"):
            self.assertTrue(shutil.which(tool), tool + " is missing")
        bindir = os.path.join(self.wd, "bin")
        os.mkdir(bindir)
        os.symlink(BIN, os.path.join(bindir, "ipcfs"))
        fields = self.fstab_line().split()
        self.assertEqual(fields[:3], ["ipcfs", "/mnt/ipc", "fuse.ipcfs"])
        fields[1] = self.mnt
        fields[3] += ",memory"  # never the real /var/lib/ipcfs database in a test
        fstab = os.path.join(self.wd, "fstab")
        with open(fstab, "w") as f:
            f.write("  ".join(fields) + "\n")
        # mount(8) clears PATH before it runs mount.fuse3, which runs `ipcfs`
        # through /bin/sh: the shell's default PATH decides, so the symlink
        # is put first on PATH *and* bound over /usr/local/sbin (the first
        # directory of that default), in a private mount namespace so that
        # nothing outside this test sees it.
        script = r'''
set -eu
trap 'mountpoint -q "$MNT" && umount -l "$MNT"' EXIT
export PATH="$BINDIR:$PATH"
mount --bind "$BINDIR" /usr/local/sbin
mount -t fuse.ipcfs ipcfs "$MNT" -o memory
echo "fstype: $(findmnt -n -r -o FSTYPE,SOURCE "$MNT")"
"$IPCCTL" create mbox "$MNT/mbox/q"
echo "through mount -t" | "$IPCCTL" send "$MNT/mbox/q"
echo "got: $("$IPCCTL" recv "$MNT/mbox/q" --timeout 10)"
umount "$MNT"
mount -T "$FSTAB" "$MNT"
echo "fstab: $(findmnt -n -r -o FSTYPE,OPTIONS "$MNT")"
echo "stats: $(head -1 "$MNT/.ipcfs/stats")"
"$IPCCTL" ls --json "$MNT"
umount "$MNT"
echo done
'''
        env = dict(os.environ, MNT=self.mnt, BINDIR=bindir, IPCCTL=IPCCTL, FSTAB=fstab)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                           capture_output=True, text=True, env=env, timeout=60 * SLOW)
        self.assertEqual(r.returncode, 0, "stdout: %s\nstderr: %s" % (r.stdout, r.stderr))
        self.assertIn("fstype: fuse.ipcfs ipcfs\n", r.stdout)
        self.assertIn("got: through mount -t\n", r.stdout)
        self.assertRegex(r.stdout, r"fstab: fuse\.ipcfs \S*default_permissions,allow_other")
        self.assertRegex(r.stdout, r"stats: ipcfs \S+, up \d+ s, sync memory")
        self.assertTrue(r.stdout.endswith("done\n"), r.stdout)
        self.assertEqual(r.stderr, "")
        # umount ends the daemon by itself.
        wait_until(lambda: not daemon_pids(self.mnt), what="the daemon to exit after umount")
        self.assertFalse(os.path.ismount(self.mnt))

    def unit_commands(self, env):
        """ExecStartPre/ExecStart of the built unit, expanded as systemd does
        (${V}: one word, $V: split on spaces); a leading '-' means failure is
        fine. The installed path of ipcfs is replaced by the built one."""
        with open(UNIT) as f:
            text = f.read()
        cmds = []
        for line in text.splitlines():
            m = re.match(r"^(ExecStartPre|ExecStart|ExecStop)=(-?)(.*)$", line)
            if not m:
                continue
            self.assertNotEqual(m.group(1), "ExecStop")  # stopping is SIGTERM's job
            words = []
            for w in shlex.split(m.group(3)):
                if re.fullmatch(r"\$\w+", w):
                    words += env[w[1:]].split()
                else:
                    words.append(re.sub(r"\$\{(\w+)\}", lambda v: env[v.group(1)], w))
            if words[0].endswith("/ipcfs"):
                words[0] = BIN
            cmds.append((m.group(2) == "-", words))
        self.assertEqual([c[1][0] for c in cmds][-1], BIN)
        return cmds

    def test_systemd_unit(self):
        self.assertTrue(os.path.exists(UNIT), "unit not built: " + UNIT)
        with open(UNIT) as f:
            text = f.read()
        for line in ("Type=forking", "WantedBy=multi-user.target", "Conflicts=umount.target",
                     "StateDirectory=ipcfs"):
            self.assertIn("\n" + line + "\n", text)
        self.assertNotIn("@", re.sub(r"(?m)^#.*$", "", text))  # every @VAR@ was configured
        defaults = dict(re.findall(r'(?m)^Environment="?(\w+)=([^"\n]*)"?$', text))
        self.assertEqual(defaults["IPCFS_MOUNTPOINT"], "/mnt/ipc")
        # The unit's own commands, on a mount point that does not exist yet,
        # with --memory so that /var/lib/ipcfs is not touched.
        mnt = os.path.join(self.mnt, "sub")
        env = {"IPCFS_MOUNTPOINT": mnt, "IPCFS_OPTIONS": defaults["IPCFS_OPTIONS"] + " --memory"}

        def start():
            for may_fail, argv in self.unit_commands(env):
                r = subprocess.run(argv, capture_output=True, text=True, timeout=30 * SLOW)
                if not may_fail:
                    self.assertEqual(r.returncode, 0, "%s: %s" % (argv, r.stderr))
            # Type=forking: started means mounted, nothing to wait for.
            self.assertTrue(os.path.ismount(mnt))
            self.assertEqual(subprocess.run([IPCCTL, "create", "mbox", mnt + "/mbox/q"]).returncode, 0)
            pids = daemon_pids(mnt)
            self.assertEqual(len(pids), 1, pids)
            return pids[0]

        self.addCleanup(reap_daemons, mnt)
        pid = start()
        # A crash leaves a dead mount; the next start clears it.
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not daemon_pids(mnt), what="the killed daemon")
        self.assertTrue(mounted(mnt))  # dead: "Transport endpoint is not connected"
        pid = start()
        # systemctl stop: SIGTERM; the daemon unmounts and exits.
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not daemon_pids(mnt) and not mounted(mnt), what="a clean stop")
        # systemd's own check of the unit, where systemd-analyze exists.
        if shutil.which("systemd-analyze"):
            unit = os.path.join(self.wd, "ipcfs.service")
            with open(unit, "w") as f:
                f.write(re.sub(r"(?m)^ExecStart=\S+/ipcfs ", "ExecStart=%s " % BIN, text))
            manpath = os.path.join(self.wd, "man")
            for sec, page in (("1", "ipcfs.1"), ("1", "ipcctl.1"), ("7", "ipcfs.7")):
                os.makedirs(os.path.join(manpath, "man" + sec), exist_ok=True)
                os.symlink(os.path.join(ROOT, "man", page), os.path.join(manpath, "man" + sec, page))
            r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                               env=dict(os.environ, MANPATH=manpath), timeout=60 * SLOW)
            self.assertEqual((r.returncode, r.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main()
