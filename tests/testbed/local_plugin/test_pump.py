"""The log pump, run as the wrapper runs it: a script of its own reading the container's
output on stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testbed.local_plugin.logs import parse_rfc3339
from testbed.local_plugin.runner import PUMP


def test_the_pump_writes_the_output_as_is_and_stamped(tmp_path: Path) -> None:
    out, log = tmp_path / "main.out", tmp_path / "main.log"
    long = b"x" * 70000
    data = b"one\ntwo\n" + long + b"\npartial"
    subprocess.run(
        [sys.executable, "-I", str(PUMP), str(out), str(log)], input=data, check=True, timeout=30
    )
    assert out.read_bytes() == data
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""
    stamps, texts = zip(*(line.split(b" ", 1) for line in lines[:-1]), strict=True)
    assert all(parse_rfc3339(s.decode()) for s in stamps)
    # a line is stamped once it is complete; the partial last line gets its stamp at the end
    assert texts[:2] == (b"one", b"two")
    assert b"".join(texts[2:-1]) == long
    assert texts[-1] == b"partial"
