"""A batch cell's result travels back in its job's log, the one channel interLink always has
(even where compute nodes cannot reach the hub): the runner prints it at the end of the log as
a frame of base64 lines between two markers that carry its status, its size and its sha256.
Anything else in the log (the cell's own output) is left alone.

    ==== BEGIN INTERTWIN OFFLOAD v1 status=ok bytes=1234 sha256=<hex> ====
    <base64, 76 characters a line>
    ==== END INTERTWIN OFFLOAD v1 ====

An exception's traceback follows the frame as text, for people reading the log. The payload
is opaque here (the runner and the kernel agree on it: zlib-compressed
cloudpickle); the hub service finds and checks frames but never unpickles them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

VERSION = 1
BEGIN = f"==== BEGIN INTERTWIN OFFLOAD v{VERSION}"
END = f"==== END INTERTWIN OFFLOAD v{VERSION} ===="
LINE = 76
STATUSES = ("ok", "error")
# what a batch cell's inputs may weigh: they travel in a Secret, which Kubernetes caps at 1 MiB
# (https://kubernetes.io/docs/concepts/configuration/secret/#restriction-data-size)
MAX_INPUT_BYTES = 900 * 1024
_HEADER = re.compile(
    rf"^{re.escape(BEGIN)} status=(?P<status>[a-z]+) bytes=(?P<bytes>\d+) "
    r"sha256=(?P<sha>[0-9a-f]{64}) ====$"
)


class FrameError(ValueError):
    """No frame (``missing``), or a frame that does not check out; the message says which."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Frame:
    status: str
    payload: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def encode(status: str, payload: bytes) -> Iterator[str]:
    """The frame's lines (without newlines)."""
    if status not in STATUSES:
        raise ValueError(f"unknown frame status {status!r}")
    digest = hashlib.sha256(payload).hexdigest()
    yield f"{BEGIN} status={status} bytes={len(payload)} sha256={digest} ===="
    text = base64.b64encode(payload).decode()
    for i in range(0, len(text), LINE):
        yield text[i : i + LINE]
    yield END


def decode(log: str | Iterable[str]) -> Frame:
    """The last complete frame in a log, checked; FrameError when there is none or it is
    corrupt. Lines may carry a prefix (a timestamp); the frame's lines are found by their
    markers and read from the marker's column on."""
    lines = log.splitlines() if isinstance(log, str) else list(log)
    begin = None
    for i in range(len(lines) - 1, -1, -1):
        if BEGIN in lines[i]:
            begin = i
            break
    if begin is None:
        raise FrameError("the log holds no result frame", missing=True)
    col = lines[begin].index(BEGIN)
    m = _HEADER.match(lines[begin][col:].rstrip())
    if not m or m.group("status") not in STATUSES:
        raise FrameError("the result frame's header is damaged")
    body = []
    for line in lines[begin + 1 :]:
        text = line[col:].rstrip() if len(line) > col else line.strip()
        if text == END:
            break
        body.append(text)
    else:
        raise FrameError("the result frame is cut off (no end marker)")
    try:
        payload = base64.b64decode("".join(body), validate=True)
    except ValueError:
        raise FrameError("the result frame's body is not base64") from None
    if len(payload) != int(m.group("bytes")):
        raise FrameError(
            f"the result frame holds {len(payload)} bytes, its header says {m.group('bytes')}"
        )
    frame = Frame(m.group("status"), payload)
    if frame.sha256 != m.group("sha"):
        raise FrameError("the result frame's checksum does not match its content")
    return frame


def before(lines: Iterable[str]) -> Iterator[str]:
    """The log's lines up to the (first) frame: what the cell printed while it ran."""
    for line in lines:
        if BEGIN in line:
            return
        yield line


def strip(lines: Iterable[str]) -> Iterator[str]:
    """The log's lines without any frame (what the cell itself printed)."""
    inside = False
    for line in lines:
        if BEGIN in line:
            inside = True
            continue
        if inside:
            if END in line:
                inside = False
            continue
        yield line
