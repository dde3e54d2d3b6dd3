"""What a waiting ``%%offload`` cell shows, in a real IPython kernel against a small stand-in
for the hub service (its jobs API: submit, state, followed log, cancel, result): the log
followed once (one request, each line once, as it is printed), the text status line for
clients without widgets, and for a widget front end (one that opened ipywidgets' control comm,
as JupyterLab's widget manager does) the widget's state going queued → running → succeeded, its
log tail, and its Cancel button cancelling the job and ending the cell in one line."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import cloudpickle
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from intertwin_hub.offload import frame, runner

# long enough to be seen queued also when the kernel is slow to start its wait (the first
# widget imports ipywidgets)
QUEUED_SECONDS = 3.0


class FakeJob:
    def __init__(self, uid: str, lines: list[str], gap: float) -> None:
        self.uid = uid
        self.lines = lines
        self.gap = gap
        self.t0 = time.monotonic()
        self.cancelled_at: float | None = None

    def running_since(self) -> float:
        return self.t0 + QUEUED_SECONDS

    def ends_at(self) -> float:
        return self.running_since() + self.gap * len(self.lines) + 0.3

    def state(self) -> str:
        now = time.monotonic()
        if self.cancelled_at is not None:
            # the pod goes a moment after the cancel, as it does through a virtual kubelet
            return "cancelled" if now > self.cancelled_at + 1.0 else "running"
        if now < self.running_since():
            return "queued"
        return "running" if now < self.ends_at() else "succeeded"

    def printed(self) -> list[str]:
        """The log so far: each line once its time has come, then the frame."""
        now = time.monotonic()
        end = self.cancelled_at or now
        out = [
            line
            for i, line in enumerate(self.lines)
            if self.running_since() + self.gap * i <= min(now, end)
        ]
        if self.state() == "succeeded":
            payload = runner.result_payload({"y": cloudpickle.dumps(42)})
            out += list(frame.encode("ok", payload))
        return out

    def json(self) -> dict[str, Any]:
        state = self.state()
        sentence = {
            "queued": "queued at Vega (batch job 1001)",
            "running": "running on vega-vk",
        }.get(state, state)
        return {
            "id": self.uid,
            "site": "vega",
            "site_name": "Vega",
            "state": state,
            "sentence": sentence,
            "batch_job": "1001",
            "exit_code": 0 if state == "succeeded" else None,
            "note": None,
            "submitted": None,
        }


class FakeService:
    """The service's jobs API, as much as the magic uses of it."""

    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str]] = []
        self.next_lines: list[str] = []
        self.next_gap = 0.8
        self.break_after: int | None = None  # lines after which the next followed answer breaks
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # a followed log comes in chunks, as from tornado

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _job(self) -> tuple[FakeJob, str]:
                parts = urlparse(self.path).path.split("/")  # /api/jobs/<id>[/what]
                return service.jobs[parts[3]], (parts[4] if len(parts) > 4 else "")

            def do_POST(self) -> None:
                service.requests.append(("POST", self.path))
                self.rfile.read(int(self.headers["Content-Length"]))
                uid = str(uuid.uuid4())
                job = FakeJob(uid, service.next_lines, service.next_gap)
                service.jobs[uid] = job
                self._json(201, job.json())

            def do_DELETE(self) -> None:
                service.requests.append(("DELETE", self.path))
                job, _ = self._job()
                if job.state() in ("succeeded", "cancelled"):
                    self._json(409, {"error": "already_ended", "message": "It has ended."})
                    return
                job.cancelled_at = time.monotonic()
                self._json(202, job.json())

            def do_GET(self) -> None:
                service.requests.append(("GET", self.path))
                job, what = self._job()
                if what == "":
                    self._json(200, job.json())
                elif what == "result":
                    f = frame.decode(job.printed())
                    self._json(
                        200,
                        {
                            "status": f.status,
                            "bytes": len(f.payload),
                            "sha256": hashlib.sha256(f.payload).hexdigest(),
                            "payload": base64.b64encode(f.payload).decode(),
                        },
                    )
                elif what == "logs":
                    follow = parse_qs(urlparse(self.path).query).get("follow") == ["true"]
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Intertwin-Log-Source", "live")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    sent = 0
                    while True:
                        lines = job.printed()
                        data = "".join(f"{line}\n" for line in lines[sent:]).encode()
                        if data:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            self.wfile.flush()
                        sent = len(lines)
                        if follow and service.break_after is not None:
                            if sent >= service.break_after:
                                # the connection drops mid-answer (no closing chunk)
                                service.break_after = None
                                self.close_connection = True
                                return
                        if not follow or job.state() in ("succeeded", "cancelled"):
                            self.wfile.write(b"0\r\n\r\n")
                            return
                        time.sleep(0.05)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that leaves (the kernel shutting down) is no failure here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, method: str, what: str) -> int:
        return sum(1 for m, p in self.requests if m == method and what in p)


