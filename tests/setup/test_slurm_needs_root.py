"""The testbed's real Slurm runs its daemons as root: without root, ``testbed up --slurm`` stops
before starting anything, with a sentence that says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def test_slurm_testbed_as_non_root_stops_at_once(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "this test drops to an unprivileged user, so it runs as root"
    run_dir = tmp_path / "run"
    # the project's Python may live where nobody can read (root's pyenv): import as root, then
    # become nobody for the call, as a user's own shell would be
    code = (
        "import os; from pathlib import Path; from testbed.lifecycle import up; "
        f"os.setegid({NOBODY}); os.seteuid({NOBODY}); "
        f"up(Path({str(run_dir)!r}), slurm=True)"
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 20, "refused after starting things"
    assert "runs slurmctld and slurmd as root, and this runs as nobody" in proc.stderr, proc.stderr
    assert "start the testbed without --slurm" in proc.stderr
    assert not run_dir.exists()
