#!/usr/bin/env python3
"""record.py - record framing helpers in Python: many length-prefixed messages per request.

In record framing (user.ipcfs.framing=record) each message is a 32-bit
little-endian length and its bytes; one os.write() may carry many records and
one os.read() returns as many whole records as fit in its size. Import
pack/unpack/send/recv, or run it as a self-test:

    examples/record.py MOUNTPOINT        (or IPCFS_MNT=MOUNTPOINT)

which publishes batches of records to a topic in record framing, has two
subscribers read them in big reads, and checks that both got every message
in order (exit 0).
"""
import os
import struct
import sys

_LEN = struct.Struct("<I")


def pack(msgs):
    """The bytes of records for the messages (bytes objects)."""
    return b"".join(_LEN.pack(len(m)) + m for m in msgs)


def unpack(buf):
    """The messages in buf, which must be whole records (one read's worth)."""
    out, p = [], 0
    while p < len(buf):
        if len(buf) - p < 4:
            raise ValueError("a cut record header")
        (n,) = _LEN.unpack_from(buf, p)
        if len(buf) - p - 4 < n:
            raise ValueError("a cut record")
        out.append(bytes(buf[p + 4:p + 4 + n]))
        p += 4 + n
    return out


def send(fd, msgs):
    """Sends the messages with one write (the daemon takes it whole)."""
    data = pack(msgs)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def recv(fd, size=65536):
    """Reads once: a list of whole messages (blocks unless fd is O_NONBLOCK)."""
    return unpack(os.read(fd, size))


def main():
    mnt = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IPCFS_MNT")
    if not mnt or not os.path.isdir(os.path.join(mnt, "topic")):
        print("usage: record.py MOUNTPOINT (an ipcfs mount; or set IPCFS_MNT)", file=sys.stderr)
        return 2
    path = os.path.join(mnt, "topic", "record-py.%d" % os.getpid())
    count, batch = 10000, 250
    want = [b"event %d %s" % (i, b"x" * (i % 40)) for i in range(count)]
    open(path, "x").close()
    try:
        os.setxattr(path, "user.ipcfs.framing", b"record")
        os.setxattr(path, "user.ipcfs.max_messages", str(count).encode())  # backlog
        subs = [os.open(path, os.O_RDONLY) for _ in range(2)]   # subscribe first
        pub = os.open(path, os.O_WRONLY)
        for i in range(0, count, batch):
            send(pub, want[i:i + batch])
        os.close(pub)
        for k, fd in enumerate(subs):
            got, reads = [], 0
            while len(got) < count:
                got += recv(fd)
                reads += 1
            os.close(fd)
            if got != want:
                print("record.py: subscriber %d got wrong messages" % k, file=sys.stderr)
                return 1
            print("record.py: subscriber %d: %d messages in %d reads" % (k, count, reads))
        print("record.py: %d messages published in %d writes" % (count, count // batch))
        return 0
    finally:
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
