"""test_topic.py - topics (topic/NAME) on a real mount, driven by real programs.

DESIGN.md section 2 "Topic": every open-for-read is a subscription from the
next message (or from the last N kept, with user.ipcfs.retain=N, persisted);
every published message goes to every subscriber; each read returns at most
one message and a subscription never ends by itself (`cat topic/x` follows);
publishing framings as for mailboxes (open, write, line); each subscriber's
backlog is bounded by user.ipcfs.max_messages: overflow=drop (default) drops
its oldest and counts them in user.ipcfs.dropped, overflow=block makes
publishers wait; user.ipcfs.subscribers counts the subscriptions.
"""
import os
import select
import signal
import threading

import harness
from harness import wait_until
from proctest import ProcTest

N = 1000

# A subscriber: opens argv[1], says "open", reads until it has argv[2]
# messages (one read each), prints them one per line.
SUBSCRIBE = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.stderr.write("open\n"); sys.stderr.flush()
got = [os.read(fd, 65536) for _ in range(int(sys.argv[2]))]
sys.stdout.write("\n".join(m.decode() for m in got) + "\n")
"""

# A publisher in write framing: one os.write per message, "m<i>" for i in
# 1..argv[2]; says "sent <i>" after each.
PUBLISH = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i in range(1, int(sys.argv[2]) + 1):
    assert os.write(fd, b"m%d" % i) == len(b"m%d" % i)
    sys.stdout.write("sent %d\n" % i); sys.stdout.flush()
"""

# README scenario "log fan-out": every subscriber gets every line.
FANOUT_SUBSCRIBERS = r"""
cat topic/log > "$DIR/all.log" &                            # a full copy
grep --line-buffered ERROR topic/log > "$DIR/errors.log" &   # only the errors
wait
"""
FANOUT_PUBLISHER = r"""
printf 'INFO start\nERROR disk full\nINFO retry\nERROR gave up\n' > topic/log
"""


class TopicTest(ProcTest):
    def topic(self, name="t", framing=None, **settings):
        self.sh("touch topic/%s" % name)
        path = self.p("topic", name)
        if framing is not None:
            self.set_xattr(path, "framing", framing)
        for k, v in settings.items():
            self.set_xattr(path, k, v)
        return path

    def drain_nonblock(self, fd):
        got = []
        while True:
            try:
                got.append(os.read(fd, 65536))
            except BlockingIOError:
                return got

    def file_text(self, path):
        with open(path) as f:
            return f.read()


class TestFanOut(TopicTest):
    def test_three_subscribers_get_all_1000_in_order_write_framing(self):
        t = self.topic(framing="write")
        self.assertEqual(self.xattr(t, "kind"), "topic")
        subs = [self.pybg(SUBSCRIBE, t, N) for _ in range(3)]
        for p in subs:
            self.expect_line(p.stderr, "open")
        self.wait_num(t, "subscribers", 3)
        pub = self.pybg(PUBLISH, t, N)
        rc, out, err = self.finish(pub, timeout=60)
        self.assertEqual(rc, 0, err)
        want = "".join("m%d\n" % i for i in range(1, N + 1))
        for p in subs:
            rc, out, err = self.finish(p, timeout=60)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out.decode(), want)  # one message per read, in order
        self.assertEqual(self.num(t, "in_messages"), N)
        self.assertEqual(self.num(t, "out_messages"), 3 * N)
        self.assertEqual(self.num(t, "dropped"), 0)
        self.wait_num(t, "subscribers", 0)
        self.assertEqual(self.num(t, "messages"), 0)

    def test_three_head_subscribers_line_framing_one_printf(self):
        t = self.topic(framing="line")
        outs = [os.path.join(self.m.workdir, "sub%d" % i) for i in range(3)]
        subs = [self.shbg("head -n %d topic/t > %s" % (N, o)) for o in outs]
        self.wait_num(t, "subscribers", 3)
        self.sh("printf 'line %%d\\n' $(seq %d) > topic/t" % N)
        want = "".join("line %d\n" % i for i in range(1, N + 1))
        for p, o in zip(subs, outs):
            rc, _, err = self.finish(p, timeout=60)
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.file_text(o), want)
        self.assertEqual(self.num(t, "in_messages"), N)

    def test_subscription_starts_at_next_message(self):
        t = self.topic(framing="line")
        self.sh("echo old > topic/t")  # nobody subscribed: gone
        fd = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(self.drain_nonblock(fd), [])
        self.sh("printf 'new1\\nnew2\\n' > topic/t")
        self.assertEqual(self.drain_nonblock(fd), [b"new1\n", b"new2\n"])
        self.close(fd)

    def test_open_framing_each_echo_is_a_message(self):
        t = self.topic()
        self.assertEqual(self.xattr(t, "framing"), "open")
        fd = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        self.sh("echo one > topic/t; (echo two; echo three) > topic/t")
        self.assertEqual(self.drain_nonblock(fd), [b"one\n", b"two\nthree\n"])
        self.close(fd)

    def test_cat_follows_the_topic(self):
        t = self.topic(framing="line")
        out = os.path.join(self.m.workdir, "follow")
        cat = self.shbg("exec cat topic/t > %s" % out)
        self.wait_num(t, "subscribers", 1)
        self.sh("echo a > topic/t")
        wait_until(lambda: self.file_text(out) == "a\n", what="a")
        self.sh("echo b > topic/t")
        wait_until(lambda: self.file_text(out) == "a\nb\n", what="b")
        self.blocked_readers(t, 1)       # still there, waiting for more
        self.assertTrue(self.alive(cat))
        cat.terminate()
        self.assertEqual(self.finish(cat)[0], -signal.SIGTERM)
        self.wait_num(t, "subscribers", 0)

    def test_log_fanout_scenario(self):
        log = self.topic("log", framing="line")
        d = self.m.workdir
        subs = self.spawn(["bash", "-c", FANOUT_SUBSCRIBERS], text=True,
                          env=dict(os.environ, DIR=d))
        self.wait_num(log, "subscribers", 2)
        self.sh(FANOUT_PUBLISHER)
        wait_until(lambda: self.file_text(os.path.join(d, "all.log")).count("\n") == 4,
                   what="all.log")
        wait_until(lambda: self.file_text(os.path.join(d, "errors.log")).count("\n") == 2,
                   what="errors.log")
        self.assertEqual(self.file_text(os.path.join(d, "all.log")),
                         "INFO start\nERROR disk full\nINFO retry\nERROR gave up\n")
        self.assertEqual(self.file_text(os.path.join(d, "errors.log")),
                         "ERROR disk full\nERROR gave up\n")
        self.assertTrue(self.alive(subs))  # subscriptions never end by themselves

    def test_subscribers_count(self):
        t = self.topic()
        cats = []
        for i in range(3):
            cats.append(self.spawn(["cat", "topic/t"]))
            self.wait_num(t, "subscribers", i + 1)
        w = self.open(t, os.O_WRONLY)  # a publisher is no subscriber
        self.assertEqual(self.num(t, "subscribers"), 3)
        self.close(w)
        cats[0].kill()
        self.wait_num(t, "subscribers", 2)


