"""test_namespace.py - the tree: directories, creating, removing and renaming
objects, attributes (mode, owner, times, size), names, and permissions
between users."""
import calendar
import errno
import json
import os
import stat
import subprocess
import sys

from harness import SLOW, Mount, MountTest, as_user

NOBODY = 65534
# The other user's interpreter must be reachable by that user.
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# Runs file operations as another user; prints one result per operation:
# "ok", "ok:DATA" or the errno name.
CHILD = r"""
import errno, json, os, sys
umask, ops = json.loads(sys.argv[1])
os.umask(umask)
out = []
for op, *a in ops:
    try:
        res = "ok"
        if op == "read":
            fd = os.open(a[0], os.O_RDONLY | os.O_NONBLOCK)
            try:
                res = "ok:" + os.read(fd, 65536).decode()
            finally:
                os.close(fd)
        elif op == "write":
            fd = os.open(a[0], os.O_WRONLY)
            try:
                os.write(fd, a[1].encode())
            finally:
                os.close(fd)
        elif op == "create":
            fd = os.open(a[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, a[1])
            try:
                if len(a) > 2:
                    os.write(fd, a[2].encode())
            finally:
                os.close(fd)
        elif op == "unlink":
            os.unlink(a[0])
        elif op == "rename":
            os.rename(a[0], a[1])
        elif op == "chmod":
            os.chmod(a[0], a[1])
        elif op == "chown":
            os.chown(a[0], a[1], a[2])
        elif op == "setxattr":
            os.setxattr(a[0], a[1], a[2].encode())
        elif op == "getxattr":
            res = "ok:" + os.getxattr(a[0], a[1]).decode()
        elif op == "mkdir":
            os.mkdir(a[0], a[1])
        elif op == "rmdir":
            os.rmdir(a[0])
        elif op == "stat":
            st = os.stat(a[0])
            res = "ok:%d %d %o" % (st.st_uid, st.st_gid, st.st_mode)
        else:
            res = "bad op " + op
    except OSError as e:
        res = errno.errorcode.get(e.errno, str(e.errno))
    out.append(res)
print(json.dumps(out))
"""


