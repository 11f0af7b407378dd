"""test_persist.py - what survives a restart of the daemon: the tree, attributes,
settings, queued messages and FIFO bytes; durability after kill -9 in full
mode and after fsync; refusal of databases that are not ours or are corrupt."""
import errno
import hashlib
import os
import random
import sqlite3
import stat
import struct
import subprocess
import unittest

from harness import SLOW, Mount

NOBODY = 65534


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class PersistTest(unittest.TestCase):
    args = ()

    def setUp(self):
        self.m = Mount(args=self.args)
        self.addCleanup(self.m.cleanup)
        self.m.start()

    def p(self, *parts):
        return self.m.path(*parts)

    def restart(self):
        self.m.stop()
        self.m.start()

    def crash(self):
        self.m.kill()
        self.m.start()

    def sh(self, script):
        r = subprocess.run(["bash", "-c", script], cwd=self.m.mnt, capture_output=True,
                           text=True, timeout=20 * SLOW)
        if r.returncode:
            self.fail("script failed (%d): %s\n%s" % (r.returncode, script, r.stderr))
        return r

    def xattr(self, path, name):
        return os.getxattr(path, "user.ipcfs." + name).decode()

    def set_xattr(self, path, name, value):
        os.setxattr(path, "user.ipcfs." + name, str(value).encode())

    def put(self, path, data):
        """One open-framing message (or FIFO bytes)."""
        with open(path, "wb") as f:
            f.write(data)

    def get(self, path):
        with open(path, "rb") as f:
            return f.read()

    def read_all_nonblock(self, path, size=1 << 20):
        """Each read(2) until EAGAIN: the list of what each returned."""
        out = []
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    b = os.read(fd, size)
                except BlockingIOError:
                    break
                if not b:
                    break
                out.append(b)
        finally:
            os.close(fd)
        return out

    def write_each(self, path, msgs, sync=False):
        """One write(2) per message on one open file (write framing)."""
        fd = os.open(path, os.O_WRONLY)
        try:
            for b in msgs:
                self.assertEqual(os.write(fd, b), len(b))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def get_open_framing(self, path, n):
        return [self.get(path) for _ in range(n)]

    def commit(self):
        """Waits until every change so far is in the database (fsync)."""
        fd = os.open(self.p("fifo/barrier"), os.O_RDONLY | os.O_NONBLOCK | os.O_CREAT, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def snapshot(self, dir_times=False):
        """path -> attributes, for every node under the kinds."""
        snap = {}
        for kind in ("mbox", "fifo"):
            for root, dirs, files in os.walk(self.p(kind)):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    st = os.lstat(path)
                    rel = os.path.relpath(path, self.m.mnt)
                    entry = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                             "ino": st.st_ino}
                    if stat.S_ISREG(st.st_mode):
                        entry.update(size=st.st_size, mtime=st.st_mtime_ns,
                                     ctime=st.st_ctime_ns)
                        for a in ("kind", "framing", "max_messages", "max_bytes", "messages",
                                  "bytes"):
                            try:
                                entry[a] = self.xattr(path, a)
                            except OSError as e:
                                if e.errno != errno.ENODATA:
                                    raise
                    elif dir_times:
                        entry.update(mtime=st.st_mtime_ns, ctime=st.st_ctime_ns)
                    snap[rel] = entry
        return snap


