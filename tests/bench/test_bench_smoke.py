"""Every benchmark in bench/ compiles and runs at smoke size (``--smoke``), so a change that
breaks one shows here rather than on the day someone measures. Smoke runs check that the
bench works, not what it measures."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
# the benches; modules they share start with "_"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
# spawn.py and offload.py need Kubernetes, interLink and a hub, login.py a control plane for
# its own hub: they use the session's testbed (--state)
ON_TESTBED = {"spawn.py", "login.py", "offload.py"}
# smoke-run by a test of their own that also checks what they print
OWN_TEST = {"jobs.py", "usage.py"}


def run_bench(script: str, *args: str, timeout: float = 300) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
    }
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"{script} --smoke failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    print(proc.stdout)
    return proc.stdout


def test_there_are_benches() -> None:
    assert {"spawn.py", "lab_load.py", "build.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_compiles_and_has_a_smoke_flag(script: str, tmp_path: Path) -> None:
    py_compile.compile(str(BENCH / script), cfile=str(tmp_path / "c.pyc"), doraise=True)
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "--smoke" in out.stdout


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in ON_TESTBED | OWN_TEST])
def test_smoke(script: str) -> None:
    run_bench(script)


def test_jobs_measures_both_services_through_the_proxy() -> None:
    out = run_bench("jobs.py")
    assert "intertwin service (watch, index)" in out and "naive (LIST per request)" in out
    assert "intertwin service resident memory at 200 pods" in out


def test_jobs_in_process_smoke() -> None:
    out = run_bench("jobs.py", "--in-process")
    assert "first list of 200 pods into the index and history" in out


def test_usage_measures_both_databases_against_a_full_scan() -> None:
    out = run_bench("usage.py")
    for name in ("SQLite", "PostgreSQL"):
        assert f"== {name}" in out
    assert out.count("ratio p95 naive / ours:") == 2
    assert out.count("goal p95 <= 50 ms:") == 2
    assert out.count("pod ends (row closed, days rolled up)") == 2


@pytest.mark.testbed
def test_spawn_smoke(testbed: dict[str, Any]) -> None:
    out = run_bench("spawn.py", "--state", testbed["run_dir"], timeout=600)
    assert "POST -> pod created" in out and "pod Running -> server ready" in out
    assert "2 concurrent Vega spawns: 2 ready, 0 failed" in out


@pytest.mark.testbed
def test_login_smoke(testbed: dict[str, Any]) -> None:
    out = run_bench("login.py", "--state", testbed["run_dir"], timeout=900)
    assert "3 concurrent users:" in out and "goal: 0 errors (got 0)" in out


@pytest.mark.testbed
def test_offload_smoke(testbed: dict[str, Any]) -> None:
    out = run_bench("offload.py", "--state", testbed["run_dir"], timeout=900)
    assert "submit -> pod created (2 rounds)" in out and "trivial cell end to end" in out
    assert "result of 1 MB" in out and "result over the limit: 409 result_too_large" in out
