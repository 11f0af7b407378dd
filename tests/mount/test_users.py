"""test_users.py - many users on one mount: mode bits and ownership decide who
may send, receive, map, create, remove, chmod and see or change settings.

The security model (ipcfs(7), SECURITY; docs/ARCHITECTURE.md, Decisions):

- The daemon usually runs as root (the systemd unit, an fstab line) and serves
  every user of the mount.  It never checks mode bits itself: ipcfs always
  mounts with `default_permissions`, so the *kernel* checks every access
  against the mode, owner and group of the object, exactly as for local files,
  before the request reaches the daemon.  So the daemon's own privileges
  never leak to its clients: what a user may do is what the mode bits give
  that user.  Reading an object (receive, subscribe, wait, P, a read-only map)
  needs read permission; writing it (send, publish, fire, V, a writable map,
  truncate) needs write permission; reading its user.ipcfs.* attributes needs
  read permission, setting them write permission.
- Without `-o allow_other` only the user who mounted may use the mount (the
  FUSE default; test_namespace checks it).  With it, every user may, within
  the mode bits.
- The kind directories are mode 1777 like /tmp: anyone may create objects
  and directories in them, only the owner of an object (or of the directory,
  or root) may remove or rename it.  A user's own directory is governed by its
  mode like any directory.  New objects belong to their creator (uid and
  primary gid).  chmod is the owner's or root's; chown root's only; chgrp the
  owner's, to a group the owner is in.
- Settings (user.ipcfs.framing, max_messages, ...) may be changed only by the
  object's owner or root, even when the mode bits let others write the
  object: a consumer cannot shrink a producer's queue.  Whoever lacks write
  permission is stopped by the kernel (EACCES); a user with write permission
  who is not the owner by the daemon (EPERM).
- /.ipcfs/stats and /.ipcfs/metrics are readable by every user of the mount
  (mode 0444); they show counts, not names or contents.

The tests run as two ordinary users made for them (ipcfs-t-alice and
ipcfs-t-bob, each with its own group, both members of ipcfs-t-shared), through
long-lived helper processes ("agents") that run with those users' real
uid, gid and groups, so one user can hold a file open (a subscription, a
waiting event reader, a mapping) while the other acts.  Every check asserts
the exact errno, and that the refused operation changed nothing.
"""
import atexit
import fcntl
import grp
import json
import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import time
import unittest

from harness import SLOW, Mount, MountTest

ALICE, BOB, SHARED = "ipcfs-t-alice", "ipcfs-t-bob", "ipcfs-t-shared"
# The other users' interpreter must be reachable by them.
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
KINDS = ("mbox", "fifo", "shm", "sem", "event", "topic")
# A setting of each kind, an allowed new value, and a statistic of it.
SETTING = {"mbox": ("max_messages", "7", "messages"), "fifo": ("max_bytes", "5000", "bytes"),
           "shm": ("max_bytes", "1000000", "pages"), "sem": ("undo", "1", "in_messages"),
           "event": ("latched", "1", "set"), "topic": ("retain", "3", "subscribers")}
LOCK = ("/run/lock" if os.path.isdir("/run/lock") else "/tmp") + "/ipcfs-test-users.lock"

# --- the users -------------------------------------------------------------

_fixture = {"refs": 0, "lockf": None, "atexit": False}


def _run(cmd):
    """Runs a user-management command; retries while another one holds the
    password or group file lock (exit statuses 1 and 10)."""
    end = time.monotonic() + 20
    while True:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0 or r.returncode not in (1, 10) or time.monotonic() > end:
            return r
        time.sleep(0.1)


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _remove_users():
    errors = []
    for name in (ALICE, BOB):
        if _user_exists(name):
            r = _run(["userdel", name])
            if r.returncode != 0:
                errors.append("userdel %s: %s" % (name, r.stderr.strip()))
    for name in (ALICE, BOB, SHARED):
        if _group_exists(name):
            r = _run(["groupdel", name])
            if r.returncode != 0:
                errors.append("groupdel %s: %s" % (name, r.stderr.strip()))
    return errors


def _make_users():
    """Creates the two users and the shared group, or reuses them (left by an
    aborted run). Returns {name: (uid, gid)} and the shared gid."""
    if not _group_exists(SHARED):
        r = _run(["groupadd", "--system", SHARED])
        if r.returncode != 0 and not _group_exists(SHARED):
            raise AssertionError("groupadd %s: %s" % (SHARED, r.stderr))
    for name in (ALICE, BOB):
        if not _user_exists(name):
            # Its own group may be left from an aborted run: then reuse it.
            own = ["--gid", name] if _group_exists(name) else ["--user-group"]
            r = _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                      "--groups", SHARED] + own + [name])
            if r.returncode != 0 and not _user_exists(name):
                raise AssertionError("useradd %s: %s" % (name, r.stderr))
    ids = {}
    for name in (ALICE, BOB):
        pw = pwd.getpwnam(name)
        ids[name] = (pw.pw_uid, pw.pw_gid)
    return ids, grp.getgrnam(SHARED).gr_gid


