"""The result frame in a job's log: found, checked, and never confused with the cell's output."""

from __future__ import annotations

import os

import pytest

from intertwin_hub.offload import frame


def framed(payload: bytes, status: str = "ok") -> list[str]:
    return list(frame.encode(status, payload))


@pytest.mark.parametrize("size", [0, 1, 57, 1000, 300_000])
def test_round_trip_among_the_cells_own_output(size: int) -> None:
    payload = os.urandom(size)
    log = ["epoch 1 loss 0.3", "epoch 2 loss 0.1", *framed(payload), ""]
    f = frame.decode("\n".join(log))
    assert (f.status, f.payload) == ("ok", payload)
    assert all(len(line) <= 200 for line in framed(payload))  # no giant log lines


def test_the_last_frame_counts_and_prefixes_are_tolerated() -> None:
    old, new = framed(b"old"), framed(b"new", "error")
    stamped = [f"2026-12-04T12:00:00.000000000Z {line}" for line in new]
    f = frame.decode([*old, "more output", *stamped])
    assert (f.status, f.payload) == ("error", b"new")


def test_a_cell_printing_something_like_a_frame_does_not_fool_it() -> None:
    f = frame.decode(["==== BEGIN something else", "x", *framed(b"real")])
    assert f.payload == b"real"


@pytest.mark.parametrize(
    "damage, message, missing",
    [
        (lambda lines: ["no frame here"], "holds no result frame", True),
        (lambda lines: lines[:-1], "cut off", False),
        (lambda lines: [lines[0], lines[1][:-4] + "AAAA", *lines[2:]], "checksum", False),
        (lambda lines: [lines[0], *lines[2:]], "holds", False),
        (lambda lines: [lines[0], "!!!notbase64!!!", *lines[2:]], "not base64", False),
        (
            lambda lines: [lines[0].replace("status=ok", "status=maybe"), *lines[1:]],
            "header",
            False,
        ),
    ],
)
def test_damage_is_named(damage: object, message: str, missing: bool) -> None:
    lines = framed(os.urandom(300))
    with pytest.raises(frame.FrameError, match=message) as e:
        frame.decode(damage(lines))  # type: ignore[operator]
    assert e.value.missing is missing


def test_strip_leaves_only_what_the_cell_printed() -> None:
    lines = ["a", *framed(b"x" * 500), "b"]
    assert list(frame.strip(lines)) == ["a", "b"]
    assert list(frame.before(lines)) == ["a"]


def test_the_stream_decoder_writes_only_the_last_frame_to_its_sink() -> None:
    """The service reads a log a line at a time: each frame's payload goes to a sink of its
    own as its lines arrive; an earlier frame's sink is dropped, the last one is checked."""
    import io

    payload = os.urandom(200_000)
    opened: list[io.BytesIO] = []
    dropped: list[io.BytesIO] = []

    def open_sink() -> io.BytesIO:
        opened.append(io.BytesIO())
        return opened[-1]

    dec = frame.StreamDecoder(open_sink, dropped.append)  # type: ignore[arg-type]
    for line in ["out", *framed(b"first try"), "more", *framed(payload, "error"), "tail"]:
        dec.feed(line)
    found = dec.close()
    assert (found.status, found.size, found.sha256) == (
        "error",
        len(payload),
        frame.Frame("error", payload).sha256,
    )
    assert found.sink is opened[1] and opened[1].getvalue() == payload
    assert dropped == [opened[0]]


def test_the_stream_decoder_drops_a_damaged_frame() -> None:
    dropped: list[object] = []
    dec = frame.StreamDecoder(lambda: __import__("io").BytesIO(), dropped.append)
    lines = framed(os.urandom(1000))
    for line in [lines[0], lines[1][:-4] + "AAAA", *lines[2:]]:
        dec.feed(line)
    with pytest.raises(frame.FrameError, match="checksum"):
        dec.close()
    assert len(dropped) == 1
