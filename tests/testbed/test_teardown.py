"""Stopping the testbed leaves no process behind: control plane, interLink, plugins, hub,
proxy, and the notebooks and jobs the sites were running."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from testbed.lifecycle import down
from testbed.procs import Supervisor

pytestmark = [pytest.mark.testbed, pytest.mark.last]


def processes_under(run_dir: Path) -> list[str]:
    """Live processes whose working directory or command line is inside the run folder."""
    found = []
    root = str(run_dir)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if (proc / "stat").read_text().split(") ")[1].split()[0] == "Z":
                continue
            cwd = os.readlink(proc / "cwd")
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(root) or root in cmd:
            found.append(f"{proc.name}: {cmd[:120]}")
    return found


def test_teardown_leaves_no_process(testbed: dict[str, Any]) -> None:
    run_dir = Path(testbed["run_dir"])
    hub = testbed["hub"]
    # a notebook is running when the testbed goes down
    headers = {"Authorization": f"token {hub['service_token']}", "Content-Type": "application/json"}
    body = json.dumps({"profile": "kbfi"}).encode()
    req = urllib.request.Request(
        f"{hub['api_url']}/users/bob/servers/left", data=body, method="POST", headers=headers
    )
    with urllib.request.urlopen(req) as r:
        assert r.status in (201, 202)
    deadline = time.monotonic() + 90
    while not list(run_dir.glob("sites/kbfi/jobs/*/notebook.out")):
        assert time.monotonic() < deadline, "the KBFI notebook never started"
        time.sleep(0.5)

    pids = Supervisor(run_dir).pids()
    assert {"etcd", "kube-apiserver", "jupyterhub", "proxy", "vk-vega"} <= set(pids)
    assert processes_under(run_dir)

    down(run_dir)

    deadline = time.monotonic() + 15
    while processes_under(run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_under(run_dir) == []
    assert Supervisor(run_dir).pids() == {}
