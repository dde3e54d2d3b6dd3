"""Browser tests (Playwright in Debian's Chromium, ui-tests/) against the testbed hub."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testbed.hub import DEMO_PASSWORD

pytestmark = pytest.mark.testbed
UI = Path(__file__).parents[2] / "ui-tests"


def test_spawn_form_and_vega_progress_in_chromium(testbed: dict[str, Any], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian's chromium is missing: run scripts/setup.sh"
    assert (UI / "node_modules" / ".bin" / "playwright").exists(), (
        "ui-tests/node_modules is missing: run scripts/setup.sh"
    )
    env = {
        **os.environ,
        "HUB_URL": testbed["hub"]["url"],
        "HUB_PASSWORD": DEMO_PASSWORD,
        "CHROMIUM": chromium,
        "UI_OUTPUT_DIR": str(tmp_path / "results"),
        # set INTERTWIN_SCREENSHOTS=docs to refresh the README's pictures
        "SCREENSHOT_DIR": os.environ.get("INTERTWIN_SCREENSHOTS", str(tmp_path)),
        "CI": "1",
    }
    r = subprocess.run(
        [str(UI / "node_modules" / ".bin" / "playwright"), "test"],
        cwd=UI,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert "1 passed" in r.stdout, r.stdout