def run_as(uid, ops, umask=0o022, cwd=None, gid=None):
    """Runs ops ([op, args...]) as uid; returns their results."""
    r = subprocess.run([PY, "-c", CHILD, json.dumps([umask, ops])], capture_output=True,
                       text=True, timeout=20 * SLOW, cwd=cwd or "/", **as_user(uid, gid))
    if r.returncode != 0:
        raise AssertionError("child failed: %s" % r.stderr)
    return json.loads(r.stdout)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class NsTest(MountTest):
    def errno_of(self, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            return e.errno
        return 0

    def put(self, path, msg):
        with open(path, "w") as f:
            f.write(msg)

    def get(self, path):
        with open(path) as f:
            return f.read()

    def nmsgs(self, path):
        return int(self.xattr(path, "messages"))


class TestDirectories(NsTest):
    def test_kind_directories(self):
        st = os.stat(self.m.mnt)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        for k in ("mbox", "fifo"):
            st = os.stat(self.p(k))
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o1777)
            self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        r = self.sh("LC_ALL=C ls -ld mbox fifo")
        for line in r.stdout.splitlines():
            self.assertTrue(line.startswith("drwxrwxrwt"), line)

    def test_kind_directories_fixed(self):
        for k in ("mbox", "fifo"):
            self.assertIn(self.errno_of(os.rmdir, self.p(k)),
                          (errno.EBUSY, errno.EPERM, errno.EACCES))
            self.assertIn(self.errno_of(os.rename, self.p(k), self.p(k + "2")),
                          (errno.EBUSY, errno.EPERM, errno.EACCES))
            self.assertIn(self.errno_of(os.chmod, self.p(k), 0o755),
                          (errno.EPERM, errno.EACCES))
            self.assertEqual(mode_of(self.p(k)), 0o1777)
        self.assertIn("mbox", os.listdir(self.m.mnt))

    def test_mkdir_nested(self):
        self.sh("umask 022; mkdir mbox/app1 && mkdir mbox/app1/jobs && mkdir -p fifo/a/b/c")
        for d in ("mbox/app1", "mbox/app1/jobs", "fifo/a/b/c"):
            st = os.stat(self.p(d))
            self.assertTrue(stat.S_ISDIR(st.st_mode), d)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o755, d)
        self.assertEqual(os.listdir(self.p("mbox")), ["app1"])
        self.assertEqual(os.listdir(self.p("mbox/app1")), ["jobs"])
        r = self.sh("echo job1 > mbox/app1/jobs/q && echo job2 > mbox/app1/jobs/q"
                    " && cat mbox/app1/jobs/q")
        self.assertEqual(r.stdout, "job1\n")
        self.assertEqual(self.xattr(self.p("mbox/app1/jobs/q"), "kind"), "mbox")
        self.assertEqual(self.xattr(self.p("fifo/a/b/c"), "kind"), "dir")
        # A directory's objects are of its kind.
        self.sh("echo bytes > fifo/a/b/c/s")
        self.assertEqual(self.xattr(self.p("fifo/a/b/c/s"), "kind"), "fifo")
        self.assertEqual(self.errno_of(os.mkdir, self.p("mbox/app1")), errno.EEXIST)

    def test_rmdir(self):
        self.sh("mkdir -p mbox/app1/jobs && echo x > mbox/app1/jobs/q")
        self.assertEqual(self.errno_of(os.rmdir, self.p("mbox/app1")), errno.ENOTEMPTY)
        self.assertEqual(self.errno_of(os.rmdir, self.p("mbox/app1/jobs")), errno.ENOTEMPTY)
        self.assertEqual(self.errno_of(os.rmdir, self.p("mbox/app1/jobs/q")), errno.ENOTDIR)
        self.assertEqual(self.errno_of(os.unlink, self.p("mbox/app1/jobs")), errno.EISDIR)
        self.assertTrue(os.path.isdir(self.p("mbox/app1/jobs")))
        os.unlink(self.p("mbox/app1/jobs/q"))
        os.rmdir(self.p("mbox/app1/jobs"))
        os.rmdir(self.p("mbox/app1"))
        self.assertEqual(os.listdir(self.p("mbox")), [])
        self.assertEqual(self.errno_of(os.rmdir, self.p("mbox/app1")), errno.ENOENT)

    def test_big_directory(self):
        os.mkdir(self.p("mbox/big"))
        names = ["entry-%04d-%s" % (i, "x" * (i % 50)) for i in range(700)]
        for n in names:
            os.close(os.open(self.p("mbox/big", n), os.O_WRONLY | os.O_CREAT, 0o644))
        os.mkdir(self.p("mbox/big/sub"))
        self.assertEqual(sorted(os.listdir(self.p("mbox/big"))), sorted(names + ["sub"]))
        self.assertEqual(os.stat(self.p("mbox/big")).st_nlink, 2)
        # Renaming during a listing neither drops nor repeats an entry.
        seen = []
        with os.scandir(self.p("mbox/big")) as it:
            for i, e in enumerate(it):
                seen.append(e.name)
                if i == 10:
                    os.rename(self.p("mbox/big", names[0]), self.p("mbox/big", "renamed"))
        self.assertEqual(len(seen), len(set(seen)))
        self.assertGreaterEqual(len(seen), 700)
        # rm -r removes while it reads the directory.
        self.sh("rm -r mbox/big")
        self.assertEqual(os.listdir(self.p("mbox")), [])

    def test_mkdir_in_root_refused(self):
        for name in ("newkind", "mbox2"):
            self.assertIn(self.errno_of(os.mkdir, self.p(name)), (errno.EPERM, errno.EACCES))
        self.assertEqual(self.errno_of(os.mkdir, self.p("mbox")), errno.EEXIST)
        r = self.sh("touch newfile", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("newkind", os.listdir(self.m.mnt))
        self.assertNotIn("newfile", os.listdir(self.m.mnt))

    def test_links_refused(self):
        self.sh("echo x > mbox/q")
        self.assertIn(self.errno_of(os.link, self.p("mbox/q"), self.p("mbox/l")),
                      (errno.EPERM, errno.ENOTSUP))
        self.assertIn(self.errno_of(os.symlink, "q", self.p("mbox/s")),
                      (errno.EPERM, errno.ENOTSUP))
        self.assertIn(self.errno_of(os.mkfifo, self.p("fifo/kernelfifo")),
                      (errno.EPERM, errno.ENOTSUP))
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["q"])
        self.assertEqual(os.listdir(self.p("fifo")), [])


