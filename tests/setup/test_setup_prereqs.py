"""scripts/setup.sh on a machine without Go >= 1.24, Node.js/npm, Python's venv module or Maven
(to fetch Keycloak) stops at once with a sentence naming what to install, before any download
or build.

Each case runs the real script in a copy of the repository's scripts (a fresh clone: no .venv,
an empty build cache) with a PATH from which the tool is absent, or on which a stand-in
reports an old version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    "scripts/setup.sh",
    "testbed/build/require-go.sh",
    "testbed/build/go-build.sh",
    "testbed/build/build-k8s.sh",
    "testbed/build/build-interlink.sh",
    "testbed/build/build-keycloak.sh",
]


def fresh_clone(tmp: Path) -> Path:
    repo = tmp / "repo"
    for s in SCRIPTS:
        (repo / s).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / s, repo / s)
    return repo


def path_without(tmp: Path, drop: set[str], extra: dict[str, str] | None = None) -> str:
    """A PATH with every command of this machine's PATH except ``drop``, plus stand-ins."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d) or Path(d).resolve() == Path(sys.prefix).resolve() / "bin":
            continue  # not the test venv: setup.sh must find the machine's python3
        for name in os.listdir(d):
            target = bin_dir / name
            if name in drop or target.exists() or not os.access(os.path.join(d, name), os.X_OK):
                continue
            target.symlink_to(os.path.join(d, name))
    for name, script in (extra or {}).items():
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).write_text("#!/bin/sh\n" + script)
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


def run_setup(tmp: Path, path: str) -> subprocess.CompletedProcess[str]:
    repo = fresh_clone(tmp)
    env = {"PATH": path, "HOME": str(tmp / "home"), "INTERTWIN_CACHE": str(tmp / "cache")}
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(repo / "scripts/setup.sh")],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert time.monotonic() - t0 < 30, "the check must come before any build"
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert not (repo / ".venv").exists() and not (tmp / "cache").exists()
    assert "please install first" in proc.stderr
    return proc


def test_no_go(tmp_path: Path) -> None:
    proc = run_setup(tmp_path, path_without(tmp_path, {"go"}))
    assert "Go 1.24 or newer is needed" in proc.stderr
    assert "'go' is not on PATH" in proc.stderr and "https://go.dev/dl/" in proc.stderr


def test_old_go(tmp_path: Path) -> None:
    old = 'case "$1" in env) echo go1.19.8;; *) echo "go version go1.19.8 linux/amd64";; esac\n'
    proc = run_setup(tmp_path, path_without(tmp_path, {"go"}, {"go": old}))
    assert "Go 1.24 or newer is needed" in proc.stderr and "go1.19.8" in proc.stderr


@pytest.mark.parametrize("tool", ["node", "npm"])
def test_no_node_or_npm(tmp_path: Path, tool: str) -> None:
    proc = run_setup(tmp_path, path_without(tmp_path, {tool}))
    assert "Node.js 18 or newer with npm" in proc.stderr
    assert "apt-get install nodejs npm" in proc.stderr


def test_no_python_venv(tmp_path: Path) -> None:
    real = shutil.which(
        "python3",
        path=os.pathsep.join(
            d
            for d in os.environ["PATH"].split(os.pathsep)
            if Path(d).resolve() != Path(sys.prefix).resolve() / "bin"
        ),
    )
    assert real
    # Debian's python3 without python3-venv: ensurepip is missing
    no_venv = f'case "$*" in *ensurepip*) exit 1;; esac\nexec {real} "$@"\n'
    proc = run_setup(tmp_path, path_without(tmp_path, {"python3"}, {"python3": no_venv}))
    assert "apt-get install python3-venv" in proc.stderr


def test_old_node(tmp_path: Path) -> None:
    old = 'case "$1" in --version) echo v16.20.2;; -e) exit 1;; esac\n'
    proc = run_setup(tmp_path, path_without(tmp_path, {"node"}, {"node": old}))
    assert "Node.js 18 or newer (found v16.20.2)" in proc.stderr


def test_no_maven_for_keycloak(tmp_path: Path) -> None:
    proc = run_setup(tmp_path, path_without(tmp_path, {"mvn"}))
    assert "Maven (mvn) is needed once to fetch Keycloak" in proc.stderr
    assert "apt-get install maven" in proc.stderr
