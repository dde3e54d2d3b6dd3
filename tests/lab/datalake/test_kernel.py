"""The kernel side of "add to notebook", in a real IPython kernel, spoken to over its comm
exactly as the DataLake panel (and rucio-jupyterlab) does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intertwin_lab.datalake.kernel import COMM_TARGET
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

TIMEOUT = 60


@pytest.fixture(scope="module")
def kernel() -> Iterator[BlockingKernelClient]:
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=TIMEOUT)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc: BlockingKernelClient, code: str) -> tuple[str, dict[str, Any]]:
    """Execute ``code``; its printed output and the reply (status, ename, evalue)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(msg["content"]["evalue"])

    reply = kc.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
    return "".join(out), reply["content"]


def inject(kc: BlockingKernelClient, dids: list[dict[str, Any]]) -> list[str]:
    """Open the comm, send ``inject``, return the variable names the kernel acknowledged."""
    comm_id = uuid.uuid4().hex
    for msg_type, content in (
        ("comm_open", {"comm_id": comm_id, "target_name": COMM_TARGET, "data": {}}),
        ("comm_msg", {"comm_id": comm_id, "data": {"action": "inject", "dids": dids}}),
    ):
        kc.shell_channel.send(kc.session.msg(msg_type, content))
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
            data = msg["content"]["data"]
            assert data["action"] == "ack-inject"
            return list(data["variable_names"])


def era5_and_one(files: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What the panel sends for a collection ``era5`` of ``files`` and its file ``one``."""
    return [
        {
            "type": "collection",
            "variableName": "era5",
            "did": "intertwin:era5",
            "didAvailable": True,
            "files": files,
        },
        {
            "type": "file",
            "variableName": "one",
            "did": "intertwin:era5.1.nc",
            "didAvailable": True,
            "files": [files[1]],
        },
    ]


def test_attached_dids_become_local_paths(kernel: BlockingKernelClient, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"era5.{i}.nc"
        f.write_text(f"bytes of file {i}")
        files.append({"path": str(f), "pfn": f"file://{f}"})
    out, reply = run(kernel, "%load_ext intertwin_lab.datalake.kernel")
    assert reply["status"] == "ok", out

    names = inject(
        kernel,
        era5_and_one(files),
    )
    assert names == ["era5", "one"]

    out, reply = run(
        kernel, "print(len(era5), open(era5[2]).read(), '|', open(one).read(), one.pfn, one.did)"
    )
    assert reply["status"] == "ok", out
    assert out.strip() == (
        f"3 bytes of file 2 | bytes of file 1 {files[1]['pfn']} intertwin:era5.1.nc"
    )


def test_a_did_not_here_yet_says_so_when_used(kernel: BlockingKernelClient) -> None:
    run(kernel, "%load_ext intertwin_lab.datalake.kernel")
    names = inject(
        kernel,
        [
            {
                "type": "collection",
                "variableName": "qcd",
                "did": "intertwin:physics.lattice.qcd",
                "didAvailable": False,
                "files": [],
            },
            {
                "type": "file",
                "variableName": "gone",
                "did": "user.alice:x",
                "didAvailable": True,
                "files": None,
            },
            # not a Python name: skipped, never executed
            {
                "type": "file",
                "variableName": "x; import os",
                "did": "a:b",
                "didAvailable": True,
                "files": [{"path": "/tmp/x"}],
            },
        ],
    )
    assert names == ["gone", "qcd"]
    out, reply = run(kernel, "open(qcd[0])")
    assert reply["status"] == "error" and reply["ename"] == "DIDNotAvailableError"
    assert "intertwin:physics.lattice.qcd is not available at this site yet" in out
    assert "Make it available in the DataLake panel" in out
    out, reply = run(kernel, "open(gone)")
    assert reply["status"] == "error" and "user.alice:x is not available" in out
    out, _ = run(kernel, "print(repr(qcd))")
    assert "not available at this site yet" in out
