"""test_sem.py - semaphores (sem/NAME) on a real mount, driven by real programs.

DESIGN.md section 2 "Semaphore": value 0 at creation; writing a decimal N adds
N (anything else EINVAL, nothing changes; past 2^31-1 EOVERFLOW); a read takes
one unit, blocking while the value is 0 (O_NONBLOCK: EAGAIN), returns "1\\n"
and then EOF, so `cat sem/s` is P and `echo 1 > sem/s` is V; the value is
visible (and settable by the owner) as user.ipcfs.value; with
user.ipcfs.undo=1 the units taken through an open file come back when it is
closed or its process dies; the value survives restarts, and units held
through undo when the daemon crashes are back after the restart.
"""
import errno
import os
import select
import signal
import subprocess
import threading

import harness
from harness import wait_until
from proctest import ProcTest

# Holds one unit: opens argv[1], reads it (P), prints what it read, sleeps.
HOLD = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stdout.write(os.read(fd, 100).decode()); sys.stdout.flush()
time.sleep(600)
"""

# Holds one unit of each of argv[1:] (in that order), says "held", sleeps.
HOLD2 = r"""
import os, sys, time
fds = [os.open(path, os.O_RDONLY) for path in sys.argv[1:]]
assert all(os.read(fd, 100) == b"1\n" for fd in fds)
sys.stdout.write("held\n"); sys.stdout.flush()
time.sleep(600)
"""

# README scenario "worker-pool limit": at most 2 jobs run at once.
POOL = r"""
echo 2 > sem/pool                          # two slots
for id in 1 2 3 4 5 6; do
  (
    for i in 1 2 3; do
      cat sem/pool >/dev/null              # P: wait for a free slot
      echo "+ $id" >> "$LOG"               # the job...
      sleep 0.05
      echo "- $id" >> "$LOG"
      echo 1 > sem/pool                    # V: give the slot back
    done
  ) &
done
wait
"""

# README scenario "mutex": a read-modify-write of a shared counter file.
MUTEX = r"""
echo 1 > sem/lock                          # unlocked
setfattr -n user.ipcfs.undo -v 1 sem/lock  # a holder that dies releases it
for id in 1 2 3 4; do
  (
    for i in $(seq 10); do
      exec 3< sem/lock; cat <&3 >/dev/null # lock (held while fd 3 is open)
      n=$(cat "$COUNTER"); echo $((n + 1)) > "$COUNTER"
      exec 3<&-                            # unlock
    done
  ) &