class TestRetain(TopicTest):
    def test_new_subscriber_gets_last_three(self):
        t = self.topic(framing="line", retain=3)
        self.assertEqual(self.xattr(t, "retain"), "3")
        self.sh("printf '1\\n2\\n3\\n4\\n5\\n' > topic/t")
        self.assertEqual(self.num(t, "messages"), 3)
        self.assertEqual(self.sh("head -n 3 topic/t").stdout, "3\n4\n5\n")
        self.assertEqual(self.sh("head -n 3 topic/t").stdout, "3\n4\n5\n")
        # then it follows
        fd = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        self.assertEqual(self.drain_nonblock(fd), [b"3\n", b"4\n", b"5\n"])
        self.sh("echo 6 > topic/t")
        self.assertEqual(self.drain_nonblock(fd), [b"6\n"])
        self.close(fd)

    def test_retain_survives_restart(self):
        t = self.topic(framing="line", retain=3)
        self.sh("printf '1\\n2\\n3\\n4\\n5\\n' > topic/t")
        self.m.stop()
        self.m.start()
        self.assertEqual(self.xattr(t, "retain"), "3")
        self.assertEqual(self.xattr(t, "framing"), "line")
        self.assertEqual(self.sh("head -n 3 topic/t").stdout, "3\n4\n5\n")
        self.sh("echo 6 > topic/t")
        self.assertEqual(self.sh("head -n 3 topic/t").stdout, "4\n5\n6\n")

    def test_retained_after_sync_survive_daemon_crash(self):
        t = self.topic(framing="line", retain=2)
        self.sh("printf 'a\\nb\\nc\\n' > topic/t && sync topic/t")
        self.m.kill()
        self.m.start()
        self.assertEqual(self.sh("head -n 2 topic/t").stdout, "b\nc\n")
        self.assertEqual(self.xattr(t, "retain"), "2")


