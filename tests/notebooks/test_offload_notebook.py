"""notebooks/02-offload.ipynb runs end to end in a real session on the testbed: alice's
JupyterLab session at UKRI, spawned by the hub, runs the notebook's cells in its own kernel (as
JupyterLab does: a session through jupyter-server's REST API, the cells over the kernel's
websocket). Its ``%%offload`` cell trains the network at Vega with one GPU through the hub
service, and the next cell plots the loss curve from the values that came back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import nbformat
import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from nbformat.v4 import output_from_msg

from ..testbed.hubapi import spawn, stop
from ..testbed.test_service import token_for

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "02-offload.ipynb"
SERVER = "offload-notebook"
CELL_TIMEOUT = 300
OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")


async def execute_in_session(http: aiohttp.ClientSession, server: str, nb: Any, path: str) -> None:
    """Run ``nb``'s code cells in a new kernel of the session at ``server`` (its URL), one after
    the other with their cell ids, filling in their outputs; stop at the first error."""
    async with http.post(
        f"{server}/api/sessions",
        json={"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}},
    ) as r:
        assert r.status == 201, await r.text()
        session = await r.json()
    msgs = Session(username="alice")  # builds the messages; the server signs what it forwards
    try:
        async with http.ws_connect(
            f"{server}/api/kernels/{session['kernel']['id']}/channels",
            params={"session_id": msgs.session},
            max_msg_size=0,
        ) as ws:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    await _execute(ws, msgs, cell)
    finally:
        async with http.delete(f"{server}/api/sessions/{session['id']}") as r:
            assert r.status == 204, await r.text()


async def _execute(ws: aiohttp.ClientWebSocketResponse, msgs: Session, cell: Any) -> None:
    request = msgs.msg(
        "execute_request",
        {
            "code": cell.source,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        metadata={"cellId": cell.id},
    )
    await ws.send_str(json.dumps({**request, "channel": "shell"}, default=json_default))
    outputs: list[Any] = []
    displays: dict[str, list[int]] = {}
    reply: dict[str, Any] | None = None
    idle = False
    while reply is None or not idle:
        frame = await ws.receive(timeout=CELL_TIMEOUT)
        assert frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), frame
        if frame.type == aiohttp.WSMsgType.BINARY:
            continue  # messages with binary buffers (widget state): nothing the test reads
        msg = json.loads(frame.data)
        if msg["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if msg["channel"] == "shell" and kind == "execute_reply":
            reply = content
        elif kind == "status":
            idle = content["execution_state"] == "idle"
        elif kind in OUTPUT_TYPES:
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id:
                displays.setdefault(display_id, []).append(len(outputs))
            outputs.append(output_from_msg(msg))
        elif kind == "update_display_data":
            # as JupyterLab does: every output shown with that display id takes the new data
            for i in displays.get(content["transient"]["display_id"], []):
                outputs[i]["data"] = content["data"]
                outputs[i]["metadata"] = content["metadata"]
    cell.outputs = outputs
    assert reply["status"] == "ok", (cell.source, reply, outputs)


def text_of(cell: Any, name: str = "stdout") -> str:
    return "".join(
        o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == name
    )


async def test_the_offload_notebook_trains_at_vega_and_plots_the_loss_here(
    testbed: dict[str, Any],
) -> None:
    hub = testbed["hub"]
    admin = {"Authorization": f"token {hub['service_token']}"}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    async with aiohttp.ClientSession(headers=admin) as s:
        events = await spawn(s, hub["api_url"], "alice", SERVER, {"profile": "ukri"})
        assert events[-1].get("ready"), events
        token = await token_for(s, hub["api_url"], "alice")
    try:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"token {token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        ) as alice:
            await execute_in_session(alice, f"{hub['url']}/user/alice/{SERVER}", nb, NOTEBOOK.name)
    finally:
        async with aiohttp.ClientSession(headers=admin) as s:
            await stop(s, hub["api_url"], "alice", SERVER)

    cells = {c.id: c for c in nb.cells}
    offloaded = next(c for c in nb.cells if c.source.startswith("%%offload"))
    assert "--site vega --gpus 1" in offloaded.source
    # the cell ran at Vega, and its printed lines came into the cell
    trained = text_of(offloaded)
    assert "training at vega" in trained, offloaded.outputs
    printed = re.findall(r"^epoch +\d+ +loss ([\d.]+)$", trained, re.M)
    assert len(printed) >= 3, trained

    # the plot, drawn in the session's kernel from the returned losses
    plotted = next(c for c in nb.cells if "plt.show()" in c.source)
    assert any("image/png" in o.get("data", {}) for o in plotted.outputs), plotted.outputs
    summary = re.search(r"loss ([\d.]+) -> ([\d.]+) over (\d+) epochs", text_of(plotted))
    assert summary, plotted.outputs
    first, last, n = summary[1], summary[2], int(summary[3])
    assert n == 2000 and float(last) < float(first) / 10, summary[0]
    # the losses the kernel holds are the ones printed at Vega
    assert (first, last) == (printed[0], printed[-1]), (summary[0], trained)

    # this notebook's batch cells: the one at Vega, found by the session's notebook path
    listed = text_of(cells["a0b1c2d3"]).splitlines()
    assert listed[0].split() == ["id", "site", "state", "submitted", "cell"], listed
    assert any(" Vega " in line and offloaded.id in line for line in listed), listed