done
wait
"""


class SemTest(ProcTest):
    def sem(self, name="s", **settings):
        self.sh("touch sem/%s" % name)
        path = self.p("sem", name)
        for k, v in settings.items():
            self.set_xattr(path, k, v)
        return path

    def value(self, path):
        return self.num(path, "value")


class TestPV(SemTest):
    def test_created_with_value_zero(self):
        s = self.sem()
        self.assertEqual(self.xattr(s, "kind"), "sem")
        self.assertEqual(self.value(s), 0)
        self.assertEqual(os.stat(s).st_size, 0)

    def test_cat_blocks_until_echo_1(self):
        s = self.sem()
        p = self.spawn(["cat", "sem/s"], text=True)
        self.blocked_readers(s, 1)
        self.assertTrue(self.alive(p))
        self.sh("echo 1 > sem/s")
        rc, out, err = self.finish(p)
        self.assertEqual((rc, out), (0, "1\n"), err)
        self.assertEqual(self.value(s), 0)
        self.blocked_readers(s, 0)

    def test_echo_3_allows_three_cats(self):
        s = self.sem()
        self.sh("echo 3 > sem/s")
        self.assertEqual(self.value(s), 3)
        r = self.sh("cat sem/s; cat sem/s; cat sem/s")
        self.assertEqual(r.stdout, "1\n1\n1\n")
        self.assertEqual(self.value(s), 0)
        self.assertEqual(self.num(s, "out_messages"), 3)

    def test_one_unit_per_open_then_eof(self):
        s = self.sem()
        self.sh("echo 5 > sem/s")
        out = self.py("import os\nfd = os.open('sem/s', os.O_RDONLY)\n"
                      "got = [os.read(fd, 100) for _ in range(4)]\n"
                      "print(got)\n")
        self.assertEqual(out.decode().strip(), "[b'1\\n', b'', b'', b'']")
        self.assertEqual(self.value(s), 4)

    def test_dd_one_byte_reads(self):
        s = self.sem()
        self.sh("echo 1 > sem/s")
        r = self.sh("dd if=sem/s bs=1 status=none")
        self.assertEqual(r.stdout, "1\n")
        self.assertEqual(self.value(s), 0)

    def test_nonblock_read_is_eagain(self):
        s = self.sem()
        fd = self.open(s, os.O_RDONLY | os.O_NONBLOCK)
        with self.assertRaises(BlockingIOError):
            os.read(fd, 100)
        self.sh("echo 1 > sem/s")
        self.assertEqual(os.read(fd, 100), b"1\n")
        self.assertEqual(os.read(fd, 100), b"")
        self.close(fd)
        self.assertEqual(self.value(s), 0)

    def test_bad_write_is_einval_and_changes_nothing(self):
        s = self.sem()
        self.sh("echo 2 > sem/s")
        r = self.sh("echo abc > sem/s", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Invalid argument", r.stderr)
        self.assertEqual(self.value(s), 2)
        for bad in (b"-1\n", b"1.5\n", b" 3\n", b"3 \n", b"0x3\n", b"1\n2\n"):
            fd = self.open(s, os.O_WRONLY)
            with self.assertRaises(OSError) as cm:
                os.write(fd, bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL, bad)
            self.close(fd)
            self.assertEqual(self.value(s), 2, bad)

    def test_overflow_past_sem_value_max(self):
        s = self.sem()
        self.sh("echo 2147483646 > sem/s")
        fd = self.open(s, os.O_WRONLY)
        self.assertEqual(os.write(fd, b"1\n"), 2)
        with self.assertRaises(OSError) as cm:
            os.write(fd, b"1\n")
        self.assertEqual(cm.exception.errno, errno.EOVERFLOW)
        self.close(fd)
        self.assertEqual(self.value(s), 2147483647)

    def test_value_xattr_read_and_set_by_owner(self):
        s = self.sem()
        self.sh("setfattr -n user.ipcfs.value -v 4 sem/s")
        r = self.sh("getfattr --only-values -n user.ipcfs.value sem/s")
        self.assertEqual(r.stdout, "4")
        # looking never takes
        for _ in range(3):
            self.assertEqual(self.value(s), 4)
        r = self.sh("setfattr -n user.ipcfs.value -v x sem/s", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.value(s), 4)
        # another user may not set it (and is refused by the mode bits first)
        os.chmod(s, 0o666)
        r = self.sh("setfattr -n user.ipcfs.value -v 9 sem/s", check=False,
                    **harness.as_user(65534))
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.value(s), 4)

    def test_setting_value_wakes_blocked_cat(self):
        s = self.sem()
        p = self.spawn(["cat", "sem/s"], text=True)
        self.blocked_readers(s, 1)
        self.set_xattr(s, "value", 2)
        self.assertEqual(self.finish(p)[:2], (0, "1\n"))
        self.assertEqual(self.value(s), 1)

    def test_waiters_served_one_per_unit(self):
        s = self.sem()
        ps = []
        for i in range(3):
            ps.append(self.spawn(["cat", "sem/s"], text=True))
            self.blocked_readers(s, i + 1)
        self.sh("echo 1 > sem/s")
        self.assertEqual(self.finish(ps[0])[:2], (0, "1\n"))  # first come, first served
        self.blocked_readers(s, 2)
        self.assertTrue(self.alive(ps[1]) and self.alive(ps[2]))
        self.sh("echo 2 > sem/s")
        for p in ps[1:]:
            self.assertEqual(self.finish(p)[:2], (0, "1\n"))
        self.assertEqual(self.value(s), 0)


    def test_two_threads_blocked_on_one_open_file_take_one_unit(self):
        """Each open file takes at most one unit, also when two threads of
        one process wait in read(2) on the same descriptor."""
        s = self.sem()
        code = r"""
import os, sys, threading
fd = os.open(sys.argv[1], os.O_RDONLY)
got = []
ts = [threading.Thread(target=lambda: got.append(os.read(fd, 100))) for _ in range(2)]
for t in ts:
    t.start()
sys.stdin.readline()
for t in ts:
    t.join(5)
