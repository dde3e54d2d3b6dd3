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
