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
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import _browser  # noqa: E402

from testbed.procs import Supervisor  # noqa: E402

GOAL = 1.05


def p95(xs: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-95 * len(s) // 100) - 1))]


def start_lab(sup: Supervisor, run: Path) -> tuple[str, Path]:
    root, config = run / "home", run / "jupyter-config"
    config.mkdir(parents=True)
    env = {
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(run / "runtime"),
        "HOME": str(root),
    }
    return _browser.start_lab(sup, root, env, 120), config


def run_spec(lab_url: str, config: Path, rounds: int, out: Path) -> dict[str, list[float]]:
    env = {
        "LAB_URL": lab_url,
        "LAB_CONFIG_DIR": str(config),
        "LAB_LOAD_BENCH": "1",
        "LAB_LOAD_ROUNDS": str(rounds),
    }
    return _browser.run_spec("tests/lab-load.spec.ts", env, out, 300 + rounds * 240)


def report(times: dict[str, Any]) -> None:
    on, off = times["on"], times["off"]
    for name, xs in (("with @intertwin/hub", on), ("without", off)):
        print(
            f"{name:<20} median {statistics.median(xs):7.0f} ms   p95 {p95(xs):7.0f} ms   "
            f"({len(xs)} loads)"
        )
    ratio = float(statistics.median(on) / statistics.median(off))
    print(f"ratio of medians {ratio:.3f} (goal <= {GOAL}); p95 ratio {p95(on) / p95(off):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rounds", type=int, default=15, help="loads of each variant, alternating (default 15)"
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="1 round: check that the bench runs, not what it measures",
    )
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