class TestOverflow(TopicTest):
    def test_drop_counts_for_a_subscriber_that_does_not_read(self):
        t = self.topic(framing="line", max_messages=10)
        self.assertEqual(self.xattr(t, "overflow"), "drop")
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        self.sh("seq 50 > topic/t")   # never blocks
        self.assertEqual(self.num(t, "dropped"), 40)
        got = self.drain_nonblock(slow)
        self.assertEqual(got, [b"%d\n" % i for i in range(41, 51)])
        self.assertEqual(self.num(t, "dropped"), 40)
        self.close(slow)

    def test_drops_are_per_subscriber(self):
        t = self.topic(framing="write", max_messages=10)
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        fast = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        w = self.open(t, os.O_WRONLY)
        got_fast = []
        for i in range(1, 51):
            os.write(w, b"m%d" % i)
            got_fast += self.drain_nonblock(fast)
        self.close(w)
        self.assertEqual(got_fast, [b"m%d" % i for i in range(1, 51)])
        self.assertEqual(self.num(t, "dropped"), 40)   # all the slow one's
        self.assertEqual(self.drain_nonblock(slow), [b"m%d" % i for i in range(41, 51)])
        self.close(slow)
        self.close(fast)

    def test_block_makes_publisher_wait_for_slow_subscriber(self):
        t = self.topic(framing="write", max_messages=5, overflow="block")
        self.assertEqual(self.xattr(t, "overflow"), "block")
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        pub = self.pybg(PUBLISH, t, 10)
        self.blocked_writers(t, 1)
        self.assertEqual(self.num(t, "in_messages"), 5)
        self.assertTrue(self.alive(pub))
        got = [os.read(slow, 100)]          # one read makes room for one
        self.assertEqual(got, [b"m1"])
        self.wait_num(t, "in_messages", 6)
        while len(got) < 10:
            got.append(self.read_within(slow))
        self.assertEqual(got, [b"m%d" % i for i in range(1, 11)])
        rc, out, err = self.finish(pub)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.num(t, "dropped"), 0)
        self.close(slow)

    def test_block_publisher_goes_on_when_slow_subscriber_leaves(self):
        t = self.topic(framing="line", max_messages=2, overflow="block")
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        pub = self.shbg("seq 10 > topic/t && echo published")
        self.blocked_writers(t, 1)
        self.assertTrue(self.alive(pub))
        self.close(slow)
        self.assertEqual(self.finish(pub)[:2], (0, "published\n"))

    def test_sigint_ends_blocked_publisher(self):
        t = self.topic(framing="write", max_messages=1, overflow="block")
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        pub = self.pybg("import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n" + PUBLISH,
                        t, 5)
        self.blocked_writers(t, 1)
        pub.send_signal(signal.SIGINT)
        self.assertEqual(self.finish(pub, timeout=5)[0], -signal.SIGINT)
        self.blocked_writers(t, 0)
        self.assertEqual(self.drain_nonblock(slow), [b"m1"])
        self.close(slow)


class TestBlockingAndPoll(TopicTest):
    def test_sigint_ends_blocked_subscriber_at_once(self):
        t = self.topic()
        self.sigint_blocked_reader(t)
        self.wait_num(t, "subscribers", 0)
        self.sh("echo after > topic/t")
        self.assertEqual(self.num(t, "messages"), 0)

    def test_nonblock_read_is_eagain_never_eof(self):
        t = self.topic(framing="write")
        fd = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        with self.assertRaises(BlockingIOError):
            os.read(fd, 100)
        self.py("import os\nfd = os.open('topic/t', os.O_WRONLY)\nos.write(fd, b'x')\n")
        self.assertEqual(os.read(fd, 100), b"x")
        with self.assertRaises(BlockingIOError):  # no EOF, even with no publisher
            os.read(fd, 100)
        self.close(fd)

    def _wait_in_thread(self, fn):
        box = {}
        th = threading.Thread(target=lambda: box.setdefault("r", fn()))
        th.start()
        return th, box

    def test_poll_and_select_report_a_message(self):
        t = self.topic()
        fd = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        po = select.poll()
        po.register(fd, select.POLLIN)
        self.assertEqual(po.poll(0), [])
        th, box = self._wait_in_thread(lambda: po.poll(10000 * harness.SLOW))
        self.sh("echo news > topic/t")
        th.join()
        self.assertEqual(box["r"], [(fd, select.POLLIN)])
        self.assertEqual(select.select([fd], [], [], 0)[0], [fd])
        self.assertEqual(os.read(fd, 100), b"news\n")
        self.assertEqual(select.select([fd], [], [], 0)[0], [])
        self.close(fd)

    def test_pollout_cleared_while_blocked(self):
        t = self.topic(framing="write", max_messages=1, overflow="block")
        slow = self.open(t, os.O_RDONLY | os.O_NONBLOCK)
        w = self.open(t, os.O_WRONLY | os.O_NONBLOCK)
        self.assertEqual(select.select([], [w], [], 0)[1], [w])
        os.write(w, b"1")
        self.assertEqual(select.select([], [w], [], 0)[1], [])
        with self.assertRaises(BlockingIOError):
            os.write(w, b"2")
        th, box = self._wait_in_thread(lambda: select.select([], [w], [], 10 * harness.SLOW))
        self.assertEqual(os.read(slow, 100), b"1")
        th.join()
        self.assertEqual(box["r"][1], [w])
        self.close(w)
        self.close(slow)
