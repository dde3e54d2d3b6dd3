"""What the browser benchmarks share: a plain `jupyter lab` from .venv (the built extension, the
intertwin_lab server extension) started through the testbed's Supervisor, and a Playwright spec
of ui-tests/ run in Debian's chromium that writes its measurements as JSON."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed.procs import Supervisor, free_port, http_ok, wait_until
from tests.testbed import browser

REPO = Path(__file__).resolve().parents[1]
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def start_lab(
    sup: Supervisor,
    root: Path,
    env: Mapping[str, str],
    timeout: float,
    extra_args: Sequence[str] = (),
) -> str:
    """JupyterLab on a free port of 127.0.0.1 serving ``root``, with ``env`` and no proxy;
    returns the /lab URL with its token once the server answers."""
    port, token = free_port(), secrets.token_hex(16)
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        str(REPO / ".venv" / "bin" / "jupyter"),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        *extra_args,
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    proc = sup.start("jupyterlab", argv, env={**env, **dict.fromkeys(PROXY_VARS, "")}, cwd=root)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/api/status?token={token}"), "JupyterLab", timeout, proc)
    return f"{url}/lab?token={token}"


def run_spec(
    spec: str, env: Mapping[str, str], out: Path, timeout: float, must_pass: bool = True
) -> dict[str, Any]:
    """Run ui-tests/``spec`` with ``env`` (through the UI tests' runner, tests/testbed/browser.py)
    and return what it wrote to ``out``. Fails when it wrote nothing, or (``must_pass``) when
    Playwright reports a failure."""
    try:
        r = browser.run_spec(
            spec, {"BENCH_OUTPUT": str(out), **env}, out.parent / "results", timeout
        )
    except browser.BrowserMissing as e:
        raise SystemExit(str(e)) from e
    if (must_pass and r.returncode != 0) or not out.exists():
        raise SystemExit(f"the browser run failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}")
    return dict(json.loads(out.read_text()))
