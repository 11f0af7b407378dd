"""test_torture.py - the crash torture (torture.py) in its quick mode: a
handful of SIGKILLs of the daemon under load, restarts on the same database,
and the checks of torture.py (nothing acknowledged lost or corrupt, order
kept, duplicates only around kills, regions at least as new as their last
fsync, dying readers and writers). IPCFS_TORTURE_SEED repeats a run."""
import io
import os
import unittest

import torture


class TortureTest(unittest.TestCase):
    def test_quick(self):
        seed = os.environ.get("IPCFS_TORTURE_SEED")
        out = io.StringIO()
        cfg = torture.Config(quick=True, seed=int(seed) if seed else None, out=out)
        res = torture.run(cfg)
        for line in (out.getvalue().splitlines() + [res.summary()]):
            print("# " + line, flush=True)
        self.assertTrue(res.ok(), "seed %d (IPCFS_TORTURE_SEED=%d repeats it):\n%s\n%s" % (
            cfg.seed, cfg.seed, res.report(), res.summary()))


if __name__ == "__main__":
    unittest.main()