def acquire_users():
    """Takes the users for one test class. Concurrent runs of this module
    (another checkout's suite) share the names, so a lock file serializes
    them; the users are removed when the last class lets them go, or at exit
    (run.py calls tests one by one, without class fixtures)."""
    f = _fixture
    if f["refs"] == 0:
        lockf = open(LOCK, "a")
        end = time.monotonic() + 600 * SLOW
        while True:
            try:
                fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    lockf.close()
                    raise AssertionError("another run holds " + LOCK)
                time.sleep(0.2)
        f["lockf"] = lockf
        if not f["atexit"]:
            atexit.register(_release_all)
            f["atexit"] = True
        try:
            f["ids"], f["shared"] = _make_users()
        except BaseException:
            f["refs"] = 1
            release_users()
            raise
    f["refs"] += 1
    return f["ids"], f["shared"]


def release_users():
    f = _fixture
    if f["refs"] == 0:
        return []
    f["refs"] -= 1
    if f["refs"]:
        return []
    try:
        return _remove_users()
    finally:
        f["lockf"].close()
        f["lockf"] = None


def _release_all():
    if _fixture["refs"]:
        _fixture["refs"] = 1
        release_users()


# --- agents: long-lived processes acting as a user ----------------------------

# Reads one JSON command per line ([op, args...]) and answers one JSON line:
# ["ok", value] or [errno name, null]. Open files and mappings are kept in a
# table under a number. Strings carry bytes as latin-1.
AGENT = r"""
import errno, json, mmap, os, sys
os.umask(0)
tbl, nxt = {}, [0]
def keep(v):
    nxt[0] += 1
    tbl[nxt[0]] = v
    return nxt[0]
B = lambda s: s.encode("latin-1")
S = lambda b: b.decode("latin-1")
def whole(path, flags, fn):
    fd = os.open(path, flags)
    try:
        return fn(fd)
    finally:
        os.close(fd)
def run(op, a):
    if op == "open":
        return keep(os.open(a[0], a[1], a[2] if len(a) > 2 else 0o666))
    if op == "read":
        return S(os.read(tbl[a[0]], a[1]))
    if op == "write":
        return os.write(tbl[a[0]], B(a[1]))
    if op == "close":
        v = tbl.pop(a[0])
        if isinstance(v, int):
            os.close(v)
        else:
            v.close()
        return None
    if op == "mmap":
        return keep(mmap.mmap(tbl[a[0]], a[1], mmap.MAP_SHARED, a[2]))
    if op == "mget":
        return S(tbl[a[0]][a[1]:a[1] + a[2]])
    if op == "mset":
        tbl[a[0]][a[1]:a[1] + len(a[2])] = B(a[2])
        return None
    if op == "create":  # path, mode[, data]: a new object, written once
        fd = os.open(a[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, a[1])
        try:
            if len(a) > 2:
                os.write(fd, B(a[2]))
        finally:
            os.close(fd)
        return None
    if op == "send":
        return whole(a[0], os.O_WRONLY, lambda fd: os.write(fd, B(a[1])))
    if op == "recv":
        return whole(a[0], os.O_RDONLY | os.O_NONBLOCK, lambda fd: S(os.read(fd, 65536)))
    if op == "pread":
        return whole(a[0], os.O_RDONLY, lambda fd: S(os.pread(fd, a[2], a[1])))
    if op == "pwrite":
        return whole(a[0], os.O_WRONLY, lambda fd: os.pwrite(fd, B(a[2]), a[1]))
    if op == "truncate":
        return os.truncate(a[0], a[1])
    if op == "unlink":
        return os.unlink(a[0])
    if op == "rename":
        return os.rename(a[0], a[1])
    if op == "mkdir":
        return os.mkdir(a[0], a[1])
    if op == "rmdir":
        return os.rmdir(a[0])
    if op == "chmod":
        return os.chmod(a[0], a[1])
    if op == "chown":
        return os.chown(a[0], a[1], a[2])
    if op == "utime":
        return os.utime(a[0], tuple(a[1]) if a[1] else None)
    if op == "getxattr":
        return S(os.getxattr(a[0], a[1]))
    if op == "setxattr":
        return os.setxattr(a[0], a[1], B(a[2]))
    if op == "stat":
        st = os.stat(a[0])
        return [st.st_uid, st.st_gid, st.st_mode]
    if op == "listdir":
        return sorted(os.listdir(a[0]))
    if op == "readfile":
        with open(a[0], "rb") as f:
            return S(f.read())
    raise ValueError("bad op " + op)
for line in sys.stdin:
    op, *a = json.loads(line)
    try:
        out = ["ok", run(op, a)]
    except OSError as e:
        out = [errno.errorcode.get(e.errno, str(e.errno)), None]
    print(json.dumps(out), flush=True)
"""


