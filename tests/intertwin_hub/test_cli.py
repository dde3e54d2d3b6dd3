"""The installed ``intertwin-hub`` console script ([project.scripts])."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from .test_sites import SHIPPED

CLI = str(Path(sys.executable).parent / "intertwin-hub")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def test_a_valid_catalogue_is_summarised() -> None:
    shipped = str(resources.files("intertwin_hub").joinpath("sites.yaml"))
    r = run("catalogue", "check", shipped)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{shipped}: 4 sites, valid"
    assert lines[1].startswith("  ukri: UKRI Cloud (cloud, 4 x T4)")
    assert lines[2].startswith(
        "  vega: Offload to Vega HPC - dev VO (offload via vega-vk, slurm, 240 x A100)"
    )
    assert "partitions gpu=gpu, cpu=cpu" in lines[2]
    assert "start timeout 1800 s; open to every user" in lines[4]


def test_a_broken_catalogue_names_the_key_and_fails(tmp_path: Path) -> None:
    data = copy.deepcopy(SHIPPED)
    data["sites"][3]["resources"][1]["memory"] = "512m"
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data))
    r = run("catalogue", "check", str(path))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith(
        f"error: {path}: sites[3].resources[1].memory: '512m' is not a memory size"
    ), r.stderr


def test_a_missing_file_and_a_wrong_command(tmp_path: Path) -> None:
    r = run("catalogue", "check", str(tmp_path / "nope.yaml"))
    assert r.returncode == 1
    assert "cannot read site catalogue" in r.stderr and "No such file" in r.stderr
    r = run("catalogue", "fix")
    assert r.returncode == 2 and "invalid choice: 'fix'" in r.stderr
