"""The log pump of one container: copies the container's stdout+stderr (its stdin) to
``<ctr>.out`` as written and to ``<ctr>.log`` with every line prefixed by an RFC3339Nano
timestamp and a space. A partial last line gets its timestamp when it completes (or at the
end); a line longer than 64 KiB is cut into stamped pieces.

Run by the runner's per-container wrapper as ``python -I pump.py <ctr>.out <ctr>.log``: a
script of its own that imports only the standard library, in the container's process group.
It ignores TERM/INT/HUP so that a signal to the whole group stops the command, not the
recording of its last words; it ends when the command's output closes.
"""

from __future__ import annotations

import os
import signal
import sys
import time

CHUNK = 65536


def stamp() -> bytes:
    """Now as RFC3339Nano in UTC and the space that follows it in ``<ctr>.log``."""
    t = time.time()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z "
    ).encode()


def pump(source: int, out: int, stamped: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(source, CHUNK)
        except InterruptedError:
            continue
        if not chunk:
            break
        os.write(out, chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > CHUNK:
            lines.append(pending)
            pending = b""
        if lines:
            ts = stamp()
            os.write(stamped, b"".join(ts + line + b"\n" for line in lines))
    if pending:
        os.write(stamped, stamp() + pending + b"\n")


def main(argv: list[str]) -> None:
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    out = os.open(argv[1], flags, 0o644)
    stamped = os.open(argv[2], flags, 0o644)
    pump(0, out, stamped)


if __name__ == "__main__":
    main(sys.argv)
