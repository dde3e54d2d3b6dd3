"""A broken site catalogue stops a real JupyterHub at start-up, naming the key at fault."""

from __future__ import annotations

import copy
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from testbed.procs import free_port

from .test_sites import SHIPPED

JUPYTERHUB = str(Path(sys.executable).parent / "jupyterhub")


def hub_config(folder: Path, catalogue: Path | None) -> Path:
    cfg = folder / "jupyterhub_config.py"
    cfg.write_text(f"""
c = get_config()  # noqa
c.JupyterHub.spawner_class = "intertwin"  # the entry point, as helm-values/ configure it
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {free_port()}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.authenticator_class = "dummy"
c.InterTwinSpawner.site_catalogue_path = {str(catalogue) if catalogue else None!r}
""")
    return cfg


def start(folder: Path, cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [JUPYTERHUB, "-f", str(cfg)],
        cwd=folder,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "CONFIGPROXY_AUTH_TOKEN": "unit-test"},
    )


def test_a_broken_catalogue_stops_the_hub_with_the_key_path(tmp_path: Path) -> None:
    data = copy.deepcopy(SHIPPED)
    del data["sites"][1]["node"]["name"]
    data["sites"][2]["resources"][0]["memory"] = "512m"  # only the first error is reported
    catalogue = tmp_path / "sites.yaml"
    catalogue.write_text(yaml.safe_dump(data))
    hub = start(tmp_path, hub_config(tmp_path, catalogue))
    out, _ = hub.communicate(timeout=120)
    assert hub.returncode == 1, out
    assert f"{catalogue}: sites[1].node.name: required" in out, out
    assert "The site catalogue is broken, so the hub cannot start" in out, out


def test_a_hub_with_a_valid_catalogue_gets_past_it(tmp_path: Path) -> None:
    hub = start(tmp_path, hub_config(tmp_path, None))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in hub.stdout or []], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not any("Site catalogue (shipped): ukri, vega, psnc, kbfi" in x for x in seen):
            assert hub.poll() is None or not lines.empty(), "".join(seen)
            assert time.monotonic() < deadline, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
    finally:
        hub.terminate()
        hub.wait(timeout=60)