@pytest.fixture(scope="module")
def service() -> Iterator[FakeService]:
    s = FakeService()
    yield s
    s.server.shutdown()


@pytest.fixture
def kernel(service: FakeService) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    env = {**os.environ, "INTERTWIN_SERVICE_URL": service.url, "JUPYTERHUB_API_TOKEN": "t"}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def open_widget_frontend(kc: BlockingKernelClient) -> None:
    """What JupyterLab's widget manager does when it connects to a kernel: open ipywidgets'
    control comm (and ask for the widgets' states)."""
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


def execute(
    kc: BlockingKernelClient,
    code: str,
    on_message: Any = None,
    timeout: float = 120,
) -> tuple[dict[str, Any], list[tuple[float, dict[str, Any]]]]:
    """Run a cell; the reply and every iopub message of it, with the time it arrived
    (``on_message`` sees them as they come, and the widgets' messages of other parents)."""
    msg = kc.session.msg(
        "execute_request",
        {"code": code, "silent": False, "store_history": True, "user_expressions": {}},
    )
    kc.shell_channel.send(msg)
    seen: list[tuple[float, dict[str, Any]]] = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        ours = m["parent_header"].get("msg_id") == msg["header"]["msg_id"]
        if on_message is not None and (ours or m["msg_type"].startswith("comm_")):
            # a widget's messages in answer to the front end's have that message as parent
            on_message(m)
        if not ours:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        seen.append((time.monotonic(), m))
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply["content"], seen


def streamed(seen: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, str]]:
    """Each printed line with the time it arrived."""
    out = []
    for t, m in seen:
        if m["msg_type"] == "stream":
            out += [(t, line) for line in m["content"]["text"].splitlines()]
    return out


