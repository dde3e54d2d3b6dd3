"""Our panel's kernel injection against rucio-jupyterlab's OWN kernel extension (its PyPI
package, in the test environment only), and its resolve_dids() helper on both kernel sides.

rucio-jupyterlab is unpacked from its PyPI sdist (41.0.0 ships no wheel) into the cache and put
on the kernel's PYTHONPATH, not installed in .venv: its requirements pin ``notebook<7`` and a
database stack this project has no use for, and only its kernel extension (plain Python on
ipykernel) is exercised here."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from testbed.binaries import cache_dir

from .test_kernel import TIMEOUT, era5_and_one, run

RUCIO_JUPYTERLAB = "41.0.0"
INJECTION_TS = Path(__file__).parents[3] / "labextension" / "src" / "datalake" / "injection.ts"


def panel_constant(name: str) -> str:
    """A string constant of the panel's injection.ts (what the browser really sends)."""
    text = INJECTION_TS.read_text()
    m = re.search(rf"export const {name} = '([^']+)'", text)
    assert m, f"{name} not in {INJECTION_TS}"
    return m.group(1)


def panel_load_code() -> str:
    """The Python the panel runs in the kernel before injecting (LOAD_KERNEL_EXTENSION)."""
    block = INJECTION_TS.read_text().split("const LOAD_KERNEL_EXTENSION = [", 1)[1]
    block = block.split("].join('\\n');", 1)[0]
    return "\n".join(
        ast.literal_eval(line.strip().rstrip(",")) for line in block.strip().splitlines()
    )


@pytest.fixture(scope="module")
def rucio_jupyterlab() -> Path:
    """rucio_jupyterlab's Python package, from PyPI, cached by version."""
    home = cache_dir() / "rucio-jupyterlab" / RUCIO_JUPYTERLAB
    if not (home / "rucio_jupyterlab" / "kernels" / "ipython" / "__init__.py").exists():
        home.mkdir(parents=True, exist_ok=True)
        # no build isolation: pip reads the sdist's metadata with .venv's hatchling and
        # hatch-nodejs-version (scripts/setup.sh installs them) instead of building its build
        # requirements (jupyterlab among them) from source
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--no-build-isolation",
                "-d",
                str(home),
                f"rucio-jupyterlab=={RUCIO_JUPYTERLAB}",
            ],
            check=True,
            timeout=300,
        )
        sdist = next(home.glob("rucio_jupyterlab-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            members = [
                m
                for m in tar.getmembers()
                if "/rucio_jupyterlab/" in m.name and m.name.endswith(".py")
            ]
            for m in members:
                m.name = m.name.split("/", 1)[1]
            tar.extractall(home, members=members, filter="data")
    return home


@pytest.fixture
def kernel(rucio_jupyterlab: Path) -> Iterator[BlockingKernelClient]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(rucio_jupyterlab), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=TIMEOUT, env=env)
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def comm_messages(kc: BlockingKernelClient, until: Any) -> list[dict[str, Any]]:
    """iopub comm_open/comm_msg messages until ``until(msg)`` is true for one."""
    seen = []
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["msg_type"] in ("comm_open", "comm_msg"):
            seen.append(msg)
            if until(msg):
                return seen


def run_comms(kc: BlockingKernelClient, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute ``code``; its reply and the comm messages the kernel sent while running it."""
    comms: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("comm_open", "comm_msg"):
            comms.append(msg)

    reply = kc.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
    return reply["content"], comms


def panel_inject(kc: BlockingKernelClient, dids: list[dict[str, Any]]) -> None:
    """What injectIntoKernel does: run the load code, open the kernel comm, send inject."""
    out, reply = run(kc, panel_load_code())
    assert reply["status"] == "ok", out
    comm_id = uuid.uuid4().hex
    for msg_type, content in (
        (
            "comm_open",
            {"comm_id": comm_id, "target_name": panel_constant("KERNEL_COMM"), "data": {}},
        ),
        ("comm_msg", {"comm_id": comm_id, "data": {"action": "inject", "dids": dids}}),
    ):
        kc.shell_channel.send(kc.session.msg(msg_type, content))


def test_the_panel_injects_into_rucio_jupyterlabs_kernel_extension(
    kernel: BlockingKernelClient, tmp_path: Path
) -> None:
    files = []
    for i in range(2):
        f = tmp_path / f"era5.{i}.nc"
        f.write_text(f"bytes {i}")
        files.append({"path": str(f), "pfn": f"davs://door:2880/pnfs/era5.{i}.nc"})
    # an image with rucio-jupyterlab and without intertwin-hub: its kernel extension is
    # loaded at kernel start (its IPython startup), ours cannot be
    out, reply = run(
        kernel,
        "import sys; sys.modules['intertwin_lab'] = None\n"
        "%load_ext rucio_jupyterlab.kernels.ipython",
    )
    assert reply["status"] == "ok", out
    panel_inject(
        kernel,
        [
            *era5_and_one(files),
            {
                "type": "collection",
                "variableName": "later",
                "did": "intertwin:qcd",
                "didAvailable": False,
                "files": [],
            },
        ],
    )
    # rucio-jupyterlab acknowledges on its frontend comm (the panel takes the names it sent)
    seen = comm_messages(
        kernel,
        lambda m: (
            m["msg_type"] == "comm_msg" and m["content"]["data"].get("action") == "ack-inject"
        ),
    )
    assert seen[-1]["content"]["data"]["variable_names"] == ["era5", "one", "later"]
    out, reply = run(
        kernel, "print(len(era5), open(era5[1]).read(), '|', open(one).read(), one.pfn)"
    )
    assert reply["status"] == "ok", out
    assert out.strip() == f"2 bytes 1 | bytes 1 {files[1]['pfn']}"
    out, reply = run(kernel, "later[0]")
    assert reply["status"] == "error" and reply["ename"] == "DIDNotAvailableException"

    # its resolve_dids() asks the frontend on that comm (the panel answers request-inject);
    # the comm was opened when the extension loaded, so only the message shows here
    reply, comms = run_comms(kernel, "resolve_dids()")
    assert reply["status"] == "ok", reply
    assert [m["content"]["data"] for m in comms] == [{"action": "request-inject"}]
    assert comms[0]["content"]["comm_id"] == seen[-1]["content"]["comm_id"]
    assert panel_constant("FRONTEND_COMM") == "rucio-jupyterlab:frontend"


def test_our_kernel_side_has_resolve_dids(kernel: BlockingKernelClient) -> None:
    out, reply = run(kernel, "%load_ext rucio_jupyterlab.kernels.ipython")
    assert reply["status"] == "ok", out
    # the panel loads ours too: it takes over the comm and resolve_dids()
    panel_inject(
        kernel,
        [
            {
                "type": "file",
                "variableName": "gone",
                "did": "user.alice:x",
                "didAvailable": False,
                "files": None,
            }
        ],
    )
    out, reply = run(kernel, "print(resolve_dids.__module__)")
    assert reply["status"] == "ok" and out.strip() == "intertwin_lab.datalake.kernel", out
    reply, comms = run_comms(kernel, "resolve_dids()")
    assert reply["status"] == "ok", reply
    assert [
        (m["msg_type"], m["content"].get("target_name"), m["content"]["data"]) for m in comms
    ] == [
        ("comm_open", panel_constant("FRONTEND_COMM"), {}),
        ("comm_msg", None, {"action": "request-inject"}),
    ]
    out, reply = run(kernel, "str(gone)")
    assert reply["status"] == "error" and "not available at this site yet" in out
