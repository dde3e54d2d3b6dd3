"""``%%offload`` end to end on the testbed: a real IPython kernel (jupyter_client) holding
alice's hub token sends cells through the real hub service to the Vega and KBFI virtual nodes
(interLink → the local plugin, whose processes run the offload runner from this venv), and
gets their variables, output and exceptions back. The service's answers are checked against
its openapi.yaml."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from intertwin_hub.offload.frame import MAX_INPUT_BYTES

from ..waiting import wait_for
from .test_service import check, route_of

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]
NOTEBOOK = "work/offload demo.ipynb"
CELL_TIMEOUT = 300


def token_for(hub: dict[str, Any], user: str) -> str:
    r = requests.post(
        f"{hub['api_url']}/users/{user}/tokens",
        json={"note": "offload test"},
        headers={"Authorization": f"token {hub['service_token']}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


class Api:
    """The jobs API as one user, every answer checked against openapi.yaml."""

    def __init__(self, hub: dict[str, Any], token: str) -> None:
        self.base = f"{hub['url']}/services/intertwin/api"
        self.headers = {"Authorization": f"token {token}"}

    def __call__(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        r = requests.request(method, f"{self.base}/{path}", headers=self.headers, timeout=60, **kw)
        body: Any = (
            r.json() if r.headers.get("Content-Type", "").startswith("application/json") else r.text
        )
        check(method, route_of(path), r.status_code, body)
        return r.status_code, body

    def ready(self) -> bool:
        r = requests.get(f"{self.base}/jobs", headers=self.headers, timeout=30)
        return r.status_code == 200

    def batch_cells(self) -> list[dict[str, Any]]:
        st, page = self("GET", "jobs", params={"kind": "batch-cell", "limit": 1000})
        assert st == 200, page
        return list(page["jobs"])


@contextmanager
def kernel_for(
    hub: dict[str, Any], token: str, notebook: str | None = NOTEBOOK
) -> Iterator[BlockingKernelClient]:
    """A kernel as a user's session would have it: their token, the service's URL, the
    notebook's path (jupyter-server's JPY_SESSION_NAME)."""
    # the proxy routes the service once the hub has seen it answer
    wait_for(lambda: Api(hub, token).ready(), "the intertwin service behind the proxy", 120, 0.5)
    env = {
        **os.environ,
        "INTERTWIN_SERVICE_URL": f"{hub['url']}/services/intertwin/",
        "JUPYTERHUB_API_TOKEN": token,
    }
    if notebook:
        env["JPY_SESSION_NAME"] = notebook
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def alice_kernel(testbed: dict[str, Any]) -> Iterator[tuple[BlockingKernelClient, str]]:
    token = token_for(testbed["hub"], "alice")
    with kernel_for(testbed["hub"], token) as kc:
        yield kc, token


def run_cell(
    kc: BlockingKernelClient,
    code: str,
    cell_id: str | None = None,
    timeout: float = CELL_TIMEOUT,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute as JupyterLab does (``metadata.cellId``); the reply and the outputs, each with
    the time it arrived (``at``). ``on_message`` sees the cell's iopub messages as they
    come."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    msg = kc.session.msg(
        "execute_request", content, metadata={"cellId": cell_id} if cell_id else {}
    )
    kc.shell_channel.send(msg)
    outputs: list[dict[str, Any]] = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        if on_message is not None:
            on_message(m)
        if m["msg_type"] in (
            "stream",
            "display_data",
            "update_display_data",
            "execute_result",
            "error",
        ):
            outputs.append({"type": m["msg_type"], "at": time.monotonic(), **m["content"]})
    while True:
        # wait_for_ready may have left kernel_info replies in the queue
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply["content"], outputs


def text_of(outputs: list[dict[str, Any]], kind: str = "stream") -> str:
    return "".join(o.get("text", "") for o in outputs if o["type"] == kind)


def displayed(outputs: list[dict[str, Any]]) -> list[str]:
    return [
        o["data"]["text/plain"]
        for o in outputs
        if o["type"] in ("display_data", "update_display_data")
    ]


def test_a_cell_runs_at_vega_and_its_variable_comes_back(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    kc, token = alice_kernel
    api = Api(testbed["hub"], token)
    reply, _ = run_cell(kc, "x = 21\nfactor = 2")
    assert reply["status"] == "ok"
    # x by --in, factor found by the AST (the cell reads it and does not define it)
    reply, outputs = run_cell(
        kc,
        "%%offload --site vega --gpus 0 --in x --out y\n"
        "import os\n"
        "print('hello from', os.environ['INTERTWIN_SITE'], x)\n"
        "y = x * factor\n",
        cell_id="cell-7f3a",
    )
    assert reply["status"] == "ok", (reply, outputs)
    out = text_of(outputs)
    assert "hello from vega 21" in out, outputs
    assert "BEGIN INTERTWIN OFFLOAD" not in out  # the frame is not shown
    lines = displayed(outputs)
    assert any("queued at Vega (batch job" in x for x in lines), lines
    assert lines[-1].startswith("Vega: succeeded"), lines
    reply, outputs = run_cell(kc, "print(repr(y))")
    assert text_of(outputs).strip() == "42"

    # the service lists it with its notebook and cell
    job = next(j for j in api.batch_cells() if j["cell_id"] == "cell-7f3a")
    assert (job["user"], job["site"], job["kind"], job["state"]) == (
        "alice",
        "vega",
        "batch-cell",
        "succeeded",
    )
    assert job["notebook_path"] == NOTEBOOK and job["node"] == "vega-vk"
    st, result = api("GET", f"jobs/{job['id']}/result")
    assert st == 200 and result["status"] == "ok"


def test_the_log_is_followed_each_line_once_as_it_is_printed(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    """The cell's lines come through the service's followed log: each once, in order, all
    before the cell's end is told, and as they are printed (not all at the end). The log can be
    followed once the site reports the job running (the virtual kubelet's status lags the
    process by a few seconds): lines printed before arrive together, the later ones as printed."""
    kc, _ = alice_kernel
    reply, outputs = run_cell(
        kc,
        "%%offload --site vega --gpus 0\n"
        "import time\n"
        "for i in range(8):\n"
        "    print(f'step {i}', flush=True)\n"
        "    time.sleep(2.5)\n",
    )
    assert reply["status"] == "ok", (reply, outputs)
    lines = [
        (o["at"], line) for o in outputs if o["type"] == "stream" for line in o["text"].splitlines()
    ]
    assert [text for _, text in lines] == [f"step {i}" for i in range(8)], outputs
    # printed over 17.5 s: the last line came well after the first ones
    assert lines[-1][0] - lines[0][0] > 5, lines
    ended = next(
        o["at"]
        for o in outputs
        if "display" in o["type"] and o["data"]["text/plain"].startswith("Vega: succeeded")
    )
    assert lines[-1][0] <= ended, outputs


def open_widget_frontend(kc: BlockingKernelClient) -> None:
    """What JupyterLab's widget manager does when it connects to a kernel: open ipywidgets'
    control comm and ask for the widgets' states."""
    comm_id = uuid.uuid4().hex
    kc.shell_channel.send(
        kc.session.msg(
            "comm_open",
            {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
            metadata={"version": "1.0.0"},
        )
    )
    kc.shell_channel.send(
        kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
    )


def test_the_widget_tells_the_states_in_the_sites_words(testbed: dict[str, Any]) -> None:
    """In a kernel with a widget front end the wait is an ipywidgets box: its state badge goes
    queued → running → succeeded with the site's sentences, its log tail holds the printed
    lines, and nothing is printed besides."""
    token = token_for(testbed["hub"], "alice")
    models: dict[str, dict[str, Any]] = {}
    badges: list[tuple[str, str]] = []

    def widget_message(m: dict[str, Any]) -> None:
        c = m["content"]
        if m["msg_type"] == "comm_open" and c.get("target_name") == "jupyter.widget":
            models[c["comm_id"]] = dict(c["data"]["state"])
        elif m["msg_type"] == "comm_msg" and c["data"].get("method") == "update":
            models.setdefault(c["comm_id"], {}).update(c["data"]["state"])
        else:
            return
        value = models[c["comm_id"]].get("value")
        found = re.search(r'data-state="(\w+)"', value) if isinstance(value, str) else None
        if found and "itw-offload-state" in value:
            said = re.sub(r"<[^>]+>", "", value).replace("●", "").strip()
            if not badges or badges[-1] != (found.group(1), said):
                badges.append((found.group(1), said))

    with kernel_for(testbed["hub"], token) as kc:
        open_widget_frontend(kc)
        reply, outputs = run_cell(
            kc,
            "%%offload --site vega --gpus 0 --out y\n"
            # long enough to be seen running: the site's status lags the process by seconds
            "import time\nprint('widget line', flush=True)\ntime.sleep(15)\ny = 6 * 7\n",
            on_message=widget_message,
        )
        assert reply["status"] == "ok", (reply, outputs)
        states = [state for state, _ in badges]
        for a, b in (("queued", "running"), ("running", "succeeded")):
            assert a in states and b in states and states.index(a) < states.index(b), badges
        assert states[-1] == "succeeded", badges
        said = dict(badges)
        assert said["queued"].startswith("Vega: queued at Vega (batch job "), badges
        assert said["running"] == "Vega: running on vega-vk", badges
        assert said["succeeded"].startswith("Vega: succeeded (batch job "), badges
        (log,) = [
            v["value"]
            for v in models.values()
            if "itw-offload-log" in (v.get("_dom_classes") or ())
        ]
        assert "widget line" in log and "BEGIN INTERTWIN OFFLOAD" not in log, log
        # the widget only: no printed lines, no text status line
        assert text_of(outputs) == "", outputs
        (shown,) = [o for o in outputs if o["type"] == "display_data"]
        assert "application/vnd.jupyter.widget-view+json" in shown["data"], shown
        reply, outputs = run_cell(kc, "print(y)")
        assert text_of(outputs).strip() == "42"


def test_a_failing_cell_reraises_with_the_remote_traceback(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    kc, _ = alice_kernel
    reply, outputs = run_cell(
        kc,
        "%%offload --site vega --gpus 0\ndef ratio(a):\n    return 1 / a\n\nratio(0)\n",
    )
    assert reply["status"] == "error", reply
    assert reply["ename"] == "ZeroDivisionError"
    tb = "\n".join(reply["traceback"])
    assert 'File "<offloaded cell>", line 2, in ratio' in tb, tb
    assert "return 1 / a" in tb
    # told once, by the re-raised exception, not also by the streamed log
    assert "Traceback" not in text_of(outputs)


def test_refusals_before_anything_is_created(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    kc, token = alice_kernel
    hub = testbed["hub"]
    alice, bob = Api(hub, token), Api(hub, token_for(hub, "bob"))
    before = len(alice.batch_cells()), len(bob.batch_cells())

    # too large: refused in the kernel, before any request
    reply, _ = run_cell(kc, "import os\nbig = os.urandom(2 * 1024 * 1024)")
    assert reply["status"] == "ok"
    reply, _ = run_cell(kc, "%%offload --site kbfi\nn = len(big)\n")
    assert (reply["status"], reply["ename"]) == ("error", "UsageError"), reply
    assert "DataLake" in reply["evalue"] and "900 KiB" in reply["evalue"], reply
    # and by the service, for whoever sends it anyway
    huge = base64.b64encode(b"x" * (MAX_INPUT_BYTES + 1)).decode()
    st, body = alice("POST", "jobs", json={"site": "kbfi", "inputs": huge})
    assert (st, body["error"]) == (413, "too_large") and "DataLake" in body["message"], body

    # a variable that cannot be pickled is named
    reply, _ = run_cell(kc, "import threading\nlock = threading.Lock()")
    reply, _ = run_cell(kc, "%%offload --site kbfi\nwith lock:\n    pass\n")
    assert reply["status"] == "error" and "'lock'" in reply["evalue"], reply

    inputs = base64.b64encode(b"not used").decode()
    # bob is not in the dev VO: Vega is refused with the spawner's sentence
    st, body = bob("POST", "jobs", json={"site": "vega", "gpus": 0, "inputs": inputs})
    assert st == 400 and "open only to members of the dev.intertwin.eu VO" in body["message"]
    # KBFI has no GPUs, for anyone
    st, body = alice("POST", "jobs", json={"site": "kbfi", "gpus": 1, "inputs": inputs})
    assert st == 400 and "has no GPUs" in body["message"], body
    reply, _ = run_cell(kc, "%%offload --site kbfi --gpus 1\nz = 1\n")
    assert reply["status"] == "error" and "has no GPUs" in reply["evalue"], reply
    # past the partition's time limit
    st, body = alice("POST", "jobs", json={"site": "vega", "time": "3d", "inputs": inputs})
    assert st == 400 and "at most 2-00:00:00" in body["message"], body
    # this hub's dummy login holds no tokens: a cell that asks for a DataLake token is refused
    reply, _ = run_cell(kc, "%%offload --site kbfi --rucio\nz = 1\n")
    assert reply["status"] == "error" and "no DataLake (Rucio) token" in reply["evalue"], reply
    st, body = alice("POST", "jobs", json={"site": "kbfi", "inputs": inputs, "rucio": "required"})
    assert (st, body["error"]) == (400, "no_rucio_token"), body
    assert (len(alice.batch_cells()), len(bob.batch_cells())) == before


def test_no_wait_a_handle_and_attach_from_a_fresh_kernel(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    kc, token = alice_kernel
    reply, outputs = run_cell(
        kc, "%%offload --site kbfi --out answer --no-wait\nanswer = sum(range(10))\n"
    )
    assert reply["status"] == "ok", reply
    (shown,) = [o["data"]["text/plain"] for o in outputs if o["type"] == "execute_result"]
    assert shown.startswith("<OffloadJob ") and " at KBFI: " in shown
    job_id = shown.split()[1]
    reply, outputs = run_cell(kc, "job = _\nprint(job.result())\nprint(job.status()['state'])")
    assert reply["status"] == "ok", reply
    assert text_of(outputs).splitlines() == ["{'answer': 45}", "succeeded"]
    reply, outputs = run_cell(kc, "%offload_jobs")
    listed = text_of(outputs).splitlines()
    assert listed[0].split() == ["id", "site", "state", "submitted", "cell"], listed
    assert any(line.startswith(job_id) and " KBFI " in line for line in listed), listed

    # a kernel restarted since: %offload_attach fetches the result and assigns it
    with kernel_for(testbed["hub"], token) as fresh:
        reply, outputs = run_cell(fresh, f"%offload_attach {job_id}\nprint(answer)")
        assert reply["status"] == "ok", (reply, outputs)
        assert text_of(outputs).strip().endswith("45")


def test_cancel_ends_the_cell_and_the_per_user_limit_holds(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    kc, token = alice_kernel
    api = Api(testbed["hub"], token)
    reply, outputs = run_cell(
        kc,
        "%%offload --site psnc --partition standard --no-wait\n"
        "import time\nprint('started', flush=True)\ntime.sleep(600)\n",
    )
    assert reply["status"] == "ok", reply
    reply, _ = run_cell(kc, "sleeper = _")

    def started() -> bool:
        _, outputs = run_cell(kc, "print(sleeper.logs())")
        return "started" in text_of(outputs)

    wait_for(started, "the sleeping cell to start at PSNC", 180, 1)
    # PSNC allows 4 batch cells at once: 3 more fill it, a fifth is refused with a sentence
    cell = "%%offload --site psnc --partition standard --no-wait\nimport time\ntime.sleep(600)\n"
    handles = []
    for i in range(3):
        reply, _ = run_cell(kc, cell)
        assert reply["status"] == "ok", reply
        run_cell(kc, f"h{i} = _")
        handles.append(f"h{i}")
    reply, _ = run_cell(kc, cell)
    assert reply["ename"] == "UsageError", reply
    assert "You have 4 batch cells queued or running at PSNC" in reply["evalue"], reply

    reply, outputs = run_cell(kc, "sleeper.cancel()\nprint(sleeper.id)")
    job_id = text_of(outputs).strip()

    def cancelled() -> bool:
        _, job = api("GET", f"jobs/{job_id}")
        return bool(job["state"] == "cancelled")

    wait_for(cancelled, "the cancelled cell", 120, 1)
    reply, _ = run_cell(kc, "\n".join(f"{h}.cancel()" for h in handles))
    assert reply["status"] == "ok", reply


def _exists(testbed: dict[str, Any], kind: str, name: str) -> bool:
    """Whether the pod or Secret ``name`` is in the cluster (asked with the admin's config)."""
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.rest import ApiException

    cp = testbed["control_plane"]

    async def ask() -> bool:
        api = await config.new_client_from_config(config_file=cp["admin_kubeconfig"])
        try:
            core = client.CoreV1Api(api)
            read = core.read_namespaced_pod if kind == "pod" else core.read_namespaced_secret
            await read(name, cp["namespace"])
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        finally:
            await api.close()

    return asyncio.run(ask())


def test_a_result_outlives_its_pod_and_stays_its_owners(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    """Once a cell ends, the service keeps its result and deletes its pod and inputs Secret
    after the grace (60 s): the result is still answered, to its owner only, and the job stays
    in the history with its last lines."""
    kc, token = alice_kernel
    hub = testbed["hub"]
    alice, bob = Api(hub, token), Api(hub, token_for(hub, "bob"))
    reply, outputs = run_cell(
        kc,
        "%%offload --site vega --gpus 0 --out kept\nkept = [i * i for i in range(1000)]\n"
        "print('squares done')\n",
        cell_id="cell-kept",
    )
    assert reply["status"] == "ok", (reply, outputs)
    job = next(j for j in alice.batch_cells() if j["cell_id"] == "cell-kept")
    pod = job["pod"]
    assert _exists(testbed, "secret", f"{pod}-inputs")

    def deleted() -> bool:
        return not _exists(testbed, "pod", pod) and not _exists(testbed, "secret", f"{pod}-inputs")

    wait_for(deleted, "the finished cell's pod and inputs Secret deleted after the grace", 300, 2)
    st, result = alice("GET", f"jobs/{job['id']}/result")
    assert st == 200 and result["status"] == "ok", result
    st, after = alice("GET", f"jobs/{job['id']}")
    assert (after["state"], after["exit_code"]) == ("succeeded", 0), after
    assert "squares done" in after["last_lines"], after
    # another user's result does not exist for them
    st, body = bob("GET", f"jobs/{job['id']}/result")
    assert (st, body["error"]) == (404, "not_found"), body
    # a fresh kernel takes the variable back from the kept result
    with kernel_for(hub, token) as fresh:
        reply, outputs = run_cell(fresh, f"%offload_attach {job['id']}\nprint(kept[-1])")
        assert reply["status"] == "ok", (reply, outputs)
        assert text_of(outputs).strip().endswith(str(999 * 999))


def test_a_result_over_the_limit_is_told_and_kept(
    testbed: dict[str, Any], alice_kernel: tuple[BlockingKernelClient, str]
) -> None:
    """A result over the service's limit (64 MiB): the cell says its size and the limit, and
    the result stays retrievable whole (--allow-large, ?max_bytes=0)."""
    kc, token = alice_kernel
    api = Api(testbed["hub"], token)
    reply, outputs = run_cell(
        kc,
        "%%offload --site vega --gpus 0 --out big\nimport os\nbig = os.urandom(66 * 2**20)\n",
        cell_id="cell-big",
    )
    assert (reply["status"], reply.get("ename")) == ("error", "UsageError"), (reply, outputs)
    said = reply["evalue"]
    assert "over the 64.0 MiB limit" in said and "--allow-large" in said, said
    assert said.startswith("The batch cell's result is ") and "Nothing is lost" in said, said
    job = next(j for j in api.batch_cells() if j["cell_id"] == "cell-big")
    assert job["id"] in said
    st, body = api("GET", f"jobs/{job['id']}/result")
    assert (st, body["error"]) == (409, "result_too_large"), body
    assert body["bytes"] > body["limit"] == 64 * 2**20, body
    # the whole of it, when asked for
    r = requests.get(
        f"{api.base}/jobs/{job['id']}/result",
        params={"max_bytes": 0},
        headers=api.headers,
        timeout=300,
        stream=True,
    )
    assert r.status_code == 200 and int(r.headers["Content-Length"]) > 4 * body["bytes"] // 3
    r.close()
    reply, outputs = run_cell(
        kc, f"%offload_attach {job['id']} --allow-large\nprint(len(big))", timeout=600
    )
    assert reply["status"] == "ok", (reply, outputs)
    assert text_of(outputs).strip().endswith(str(66 * 2**20))
