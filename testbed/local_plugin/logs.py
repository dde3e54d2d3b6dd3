"""The containers' logs as ``kubectl logs`` shows them, from the files the log pump
(:mod:`testbed.local_plugin.pump`) writes: ``<ctr>.out`` as written, ``<ctr>.log`` with every
line prefixed by an RFC3339Nano timestamp."""

from __future__ import annotations

import re
import time
from datetime import datetime


def rfc3339(ts: float) -> str:
    """The timestamp format of metav1.Time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> float | None:
    """Seconds since the epoch of an RFC3339(Nano) timestamp; None for Go's zero time or junk."""
    m = _RFC3339.match(value.strip())
    if not m:
        return None
    day, clock, frac, zone = m.groups()
    frac6 = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        dt = datetime.fromisoformat(f"{day}T{clock}.{frac6}{zone}")
    except ValueError:
        return None
    if dt.year <= 1:
        return None
    return dt.timestamp()


def select_log(
    data: bytes,
    *,
    stamped: bool,
    tail: int = 0,
    limit_bytes: int = 0,
    timestamps: bool = False,
    since: float | None = None,
) -> bytes:
    """What ``kubectl logs`` would show: lines newer than ``since``, the last ``tail`` of
    them, at most the first ``limit_bytes`` bytes of that. ``data`` is the raw output
    (``stamped=False``; then ``timestamps`` and ``since`` cannot apply) or the ``.log`` form
    with every line prefixed by an RFC3339Nano timestamp and a space (``stamped=True``)."""
    lines = data.splitlines(keepends=True)
    if stamped and since is not None:
        kept = []
        for line in lines:
            ts = parse_rfc3339(line.split(b" ", 1)[0].decode(errors="replace"))
            if ts is None or ts >= since:
                kept.append(line)
        lines = kept
    if tail > 0:
        lines = lines[-tail:]
    if stamped and not timestamps:
        lines = [strip_stamp(line) for line in lines]
    out = b"".join(lines)
    if limit_bytes > 0:
        out = out[:limit_bytes]
    return out


def strip_stamp(line: bytes) -> bytes:
    return line.split(b" ", 1)[1] if b" " in line else line
