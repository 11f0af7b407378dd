"""test_faults.py - the database's disk fills up at runtime.

The daemon must keep serving from memory, report the failure (stderr,
/.ipcfs/stats and /.ipcfs/metrics), refuse --sync full writes with EIO rather
than acknowledge what it cannot persist, and recover when the disk does.
(A disk that turns read-only cannot be simulated here: a file system with a
database open for writing refuses `mount -o remount,ro`; the failure path in
the daemon is the same one: a commit that fails.)
"""
import errno
import os
import subprocess
import tempfile
import unittest

from harness import Mount, wait_until


def drain(path):
    """Reads every queued message without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    got = []
    try:
        while True:
            got.append(os.read(fd, 65536))
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return got


class DiskFull(unittest.TestCase):
    """The database lives on a tmpfs of a few hundred KiB."""

    sync = "full"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ipcfs-faults-")
        self.disk = os.path.join(self.dir, "disk")
        os.makedirs(self.disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", self.disk],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.disk])
        self.m = Mount(db=os.path.join(self.disk, "ipcfs.db"), workdir=self.dir,
                       args=["--sync", self.sync])
        self.addCleanup(self.m.cleanup)
        self.m.start()
        self.q = self.m.path("mbox", "q")
        open(self.q, "w").close()
        os.setxattr(self.q, "user.ipcfs.framing", b"write")

    def grow_disk(self):
        subprocess.run(["mount", "-o", "remount,size=64m", self.disk], check=True)
        wait_until(lambda: "database errors: none" in self.stats(), timeout=20,
                   what="the database to recover")

    def stats(self):
        with open(self.m.path(".ipcfs", "stats")) as f:
            return f.read()

    def metric(self, name):
        with open(self.m.path(".ipcfs", "metrics")) as f:
            for line in f:
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError("no metric " + name)

    @staticmethod
    def message(i):
        return b"%06d" % i + b"x" * 3994

    def test_disk_full(self):
        fd = os.open(self.q, os.O_WRONLY)
        acked, err = [], None
        for i in range(1000):
            try:
                os.write(fd, self.message(i))
            except OSError as e:
                err = e
                break
            acked.append(self.message(i))
        self.assertIsNotNone(err, "the small disk never filled up")
        self.assertEqual(err.errno, errno.EIO)
        # Reported; still serving: nothing new is acknowledged, reads work.
        self.assertIn("FAILED", self.stats())
        self.assertEqual(self.metric("ipcfs_database_error"), 1)
        self.assertIn("database commits fail", self.m.stderr())
        with self.assertRaises(OSError) as cm:
            os.write(fd, b"refused")
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.getxattr(self.q, "user.ipcfs.kind"), b"mbox")
        # The disk grows: commits work again, and so do writes.
        self.grow_disk()
        self.assertEqual(self.metric("ipcfs_database_error"), 0)
        os.write(fd, b"after")
        os.close(fd)
        self.assertIn("database commits work again", self.m.stderr())
        self.m.stop()
        # After a restart: every acknowledged message, then "after". The one
        # whose write got EIO was never acknowledged; it may be there.
        self.m.start()
        got = drain(self.q)
        self.m.stop()
        self.assertEqual(got[:len(acked)], acked)
        self.assertEqual(got[-1], b"after")
        self.assertIn(len(got), (len(acked) + 1, len(acked) + 2))


class DiskFullNormal(DiskFull):
    """--sync normal: writes go on from memory; fsync reports EIO."""

    sync = "normal"

    def test_disk_full(self):
        fd = os.open(self.q, os.O_WRONLY)
        for i in range(300):
            os.write(fd, self.message(i))
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)  # waits for a commit that cannot happen
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertIn("FAILED", self.stats())
        self.grow_disk()
        os.fsync(fd)
        os.close(fd)
        self.m.stop()
        self.m.start()
        n = os.getxattr(self.q, "user.ipcfs.messages")
        self.m.stop()
        self.assertEqual(n, b"300")


if __name__ == "__main__":
    unittest.main()
