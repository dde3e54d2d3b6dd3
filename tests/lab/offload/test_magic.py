"""The kernel side of ``%%offload`` without a service: loaded in every kernel of the
environment, refusing what it can refuse before any request, and reading results."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from intertwin_lab.offload.client import SERVER_ROOT_ENV, OffloadError, notebook_path
from intertwin_lab.offload.magic import (
    RemoteTraceback,
    decode_result,
    jobs_table,
    remote_exception,
    rucio_fields,
)
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from intertwin_hub.offload import runner


@pytest.fixture(scope="module")
def kernel() -> Iterator[BlockingKernelClient]:
    env = {k: v for k, v in os.environ.items() if k != "INTERTWIN_SERVICE_URL"}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: None)
    return dict(reply["content"])


def test_every_kernel_has_the_magics(kernel: BlockingKernelClient) -> None:
    reply = execute(
        kernel,
        "assert get_ipython().find_cell_magic('offload') is not None\n"
        "assert get_ipython().find_line_magic('offload_attach') is not None",
    )
    assert reply["status"] == "ok", reply


def test_refusals_in_the_kernel_say_what_to_do(kernel: BlockingKernelClient) -> None:
    reply = execute(kernel, "%%offload --site vega --in nothing_here\nx = 1\n")
    assert reply["ename"] == "UsageError" and "no variable 'nothing_here'" in reply["evalue"]
    reply = execute(kernel, "%%offload --site vega --out 1x\nx = 1\n")
    assert reply["ename"] == "UsageError" and "'1x' is not a variable name" in reply["evalue"]
    reply = execute(kernel, "%%offload --site vega\ndef broken(:\n")
    assert reply["ename"] == "UsageError" and "not valid Python" in reply["evalue"]
    # a session not started by the hub does not know the service
    reply = execute(kernel, "%%offload --site vega\nx = 1\n")
    assert reply["ename"] == "UsageError" and "INTERTWIN_SERVICE_URL" in reply["evalue"]


def answer(status: str, payload: bytes) -> dict[str, Any]:
    return {
        "status": status,
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": base64.b64encode(payload).decode(),
    }


def test_a_result_is_checked_again_in_the_kernel() -> None:
    payload = runner.result_payload({"y": b"pickled"})
    status, body = decode_result(answer("ok", payload))
    assert status == "ok" and "y" in body["values"]
    bad = answer("ok", payload)
    bad["sha256"] = "0" * 64
    with pytest.raises(OffloadError, match="damaged"):
        decode_result(bad)


def test_a_remote_exception_is_rebuilt_with_its_traceback_as_cause() -> None:
    try:
        raise KeyError("missing")
    except KeyError as e:
        payload = runner.error_payload(e, "Traceback ...\nKeyError: 'missing'\n")
    exc = remote_exception(json.loads(zlib.decompress(payload)))
    assert isinstance(exc, KeyError) and exc.args == ("missing",)
    assert isinstance(exc.__cause__, RemoteTraceback) and "KeyError" in str(exc.__cause__)
    # an exception that cannot be rebuilt here keeps its type's name and message
    unknown = {
        "type": "CudaError",
        "message": "out of memory",
        "traceback": "tb",
        "exception": None,
    }
    exc = remote_exception(unknown)
    assert str(exc) == "CudaError: out of memory" and str(exc.__cause__).strip() == "tb"


def test_the_jobs_table() -> None:
    assert jobs_table([]) == "No batch cells."
    job = {
        "id": "u-1",
        "site": "vega",
        "site_name": "Vega",
        "state": "queued",
        "sentence": "queued at Vega (batch job 1001)",
        "submitted": "2026-12-04T12:00:00+00:00",
        "cell_id": "c-1",
    }
    head, row = jobs_table([job]).splitlines()
    assert head.split() == ["id", "site", "state", "submitted", "cell"]
    assert row.split("  ")[0] == "u-1" and "queued at Vega (batch job 1001)" in row
    assert "2026-12-04 12:00:00" in row and row.endswith("c-1")


def test_a_session_with_a_datalake_takes_a_token_unless_told_not_to() -> None:
    datalake = {"RUCIO_BASE_URL": "https://rucio.example.org", "RUCIO_AUTH_URL": "https://a.org"}
    hosts = {"rucio_host": "https://rucio.example.org", "rucio_auth_host": "https://a.org"}
    # default: with a DataLake, a token when the hub has one; without, none
    assert rucio_fields(None, datalake) == {"rucio": "if-available", **hosts}
    assert rucio_fields(None, {}) == {}
    # --rucio: required (the service refuses when it has none), with the hosts when known
    assert rucio_fields(True, datalake) == {"rucio": "required", **hosts}
    assert rucio_fields(True, {}) == {"rucio": "required"}
    # --no-rucio
    assert rucio_fields(False, datalake) == {}


def test_the_notebook_is_named_as_the_contents_api_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # jupyter-server gives a kernel the notebook's path on disk; the Jobs panel opens it
    # relative to the server's root, which the server extension hands its kernels
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "work" / "demo.ipynb"))
    monkeypatch.setenv(SERVER_ROOT_ENV, str(tmp_path))
    assert notebook_path() == "work/demo.ipynb"
    # outside the root, or without it, the path stays as given
    monkeypatch.setenv(SERVER_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert notebook_path() == str(tmp_path / "work" / "demo.ipynb")
    monkeypatch.delenv(SERVER_ROOT_ENV)
    monkeypatch.setenv("JPY_SESSION_NAME", "work/demo.ipynb")
    assert notebook_path() == "work/demo.ipynb"