print(sorted(got) if all(not t.is_alive() for t in ts) else sorted(got) + ["blocked"])
sys.stdout.flush()
"""
        p = self.pybg(code, s, stdin=subprocess.PIPE)
        self.blocked_readers(s, 2)
        self.sh("echo 2 > sem/s")
        p.stdin.write(b"\n")
        p.stdin.flush()
        rc, out, err = self.finish(p, timeout=20)
        self.assertEqual(rc, 0, err)
        # one thread took the unit, the other saw EOF; one unit is left
        self.assertEqual((out.decode().strip(), self.value(s)), ("[b'', b'1\\n']", 1))


class TestConcurrency(SemTest):
    def test_worker_pool_never_exceeds_two_holders(self):
        s = self.sem("pool")
        log = os.path.join(self.m.workdir, "pool.log")
        open(log, "w").close()
        r = self.sh(POOL, timeout=60, env=dict(os.environ, LOG=log))
        self.assertEqual(r.stderr, "")
        with open(log) as f:
            lines = f.read().split("\n")[:-1]
        self.assertEqual(len(lines), 36)
        holders, peak = set(), 0
        for line in lines:
            op, wid = line.split()
            if op == "+":
                self.assertNotIn(wid, holders)
                holders.add(wid)
            else:
                holders.remove(wid)
            peak = max(peak, len(holders))
        self.assertLessEqual(peak, 2, lines)
        self.assertGreaterEqual(peak, 1)
        self.assertEqual(holders, set())
        for wid in "123456":
            self.assertEqual(lines.count("+ " + wid), 3)
        self.assertEqual(self.value(s), 2)
        self.assertEqual(self.num(s, "blocked_readers"), 0)

    def test_six_python_workers_k2(self):
        """Six python processes share a semaphore of value 2; each records
        entry and exit in an O_APPEND file outside the mount."""
        s = self.sem("k")
        log = os.path.join(self.m.workdir, "k.log")
        worker = r"""
import os, sys, time
sem, log, wid = sys.argv[1], sys.argv[2], sys.argv[3]
lg = os.open(log, os.O_WRONLY | os.O_APPEND)
for i in range(5):
    fd = os.open(sem, os.O_RDONLY)
    assert os.read(fd, 10) == b"1\n"          # P
    os.close(fd)
    os.write(lg, ("+ %s %f\n" % (wid, time.time())).encode())
    time.sleep(0.02)
    os.write(lg, ("- %s %f\n" % (wid, time.time())).encode())
    fd = os.open(sem, os.O_WRONLY)
    os.write(fd, b"1\n")                       # V
    os.close(fd)