class Agent:
    """A process running as one user (real uid, gid and groups)."""

    def __init__(self, name, uid, gid, groups, cwd):
        self.name = name
        self.p = subprocess.Popen(
            [PY, "-c", AGENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=cwd, start_new_session=True,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/"},
            user=uid, group=gid, extra_groups=groups)

    def call(self, op, *args):
        self.p.stdin.write(json.dumps([op] + list(args)) + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], 20 * SLOW)
        if not ready:
            raise AssertionError("%s: %s%r did not return" % (self.name, op, args))
        line = self.p.stdout.readline()
        if not line:
            self.p.wait(timeout=10)
            raise AssertionError("%s died: %s" % (self.name, self.p.stderr.read()))
        return json.loads(line)

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()


class UsersTest(MountTest):
    """An allow_other mount; self.alice and self.bob act as the two users."""
    _users_up = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        acquire_users()
        cls._users_up = True

    @classmethod
    def tearDownClass(cls):
        if cls._users_up:
            cls._users_up = False
            errors = release_users()
            if errors:
                raise AssertionError("; ".join(errors))
        super().tearDownClass()

    def setUp(self):
        if not type(self)._users_up:
            # Run without class fixtures (run.py): released at exit.
            acquire_users()
            type(self)._users_up = True
        ids, self.shared = _fixture["ids"], _fixture["shared"]
        (self.a_uid, self.a_gid), (self.b_uid, self.b_gid) = ids[ALICE], ids[BOB]
        self.m = Mount(args=["-o", "allow_other"])
        self.addCleanup(self.m.cleanup)
        os.chmod(self.m.workdir, 0o755)  # the mount point is reachable by all
        self.m.start()
        self.agents = []
        self.alice = self.agent(ALICE, self.a_uid, self.a_gid)
        self.bob = self.agent(BOB, self.b_uid, self.b_gid)

    def agent(self, name, uid, gid):
        a = Agent(name, uid, gid, [self.shared], self.m.mnt)
        self.agents.append(a)
        self.addCleanup(a.stop)
        return a

    def tearDown(self):
        # Their open files must be closed before the unmount.
        for a in self.agents:
            a.stop()
        super().tearDown()

    # --- helpers ---

    def do(self, want, who, op, *args):
        """Runs op as who; asserts its outcome ("ok" or an errno name);
        returns its value."""
        res, val = who.call(op, *args)
        self.assertEqual(res, want, "%s: %s%r" % (who.name, op, args))
        return val

    def make(self, who, kind, name, mode, data=None, group=None):
        """who creates kind/name with mode (umask 0), optionally writing data
        once and giving it a group."""
        path = "%s/%s" % (kind, name)
        self.do("ok", who, "create", path, mode, *([data] if data is not None else []))
        if group is not None:
            self.do("ok", who, "chown", path, -1, group)
        return path

    def owner(self, path):
        st = os.stat(self.p(path))
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    def x(self, path, name):
        return self.xattr(self.p(path), name)

    def queued(self, path):
        return int(self.x(path, "messages"))

    def root_recv(self, path):
        fd = os.open(self.p(path), os.O_RDONLY | os.O_NONBLOCK)
        try:
            return os.read(fd, 65536).decode()
        finally:
            os.close(fd)


class TestMount(UsersTest):
    def test_mount_is_allow_other_with_default_permissions(self):
        opts = None
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == self.m.mnt:
                    opts = fields[fields.index("-") + 3].split(",")
        self.assertIsNotNone(opts, "the mount is not in mountinfo")
        self.assertIn("default_permissions", opts)
        self.assertIn("allow_other", opts)
        # Both users see the tree; the kind directories are root's, 1777.
        for who in (self.alice, self.bob):
            self.assertEqual(self.do("ok", who, "listdir", "."),
                             [".ipcfs", "event", "fifo", "mbox", "sem", "shm", "topic"])
            for k in KINDS:
                self.assertEqual(self.do("ok", who, "stat", k), [0, 0, stat.S_IFDIR | 0o1777])

    def test_status_files_readable_by_all_show_no_names(self):
        self.make(self.alice, "mbox", "secret-name-a", 0o600, "secret payload\n")
        self.make(self.bob, "fifo", "secret-name-b", 0o600, "more secret\n")
        for who in (self.alice, self.bob):
            for f in ("stats", "metrics"):
                path = ".ipcfs/" + f
                self.assertEqual(self.do("ok", who, "stat", path)[2], stat.S_IFREG | 0o444)
                text = self.do("ok", who, "readfile", path)
                self.assertIn("memory", text)
                self.assertNotIn("secret", text)
                self.do("EACCES", who, "send", path, "x")
                self.do("EPERM", who, "chmod", path, 0o666)
                self.do("EACCES", who, "create", ".ipcfs/new", 0o644)
        self.assertIn("ipcfs_objects{kind=\"mbox\"} 1", self.do("ok", self.bob, "readfile",
                                                                ".ipcfs/metrics"))


