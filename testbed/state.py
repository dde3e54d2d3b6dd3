"""The testbed's run folder and the state file other processes (tests, demo) read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def default_run_dir() -> Path:
    return Path(os.environ.get("INTERTWIN_RUN", REPO / ".run" / "testbed"))


def state_path(run_dir: Path) -> Path:
    return run_dir / "testbed.json"


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(run_dir).read_text())
    except (OSError, ValueError):
        return None


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    p = state_path(run_dir)
    p.write_text(json.dumps(state, indent=1))
    p.chmod(0o600)