class TestObjects(NsTest):
    def test_create_by_touch_echo_append(self):
        self.sh("touch mbox/t && echo one > mbox/e && echo app >> mbox/a && echo two >> mbox/e")
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["a", "e", "t"])
        for name, n in (("t", 0), ("e", 2), ("a", 1)):
            st = os.stat(self.p("mbox", name))
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(self.nmsgs(self.p("mbox", name)), n, name)
        self.assertEqual(os.stat(self.p("mbox/t")).st_size, 0)
        self.assertEqual(self.xattr(self.p("mbox/t"), "kind"), "mbox")
        r = self.sh("cat mbox/e; cat mbox/e; cat mbox/a")
        self.assertEqual(r.stdout, "one\ntwo\napp\n")
        # touch on a mailbox with messages leaves them.
        self.sh("echo kept > mbox/t && touch mbox/t")
        self.assertEqual(self.nmsgs(self.p("mbox/t")), 1)
        # FIFOs: bytes appended.
        self.sh("touch fifo/f && echo abc >> fifo/f && echo def >> fifo/f")
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 8)
        self.assertEqual(self.xattr(self.p("fifo/f"), "kind"), "fifo")
        self.assertEqual(self.sh("cat fifo/f").stdout, "abc\ndef\n")

    def test_create_exclusive(self):
        self.sh("echo x > mbox/q")
        with self.assertRaises(FileExistsError):
            os.open(self.p("mbox/q"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 1)

    def test_rm(self):
        self.sh("echo a > mbox/q && echo b > mbox/q && echo s > fifo/f")
        self.sh("rm mbox/q fifo/f")
        self.assertEqual(os.listdir(self.p("mbox")), [])
        self.assertEqual(os.listdir(self.p("fifo")), [])
        self.assertEqual(self.errno_of(os.stat, self.p("mbox/q")), errno.ENOENT)
        self.assertEqual(self.errno_of(os.unlink, self.p("mbox/q")), errno.ENOENT)
        # A new object of the same name starts empty.
        self.sh("touch mbox/q fifo/f")
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 0)
        self.assertEqual(os.stat(self.p("mbox/q")).st_size, 0)
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 0)

    def test_mv_keeps_messages(self):
        self.sh("echo a > mbox/q && echo b > mbox/q && mv mbox/q mbox/r")
        self.assertEqual(os.listdir(self.p("mbox")), ["r"])
        self.assertEqual(self.errno_of(os.stat, self.p("mbox/q")), errno.ENOENT)
        self.assertEqual(self.nmsgs(self.p("mbox/r")), 2)
        self.assertEqual(self.sh("cat mbox/r; cat mbox/r").stdout, "a\nb\n")

    def test_mv_between_directories(self):
        self.sh("mkdir -p mbox/d1 mbox/d2/sub && echo one > mbox/d1/q && echo two > mbox/d1/q"
                " && mv mbox/d1/q mbox/d2/sub/q2 && mv mbox/d2/sub/q2 mbox/top")
        self.assertEqual(os.listdir(self.p("mbox/d1")), [])
        self.assertEqual(os.listdir(self.p("mbox/d2/sub")), [])
        self.assertEqual(self.sh("cat mbox/top; cat mbox/top").stdout, "one\ntwo\n")
        # A directory moves with its contents.
        self.sh("echo inside > mbox/d1/x && mv mbox/d1 mbox/d2/sub/moved")
        self.assertEqual(self.sh("cat mbox/d2/sub/moved/x").stdout, "inside\n")
        self.assertNotIn("d1", os.listdir(self.p("mbox")))
        # A directory cannot move into itself.
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/d2"), self.p("mbox/d2/sub/in")),
                         errno.EINVAL)
        # FIFO bytes move too.
        self.sh("mkdir fifo/d && printf stream > fifo/s && mv fifo/s fifo/d/s")
        self.assertEqual(self.sh("cat fifo/d/s").stdout, "stream")

    def test_mv_replaces(self):
        self.sh("echo src > mbox/a && echo old1 > mbox/b && echo old2 > mbox/b && mv mbox/a mbox/b")
        self.assertEqual(os.listdir(self.p("mbox")), ["b"])
        self.assertEqual(self.nmsgs(self.p("mbox/b")), 1)
        self.assertEqual(self.sh("cat mbox/b").stdout, "src\n")
        # Directory over a non-empty directory: ENOTEMPTY; kinds of node must match.
        self.sh("mkdir -p mbox/d mbox/e/f && touch mbox/o")
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/d"), self.p("mbox/e")),
                         errno.ENOTEMPTY)
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/o"), self.p("mbox/d")),
                         errno.EISDIR)
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/d"), self.p("mbox/o")),
                         errno.ENOTDIR)

    def test_rename_across_kinds_exdev(self):
        self.sh("echo a > mbox/q && echo b > mbox/q && mkdir mbox/d && printf s > fifo/f")
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/q"), self.p("fifo/q")),
                         errno.EXDEV)
        self.assertEqual(self.errno_of(os.rename, self.p("mbox/d"), self.p("fifo/d")),
                         errno.EXDEV)
        self.assertEqual(self.errno_of(os.rename, self.p("fifo/f"), self.p("mbox/f")),
                         errno.EXDEV)
        # Nothing moved or lost.
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["d", "q"])
        self.assertEqual(os.listdir(self.p("fifo")), ["f"])
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 2)
        # Out of the kinds into the root: refused.
        self.assertIn(self.errno_of(os.rename, self.p("mbox/q"), self.p("q")),
                      (errno.EPERM, errno.EACCES, errno.EXDEV))
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 2)

    def test_chmod_chown(self):
        self.sh("echo hello > mbox/q && chmod 640 mbox/q && chown 65534:65534 mbox/q")
        st = os.stat(self.p("mbox/q"))
        self.assertEqual(st.st_mode, stat.S_IFREG | 0o640)
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOBODY))
        self.sh("chmod u+x,g-r,o+w mbox/q && chown :0 mbox/q")
        st = os.stat(self.p("mbox/q"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o702)
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, 0))
        # Directories too.
        self.sh("mkdir mbox/d && chmod 2750 mbox/d && chown 65534:0 mbox/d")
        st = os.stat(self.p("mbox/d"))
        self.assertEqual(st.st_mode, stat.S_IFDIR | 0o2750)
        self.assertEqual(st.st_uid, NOBODY)
        # Messages survive attribute changes.
        self.assertEqual(self.sh("cat mbox/q").stdout, "hello\n")

    def test_touch_sets_mtime(self):
        self.sh("echo x > mbox/q && TZ=UTC touch -d '2001-02-03 04:05:06' mbox/q")
        want = calendar.timegm((2001, 2, 3, 4, 5, 6, 0, 0, 0))
        st = os.stat(self.p("mbox/q"))
        self.assertEqual(st.st_mtime, want)
        self.assertEqual(st.st_size, 2)
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 1)
        r = self.sh("TZ=UTC stat -c %y mbox/q")
        self.assertTrue(r.stdout.startswith("2001-02-03 04:05:06"), r.stdout)
        # On a directory and a FIFO.
        self.sh("mkdir mbox/d && touch fifo/f && TZ=UTC touch -d '2001-02-03 04:05:06' mbox/d fifo/f")
        self.assertEqual(os.stat(self.p("mbox/d")).st_mtime, want)
        self.assertEqual(os.stat(self.p("fifo/f")).st_mtime, want)
        # A new message is a change: mtime moves on.
        self.sh("echo y > mbox/q")
        self.assertGreater(os.stat(self.p("mbox/q")).st_mtime, want + 3600)

    def test_stat_size_is_bytes_queued(self):
        self.sh("echo hello > mbox/q && echo abc > mbox/q && printf 0123456789 > fifo/f")
        st = os.stat(self.p("mbox/q"))
        self.assertEqual(st.st_size, 10)
        self.assertEqual(self.xattr(self.p("mbox/q"), "bytes"), "10")
        r = self.sh("stat -c '%s %a %u %g %F' mbox/q")
        self.assertEqual(r.stdout.split(), ["10", "644", "0", "0", "regular", "file"])
        self.sh("cat mbox/q > /dev/null")
        self.assertEqual(os.stat(self.p("mbox/q")).st_size, 4)
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 10)
        fd = os.open(self.p("fifo/f"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.assertEqual(os.read(fd, 3), b"012")
            self.assertEqual(os.fstat(fd).st_size, 7)
        finally:
            os.close(fd)
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 7)

    def test_ls_l(self):
        self.sh("umask 022; echo hello > mbox/q && chmod 640 mbox/q && chown 65534:65534 mbox/q"
                " && mkdir mbox/d && touch mbox/empty")
        r = self.sh("LC_ALL=C ls -ln mbox")
        lines = {l.split()[-1]: l.split() for l in r.stdout.splitlines()[1:]}
        self.assertEqual(sorted(lines), ["d", "empty", "q"])
        self.assertEqual(lines["q"][0], "-rw-r-----")
        self.assertEqual(lines["q"][2:5], ["65534", "65534", "6"])
        self.assertEqual(lines["empty"][0], "-rw-r--r--")
        self.assertEqual(lines["empty"][2:5], ["0", "0", "0"])
        self.assertTrue(lines["d"][0].startswith("drwxr-xr-x"), lines["d"])

    def test_statfs(self):
        r = self.sh("stat -f -c '%l' .")
        self.assertEqual(r.stdout.strip(), "255")
        sv = os.statvfs(self.m.mnt)
        self.assertEqual(sv.f_namemax, 255)
        self.assertGreater(sv.f_files, 0)
        self.assertGreater(sv.f_blocks, 0)
        before = os.statvfs(self.m.mnt).f_ffree
        self.sh("touch mbox/a mbox/b && mkdir mbox/c")
        self.assertEqual(os.statvfs(self.m.mnt).f_ffree, before - 3)
        self.sh("rm mbox/a")
        self.assertEqual(os.statvfs(self.m.mnt).f_ffree, before - 2)

    def test_name_length(self):
        ok = "n" * 255
        self.sh("echo long > mbox/%s" % ok)
        self.assertIn(ok, os.listdir(self.p("mbox")))
        self.assertEqual(self.get(self.p("mbox", ok)), "long\n")
        os.mkdir(self.p("fifo", ok))
        os.rename(self.p("mbox", ok), self.p("mbox", "m" * 255))
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["m" * 255])
        long = "n" * 256
        for fn, args in ((os.open, (self.p("mbox", long), os.O_WRONLY | os.O_CREAT)),
                         (os.mkdir, (self.p("mbox", long),)),
                         (os.stat, (self.p("mbox", long),)),
                         (os.rename, (self.p("mbox", "m" * 255), self.p("mbox", long)))):
            self.assertEqual(self.errno_of(fn, *args), errno.ENAMETOOLONG, fn.__name__)
        # Bytes, not characters: 127 two-byte characters and one byte fit.
        utf_ok, utf_long = "\u00e9" * 127 + "x", "\u00e9" * 128
        self.assertEqual(len(utf_ok.encode()), 255)
        self.put(self.p("mbox", utf_ok), "utf\n")
        self.assertEqual(self.get(self.p("mbox", utf_ok)), "utf\n")
        self.assertEqual(self.errno_of(self.put, self.p("mbox", utf_long), "x"),
                         errno.ENAMETOOLONG)
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), sorted(["m" * 255, utf_ok]))

    def test_other_users_locked_out_without_allow_other(self):
        self.sh("echo x > mbox/q && chmod 666 mbox/q")
        os.chmod(self.m.workdir, 0o755)  # the mount point itself is reachable
        res = run_as(NOBODY, [["stat", self.m.workdir], ["stat", self.m.mnt],
                              ["stat", self.p("mbox")], ["write", self.p("mbox/q"), "y"]])
        self.assertEqual(res[0], "ok:0 0 40755")
        self.assertEqual(res[1:], ["EACCES", "EACCES", "EACCES"])
        self.assertEqual(self.nmsgs(self.p("mbox/q")), 1)


