"""The local interLink plugin as a real subprocess on a free port, driven the way the interLink
API server drives it, and pod bodies shaped as the API server sends them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from testbed.procs import free_port

from ...waiting import wait_for

PY = sys.executable
REPO = Path(__file__).resolve().parents[3]
JSONish = dict[str, Any]


class Plugin:
    def __init__(self, root: Path, *extra: str) -> None:
        self.root = root
        self.extra = extra
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root.with_name(root.name + ".plugin.log")

    def start(self) -> Plugin:
        self.port = free_port()
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "testbed.local_plugin",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--root",
                    str(self.root),
                    "--site",
                    "TestSite",
                    *self.extra,
                ],
                cwd=REPO,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                return self.call("GET", "/healthz")[0] == 200
            except OSError:
                return False

        wait_for(up, "the plugin to listen")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def cancel_all(self) -> str:
        return subprocess.run(
            [PY, "-m", "testbed.local_plugin", "--root", str(self.root), "--cancel-all"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()

    # the calls the interLink API makes

    def create(self, req: JSONish) -> JSONish:
        code, _, body = self.call("POST", "/create", req)
        assert code == 200, body
        return json.loads(body)

    def status(self, pod: JSONish) -> JSONish | None:
        code, _, body = self.call("GET", "/status", [pod])
        assert code == 200, body
        out = json.loads(body)
        return out[0] if out else None

    def container(self, pod: JSONish, name: str, init: bool = False) -> JSONish:
        st = self.status(pod)
        assert st is not None
        return next(c for c in st["initContainers" if init else "containers"] if c["name"] == name)

    def wait_state(
        self, pod: JSONish, name: str, state: str, init: bool = False, timeout: float = 10.0
    ) -> JSONish:
        def check() -> JSONish | None:
            c = self.container(pod, name, init)
            return c if state in c["state"] else None

        return wait_for(check, f"{name} to be {state}", timeout)

    def logs(self, pod: JSONish, ctr: str, **opts: Any) -> tuple[int, bytes]:
        code, _, body = self.call(
            "GET", "/getLogs", log_request(pod, ctr, **opts), timeout=opts.get("timeout", 10.0)
        )
        return code, body

    def delete(self, pod: JSONish) -> tuple[int, str]:
        code, _, body = self.call("POST", "/delete", pod, timeout=20)
        return code, body.decode()


def log_request(pod: JSONish, ctr: str, **opts: Any) -> JSONish:
    meta = pod["metadata"]
    base = {
        "Tail": 0,
        "Bytes": 0,
        "Timestamps": False,
        "Follow": False,
        "Previous": False,
        "SinceSeconds": 0,
        "SinceTime": "0001-01-01T00:00:00Z",
    }
    base.update({k: v for k, v in opts.items() if k != "timeout"})
    return {
        "Namespace": meta["namespace"],
        "PodUID": meta["uid"],
        "PodName": meta["name"],
        "ContainerName": ctr,
        "Opts": base,
    }


def make_pod(
    name: str,
    containers: list[JSONish],
    init: list[JSONish] | None = None,
    volumes: list[JSONish] | None = None,
    annotations: dict[str, str] | None = None,
    grace: int | None = None,
) -> JSONish:
    spec: JSONish = {"containers": containers, "volumes": volumes or []}
    if init:
        spec["initContainers"] = init
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "jhub",
            "uid": str(uuid.uuid4()),
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def create_body(
    pod: JSONish, configmaps: list[JSONish] | None = None, secrets: list[JSONish] | None = None
) -> JSONish:
    """Shaped as interLink's API sends it: one object, one entry per container."""
    ctrs = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    return {
        "pod": pod,
        "container": [
            {
                "name": c["name"],
                "configMaps": configmaps or [],
                "secrets": secrets or [],
                "projectedvolumemaps": [],
                "emptyDirs": [],
            }
            for c in ctrs
        ],
    }


def ctr(name: str, script: str | None, *args: str, **extra: Any) -> JSONish:
    c: JSONish = {"name": name, "image": "ghcr.io/example/notebook:latest", **extra}
    if script is not None:
        c["command"] = [PY, "-u", "-c", script]
    if args:
        c["args"] = list(args)
    return c