class TestCreate(UsersTest):
    def test_objects_belong_to_their_creator(self):
        for who, uid, gid in ((self.alice, self.a_uid, self.a_gid),
                              (self.bob, self.b_uid, self.b_gid)):
            for k in KINDS:
                for mode in (0o600, 0o640, 0o644, 0o666):
                    path = self.make(who, k, "%s-%o" % (who.name, mode), mode)
                    self.assertEqual(self.owner(path), (uid, gid, mode), path)
            self.do("ok", who, "mkdir", "mbox/%s-dir" % who.name, 0o750)
            self.assertEqual(self.owner("mbox/%s-dir" % who.name), (uid, gid, 0o750))
        # The owner may give an object to a group it is in.
        path = self.make(self.alice, "mbox", "grp", 0o640, group=self.shared)
        self.assertEqual(self.owner(path), (self.a_uid, self.shared, 0o640))

    def test_create_in_another_users_directory(self):
        self.do("ok", self.alice, "mkdir", "mbox/closed", 0o755)
        self.do("ok", self.alice, "mkdir", "mbox/open", 0o777)
        self.do("ok", self.alice, "mkdir", "mbox/opensticky", 0o1777)
        self.make(self.alice, "mbox/closed", "q", 0o666, "in closed\n")
        self.make(self.alice, "mbox/open", "q", 0o666, "in open\n")
        self.make(self.alice, "mbox/opensticky", "q", 0o666, "in sticky\n")
        # 0755: bob may not create, mkdir, remove or rename in it...
        self.do("EACCES", self.bob, "create", "mbox/closed/b", 0o644)
        self.do("EACCES", self.bob, "mkdir", "mbox/closed/d", 0o755)
        self.do("EACCES", self.bob, "unlink", "mbox/closed/q")
        self.do("EACCES", self.bob, "rename", "mbox/closed/q", "mbox/closed/r")
        # ...but may use what the mode bits of the object allow.
        self.do("ok", self.bob, "send", "mbox/closed/q", "from bob\n")
        self.assertEqual(self.do("ok", self.alice, "listdir", "mbox/closed"), ["q"])
        self.assertEqual(self.queued("mbox/closed/q"), 2)
        # 0777, not sticky: the directory's mode decides, as for any directory.
        self.do("ok", self.bob, "create", "mbox/open/b", 0o600)
        self.do("ok", self.bob, "rename", "mbox/open/q", "mbox/open/moved")
        self.do("ok", self.bob, "unlink", "mbox/open/moved")
        self.assertEqual(self.do("ok", self.alice, "listdir", "mbox/open"), ["b"])
        # 01777: create yes, remove what is not his no.
        self.do("ok", self.bob, "create", "mbox/opensticky/b", 0o600)
        self.do("EPERM", self.bob, "unlink", "mbox/opensticky/q")
        self.do("ok", self.bob, "unlink", "mbox/opensticky/b")
        self.assertEqual(self.do("ok", self.alice, "listdir", "mbox/opensticky"), ["q"])
        self.assertEqual(self.root_recv("mbox/opensticky/q"), "in sticky\n")
        # The same in another kind's tree.
        self.do("ok", self.alice, "mkdir", "shm/closed", 0o755)
        self.do("EACCES", self.bob, "create", "shm/closed/r", 0o644)
        self.do("EACCES", self.bob, "mkdir", "shm/closed/d", 0o755)
        self.assertEqual(os.listdir(self.p("shm/closed")), [])


