"""test_basic.py - the mount, its namespace, and the first mailbox round trip."""
import errno
import os
import stat

from harness import MountTest


class TestNamespace(MountTest):
    def test_root_shows_kind_directories(self):
        names = sorted(os.listdir(self.m.mnt))
        self.assertIn("mbox", names)
        self.assertIn("fifo", names)
        for k in ("mbox", "fifo"):
            st = os.stat(self.p(k))
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o1777)

    def test_echo_cat_one_message(self):
        r = self.sh("echo hi > mbox/q && cat mbox/q")
        self.assertEqual(r.stdout, "hi\n")
        st = os.stat(self.p("mbox", "q"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, 0)

    def test_create_in_root_refused(self):
        with self.assertRaises(OSError) as cm:
            open(self.p("x"), "w")
        self.assertIn(cm.exception.errno, (errno.EPERM, errno.EACCES))
