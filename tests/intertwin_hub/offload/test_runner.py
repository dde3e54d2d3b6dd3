"""The runner as a job's container runs it: a subprocess reading the packed inputs file."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from intertwin_hub.offload import frame, runner


def run(tmp_path: Path, source: str, inputs: dict[str, Any], outputs: list[str]) -> tuple[int, str]:
    path = tmp_path / "inputs"
    path.write_bytes(runner.pack_inputs(source, inputs, outputs))
    p = subprocess.run(
        [sys.executable, "-m", "intertwin_hub.offload.runner", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, p.stdout + p.stderr


def values(log: str) -> dict[str, Any]:
    f = frame.decode(log)
    assert f.status == "ok"
    body = runner.read_payload(f.payload)
    return {k: cloudpickle.loads(base64.b64decode(v)) for k, v in body["values"].items()}


def error(log: str) -> dict[str, Any]:
    f = frame.decode(log)
    assert f.status == "error"
    return runner.read_payload(f.payload)


def test_inputs_in_outputs_back_and_output_in_the_log(tmp_path: Path) -> None:
    scale = lambda v: v * 3  # noqa: E731  (a notebook's lambda travels by value)
    rc, log = run(
        tmp_path,
        "print('x is', x)\ny = scale(x)\nz = {'list': [1, 2]}\n",
        {"x": 14, "scale": scale},
        ["y", "z"],
    )
    assert rc == 0, log
    assert log.startswith("x is 14\n")
    assert values(log) == {"y": 42, "z": {"list": [1, 2]}}


def test_an_exception_comes_back_with_the_cells_own_traceback(tmp_path: Path) -> None:
    rc, log = run(tmp_path, "def f(a):\n    return 1 / a\n\nf(0)\n", {}, [])
    assert rc == 1
    err = error(log)
    assert (err["type"], err["message"]) == ("ZeroDivisionError", "division by zero")
    assert 'File "<offloaded cell>", line 2, in f' in err["traceback"]
    assert "return 1 / a" in err["traceback"]
    assert "runner.py" not in err["traceback"]
    assert isinstance(cloudpickle.loads(base64.b64decode(err["exception"])), ZeroDivisionError)
    # the log tells it too, after the frame (a waiting cell stops at the frame)
    assert log.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "Traceback" not in "\n".join(frame.before(log.splitlines()))


def test_a_missing_or_unpicklable_output_is_named(tmp_path: Path) -> None:
    rc, log = run(tmp_path, "a = 1\n", {}, ["b"])
    assert rc == 1 and "'b'" in error(log)["message"]
    rc, log = run(tmp_path, "import threading\nlock = threading.Lock()\n", {}, ["lock"])
    assert rc == 1 and "output variable 'lock'" in error(log)["message"]


def test_an_input_that_cannot_be_pickled_is_named_before_anything_runs() -> None:
    with pytest.raises(runner.PackError, match="input variable 'lock' \\(lock\\)"):
        runner.pack_inputs("pass", {"lock": threading.Lock()}, [])