class TestRestart(PersistTest):
    def build_tree(self):
        # In steps, each committed before the next: every change must mark
        # what it changes for saving, not ride on an earlier change.
        self.sh("umask 022; mkdir -p mbox/app1/jobs fifo/logs/old && mkdir -m 750 mbox/private"
                " && touch mbox/app1/jobs/q mbox/settings mbox/owned fifo/logs/old/f")
        self.commit()
        self.sh("chmod 640 mbox/app1/jobs/q && chown 65534:65534 mbox/owned && chmod 604 mbox/owned"
                " && chown 65534:0 mbox/private")
        self.commit()
        s = self.p("mbox/settings")
        self.set_xattr(s, "framing", "line")
        self.set_xattr(s, "max_messages", 7)
        self.set_xattr(s, "max_bytes", 1000)
        self.set_xattr(self.p("fifo/logs/old/f"), "max_bytes", 4096)
        self.commit()
        self.sh("echo j1 > mbox/app1/jobs/q && echo j2 > mbox/app1/jobs/q"
                " && printf 'log bytes' > fifo/logs/old/f")
        self.commit()
        self.sh("TZ=UTC touch -d '2001-02-03 04:05:06' mbox/owned fifo/logs/old/f")

    def test_tree_attributes_settings(self):
        self.build_tree()
        before = self.snapshot()
        self.assertEqual(len(before), 10)
        self.restart()
        after = self.snapshot()
        self.assertEqual(after, before)
        # Spot checks, so that a bad snapshot cannot hide it.
        s = self.p("mbox/settings")
        self.assertEqual((self.xattr(s, "framing"), self.xattr(s, "max_messages"),
                          self.xattr(s, "max_bytes")), ("line", "7", "1000"))
        st = os.stat(self.p("mbox/owned"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY, NOBODY, 0o604))
        self.assertEqual(st.st_mtime, 981173106)
        st = os.stat(self.p("mbox/private"))
        self.assertEqual((st.st_mode, st.st_uid), (stat.S_IFDIR | 0o750, NOBODY))
        self.assertEqual(self.get(self.p("mbox/app1/jobs/q")), b"j1\n")
        self.assertEqual(self.get(self.p("fifo/logs/old/f")), b"log bytes")
        # And a second restart changes nothing either.
        before = self.snapshot()
        self.restart()
        self.assertEqual(self.snapshot(), before)

    def test_directory_times(self):
        # Each directory is saved first, then changed by what happens inside
        # it: creating, removing and renaming entries changes its mtime.
        self.sh("mkdir -p mbox/d/sub mbox/r mbox/m1 mbox/m2 && touch mbox/r/x mbox/m1/y"
                " && TZ=UTC touch -d '2001-02-03 04:05:06' mbox/d mbox/r mbox/m1 mbox/m2")
        self.commit()
        saved = self.snapshot(dir_times=True)
        self.sh("touch mbox/d/new && rm mbox/r/x && mv mbox/m1/y mbox/m2/y")
        before = self.snapshot(dir_times=True)
        for d in ("mbox/d", "mbox/r", "mbox/m1", "mbox/m2"):
            self.assertGreater(before[d]["mtime"], saved[d]["mtime"], d)
        self.restart()
        after = self.snapshot(dir_times=True)
        for d in ("mbox/d", "mbox/r", "mbox/m1", "mbox/m2"):
            self.assertEqual(after[d]["mtime"], before[d]["mtime"], d + ": mtime after restart")
        self.maxDiff = None
        self.assertEqual(after, before)

    def test_mtime_of_last_message(self):
        self.sh("touch mbox/q fifo/f")
        self.commit()
        self.sh("echo one > mbox/q && printf abc > fifo/f")
        before = {p: os.stat(self.p(p)).st_mtime_ns for p in ("mbox/q", "fifo/f")}
        self.restart()
        for p, t in before.items():
            self.assertEqual(os.stat(self.p(p)).st_mtime_ns, t, p)

    def test_removed_and_renamed(self):
        self.sh("mkdir -p mbox/a/b && echo gone > mbox/gone && echo moved > mbox/src"
                " && echo deep > mbox/a/b/q && touch fifo/gone")
        ino = os.stat(self.p("mbox/gone")).st_ino
        self.sh("rm mbox/gone fifo/gone && mv mbox/src mbox/a/dst && mv mbox/a/b mbox/c")
        self.restart()
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["a", "c"])
        self.assertEqual(os.listdir(self.p("fifo")), [])
        self.assertEqual(os.listdir(self.p("mbox/a")), ["dst"])
        self.assertEqual(self.get(self.p("mbox/a/dst")), b"moved\n")
        self.assertEqual(self.get(self.p("mbox/c/q")), b"deep\n")
        # Ids are not reused, even across restarts.
        self.sh("touch mbox/new")
        self.assertGreater(os.stat(self.p("mbox/new")).st_ino, ino)

    def test_moved_under_newer_directory(self):
        # Directories moved under ones made after them (loading must not
        # assume a parent's id is smaller than its child's).
        self.sh("mkdir -p mbox/a/x mbox/b mbox/c && echo deep > mbox/a/x/q && mv mbox/a mbox/c/a"
                " && mv mbox/b mbox/c/a/x/b && mkdir mbox/d && mv mbox/c mbox/d/c"
                " && mv mbox/d/c/a/x/q mbox/d/c/a/x/b/q")
        before = self.snapshot()
        self.restart()
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.get(self.p("mbox/d/c/a/x/b/q")), b"deep\n")

    def test_names(self):
        names = [b"with space", b"new\nline", b"\xff\xfe latin1", "\u00fcn\u00efc\u00f8de".encode(),
                 b"n" * 255, b"-dash", b".hidden", b"x" * 100 + "\u00e9".encode() * 77 + b"y"]
        base = os.fsencode(self.p("mbox"))
        for i, n in enumerate(names):
            with open(os.path.join(base, n), "wb") as f:
                f.write(b"%d" % i)
        os.mkdir(os.path.join(os.fsencode(self.p("fifo")), b"dir \xff\n"))
        self.restart()
        self.assertEqual(sorted(os.listdir(base)), sorted(names))
        self.assertEqual(os.listdir(os.fsencode(self.p("fifo"))), [b"dir \xff\n"])
        for i, n in enumerate(names):
            with open(os.path.join(base, n), "rb") as f:
                self.assertEqual(f.read(), b"%d" % i, n)

    def test_many_objects(self):
        for i in range(1000):
            os.close(os.open(self.p("mbox", "o%04d" % i), os.O_WRONLY | os.O_CREAT, 0o644))
        self.put(self.p("mbox/o0999"), b"last")
        self.restart()
        self.assertEqual(sorted(os.listdir(self.p("mbox"))), ["o%04d" % i for i in range(1000)])
        self.assertEqual(self.get(self.p("mbox/o0999")), b"last")

    def test_open_framing_messages_in_order(self):
        rnd = random.Random(1)
        msgs = [b"m%d\n" % i for i in range(40)]
        msgs += [bytes(range(256)) * 3, b"\0\0\0", b"x" * 300000,
                 bytes(rnd.getrandbits(8) for _ in range(5000))]
        for b in msgs:
            self.put(self.p("mbox/q"), b)
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), str(len(msgs)))
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), str(len(msgs)))
        self.assertEqual(os.stat(self.p("mbox/q")).st_size, sum(map(len, msgs)))
        got = self.get_open_framing(self.p("mbox/q"), len(msgs))
        self.assertEqual(got, msgs)
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "0")

    def test_write_framing_messages_in_order(self):
        self.sh("touch mbox/w")
        self.set_xattr(self.p("mbox/w"), "framing", "write")
        rnd = random.Random(2)
        msgs = [b"w%d" % i for i in range(30)]
        msgs += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 4000))) for _ in range(10)]
        self.write_each(self.p("mbox/w"), msgs)
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/w"), "framing"), "write")
        self.assertEqual(self.read_all_nonblock(self.p("mbox/w")), msgs)

    def test_line_framing_messages_in_order(self):
        self.sh("touch mbox/l")
        self.set_xattr(self.p("mbox/l"), "framing", "line")
        self.put(self.p("mbox/l"), b"l1\nl2\n")
        self.put(self.p("mbox/l"), b"line three\n\nl5\n")
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/l"), "framing"), "line")
        self.assertEqual(self.read_all_nonblock(self.p("mbox/l")),
                         [b"l1\n", b"l2\n", b"line three\n", b"\n", b"l5\n"])

    def test_record_framing_messages_in_order(self):
        self.sh("touch mbox/r")
        self.set_xattr(self.p("mbox/r"), "framing", "record")
        recs = [b"rec%d" % i for i in range(20)] + [b"\0" * 100]
        self.put(self.p("mbox/r"), b"".join(struct.pack("<I", len(r)) + r for r in recs))
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/r"), "framing"), "record")
        self.assertEqual(self.xattr(self.p("mbox/r"), "messages"), str(len(recs)))
        data = b"".join(self.read_all_nonblock(self.p("mbox/r")))
        got = []
        while data:
            n = struct.unpack("<I", data[:4])[0]
            got.append(data[4:4 + n])
            data = data[4 + n:]
        self.assertEqual(got, recs)

    def test_fifo_bytes_and_partial_read(self):
        for seg in (b"abc", b"def", b"ghi"):
            self.put(self.p("fifo/f"), seg)
        big = bytes(random.Random(3).getrandbits(8) for _ in range(100000))
        self.put(self.p("fifo/big"), big)
        fd = os.open(self.p("fifo/f"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.assertEqual(os.read(fd, 4), b"abcd")
        finally:
            os.close(fd)
        self.restart()
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 5)
        fd = os.open(self.p("fifo/f"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            self.assertEqual(os.read(fd, 1), b"e")
        finally:
            os.close(fd)
        self.restart()
        self.assertEqual(self.get(self.p("fifo/f")), b"fghi")
        self.assertEqual(self.get(self.p("fifo/big")), big)
        self.restart()
        self.assertEqual(os.stat(self.p("fifo/f")).st_size, 0)
        self.assertEqual(os.stat(self.p("fifo/big")).st_size, 0)

    def test_consumed_messages_do_not_come_back(self):
        for i in range(6):
            self.put(self.p("mbox/q"), b"msg %d\n" % i)
        self.assertEqual(self.get_open_framing(self.p("mbox/q"), 2), [b"msg 0\n", b"msg 1\n"])
        # A reader that stops in the middle gives its message back whole.
        fd = os.open(self.p("mbox/q"), os.O_RDONLY)
        try:
            self.assertEqual(os.read(fd, 3), b"msg")
        finally:
            os.close(fd)
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "4")
        self.assertEqual(self.get_open_framing(self.p("mbox/q"), 2), [b"msg 2\n", b"msg 3\n"])
        self.restart()
        self.assertEqual(self.get_open_framing(self.p("mbox/q"), 2), [b"msg 4\n", b"msg 5\n"])
        self.restart()
        self.assertEqual(self.xattr(self.p("mbox/q"), "messages"), "0")
        self.assertEqual(self.read_all_nonblock(self.p("mbox/q")), [])


class TestSyncFull(PersistTest):
    args = ("--sync", "full")

    def test_kill9_loses_no_acknowledged_message(self):
        self.sh("touch mbox/w fifo/f")
        self.set_xattr(self.p("mbox/w"), "framing", "write")
        msgs = [b"full %d" % i for i in range(50)]
        opened = [b"open %d\n" % i for i in range(20)]
        for b in opened:
            self.put(self.p("mbox/o"), b)
        # Each write(2) has returned; the files are still open at the kill.
        fd = os.open(self.p("mbox/w"), os.O_WRONLY)
        ffd = os.open(self.p("fifo/f"), os.O_WRONLY)
        try:
            for i, b in enumerate(msgs):
                self.assertEqual(os.write(fd, b), len(b))
                self.assertEqual(os.write(ffd, b"%02d," % i), 3)
            self.m.kill()
        finally:
            for f in (fd, ffd):
                try:
                    os.close(f)
                except OSError:
                    pass
        self.m.start()
        self.assertEqual(self.xattr(self.p("mbox/w"), "messages"), str(len(msgs)))
        self.assertEqual(self.read_all_nonblock(self.p("mbox/w")), msgs)
        self.assertEqual(self.get_open_framing(self.p("mbox/o"), len(opened)), opened)
        self.assertEqual(self.get(self.p("fifo/f")), b"".join(b"%02d," % i for i in range(50)))

    def test_kill9_keeps_namespace_changes(self):
        self.sh("mkdir -p mbox/d/e && touch mbox/d/e/q && chmod 600 mbox/d/e/q"
                " && mv mbox/d/e/q mbox/d/q2 && echo hi > mbox/d/q2")
        self.set_xattr(self.p("mbox/d/q2"), "max_messages", 3)
        # The last change is followed by a commit (a write acknowledged in full mode).
        self.put(self.p("mbox/d/q2"), b"last\n")
        self.crash()
        st = os.stat(self.p("mbox/d/q2"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(self.xattr(self.p("mbox/d/q2"), "max_messages"), "3")
        self.assertEqual(self.get_open_framing(self.p("mbox/d/q2"), 2), [b"hi\n", b"last\n"])
        self.assertEqual(os.listdir(self.p("mbox/d/e")), [])


class TestSyncNormal(PersistTest):
    def test_fsync_then_kill9(self):
        self.sh("touch mbox/w fifo/f")
        self.set_xattr(self.p("mbox/w"), "framing", "write")
        msgs = [b"normal %d" % i for i in range(40)]
        fd = os.open(self.p("mbox/w"), os.O_WRONLY)
        ffd = os.open(self.p("fifo/f"), os.O_WRONLY)
        try:
            for b in msgs:
                os.write(fd, b)
            os.write(ffd, b"fifo bytes")
            os.fsync(fd)
            os.fsync(ffd)
            self.m.kill()
        finally:
            for f in (fd, ffd):
                try:
                    os.close(f)
                except OSError:
                    pass
        self.m.start()
        self.assertEqual(self.read_all_nonblock(self.p("mbox/w")), msgs)
        self.assertEqual(self.get(self.p("fifo/f")), b"fifo bytes")

    def test_fsync_open_framing_then_kill9(self):
        opened = [b"o%d\n" % i for i in range(10)]
        for b in opened:
            self.put(self.p("mbox/o"), b)
        # Consumed before the fsync: stays consumed.
        self.assertEqual(self.get_open_framing(self.p("mbox/o"), 3), opened[:3])
        fd = os.open(self.p("mbox/o"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            os.fsync(fd)
            self.m.kill()
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
        self.m.start()
        self.assertEqual(self.xattr(self.p("mbox/o"), "messages"), "7")
        self.assertEqual(self.get_open_framing(self.p("mbox/o"), 7), opened[3:])

    def test_kill9_loses_at_most_a_tail(self):
        self.sh("touch mbox/w")
        self.set_xattr(self.p("mbox/w"), "framing", "write")
        self.write_each(self.p("mbox/w"), [b"a"], sync=True)
        msgs = [b"t%d" % i for i in range(500)]
        self.write_each(self.p("mbox/w"), msgs)
        self.crash()
        got = self.read_all_nonblock(self.p("mbox/w"))
        self.assertEqual(got[:1], [b"a"])
        self.assertEqual(got[1:], msgs[:len(got) - 1])


class TestDatabaseFiles(unittest.TestCase):
    def setUp(self):
        self.m = Mount()
        self.addCleanup(self.m.cleanup)

    def refused(self, *words):
        """Starts on self.m.db: refused, and the file left as it was."""
        before = sha256(self.m.db)
        side = sorted(os.listdir(self.m.workdir))
        rc, err = self.m.start(expect_fail=True)
        self.assertNotEqual(rc, 0, err)
        self.assertFalse(os.path.ismount(self.m.mnt))
        self.assertIn(self.m.db, err)
        self.assertTrue("refus" in err or "corrupt" in err, err)
        for w in words:
            self.assertIn(w, err)
        self.assertEqual(sha256(self.m.db), before, "the database file was modified")
        return side, err

    def no_new_files(self, side):
        now = sorted(f for f in os.listdir(self.m.workdir) if not f.endswith(".log"))
        self.assertEqual(now, [f for f in side if not f.endswith(".log")])

    def make_ipcfs_db(self, nmsgs=20, size=20):
        """A real database with messages, cleanly closed."""
        self.m.start()
        with open(self.m.path("mbox", "q"), "w"):
            pass
        os.setxattr(self.m.path("mbox", "q"), "user.ipcfs.framing", b"write")
        os.setxattr(self.m.path("mbox", "q"), "user.ipcfs.max_messages", b"100000")
        fd = os.open(self.m.path("mbox", "q"), os.O_WRONLY)
        try:
            for i in range(nmsgs):
                os.write(fd, (b"%08d" % i) * (size // 8))
        finally:
            os.close(fd)
        self.m.stop()
        self.assertFalse(os.path.exists(self.m.db + "-wal") and os.path.getsize(self.m.db + "-wal"))

    def test_text_file_refused(self):
        with open(self.m.db, "w") as f:
            f.write("This is my shopping list, not a database.\n" * 200)
        side, err = self.refused()
        self.no_new_files(side)

    def test_short_file_refused(self):
        with open(self.m.db, "wb") as f:
            f.write(b"SQLite")
        side, err = self.refused()
        self.no_new_files(side)

    def test_other_sqlite_db_refused(self):
        db = sqlite3.connect(self.m.db)
        db.execute("CREATE TABLE contacts(name TEXT, phone TEXT)")
        db.executemany("INSERT INTO contacts VALUES(?, ?)", [("n%d" % i, "555-%04d" % i)
                                                             for i in range(500)])
        db.commit()
        db.close()
        side, err = self.refused("not an ipcfs")
        self.no_new_files(side)
        db = sqlite3.connect(self.m.db)
        self.assertEqual(db.execute("SELECT count(*) FROM contacts").fetchone()[0], 500)
        db.close()

    def test_corrupt_page_refused(self):
        self.make_ipcfs_db(nmsgs=3000, size=296)
        with open(self.m.db, "rb") as f:
            head = f.read(100)
        page = struct.unpack(">H", head[16:18])[0]
        page = 65536 if page == 1 else page
        size = os.path.getsize(self.m.db)
        self.assertGreater(size // page, 50, "the database should have many pages")
        off = (size // 2) // page * page
        with open(self.m.db, "r+b") as f:
            f.seek(off)
            f.write(random.Random(4).randbytes(4096))
        self.refused("corrupt")
        # Refused again: nothing was "repaired" meanwhile.
        self.refused("corrupt")

    def test_newer_schema_refused(self):
        self.make_ipcfs_db()
        db = sqlite3.connect(self.m.db)
        db.execute("PRAGMA user_version=99")
        db.commit()
        db.close()
        side, err = self.refused("99")
        self.no_new_files(side)
        # Put back, it is accepted, with its messages.
        db = sqlite3.connect(self.m.db)
        db.execute("PRAGMA user_version=1")
        db.commit()
        db.close()
        self.m.start()
        self.assertEqual(os.getxattr(self.m.path("mbox", "q"), "user.ipcfs.messages"), b"20")
        self.m.stop()

    def test_ipcfs_header_without_tables_refused(self):
        db = sqlite3.connect(self.m.db)
        db.execute("PRAGMA application_id=%d" % 0x49504346)
        db.execute("PRAGMA user_version=1")
        db.execute("CREATE TABLE unrelated(x)")
        db.commit()
        db.close()
        self.refused()

    def test_truncated_db_refused(self):
        self.make_ipcfs_db(nmsgs=2000, size=296)
        size = os.path.getsize(self.m.db)
        with open(self.m.db, "r+b") as f:
            f.truncate(size // 2 // 4096 * 4096)
        self.refused()

    def test_empty_file_is_a_new_database(self):
        open(self.m.db, "w").close()
        self.m.start()
        with open(self.m.path("mbox", "q"), "w") as f:
            f.write("first\n")
        self.m.stop()
        with open(self.m.db, "rb") as f:
            head = f.read(100)
        self.assertEqual(head[:16], b"SQLite format 3\0")
        self.assertEqual(head[68:72], b"IPCF")
        self.assertEqual(struct.unpack(">I", head[60:64])[0], 1)
        self.m.start()
        with open(self.m.path("mbox", "q")) as f:
            self.assertEqual(f.read(), "first\n")
        self.m.stop()

    def test_missing_file_is_a_new_database(self):
        self.assertFalse(os.path.exists(self.m.db))
        self.m.start()
        self.m.stop()
        st = os.stat(self.m.db)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