class TestAccess(UsersTest):
    """Send, receive, map, P/V, subscribe/publish, wait/fire by mode."""

    def test_mailbox_send_receive(self):
        for mode in (0o600, 0o640, 0o604, 0o644, 0o666):
            self.make(self.alice, "mbox", "%o" % mode, mode, "m%o\n" % mode, group=self.shared)
        # bob is in the group: the group bits apply to him, not the others'.
        want = {0o600: ("EACCES", "EACCES"), 0o640: ("ok", "EACCES"),
                0o604: ("EACCES", "EACCES"), 0o644: ("ok", "EACCES"), 0o666: ("ok", "ok")}
        for mode, (recv, send) in want.items():
            path = "mbox/%o" % mode
            got = self.do(recv, self.bob, "recv", path)
            if recv == "ok":
                self.assertEqual(got, "m%o\n" % mode)
            self.do(send, self.bob, "send", path, "from bob\n")
        # What bob could not take or add is as it was.
        for mode in (0o600, 0o604):
            self.assertEqual(self.queued("mbox/%o" % mode), 1)
            self.assertEqual(self.do("ok", self.alice, "recv", "mbox/%o" % mode), "m%o\n" % mode)
        for mode in (0o640, 0o644):
            self.assertEqual(self.queued("mbox/%o" % mode), 0)
        self.assertEqual(self.do("ok", self.alice, "recv", "mbox/666"), "from bob\n")
        # A writer's open is refused too, before a message exists.
        self.do("EACCES", self.bob, "open", "mbox/600", os.O_WRONLY | os.O_NONBLOCK)
        self.do("EACCES", self.bob, "open", "mbox/644", os.O_RDWR | os.O_NONBLOCK)
        # Alice cannot read bob's private mailbox either.
        self.make(self.bob, "mbox", "bobs", 0o600, "bob only\n")
        self.do("EACCES", self.alice, "recv", "mbox/bobs")
        self.do("EACCES", self.alice, "send", "mbox/bobs", "x")
        self.assertEqual(self.do("ok", self.bob, "recv", "mbox/bobs"), "bob only\n")

    def test_fifo_send_receive(self):
        for mode in (0o600, 0o640, 0o644, 0o666):
            self.make(self.alice, "fifo", "%o" % mode, mode, "s%o" % mode, group=self.shared)
        want = {0o600: ("EACCES", "EACCES"), 0o640: ("ok", "EACCES"),
                0o644: ("ok", "EACCES"), 0o666: ("ok", "ok")}
        for mode, (recv, send) in want.items():
            path = "fifo/%o" % mode
            got = self.do(recv, self.bob, "recv", path)
            if recv == "ok":
                self.assertEqual(got, "s%o" % mode)
            self.do(send, self.bob, "send", path, "bob")
        self.assertEqual(os.stat(self.p("fifo/600")).st_size, 4)
        self.assertEqual(self.do("ok", self.alice, "recv", "fifo/600"), "s600")
        self.assertEqual(self.do("ok", self.alice, "recv", "fifo/666"), "bob")
        for mode in (0o640, 0o644):
            self.assertEqual(os.stat(self.p("fifo/%o" % mode)).st_size, 0)

    def test_region_map(self):
        import mmap
        ro, rw = mmap.PROT_READ, mmap.PROT_READ | mmap.PROT_WRITE
        for mode in (0o600, 0o640, 0o644, 0o666):
            path = self.make(self.alice, "shm", "%o" % mode, mode, group=self.shared)
            self.do("ok", self.alice, "truncate", path, 8192)
            self.do("ok", self.alice, "pwrite", path, 0, "alice%o" % mode)
        # 0600: bob cannot open it at all, so cannot map it.
        for flags in (os.O_RDONLY, os.O_RDWR):
            self.do("EACCES", self.bob, "open", "shm/600", flags)
        self.do("EACCES", self.bob, "pread", "shm/600", 0, 5)
        self.do("EACCES", self.bob, "truncate", "shm/600", 0)
        # 0644 (and 0640 through the group): a read-only shared map works and
        # follows alice's stores; a writable one does not.
        for mode in (0o640, 0o644):
            path = "shm/%o" % mode
            self.do("EACCES", self.bob, "open", path, os.O_RDWR)
            self.do("EACCES", self.bob, "open", path, os.O_WRONLY)
            fd = self.do("ok", self.bob, "open", path, os.O_RDONLY)
            self.do("EACCES", self.bob, "mmap", fd, 8192, rw)
            m = self.do("ok", self.bob, "mmap", fd, 8192, ro)
            self.assertEqual(self.do("ok", self.bob, "mget", m, 0, 8), "alice%o" % mode)
            self.do("ok", self.alice, "pwrite", path, 4096, "second page")
            self.assertEqual(self.do("ok", self.bob, "mget", m, 4096, 11), "second page")
            self.do("EACCES", self.bob, "truncate", path, 0)
            self.do("EACCES", self.bob, "pwrite", path, 0, "bob")
            self.do("ok", self.bob, "close", m)
            self.do("ok", self.bob, "close", fd)
            self.assertEqual(os.stat(self.p(path)).st_size, 8192)
            self.assertEqual(self.do("ok", self.alice, "pread", path, 0, 8), "alice%o" % mode)
        # 0666: bob maps it writable; alice's map and reads see his stores.
        fd = self.do("ok", self.bob, "open", "shm/666", os.O_RDWR)
        m = self.do("ok", self.bob, "mmap", fd, 8192, rw)
        afd = self.do("ok", self.alice, "open", "shm/666", os.O_RDWR)
        am = self.do("ok", self.alice, "mmap", afd, 8192, rw)
        self.do("ok", self.bob, "mset", m, 100, "stored by bob")
        self.assertEqual(self.do("ok", self.alice, "mget", am, 100, 13), "stored by bob")
        self.do("ok", self.alice, "mset", am, 200, "and by alice")
        self.assertEqual(self.do("ok", self.bob, "mget", m, 200, 12), "and by alice")
        for who, h in ((self.bob, m), (self.bob, fd), (self.alice, am), (self.alice, afd)):
            self.do("ok", who, "close", h)
        self.assertEqual(self.do("ok", self.alice, "pread", "shm/666", 100, 13), "stored by bob")

    def test_semaphore_p_v(self):
        for mode in (0o600, 0o640, 0o644, 0o666):
            self.make(self.alice, "sem", "%o" % mode, mode, "2", group=self.shared)
        # P (a read) needs read permission, V (a write) write permission.
        want = {0o600: ("EACCES", "EACCES"), 0o640: ("ok", "EACCES"),
                0o644: ("ok", "EACCES"), 0o666: ("ok", "ok")}
        for mode, (p, v) in want.items():
            path = "sem/%o" % mode
            got = self.do(p, self.bob, "recv", path)
            if p == "ok":
                self.assertEqual(got, "1\n")
            self.do(v, self.bob, "send", path, "3")
        for mode, value in ((0o600, "2"), (0o640, "1"), (0o644, "1"), (0o666, "4")):
            self.assertEqual(self.x("sem/%o" % mode, "value"), value, "%o" % mode)
        # A P that must wait is refused the same way, before it waits.
        self.do("EACCES", self.bob, "open", "sem/600", os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(self.do("ok", self.alice, "recv", "sem/600"), "1\n")
        self.assertEqual(self.x("sem/600", "value"), "1")

    def test_event_wait_fire(self):
        for mode in (0o600, 0o644, 0o666):
            self.make(self.alice, "event", "%o" % mode, mode)
        self.do("EACCES", self.bob, "open", "event/600", os.O_RDONLY | os.O_NONBLOCK)
        self.do("EACCES", self.bob, "send", "event/600", "x")
        self.do("EACCES", self.bob, "send", "event/644", "x")
        # 0644: bob waits, alice fires.
        w = self.do("ok", self.bob, "open", "event/644", os.O_RDONLY | os.O_NONBLOCK)
        self.do("EAGAIN", self.bob, "read", w, 100)
        self.do("ok", self.alice, "send", "event/644", "ring")
        self.assertEqual(self.do("ok", self.bob, "read", w, 100), "ring")
        self.do("ok", self.bob, "close", w)
        # 0666: alice waits, bob fires.
        w = self.do("ok", self.alice, "open", "event/666", os.O_RDONLY | os.O_NONBLOCK)
        self.do("ok", self.bob, "send", "event/666", "bob rings")
        self.assertEqual(self.do("ok", self.alice, "read", w, 100), "bob rings")
        self.do("ok", self.alice, "close", w)
        self.assertEqual(self.x("event/666", "in_messages"), "1")
        self.assertEqual(self.x("event/644", "in_messages"), "1")
        self.assertEqual(self.x("event/600", "in_messages"), "0")

    def test_topic_subscribe_publish(self):
        for mode in (0o600, 0o640, 0o644, 0o666):
            self.make(self.alice, "topic", "%o" % mode, mode, group=self.shared)
        self.do("EACCES", self.bob, "open", "topic/600", os.O_RDONLY | os.O_NONBLOCK)
        for mode in (0o600, 0o640, 0o644):
            self.do("EACCES", self.bob, "send", "topic/%o" % mode, "x")
        # 0644 and 0640: bob subscribes, alice publishes.
        for mode in (0o640, 0o644):
            path = "topic/%o" % mode
            s = self.do("ok", self.bob, "open", path, os.O_RDONLY | os.O_NONBLOCK)
            self.assertEqual(self.x(path, "subscribers"), "1")
            self.do("ok", self.alice, "send", path, "news %o" % mode)
            self.assertEqual(self.do("ok", self.bob, "read", s, 100), "news %o" % mode)
            self.do("EAGAIN", self.bob, "read", s, 100)
            self.do("ok", self.bob, "close", s)
        # 0666: alice and bob subscribe, bob publishes.
        sa = self.do("ok", self.alice, "open", "topic/666", os.O_RDONLY | os.O_NONBLOCK)
        sb = self.do("ok", self.bob, "open", "topic/666", os.O_RDONLY | os.O_NONBLOCK)
        self.do("ok", self.bob, "send", "topic/666", "from bob")
        self.assertEqual(self.do("ok", self.alice, "read", sa, 100), "from bob")
        self.assertEqual(self.do("ok", self.bob, "read", sb, 100), "from bob")
        self.do("ok", self.alice, "close", sa)
        self.do("ok", self.bob, "close", sb)
        self.assertEqual(self.x("topic/600", "in_messages"), "0")


class TestRemove(UsersTest):
    def test_sticky_kind_directories(self):
        data = {"sem": ("1", "1"), "event": (None, None)}
        for k in KINDS:
            da, db = data.get(k, ("a1", "b1"))
            self.make(self.alice, k, "alices", 0o666, da)
            self.make(self.bob, k, "bobs", 0o666, db)
            self.do("ok", self.alice, "mkdir", k + "/alicedir", 0o777)
            # Neither may remove or rename the other's, nor replace it.
            self.do("EPERM", self.bob, "unlink", k + "/alices")
            self.do("EPERM", self.bob, "rename", k + "/alices", k + "/stolen")
            self.do("EPERM", self.bob, "rename", k + "/bobs", k + "/alices")
            self.do("EPERM", self.bob, "rmdir", k + "/alicedir")
            self.do("EPERM", self.bob, "rename", k + "/alicedir", k + "/bobdir")
            self.do("EPERM", self.alice, "unlink", k + "/bobs")
            self.do("EPERM", self.alice, "rename", k + "/bobs", k + "/mine")
            self.assertEqual(sorted(os.listdir(self.p(k))), ["alicedir", "alices", "bobs"], k)
            self.assertEqual(self.owner(k + "/alices")[0], self.a_uid)
            self.assertEqual(self.owner(k + "/bobs")[0], self.b_uid)
        # Nothing was lost.
        for name, data in (("alices", "a1"), ("bobs", "b1")):
            self.assertEqual(self.root_recv("mbox/" + name), data)
            self.assertEqual(self.root_recv("fifo/" + name), data)
            self.assertEqual(self.x("sem/" + name, "value"), "1")
            with open(self.p("shm", name), "rb") as f:
                self.assertEqual(f.read(), data.encode())
        # Each may rename and remove its own.
        for k in KINDS:
            self.do("ok", self.bob, "rename", k + "/bobs", k + "/bobs2")
            self.do("ok", self.bob, "unlink", k + "/bobs2")
            self.do("ok", self.alice, "rmdir", k + "/alicedir")
        # Root may remove anybody's.
        for k in KINDS:
            os.unlink(self.p(k, "alices"))
            self.assertEqual(os.listdir(self.p(k)), [], k)

    def test_directories_in_the_sticky_kind_directory(self):
        self.do("ok", self.alice, "mkdir", "mbox/tree", 0o777)
        self.make(self.bob, "mbox/tree", "bobq", 0o644, "b\n")
        # The tree is alice's and not sticky: she may remove bob's object in it,
        # but bob may not remove her directory from the kind directory.
        self.do("EPERM", self.bob, "rmdir", "mbox/tree")
        self.do("ENOTEMPTY", self.alice, "rmdir", "mbox/tree")
        self.do("ok", self.alice, "unlink", "mbox/tree/bobq")
        self.do("ok", self.alice, "rmdir", "mbox/tree")
        self.assertEqual(os.listdir(self.p("mbox")), [])


class TestChmodChown(UsersTest):
    def test_only_the_owner_changes_mode_and_group_only_root_the_owner(self):
        for k in KINDS:
            path = self.make(self.alice, k, "o", 0o666)
            # bob, though he may write it: no chmod, chown or chgrp.
            self.do("EPERM", self.bob, "chmod", path, 0o777)
            self.do("EPERM", self.bob, "chmod", path, 0o600)
            self.do("EPERM", self.bob, "chown", path, self.b_uid, -1)
            self.do("EPERM", self.bob, "chown", path, -1, self.b_gid)
            self.do("EPERM", self.bob, "chown", path, -1, self.shared)
            # Setting explicit times is the owner's too; "now" needs write access.
            self.do("EPERM", self.bob, "utime", path, [1000000000, 1000000000])
            self.do("ok", self.bob, "utime", path, None)
            self.assertEqual(self.owner(path), (self.a_uid, self.a_gid, 0o666), k)
            # alice: chmod yes; give it away no; chgrp to her groups only.
            self.do("EPERM", self.alice, "chown", path, self.b_uid, -1)
            self.do("EPERM", self.alice, "chown", path, -1, self.b_gid)
            self.do("ok", self.alice, "chown", path, -1, self.shared)
            self.do("ok", self.alice, "chmod", path, 0o640)
            self.assertEqual(self.owner(path), (self.a_uid, self.shared, 0o640), k)
            # Root gives it to bob; now he decides and she does not.
            os.chown(self.p(path), self.b_uid, self.b_gid)
            self.do("EPERM", self.alice, "chmod", path, 0o666)
            self.do("ok", self.bob, "chmod", path, 0o600)
            self.assertEqual(self.owner(path), (self.b_uid, self.b_gid, 0o600), k)
        # A directory of alice's likewise.
        self.do("ok", self.alice, "mkdir", "mbox/d", 0o755)
        self.do("EPERM", self.bob, "chmod", "mbox/d", 0o777)
        self.do("EPERM", self.bob, "chown", "mbox/d", self.b_uid, self.b_gid)
        self.assertEqual(self.owner("mbox/d"), (self.a_uid, self.a_gid, 0o755))

    def test_chmod_takes_effect_at_once(self):
        path = self.make(self.alice, "mbox", "q", 0o600, "one\n")
        self.do("EACCES", self.bob, "recv", path)
        self.do("ok", self.alice, "chmod", path, 0o644)
        self.assertEqual(self.do("ok", self.bob, "recv", path), "one\n")
        self.do("EACCES", self.bob, "send", path, "x")
        self.do("ok", self.alice, "chmod", path, 0o622)
        self.do("ok", self.bob, "send", path, "two\n")
        self.do("EACCES", self.bob, "recv", path)
        self.assertEqual(self.do("ok", self.alice, "recv", path), "two\n")


class TestSettings(UsersTest):
    def test_reading_settings_needs_read_permission(self):
        for k in KINDS:
            setting, _, statistic = SETTING[k]
            for mode in (0o600, 0o640, 0o644, 0o200):
                path = self.make(self.alice, k, "%o" % mode, mode, group=self.shared)
                for key in ("kind", setting, statistic):
                    name = "user.ipcfs." + key
                    want = self.x(path, key)
                    got = self.do("EACCES" if mode in (0o600, 0o200) else "ok",
                                  self.bob, "getxattr", path, name)
                    if mode in (0o640, 0o644):
                        self.assertEqual(got, want, "%s %s" % (path, key))
                    # The owner reads her own settings only with read access
                    # too; root always.
                    self.do("EACCES" if mode == 0o200 else "ok", self.alice, "getxattr",
                            path, name)

    def test_only_the_owner_or_root_changes_settings(self):
        for k in KINDS:
            setting, value, statistic = SETTING[k]
            name = "user.ipcfs." + setting
            for mode in (0o600, 0o644, 0o666):
                path = self.make(self.alice, k, "%o" % mode, mode)
                before = self.x(path, setting)
                self.assertNotEqual(before, value)
                # Without write permission the kernel refuses (EACCES); with
                # it, the daemon does (EPERM): only the owner or root.
                self.do("EPERM" if mode == 0o666 else "EACCES", self.bob, "setxattr",
                        path, name, value)
                self.assertEqual(self.x(path, setting), before, path)
            # Even the owner cannot set a statistic.
            self.do("EPERM", self.alice, "setxattr", k + "/666", "user.ipcfs." + statistic, "1")
            # The owner may; root may.
            self.do("ok", self.alice, "setxattr", k + "/666", name, value)
            self.assertEqual(self.x(k + "/666", setting), value)
            self.set_xattr(self.p(k, "600"), setting, value)
            self.assertEqual(self.x(k + "/600", setting), value)
            # Ownership decides, not who made it: given to bob, it is his.
            os.chown(self.p(k, "666"), self.b_uid, self.b_gid)
            self.do("EPERM", self.alice, "setxattr", k + "/666", name, before)
            self.do("ok", self.bob, "setxattr", k + "/666", name, before)
            self.assertEqual(self.x(k + "/666", setting), before)

    def test_others_cannot_shrink_a_queue_or_change_its_framing(self):
        path = self.make(self.alice, "mbox", "jobs", 0o666, "job 1\n")
        self.do("ok", self.bob, "send", path, "job 2\n")
        for key, val in (("max_messages", "1"), ("max_bytes", "1"), ("framing", "line")):
            self.do("EPERM", self.bob, "setxattr", path, "user.ipcfs." + key, val)
        self.assertEqual((self.x(path, "max_messages"), self.x(path, "max_bytes"),
                          self.x(path, "framing")), ("10000", str(64 << 20), "open"))
        # A semaphore's value: others may P and V it as the bits allow, but
        # not set it.
        sem = self.make(self.alice, "sem", "s", 0o666, "5")
        self.do("EPERM", self.bob, "setxattr", sem, "user.ipcfs.value", "1000")
        self.assertEqual(self.x(sem, "value"), "5")
        self.do("ok", self.bob, "send", sem, "1")
        self.assertEqual(self.x(sem, "value"), "6")
        self.assertEqual(self.queued(path), 2)


class TestRoot(UsersTest):
    def test_root_may_do_everything(self):
        q = self.make(self.alice, "mbox", "q", 0o600, "private\n")
        f = self.make(self.alice, "fifo", "f", 0o600, "bytes")
        r = self.make(self.alice, "shm", "r", 0o600)
        s = self.make(self.alice, "sem", "s", 0o600, "1")
        e = self.make(self.alice, "event", "e", 0o600)
        t = self.make(self.alice, "topic", "t", 0o600)
        self.do("ok", self.alice, "mkdir", "mbox/d", 0o700)
        self.make(self.alice, "mbox/d", "inner", 0o600, "deep\n")
        self.assertEqual(self.root_recv(q), "private\n")
        self.sh("echo 'from root' > %s" % q)
        self.assertEqual(self.do("ok", self.alice, "recv", q), "from root\n")
        self.assertEqual(self.root_recv(f), "bytes")
        self.assertEqual(self.root_recv("mbox/d/inner"), "deep\n")
        import mmap
        os.truncate(self.p(r), 4096)
        fd = os.open(self.p(r), os.O_RDWR)
        try:
            with mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
                m[:4] = b"root"
        finally:
            os.close(fd)
        self.assertEqual(self.do("ok", self.alice, "pread", r, 0, 4), "root")
        self.assertEqual(self.root_recv(s), "1\n")
        self.sh("echo 2 > %s" % s)
        self.assertEqual(self.x(s, "value"), "2")
        w = self.do("ok", self.alice, "open", e, os.O_RDONLY | os.O_NONBLOCK)
        self.sh("printf fire > %s" % e)
        self.assertEqual(self.do("ok", self.alice, "read", w, 100), "fire")
        self.do("ok", self.alice, "close", w)
        sub = self.do("ok", self.alice, "open", t, os.O_RDONLY | os.O_NONBLOCK)
        self.sh("printf news > %s" % t)
        self.assertEqual(self.do("ok", self.alice, "read", sub, 100), "news")
        self.do("ok", self.alice, "close", sub)
        for path in (q, f, r, s, e, t):
            k = path.split("/")[0]
            setting, value, _ = SETTING[k]
            self.set_xattr(self.p(path), setting, value)
            self.assertEqual(self.x(path, setting), value)
            os.chmod(self.p(path), 0o640)
            os.chown(self.p(path), self.b_uid, self.shared)
            self.assertEqual(self.owner(path), (self.b_uid, self.shared, 0o640))
            os.rename(self.p(path), self.p(path + "-moved"))
            os.unlink(self.p(path + "-moved"))
        self.sh("rm -r mbox/d")
        for k in KINDS:
            self.assertEqual(os.listdir(self.p(k)), [], k)


if __name__ == "__main__":
    unittest.main()