"""
        open(log, "w").close()
        self.set_xattr(s, "value", 2)
        ps = [self.pybg(worker, s, log, i) for i in range(6)]
        for p in ps:
            rc, out, err = self.finish(p, timeout=60)
            self.assertEqual(rc, 0, err)
        with open(log) as f:
            events = [line.split() for line in f.read().splitlines()]
        self.assertEqual(len(events), 60)
        holders, peak = 0, 0
        for op, _, _ in events:
            holders += 1 if op == "+" else -1
            peak = max(peak, holders)
        self.assertLessEqual(peak, 2)
        self.assertEqual(holders, 0)
        self.assertEqual(self.value(s), 2)

    def test_mutex_protects_read_modify_write(self):
        s = self.sem("lock")
        counter = os.path.join(self.m.workdir, "counter")
        with open(counter, "w") as f:
            f.write("0\n")
        r = self.sh(MUTEX, timeout=60, env=dict(os.environ, COUNTER=counter))
        self.assertEqual(r.stderr, "")
        with open(counter) as f:
            self.assertEqual(f.read(), "40\n")
        self.wait_num(s, "value", 1)
        self.assertEqual(self.xattr(s, "undo"), "1")


class TestUndo(SemTest):
    def test_killed_holder_unit_comes_back(self):
        s = self.sem(undo=1)
        self.sh("echo 1 > sem/s")
        p = self.pybg(HOLD, s)
        self.expect_line(p.stdout, "1")
        self.assertEqual(self.value(s), 0)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10 * harness.SLOW)
        self.wait_num(s, "value", 1)
        # and the next P gets it (which, with undo, it gives back on close)
        self.assertEqual(self.sh("cat sem/s").stdout, "1\n")
        self.wait_num(s, "value", 1)

    def test_killed_holder_wakes_blocked_waiter(self):
        s = self.sem(undo=1)
        self.sh("echo 1 > sem/s")
        holder = self.pybg(HOLD, s)
        self.expect_line(holder.stdout, "1")
        waiter = self.spawn(["cat", "sem/s"], text=True)
        self.blocked_readers(s, 1)
        holder.kill()
        holder.wait(timeout=10 * harness.SLOW)
        self.assertEqual(self.finish(waiter)[:2], (0, "1\n"))
        # cat closed its file: with undo its unit is back too
        self.wait_num(s, "value", 1)

    def test_without_undo_a_dead_holder_keeps_its_unit(self):
        s = self.sem()
        u = self.sem("u", undo=1)
        self.sh("echo 1 > sem/s; echo 1 > sem/u")
        # one process holds a unit of each: sem/s (plain P) then sem/u (undo)
        p = self.pybg(HOLD2, s, u)
        self.expect_line(p.stdout, "held")
        self.assertEqual((self.value(s), self.value(u)), (0, 0))
        p.kill()
        p.wait(timeout=10 * harness.SLOW)
        # its files are closed in order: once sem/u's unit is back, sem/s's
        # close has been seen too, and that unit stays taken
        self.wait_num(u, "value", 1)
        self.assertEqual(self.value(s), 0)

    def test_undo_cannot_change_while_units_held(self):
        s = self.sem(undo=1)
        self.sh("echo 1 > sem/s")
        p = self.pybg(HOLD, s)
        self.expect_line(p.stdout, "1")
        with self.assertRaises(OSError) as cm:
            self.set_xattr(s, "undo", 0)
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        p.kill()
        p.wait(timeout=10 * harness.SLOW)
        self.wait_num(s, "value", 1)
        self.set_xattr(s, "undo", 0)
        self.assertEqual(self.xattr(s, "undo"), "0")


class TestPersistence(SemTest):
    def test_value_survives_restart(self):
        s = self.sem(undo=1)
        self.sh("echo 5 > sem/s; cat sem/s >/dev/null; echo 2 > sem/t")
        self.wait_num(s, "value", 5)  # undo: the closed cat gave it back
        self.sh("setfattr -n user.ipcfs.undo -v 0 sem/s; cat sem/s >/dev/null")
        self.assertEqual(self.value(s), 4)
        self.m.stop()
        self.m.start()
        self.assertEqual(self.value(s), 4)
        self.assertEqual(self.xattr(s, "undo"), "0")
        self.assertEqual(self.value(self.p("sem", "t")), 2)
        self.assertEqual(self.sh("cat sem/t").stdout, "1\n")

    def test_undo_held_units_back_after_daemon_crash(self):
        s = self.sem("u", undo=1)
        plain = self.sem("p")
        self.sh("echo 2 > sem/u && sync sem/u")
        self.sh("echo 2 > sem/p && cat sem/p >/dev/null && sync sem/p")
        holder = self.pybg(HOLD, s)
        self.expect_line(holder.stdout, "1")
        self.assertEqual(self.value(s), 1)
        self.assertEqual(self.value(plain), 1)
        self.m.kill()                      # kill -9 of the daemon
        self.end_all()                     # the holder goes too
        self.m.start()
        self.assertEqual(self.value(s), 2)  # the unit held through undo is back
        self.assertEqual(self.value(plain), 1)  # a plain P stays taken
        self.assertEqual(self.xattr(s, "undo"), "1")


class TestBlockingAndPoll(SemTest):
    def test_sigint_ends_blocked_reader_at_once(self):
        s = self.sem()
        self.sigint_blocked_reader(s)
        self.sh("echo 1 > sem/s")
        self.assertEqual(self.value(s), 1)  # not taken by the dead reader

    def test_sigterm_ends_blocked_cat(self):
        s = self.sem()
        p = self.spawn(["cat", "sem/s"], text=True)
        self.blocked_readers(s, 1)
        p.terminate()
        self.assertEqual(self.finish(p, timeout=5)[0], -signal.SIGTERM)
        self.blocked_readers(s, 0)
        self.sh("echo 1 > sem/s")
        self.assertEqual(self.value(s), 1)

    def _wait_in_thread(self, fn):
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", fn()))
        t.start()
        return t, box

    def test_poll_and_select_report_a_unit(self):
        s = self.sem()
        fd = self.open(s, os.O_RDONLY | os.O_NONBLOCK)
        po = select.poll()
        po.register(fd, select.POLLIN)
        self.assertEqual(po.poll(0), [])
        self.assertEqual(select.select([fd], [], [], 0)[0], [])
        t, box = self._wait_in_thread(lambda: po.poll(10000 * harness.SLOW))
        self.sh("echo 1 > sem/s")
        t.join()
        self.assertEqual(box["r"], [(fd, select.POLLIN)])
        self.assertEqual(select.select([fd], [], [], 0)[0], [fd])
        self.assertEqual(self.value(s), 1)  # poll takes nothing
        self.assertEqual(os.read(fd, 100), b"1\n")
        self.assertEqual(self.value(s), 0)
        self.close(fd)
        # a writer is always writable
        w = self.open(s, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(select.select([], [w], [], 0)[1], [w])
        self.close(w)

    def test_select_wakes_one_of_two_pollers_per_unit(self):
        s = self.sem()
        a = self.open(s, os.O_RDONLY | os.O_NONBLOCK)
        b = self.open(s, os.O_RDONLY | os.O_NONBLOCK)
        t, box = self._wait_in_thread(lambda: select.select([a, b], [], [], 10 * harness.SLOW))
        self.sh("echo 1 > sem/s")
        t.join()
        self.assertTrue(box["r"][0])
        got = []
        for fd in (a, b):
            try:
                got.append(os.read(fd, 100))
            except BlockingIOError:
                got.append(None)
        self.assertEqual(sorted(got, key=str), sorted([b"1\n", None], key=str))
        self.assertEqual(self.value(s), 0)
