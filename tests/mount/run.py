#!/usr/bin/env python3
"""run.py - runs the mount tests and prints TAP (one line per test).

Usage: run.py [-k SUBSTRING] [MODULE...]   (modules: test_*.py in this folder)
"""
import argparse
import importlib
import os
import sys
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.failed_names = []

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()

    def _line(self, ok, test, extra=""):
        self.n += 1
        dt = time.monotonic() - self.t0
        print("%s %d - %s (%.2fs)%s" % ("ok" if ok else "not ok", self.n, test.id(), dt, extra),
              flush=True)

    def addSuccess(self, test):
        self._line(True, test)

    def addSkip(self, test, reason):
        if os.environ.get("CI") == "true":
            self._line(False, test, " # skipped in CI: " + reason)
            self.failed_names.append(test.id())
        else:
            self._line(True, test, " # SKIP " + reason)

    def _fail(self, test, err):
        self._line(False, test)
        self.failed_names.append(test.id())
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print("# " + line)

    def addFailure(self, test, err):
        self._fail(test, err)

    def addExpectedFailure(self, test, err):
        # A documented limitation (see the test's comment): still reported.
        self._line(True, test, " # TODO known limitation: %s" % err[1])

    def addUnexpectedSuccess(self, test):
        self._line(False, test, " # the known limitation no longer holds: update the test")
        self.failed_names.append(test.id())

    def addError(self, test, err):
        self._fail(test, err)


def parallel(mods, jobs, k):
    """Runs modules in up to `jobs` child runners; prints each module's TAP
    lines when it ends (never interleaved). Returns the exit status."""
    import subprocess
    here = os.path.abspath(__file__)
    pending, running, rc = list(mods), [], 0
    while pending or running:
        while pending and len(running) < jobs:
            m = pending.pop(0)
            cmd = [sys.executable, here] + (["-k", k] if k else []) + [m]
            running.append((m, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True)))
        done = None
        while done is None:
            for item in running:
                if item[1].poll() is not None:
                    done = item
                    break
            else:
                time.sleep(0.05)
        running.remove(done)
        out = done[1].stdout.read()
        sys.stdout.write("".join(l + "\n" for l in out.splitlines() if not l.startswith("1..")))
        sys.stdout.flush()
        rc |= done[1].returncode
    return 1 if rc else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default=None)
    ap.add_argument("-j", type=int, default=1, help="modules run in parallel")
    ap.add_argument("modules", nargs="*")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    mods = a.modules or sorted(f[:-3] for f in os.listdir(here)
                               if f.startswith("test_") and f.endswith(".py"))
    if a.j > 1 and len(mods) > 1:
        # The longest modules first, so that the workers finish together.
        first = ["test_shm", "test_ipcctl", "test_mbox", "test_fifo", "test_persist",
                 "test_sem", "test_daemon", "test_namespace", "test_shm_random"]
        mods = [m for m in first if m in mods] + [m for m in mods if m not in first]
        return parallel(mods, a.j, a.k)
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for name in mods:
        name = os.path.basename(name)
        if name.endswith(".py"):
            name = name[:-3]
        suite.addTests(loader.loadTestsFromModule(importlib.import_module(name)))
    tests = []

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flatten(t)
            elif a.k is None or a.k in t.id():
                tests.append(t)
    flatten(suite)
    print("1..%d" % len(tests), flush=True)
    res = TapResult()
    for t in tests:
        t(res)
    return 1 if res.failed_names else 0


if __name__ == "__main__":
    sys.exit(main())
