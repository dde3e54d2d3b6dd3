"""The service never outlives the hub that started it, even a hub killed without its clean-up
(then an orphan service would keep the port, and answer for the next hub). A stand-in parent
starts ``python -m intertwin_hub.service`` as JupyterHub does and is killed: once the service
is up, and while the service is still starting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from testbed.procs import alive, free_port

from ...waiting import wait_for

# the stand-in hub: starts the service, says its pid, then waits to be killed
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    env = {**os.environ, "INTERTWIN_HUB_PID": str(os.getpid())}  # as the hub's config does
    p = subprocess.Popen([sys.executable, "-m", "intertwin_hub.service"], env=env)
    print(p.pid, flush=True)
    time.sleep(3600)
    """
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # a cluster that is not there: the service keeps retrying its watch, and keeps running
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Config
            clusters:
              - {name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}
            users: [{name: u, user: {token: t}}]
            contexts: [{name: x, context: {cluster: c, user: u, namespace: n}}]
            current-context: x
            """
        )
    )
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/intertwin/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
        "JUPYTERHUB_API_TOKEN": "not-a-real-token",
        "INTERTWIN_SERVICE_DB_URL": f"sqlite:///{tmp_path / 'service.sqlite'}",
    }


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], env=env, stdout=subprocess.PIPE, stderr=log.open("w"),
        text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def test_a_killed_hub_takes_its_running_service_with_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    parent, service = start(env, log)
    try:
        wait_for(lambda: "intertwin service at" in log.read_text(), "the service up", 60)
        time.sleep(2)  # a running service stays up while its hub lives
        assert alive(service)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not alive(service), "the service gone with its hub", 30)
    finally:
        parent.kill()
        if alive(service):
            os.kill(service, signal.SIGKILL)


def test_a_hub_killed_while_the_service_starts_takes_it_too(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    parent, service = start(env, log)
    try:
        parent.send_signal(signal.SIGKILL)  # before the service has even imported its app
        parent.wait()
        wait_for(lambda: not alive(service), "the service gone with its hub", 30)
        assert "intertwin service at" not in log.read_text()
    finally:
        parent.kill()
        if alive(service):
            os.kill(service, signal.SIGKILL)
