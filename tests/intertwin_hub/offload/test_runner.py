"""The runner as a job's container runs it: a subprocess reading the packed inputs file."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from intertwin_hub.offload import frame, runner
from intertwin_hub.service.submit import RucioGrant
from intertwin_hub.service.tokens import Token


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


def jwt_with(exp: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp, "aud": "rucio"}).encode())
    return f"e30.{claims.decode().rstrip('=')}.sig"


def test_the_cells_rucio_client_finds_the_jobs_datalake_token_and_host(tmp_path: Path) -> None:
    # the Secret's files as the service writes them, next to the inputs
    token = jwt_with(time.time() + 3600)
    grant = RucioGrant(Token(token, time.time() + 3600), "http://rucio.example.org:8080")
    for name, data in grant.files().items():
        (tmp_path / name).write_bytes(data)
    rc, log = run(
        tmp_path,
        "import os\nfrom rucio.client import Client\nc = Client()\n"
        "seen = (c.host, c.auth_host, c.auth_type, c.auth_token)\n",
        {},
        ["seen"],
    )
    assert rc == 0, log
    assert values(log)["seen"] == (
        "http://rucio.example.org:8080",
        "http://rucio.example.org:8080",
        "oidc",
        token,
    )
    first = log.splitlines()[0]
    assert re.fullmatch(r"Rucio token valid until \d\d:\d\d UTC .*not renewed.*", first), first


def test_a_job_that_starts_after_its_token_expired_says_so(tmp_path: Path) -> None:
    now = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    grant = RucioGrant(Token("t", now - 120))
    for name, data in grant.files().items():
        (tmp_path / name).write_bytes(data)
    env: dict[str, str] = {}
    said = runner.use_rucio_token(str(tmp_path), env, now=now)
    assert said is not None and said.startswith("The Rucio token expired at 07:58 UTC"), said
    assert "Run the cell again" in said
    # no Rucio host given (the session has no DataLake): the image's own rucio.cfg is used
    assert env == {"BEARER_TOKEN_FILE": str(tmp_path / "rucio-token"), "RUCIO_AUTH_TYPE": "oidc"}
    # a job without a token: nothing set, nothing said
    env = {}
    assert runner.use_rucio_token(str(tmp_path / "nothing"), env) is None and env == {}
