"""JupyterLab ready time in Chromium with the @intertwin/hub extension against without it.

    .venv/bin/python bench/lab_load.py [--rounds 15]
    .venv/bin/python bench/lab_load.py --smoke      # 1 round: does the bench still work

One `jupyter lab` from .venv (the built extension, the intertwin_lab server extension), with a
configuration folder of its own. Playwright (ui-tests/tests/lab-load.spec.ts, Debian's
chromium) loads /lab in a fresh browser context per load, alternating with and without the
extension: JupyterLab reads labconfig/page_config.json on every page request, so
`disabledExtensions` switches it between two loads of the same server. Ready is the moment the
splash screen is gone (every plugin activated, layout restored), as `performance.now()` since
navigation start. No Rucio is configured: the panels' first requests are asynchronous and do
not hold the splash screen. Prints the median and p95 of both and the ratio of medians
(goal <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.procs import Supervisor, free_port, http_ok, wait_until  # noqa: E402

UI = REPO / "ui-tests"
GOAL = 1.05


def p95(xs: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-95 * len(s) // 100) - 1))]


def start_lab(sup: Supervisor, run: Path) -> tuple[str, Path]:
    port, token = free_port(), secrets.token_hex(16)
    root, config = run / "home", run / "jupyter-config"
    root.mkdir(parents=True)
    config.mkdir()
    argv = [str(REPO / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={port}", f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    env = {"JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(run / "runtime"),
           "HOME": str(root), "http_proxy": "", "https_proxy": "", "HTTP_PROXY": "",
           "HTTPS_PROXY": ""}
    proc = sup.start("jupyterlab", argv, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/api/status?token={token}"), "JupyterLab", 120, proc)
    return f"{url}/lab?token={token}", config


def run_spec(lab_url: str, config: Path, rounds: int, out: Path) -> dict[str, list[float]]:
    playwright = UI / "node_modules" / ".bin" / "playwright"
    if not playwright.exists():
        raise SystemExit("Playwright is not installed in ui-tests/: run scripts/setup.sh")
    env = {**os.environ, "LAB_URL": lab_url, "LAB_CONFIG_DIR": str(config),
           "CHROMIUM": shutil.which("chromium") or "/usr/bin/chromium", "LAB_LOAD_BENCH": "1",
           "LAB_LOAD_ROUNDS": str(rounds), "BENCH_OUTPUT": str(out),
           "UI_OUTPUT_DIR": str(out.parent / "results"), "CI": "1"}
    r = subprocess.run([str(playwright), "test", "tests/lab-load.spec.ts"], cwd=UI, env=env,
                       capture_output=True, text=True, timeout=300 + rounds * 240)
    if r.returncode != 0 or not out.exists():
        raise SystemExit(f"the browser run failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}")
    return dict(json.loads(out.read_text()))


def report(times: dict[str, Any]) -> None:
    on, off = times["on"], times["off"]
    for name, xs in (("with @intertwin/hub", on), ("without", off)):
        print(f"{name:<20} median {statistics.median(xs):7.0f} ms   p95 {p95(xs):7.0f} ms   "
              f"({len(xs)} loads)")
    ratio = float(statistics.median(on) / statistics.median(off))
    print(f"ratio of medians {ratio:.3f} (goal <= {GOAL}); p95 ratio {p95(on) / p95(off):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15,
                    help="loads of each variant, alternating (default 15)")
    ap.add_argument("--smoke", action="store_true",
                    help="1 round: check that the bench runs, not what it measures")
    args = ap.parse_args()
    rounds = 1 if args.smoke else args.rounds
    run = Path(tempfile.mkdtemp(prefix="lab-load-"))
    sup = Supervisor(run)
    try:
        lab, config = start_lab(sup, run)
        times = run_spec(lab, config, rounds, run / "lab_load.json")
    finally:
        sup.stop_all()
    report(times)
    shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
