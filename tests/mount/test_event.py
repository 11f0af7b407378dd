"""test_event.py - events (event/NAME) on a real mount, driven by real programs.

DESIGN.md section 2 "Event": a reader waits for the next write made after it
opened the file, then reads that write's payload and EOF; a write goes to
every waiting reader and never blocks; without a reader a write is not kept,
unless user.ipcfs.latched=1 (a manual-reset event: set until `: > event/e` or
`truncate -s 0 event/e`; `echo x > event/e` resets and sets again); the state
is user.ipcfs.set; poll reports POLLIN when it fires.
"""
import os
import select
import signal
import subprocess
import threading

import harness
from harness import wait_until
from proctest import ProcTest

# Opens argv[1], says "open", waits for a line on stdin, then reads it all.
OPEN_THEN_READ = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stderr.write("open\n"); sys.stderr.flush()
sys.stdin.readline()
out = b""
while True:
    b = os.read(fd, 65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
"""

# README scenario "reload signal": a service reloads each time the event
# fires (here: it logs what it got).
RELOADER = r"""
while msg=$(cat event/reload); do
  echo "reloading on '$msg'" >> "$LOG"
done
"""


class EventTest(ProcTest):
    def event(self, name="e", **settings):
        self.sh("touch event/%s" % name)
        path = self.p("event", name)
        for k, v in settings.items():
            self.set_xattr(path, k, v)
        return path

    def cat(self, name="e"):
        return self.spawn(["cat", "event/" + name], text=True)


class TestEdge(EventTest):
    def test_three_readers_all_woken_by_one_write(self):
        e = self.event()
        self.assertEqual(self.xattr(e, "kind"), "event")
        cats = []
        for i in range(3):
            cats.append(self.cat())
            self.blocked_readers(e, i + 1)
        self.sh("echo reload > event/e")
        for p in cats:
            self.assertEqual(self.finish(p)[:2], (0, "reload\n"))
        self.blocked_readers(e, 0)
        self.assertEqual(self.num(e, "in_messages"), 1)
        self.assertEqual(self.num(e, "out_messages"), 3)

    def test_reader_opened_after_write_is_not_woken_by_it(self):
        e = self.event()
        self.sh("echo first > event/e")  # nobody listens: not kept
        self.assertEqual(self.xattr(e, "set"), "0")
        p = self.cat()
        self.blocked_readers(e, 1)        # it waits: "first" is not for it
        self.assertTrue(self.alive(p))
        self.sh("echo second > event/e")
        self.assertEqual(self.finish(p)[:2], (0, "second\n"))

    def test_reader_open_before_write_gets_it_even_if_it_reads_later(self):
        e = self.event()
        p = self.pybg(OPEN_THEN_READ, e, stdin=subprocess.PIPE)
        self.expect_line(p.stderr, "open")
        self.sh("echo fired > event/e")
        self.sh("echo too-late > event/e")  # after its firing: not for it
        p.stdin.write(b"go\n")
        p.stdin.flush()
        rc, out, err = self.finish(p)
        self.assertEqual((rc, out), (0, b"fired\n"), err)

    def test_write_never_blocks_and_nothing_is_kept(self):
        e = self.event()
        r = self.sh("for i in $(seq 50); do echo $i > event/e; done; echo done")
        self.assertEqual(r.stdout, "done\n")
        self.assertEqual(self.num(e, "in_messages"), 50)
        self.assertEqual(os.stat(e).st_size, 0)
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        with self.assertRaises(BlockingIOError):
            os.read(fd, 100)
        self.close(fd)

    def test_each_reader_gets_one_firing_then_eof(self):
        e = self.event()
        fd = self.open(e, os.O_RDONLY)
        self.sh("echo one > event/e; echo two > event/e")
        self.assertEqual(os.read(fd, 100), b"one\n")
        self.assertEqual(os.read(fd, 100), b"")
        self.close(fd)

    def test_reload_loop_scenario(self):
        self.event("reload")
        e = self.p("event", "reload")
        log = os.path.join(self.m.workdir, "reload.log")
        open(log, "w").close()
        loop = self.spawn(["bash", "-c", RELOADER], text=True, env=dict(os.environ, LOG=log))

        def lines():
            with open(log) as f:
                return f.read().splitlines()

        for i, what in enumerate(("reload", "config changed")):
            self.blocked_readers(e, 1)    # the loop waits for the next firing
            self.sh("echo '%s' > event/reload" % what)
            wait_until(lambda: len(lines()) == i + 1, what="reload %d" % (i + 1))
        self.assertEqual(lines(), ["reloading on 'reload'", "reloading on 'config changed'"])
        self.assertTrue(self.alive(loop))


class TestLatched(EventTest):
    def test_latched_stays_set_until_reset(self):
        e = self.event(latched=1)
        self.assertEqual(self.xattr(e, "latched"), "1")
        self.sh("echo ready > event/e")
        self.assertEqual(self.xattr(e, "set"), "1")
        # readers return at once with the payload, as often as they come
        r = self.sh("cat event/e; cat event/e; cat event/e")
        self.assertEqual(r.stdout, "ready\n" * 3)
        self.assertEqual(os.stat(e).st_size, 6)
        # reset with an empty truncating open
        self.sh(": > event/e")
        self.assertEqual(self.xattr(e, "set"), "0")
        self.assertEqual(os.stat(e).st_size, 0)
        p = self.cat()
        self.blocked_readers(e, 1)
        # echo resets and sets again; the waiter gets it
        self.sh("echo again > event/e")
        self.assertEqual(self.finish(p)[:2], (0, "again\n"))
        self.assertEqual(self.xattr(e, "set"), "1")
        self.sh("echo third > event/e")
        self.assertEqual(self.sh("cat event/e").stdout, "third\n")
        # truncate -s 0 resets too
        self.sh("truncate -s 0 event/e")
        self.assertEqual(self.xattr(e, "set"), "0")
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        with self.assertRaises(BlockingIOError):
            os.read(fd, 100)
        self.close(fd)
        r = self.sh("truncate -s 3 event/e", check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_clearing_latched_resets(self):
        e = self.event(latched=1)
        self.sh("echo on > event/e")
        self.assertEqual(self.xattr(e, "set"), "1")
        self.sh("setfattr -n user.ipcfs.latched -v 0 event/e")
        self.assertEqual(self.xattr(e, "set"), "0")
        p = self.cat()
        self.blocked_readers(e, 1)
        self.sh("echo edge > event/e")
        self.assertEqual(self.finish(p)[:2], (0, "edge\n"))
        self.assertEqual(self.xattr(e, "set"), "0")

    def test_latched_state_survives_restart(self):
        e = self.event(latched=1)
        self.event("off", latched=1)
        self.sh("echo persisted > event/e; echo x > event/off; : > event/off")
        self.m.stop()
        self.m.start()
        self.assertEqual(self.xattr(e, "latched"), "1")
        self.assertEqual(self.xattr(e, "set"), "1")
        self.assertEqual(self.sh("cat event/e").stdout, "persisted\n")
        self.assertEqual(self.xattr(self.p("event", "off"), "set"), "0")


class TestBlockingAndPoll(EventTest):
    def test_sigint_ends_blocked_reader_at_once(self):
        e = self.event()
        self.sigint_blocked_reader(e)
        # the next firing goes to live readers only
        p = self.cat()
        self.blocked_readers(e, 1)
        self.sh("echo live > event/e")
        self.assertEqual(self.finish(p)[:2], (0, "live\n"))
        self.assertEqual(self.num(e, "out_messages"), 1)

    def test_nonblock_read_is_eagain_until_it_fires(self):
        e = self.event()
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        with self.assertRaises(BlockingIOError):
            os.read(fd, 100)
        self.sh("echo x > event/e")
        self.assertEqual(os.read(fd, 100), b"x\n")
        self.assertEqual(os.read(fd, 100), b"")
        self.close(fd)

    def _wait_in_thread(self, fn):
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", fn()))
        t.start()
        return t, box

    def test_poll_reports_pollin_when_it_fires(self):
        e = self.event()
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        po = select.poll()
        po.register(fd, select.POLLIN)
        self.assertEqual(po.poll(0), [])
        t, box = self._wait_in_thread(lambda: po.poll(10000 * harness.SLOW))
        self.sh("echo ding > event/e")
        t.join()
        self.assertEqual(box["r"], [(fd, select.POLLIN)])
        self.assertEqual(os.read(fd, 100), b"ding\n")
        self.close(fd)

    def test_select_and_epoll_on_several_readers(self):
        e = self.event()
        fds = [self.open(e, os.O_RDONLY | os.O_NONBLOCK) for _ in range(2)]
        ep = select.epoll()
        self.addCleanup(ep.close)
        ep.register(fds[1], select.EPOLLIN)
        self.assertEqual(select.select(fds, [], [], 0)[0], [])
        t, box = self._wait_in_thread(lambda: select.select(fds, [], [], 10 * harness.SLOW))
        self.sh("echo all > event/e")
        t.join()
        wait_until(lambda: select.select(fds, [], [], 0)[0] == fds, what="both readable")
        self.assertEqual(ep.poll(10 * harness.SLOW), [(fds[1], select.EPOLLIN)])
        for fd in fds:
            self.assertEqual(os.read(fd, 100), b"all\n")
        ep.unregister(fds[1])

    def test_latched_set_is_readable_at_once(self):
        e = self.event(latched=1)
        self.sh("echo on > event/e")
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(select.select([fd], [], [], 0)[0], [fd])
        self.assertEqual(os.read(fd, 100), b"on\n")
        self.close(fd)
        self.sh(": > event/e")
        fd = self.open(e, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(select.select([fd], [], [], 0)[0], [])
        self.close(fd)
