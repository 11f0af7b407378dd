"""test_examples.py - every program in examples/ runs against a real mount, checks its own
result and exits 0, leaving nothing behind."""
import os
import subprocess
import sys

import harness
from harness import BIN, ROOT, SLOW

EXAMPLES = os.path.join(ROOT, "examples")
BUILT = os.path.join(os.path.dirname(BIN), "examples")


class TestExamples(harness.MountTest):
    def run_example(self, argv, success, env=None, timeout=60):
        r = subprocess.run(argv, capture_output=True, text=True, cwd="/",
                           env=dict(os.environ, **(env or {})), timeout=timeout * SLOW)
        self.assertEqual(r.returncode, 0, "%s: rc %d\nstdout: %s\nstderr: %s" % (
            argv, r.returncode, r.stdout, r.stderr))
        self.assertIn(success, r.stdout)
        self.assertEqual(r.stderr, "")
        # Each example removes what it made.
        for kind in ("mbox", "fifo", "shm", "sem", "event", "topic"):
            self.assertEqual(os.listdir(self.p(kind)), [], "%s left %s/%s" % (
                argv[-1] if len(argv) > 1 else argv[0], kind, os.listdir(self.p(kind))))
        return r

    def script(self, name):
        path = os.path.join(EXAMPLES, name)
        self.assertTrue(os.access(path, os.X_OK), path + " is not executable")
        return path

    def binary(self, name):
        path = os.path.join(BUILT, name)
        self.assertTrue(os.access(path, os.X_OK), "not built: " + path)
        return path

    def test_jobqueue(self):
        r = self.run_example([self.script("jobqueue.sh"), self.m.mnt], "done exactly once")
        self.assertIn("30 jobs", r.stdout)

    def test_jobqueue_env(self):
        # The mount point from IPCFS_MNT instead of an argument.
        self.run_example([self.script("jobqueue.sh")], "done exactly once",
                         env={"IPCFS_MNT": self.m.mnt, "JOBS": "8", "WORKERS": "2"})

    def test_select_consumer(self):
        self.run_example([sys.executable, self.script("select_consumer.py"), self.m.mnt],
                         "in order, none lost")

    def test_legacy_log(self):
        r = self.run_example([self.script("legacy_log.sh"), self.m.mnt], "reached both subscribers")
        self.assertIn("4 errors", r.stdout)

    def test_record_py(self):
        r = self.run_example([sys.executable, self.script("record.py"), self.m.mnt],
                             "messages published")
        self.assertEqual(r.stdout.count("10000 messages in"), 2)

    def test_record_c(self):
        self.run_example([self.binary("record"), self.m.mnt], "record: 20000 messages")

    def test_shm_event(self):
        self.run_example([self.binary("shm_event"), self.m.mnt], "all sums right")

    def test_usage(self):
        # Without a mount point every example says how to run it (exit 2).
        for argv in ([self.script("jobqueue.sh")], [self.script("legacy_log.sh")],
                     [sys.executable, self.script("select_consumer.py")],
                     [sys.executable, self.script("record.py")],
                     [self.binary("record")], [self.binary("shm_event")]):
            env = dict(os.environ)
            env.pop("IPCFS_MNT", None)
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=20 * SLOW)
            self.assertEqual(r.returncode, 2, "%s: %s" % (argv, r.stderr))
            self.assertIn("usage", r.stderr)