class TestUsers(NsTest):
    """A second user on an allow_other mount."""

    def setUp(self):
        self.m = Mount(args=["-o", "allow_other"])
        self.addCleanup(self.m.cleanup)
        os.chmod(self.m.workdir, 0o755)
        self.m.start()

    def nobody_sh(self, script, check=True):
        r = subprocess.run(["bash", "-c", script], cwd=self.m.mnt, capture_output=True, text=True,
                           timeout=20 * SLOW, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
                           **as_user(NOBODY))
        if check and r.returncode != 0:
            self.fail("as nobody (%d): %s\n%s" % (r.returncode, script, r.stderr))
        return r

    def nobody(self, *ops, umask=0o022):
        return run_as(NOBODY, [list(o) for o in ops], umask=umask, cwd=self.m.mnt)

    def test_new_objects_belong_to_creator_with_umask(self):
        self.nobody_sh("umask 077; touch mbox/u1 && echo x > mbox/u2 && mkdir mbox/ud"
                       " && echo y >> fifo/uf")
        for path, mode in (("mbox/u1", 0o600), ("mbox/u2", 0o600), ("mbox/ud", 0o700),
                           ("fifo/uf", 0o600)):
            st = os.stat(self.p(path))
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOBODY), path)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, path)
        self.nobody_sh("umask 022; touch mbox/v && mkdir mbox/vd && echo z > mbox/vd/q")
        self.assertEqual(mode_of(self.p("mbox/v")), 0o644)
        self.assertEqual(mode_of(self.p("mbox/vd")), 0o755)
        self.assertEqual(os.stat(self.p("mbox/vd/q")).st_uid, NOBODY)
        self.sh("umask 027; touch mbox/r && mkdir mbox/rd")
        st = os.stat(self.p("mbox/r"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 0, 0o640))
        self.assertEqual(mode_of(self.p("mbox/rd")), 0o750)
        # The creator reads its message back.
        self.assertEqual(self.nobody_sh("cat mbox/u2").stdout, "x\n")

    def test_setgid_directory(self):
        self.sh("mkdir mbox/shared && chown 0:1234 mbox/shared && chmod 2777 mbox/shared")
        self.nobody_sh("umask 022; touch mbox/shared/f && mkdir mbox/shared/sub")
        st = os.stat(self.p("mbox/shared/f"))
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, 1234))
        st = os.stat(self.p("mbox/shared/sub"))
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, 1234))
        self.assertTrue(st.st_mode & stat.S_ISGID)

    def test_private_mailbox(self):
        self.sh("umask 077; echo secret > mbox/private")
        self.assertEqual(mode_of(self.p("mbox/private")), 0o600)
        res = self.nobody(["read", "mbox/private"], ["write", "mbox/private", "intrusion"],
                          ["getxattr", "mbox/private", "user.ipcfs.messages"])
        self.assertEqual(res, ["EACCES", "EACCES", "EACCES"])
        r = self.nobody_sh("cat mbox/private", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        self.assertEqual(self.nmsgs(self.p("mbox/private")), 1)
        self.assertEqual(self.get(self.p("mbox/private")), "secret\n")

    def test_public_mailbox(self):
        self.sh("echo from-root > mbox/public && chmod 666 mbox/public")
        res = self.nobody(["write", "mbox/public", "from-nobody\n"],
                          ["read", "mbox/public"])
        self.assertEqual(res, ["ok", "ok:from-root\n"])
        self.assertEqual(self.get(self.p("mbox/public")), "from-nobody\n")
        self.nobody_sh("echo again > mbox/public")
        self.assertEqual(self.get(self.p("mbox/public")), "again\n")
        # 0644: readable, not writable.
        self.sh("echo ro > mbox/ro && chmod 644 mbox/ro")
        self.assertEqual(self.nobody(["write", "mbox/ro", "x"], ["read", "mbox/ro"]),
                         ["EACCES", "ok:ro\n"])

    def test_group_permission(self):
        self.sh("touch mbox/grp && chown 0:65534 mbox/grp && chmod 620 mbox/grp")
        self.assertEqual(self.nobody(["write", "mbox/grp", "via group\n"], ["read", "mbox/grp"]),
                         ["ok", "EACCES"])
        self.assertEqual(self.get(self.p("mbox/grp")), "via group\n")

    def test_sticky_kind_directory(self):
        self.sh("echo root > mbox/rootq && chmod 666 mbox/rootq && mkdir mbox/rootdir"
                " && chmod 777 mbox/rootdir")
        res = self.nobody(["unlink", "mbox/rootq"], ["rename", "mbox/rootq", "mbox/stolen"],
                          ["rmdir", "mbox/rootdir"])
        for r in res:
            self.assertIn(r, ("EPERM", "EACCES"))
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["rootdir", "rootq"])
        self.assertEqual(self.nmsgs(self.p("mbox/rootq")), 1)
        r = self.nobody_sh("rm -f mbox/rootq", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(os.path.exists(self.p("mbox/rootq")))
        # Its own objects it may remove and rename.
        res = self.nobody(["create", "mbox/mine", 0o644, "m"], ["rename", "mbox/mine", "mbox/mine2"],
                          ["unlink", "mbox/mine2"], ["mkdir", "mbox/mydir", 0o755],
                          ["rmdir", "mbox/mydir"])
        self.assertEqual(res, ["ok"] * 5)
        # Root may remove anybody's.
        self.nobody_sh("touch mbox/theirs")
        self.sh("rm mbox/theirs")
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["rootdir", "rootq"])

    def test_directory_write_permission(self):
        self.sh("umask 022; mkdir mbox/closed && echo x > mbox/closed/q && chmod 666 mbox/closed/q")
        res = self.nobody(["create", "mbox/closed/new", 0o644], ["mkdir", "mbox/closed/d", 0o755],
                          ["unlink", "mbox/closed/q"], ["write", "mbox/closed/q", "ok\n"])
        self.assertEqual(res, ["EACCES", "EACCES", "EACCES", "ok"])
        self.assertEqual(sorted(os.listdir(self.p("mbox/closed"))), ["q"])

    def test_chmod_chown_by_others(self):
        self.sh("echo x > mbox/rootq && chmod 666 mbox/rootq")
        self.nobody_sh("touch mbox/mine")
        res = self.nobody(["chmod", "mbox/rootq", 0o777], ["chown", "mbox/rootq", NOBODY, NOBODY],
                          ["chown", "mbox/mine", 0, 0], ["chown", "mbox/mine", NOBODY, 0],
                          ["chmod", "mbox/mine", 0o600])
        self.assertIn(res[0], ("EPERM", "EACCES"))
        self.assertIn(res[1], ("EPERM", "EACCES"))
        self.assertIn(res[2], ("EPERM", "EACCES"))
        self.assertIn(res[3], ("EPERM", "EACCES"))
        self.assertEqual(res[4], "ok")
        st = os.stat(self.p("mbox/rootq"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 0, 0o666))
        st = os.stat(self.p("mbox/mine"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY, NOBODY, 0o600))
        # Root may change anybody's.
        os.chmod(self.p("mbox/mine"), 0o640)
        os.chown(self.p("mbox/mine"), 0, 0)
        st = os.stat(self.p("mbox/mine"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, 0, 0o640))

    def test_settings_by_others(self):
        self.sh("touch mbox/pub mbox/priv && chmod 666 mbox/pub && chmod 600 mbox/priv")
        before = {p: (self.xattr(self.p(p), "max_messages"), self.xattr(self.p(p), "framing"))
                  for p in ("mbox/pub", "mbox/priv")}
        res = self.nobody(["setxattr", "mbox/pub", "user.ipcfs.max_messages", "5"],
                          ["setxattr", "mbox/pub", "user.ipcfs.framing", "line"],
                          ["setxattr", "mbox/priv", "user.ipcfs.max_messages", "5"],
                          ["getxattr", "mbox/pub", "user.ipcfs.max_messages"])
        for r in res[:3]:
            self.assertIn(r, ("EPERM", "EACCES"))
        self.assertEqual(res[3], "ok:" + before["mbox/pub"][0])
        r = self.nobody_sh("setfattr -n user.ipcfs.max_bytes -v 100 mbox/pub", check=False)
        self.assertNotEqual(r.returncode, 0)
        for p, v in before.items():
            self.assertEqual((self.xattr(self.p(p), "max_messages"),
                              self.xattr(self.p(p), "framing")), v)
        self.assertNotEqual(self.xattr(self.p("mbox/pub"), "max_bytes"), "100")
        # Its own object's settings it may change; root may change anybody's.
        self.nobody_sh("touch mbox/mine")
        self.assertEqual(self.nobody(["setxattr", "mbox/mine", "user.ipcfs.max_messages", "7"]),
                         ["ok"])
        self.assertEqual(self.xattr(self.p("mbox/mine"), "max_messages"), "7")
        self.set_xattr(self.p("mbox/mine"), "max_messages", 9)
        self.assertEqual(self.xattr(self.p("mbox/mine"), "max_messages"), "9")