class Widgets:
    """The widget models a cell opened, and their state as the comm messages left it."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self.badges: list[str] = []  # each data-state the badge showed, in order

    def __call__(self, m: dict[str, Any]) -> None:
        c = m["content"]
        if m["msg_type"] == "comm_open" and c.get("target_name") == "jupyter.widget":
            self.state[c["comm_id"]] = dict(c["data"]["state"])
        elif m["msg_type"] == "comm_msg" and c["data"].get("method") == "update":
            self.state.setdefault(c["comm_id"], {}).update(c["data"]["state"])
        else:
            return
        value = self.state[c["comm_id"]].get("value")
        if isinstance(value, str) and "itw-offload-state" in value:
            found = re.search(r'data-state="(\w+)"', value)
            if found and (not self.badges or self.badges[-1] != found.group(1)):
                self.badges.append(found.group(1))

    def of(self, model: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k, v) for k, v in self.state.items() if v.get("_model_name") == model]

    def log(self) -> str:
        (value,) = [
            v["value"] for _, v in self.of("HTMLModel") if "itw-offload-log" in v["_dom_classes"]
        ]
        return str(value)


def test_text_the_log_is_followed_once_and_lines_arrive_as_printed(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    _, kc = kernel
    service.next_lines, service.next_gap = [f"line {i}" for i in range(4)], 1.0
    reply, seen = execute(kc, "%%offload --site vega --out y\ny = 42\n")
    assert reply["status"] == "ok", reply
    job = list(service.jobs)[-1]
    # one followed answer: every line fetched once
    assert service.count("GET", f"{job}/logs") == 1, service.requests
    lines = streamed(seen)
    assert [text for _, text in lines] == [f"line {i}" for i in range(4)], seen
    # as printed, a second apart, not all at the end (those printed before the job was seen
    # running come together)
    assert lines[-1][0] - lines[0][0] > 0.6, lines
    # the status line, as text only (no widget without a widget front end)
    shown = [m["content"]["data"] for _, m in seen if "display" in m["msg_type"]]
    assert all(list(d) == ["text/plain"] for d in shown), shown
    assert any("queued at Vega (batch job 1001)" in d["text/plain"] for d in shown), shown
    assert shown[-1]["text/plain"].startswith("Vega: succeeded (batch job 1001, exit code 0)")
    assert not any(m["msg_type"] == "comm_open" for _, m in seen)
    reply, seen = execute(kc, "print(y)")
    assert [text for _, text in streamed(seen)] == ["42"]


def test_a_broken_follow_is_taken_up_again_without_repeating_lines(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    _, kc = kernel
    # long enough for the break to come before the end, also on a loaded machine
    service.next_lines, service.next_gap = [f"n{i}" for i in range(6)], 1.0
    service.break_after = 2
    before = len(service.jobs)
    reply, seen = execute(kc, "%%offload --site vega --out y\ny = 42\n")
    assert reply["status"] == "ok", reply
    (job,) = list(service.jobs)[before:]
    assert service.count("GET", f"{job}/logs") == 2, service.requests
    assert [text for _, text in streamed(seen)] == [f"n{i}" for i in range(6)], seen


def test_widget_states_log_tail_and_nothing_printed_twice(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    _, kc = kernel
    open_widget_frontend(kc)
    service.next_lines, service.next_gap = ["alpha", "beta"], 0.8
    widgets = Widgets()
    reply, seen = execute(kc, "%%offload --site vega --out y\ny = 42\n", widgets)
    assert reply["status"] == "ok", reply
    assert widgets.badges == ["queued", "running", "succeeded"], widgets.badges
    assert "alpha\nbeta" in widgets.log()
    assert "BEGIN INTERTWIN OFFLOAD" not in widgets.log()
    # the widget, and no text besides: no printed lines, no status line
    assert streamed(seen) == []
    shown = [m["content"]["data"] for _, m in seen if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and "application/vnd.jupyter.widget-view+json" in shown[0], shown
    ((_, button),) = widgets.of("ButtonModel")
    assert button["description"] == "Cancel"
    reply, seen = execute(kc, "print(y)")
    assert [text for _, text in streamed(seen)] == ["42"]


def test_widget_cancel_button_cancels_the_job_and_ends_the_cell(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    _, kc = kernel
    open_widget_frontend(kc)
    service.next_lines, service.next_gap = [f"tick {i}" for i in range(100)], 1.0
    widgets = Widgets()
    clicked: list[float] = []

    def click_when_running(m: dict[str, Any]) -> None:
        widgets(m)
        if not clicked and widgets.badges[-1:] == ["running"]:
            ((button, _),) = widgets.of("ButtonModel")
            # what the front end sends for a click (ipywidgets' ButtonView)
            click = {"method": "custom", "content": {"event": "click"}}
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": button, "data": click}))
            clicked.append(time.monotonic())

    before = len(service.jobs)
    reply, seen = execute(kc, "%%offload --site vega --out y\ny = 42\n", click_when_running)
    (job,) = list(service.jobs)[before:]
    assert clicked and service.count("DELETE", job) == 1, service.requests
    assert (reply["status"], reply["ename"]) == ("error", "OffloadCancelled"), reply
    # one line, no traceback
    assert reply["traceback"] == [
        f"OffloadCancelled: The batch cell {job} is cancelled at Vega; its variables are not set."
    ], reply
    assert widgets.badges[-1] == "cancelled", widgets.badges
    ((_, button),) = widgets.of("ButtonModel")
    assert (button["disabled"], button["description"]) == (True, "Cancelling…"), button
    # the wait ended soon after the click (the kernel handled it while the cell waited)
    assert seen[-1][0] - clicked[0] < 15
    reply, _ = execute(kc, "y")
    assert reply["ename"] == "NameError"


def test_interrupting_the_kernel_cancels_the_job(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    km, kc = kernel
    service.next_lines, service.next_gap = [f"tick {i}" for i in range(100)], 1.0
    interrupted: list[bool] = []

    def interrupt_after_a_line(m: dict[str, Any]) -> None:
        if not interrupted and m["msg_type"] == "stream" and "tick 1" in m["content"]["text"]:
            km.interrupt_kernel()
            interrupted.append(True)

    before = len(service.jobs)
    reply, _ = execute(kc, "%%offload --site vega\nimport time\n", interrupt_after_a_line)
    (job,) = list(service.jobs)[before:]
    assert interrupted and service.count("DELETE", job) == 1, service.requests
    assert reply["status"] == "error" and reply["ename"] == "OffloadInterrupted", reply
    assert reply["traceback"] == [
        f"KeyboardInterrupt: Interrupted: the batch cell {job} is cancelled at Vega."
    ]


def test_inside_another_cell_magic_the_cell_waits_without_await(
    service: FakeService, kernel: tuple[KernelManager, BlockingKernelClient]
) -> None:
    """``%%time`` runs its body itself: the ``%%offload`` inside it is not rewritten to an
    ``await`` (which would be a SyntaxError there), and waits as a plain call."""
    _, kc = kernel
    service.next_lines, service.next_gap = ["inner"], 0.2
    reply, seen = execute(kc, "%%time\n%%offload --site vega --out y\ny = 42\n")
    assert reply["status"] == "ok", reply
    printed = [text for _, text in streamed(seen)]
    assert printed[0] == "inner" and printed[-1].startswith("Wall time:"), printed
