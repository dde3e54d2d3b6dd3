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
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

VERSION = 1
BEGIN = f"==== BEGIN INTERTWIN OFFLOAD v{VERSION}"
END = f"==== END INTERTWIN OFFLOAD v{VERSION} ===="
LINE = 76
STATUSES = ("ok", "error")
# what a batch cell's inputs may weigh: they travel in a Secret, which Kubernetes caps at 1 MiB
# (https://kubernetes.io/docs/concepts/configuration/secret/#restriction-data-size)
MAX_INPUT_BYTES = 900 * 1024
# how much base64 text the stream decoder gathers before it decodes it
BATCH_CHARS = 64 * 1024
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
    sinks: list[io.BytesIO] = []

    def sink() -> io.BytesIO:
        sinks.append(io.BytesIO())
        return sinks[-1]

    dec = StreamDecoder(sink)
    for line in log.splitlines() if isinstance(log, str) else log:
        dec.feed(line)
    found = dec.close()
    assert isinstance(found.sink, io.BytesIO)
    return Frame(found.status, found.sink.getvalue())


@dataclass(frozen=True)
class Found:
    """A checked frame whose payload was written to ``sink``."""

    status: str
    size: int
    sha256: str
    sink: BinaryIO


class StreamDecoder:
    """:func:`decode` for a log read a line at a time, holding neither the log nor the payload:
    each frame's payload is written to a sink of its own (``open_sink()``) as its base64 lines
    arrive, and hashed on the way. The last frame counts; an earlier frame's sink is handed to
    ``drop`` (to close and remove it). :meth:`close` at the end of the log gives the last frame,
    checked, or raises FrameError as :func:`decode` does."""

    def __init__(
        self, open_sink: Callable[[], BinaryIO], drop: Callable[[BinaryIO], None] | None = None
    ) -> None:
        self._open = open_sink
        self._drop = drop or (lambda sink: None)
        self._sink: BinaryIO | None = None
        self._seen = False  # a BEGIN marker was seen
        self._error: str | None = None
        self._ended = False
        self._col = 0
        self._status = ""
        self._want = 0
        self._sha = ""
        self._hash = hashlib.sha256()
        self._size = 0
        self._rest = ""
        self._pending: list[str] = []
        self._pending_chars = 0

    def _discard(self) -> None:
        if self._sink is not None:
            self._drop(self._sink)
            self._sink = None

    def feed(self, line: str) -> None:
        if BEGIN in line:
            self._discard()
            self._seen, self._ended, self._error = True, False, None
            self._col = line.index(BEGIN)
            m = _HEADER.match(line[self._col :].rstrip())
            if not m or m.group("status") not in STATUSES:
                self._error = "the result frame's header is damaged"
                return
            self._status, self._want, self._sha = m["status"], int(m["bytes"]), m["sha"]
            self._hash, self._size, self._rest = hashlib.sha256(), 0, ""
            self._pending, self._pending_chars = [], 0
            self._sink = self._open()
            return
        if not self._seen or self._ended:
            return
        col = self._col
        text = line[col:].rstrip() if len(line) > col else line.strip()
        if text == END:
            self._ended = True
            if self._error is None:
                self._take(final=True)
            return
        if self._error is None:
            # decoded, hashed and written some 64 KiB at a time, not a line at a time
            self._pending.append(text)
            self._pending_chars += len(text)
            if self._pending_chars >= BATCH_CHARS:
                self._take()

    def _take(self, final: bool = False) -> None:
        text = self._rest + "".join(self._pending)
        self._pending, self._pending_chars = [], 0
        n = len(text) if final else len(text) // 4 * 4
        chunk, self._rest = text[:n], text[n:]
        if not chunk:
            return
        try:
            data = base64.b64decode(chunk, validate=True)
        except ValueError:
            self._error = "the result frame's body is not base64"
            return
        self._size += len(data)
        if self._size > self._want:
            # past what the header announced: no use writing more
            self._error = f"the result frame holds more than the {self._want} bytes its header says"
            return
        self._hash.update(data)
        assert self._sink is not None
        self._sink.write(data)

    def close(self) -> Found:
        if not self._seen:
            raise FrameError("the log holds no result frame", missing=True)
        if self._error is not None and (self._ended or self._sink is None):
            self._discard()
            raise FrameError(self._error)
        if not self._ended:
            self._discard()
            raise FrameError("the result frame is cut off (no end marker)")
        if self._size != self._want:
            self._discard()
            raise FrameError(
                f"the result frame holds {self._size} bytes, its header says {self._want}"
            )
        if self._hash.hexdigest() != self._sha:
            self._discard()
            raise FrameError("the result frame's checksum does not match its content")
        assert self._sink is not None
        sink, self._sink = self._sink, None
        return Found(self._status, self._size, self._sha, sink)


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
