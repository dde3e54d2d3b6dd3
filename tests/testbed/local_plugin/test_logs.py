"""``kubectl logs`` selection over the files the log pump writes."""

from __future__ import annotations

from testbed.local_plugin.logs import parse_rfc3339, rfc3339, select_log, strip_stamp


def test_select_log() -> None:
    stamped = (
        b"2025-01-01T00:00:01.000000001Z one\n2025-01-01T00:00:02.5Z two\n"
        b"2025-01-01T00:00:03Z three\n"
    )
    assert select_log(b"one\ntwo\nthree\n", stamped=False, tail=2) == b"two\nthree\n"
    assert select_log(b"one\ntwo\nthree\n", stamped=False, limit_bytes=5) == b"one\nt"
    since = parse_rfc3339("2025-01-01T00:00:02Z")
    assert select_log(stamped, stamped=True, since=since) == b"two\nthree\n"
    assert (
        select_log(stamped, stamped=True, tail=1, timestamps=True)
        == b"2025-01-01T00:00:03Z three\n"
    )
    assert parse_rfc3339("0001-01-01T00:00:00Z") is None


def test_rfc3339_both_ways() -> None:
    assert rfc3339(1735689600.75) == "2025-01-01T00:00:00Z"
    assert parse_rfc3339("2025-01-01T00:00:00.5Z") == 1735689600.5
    assert parse_rfc3339("2025-01-01T01:00:00+01:00") == 1735689600.0
    assert parse_rfc3339("yesterday") is None
    assert strip_stamp(b"2025-01-01T00:00:00Z hello world\n") == b"hello world\n"
