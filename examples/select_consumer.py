#!/usr/bin/env python3
"""select_consumer.py - a producer and a consumer that waits on several mailboxes with select().

    examples/select_consumer.py MOUNTPOINT        (or IPCFS_MNT=MOUNTPOINT)

The mailboxes use write framing: each os.write() is one message and each
os.read() returns one, on a file the consumer keeps open, so one select()
loop serves them all, like sockets. The producer (a child process) writes
numbered messages to the mailboxes in an interleaved order and ends each
with "END". The consumer checks that every message arrived once and in
order on its mailbox, and exits 0 if so.
"""
import os
import select
import shutil
import sys

NAMES = ("alerts", "orders", "logs")
COUNT = int(os.environ.get("COUNT", "200"))
TIMEOUT = 20.0  # seconds without any message: fail rather than hang


def produce(paths):
    """Writes COUNT numbered messages to each mailbox, in order per mailbox
    but at uneven rates across them, then END to each."""
    fds = {name: os.open(path, os.O_WRONLY) for name, path in paths.items()}
    nxt = {name: 0 for name in NAMES}
    step = 0
    while any(n < COUNT for n in nxt.values()):
        step += 1
        for k, name in enumerate(NAMES):
            # alerts every step, orders every other step, logs every third
            if step % (k + 1) == 0 and nxt[name] < COUNT:
                os.write(fds[name], b"%s %d" % (name.encode(), nxt[name]))
                nxt[name] += 1
    for name in NAMES:
        os.write(fds[name], b"END")
    for fd in fds.values():
        os.close(fd)


def consume(paths):
    """select() over all mailboxes until each has said END. Returns the
    messages received per mailbox."""
    fds = {}
    for name, path in paths.items():
        fds[os.open(path, os.O_RDONLY | os.O_NONBLOCK)] = name
    got = {name: [] for name in NAMES}
    open_fds = set(fds)
    while open_fds:
        ready, _, _ = select.select(sorted(open_fds), [], [], TIMEOUT)
        if not ready:
            raise SystemExit("select_consumer: no message for %g s; got %s" % (
                TIMEOUT, {k: len(v) for k, v in got.items()}))
        for fd in ready:
            try:
                msg = os.read(fd, 65536)   # one message per read
            except BlockingIOError:
                continue                   # another reader was faster: not here
            if msg == b"END":
                open_fds.discard(fd)
                os.close(fd)
            else:
                got[fds[fd]].append(msg.decode())
    return got


def check(got):
    for name in NAMES:
        if got[name] != ["%s %d" % (name, i) for i in range(COUNT)]:
            raise SystemExit("select_consumer: %s: messages lost, duplicated or out of order"
                             % name)


def main():
    mnt = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IPCFS_MNT")
    if not mnt or not os.path.isdir(os.path.join(mnt, "mbox")):
        print("usage: select_consumer.py MOUNTPOINT (an ipcfs mount; or set IPCFS_MNT)",
              file=sys.stderr)
        return 2
    base = os.path.join(mnt, "mbox", "select.%d" % os.getpid())
    os.mkdir(base)
    try:
        paths = {}
        for name in NAMES:
            paths[name] = os.path.join(base, name)
            open(paths[name], "x").close()
            os.setxattr(paths[name], "user.ipcfs.framing", b"write")
        pid = os.fork()
        if pid == 0:
            try:
                produce(paths)
                os._exit(0)
            except BaseException as e:  # report, never fall back into main
                print("select_consumer: producer: %s" % e, file=sys.stderr)
                os._exit(1)
        try:
            got = consume(paths)
        finally:
            _, status = os.waitpid(pid, 0)
        if status != 0:
            print("select_consumer: the producer failed", file=sys.stderr)
            return 1
        check(got)
        for name in NAMES:
            left = os.getxattr(paths[name], "user.ipcfs.messages").decode()
            if left != "0":
                print("select_consumer: %s: %s messages left" % (name, left), file=sys.stderr)
                return 1
        print("select_consumer: %d messages on each of %d mailboxes, in order, none lost"
              % (COUNT, len(NAMES)))
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
