"""The one runner of ui-tests/' Playwright specs in Debian's Chromium: the UI tests on the testbed
(tests/testbed/test_ui*.py, test_login.py) and the browser benchmarks (bench/_browser.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "ui-tests"
PLAYWRIGHT = UI / "node_modules" / ".bin" / "playwright"


class BrowserMissing(RuntimeError):
    """Chromium or ui-tests' Playwright is not installed (scripts/setup.sh installs both)."""


def chromium() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


def run_spec(
    spec: str, env: Mapping[str, str], output_dir: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``playwright test <spec>`` in ui-tests/ with ``env`` over this process's environment;
    Playwright's results (screenshots and traces of failures) go to ``output_dir``."""
    browser = chromium()
    if not Path(browser).exists():
        raise BrowserMissing("Debian's chromium is missing: run scripts/setup.sh")
    if not PLAYWRIGHT.exists():
        raise BrowserMissing("ui-tests/node_modules is missing: run scripts/setup.sh")
    full_env = {
        **os.environ,
        "CHROMIUM": browser,
        "UI_OUTPUT_DIR": str(output_dir),
        # Playwright's CI mode: no reuse of a running server, no interactive report
        "CI": "1",
        **env,
    }
    return subprocess.run(
        [str(PLAYWRIGHT), "test", spec],
        cwd=UI,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hub_env(hub: Mapping[str, Any]) -> dict[str, str]:
    """How a spec reaches and logs in to a testbed hub (``hub``: its state, as
    ``testbed["hub"]`` or the ``checkin_hub`` fixture give it): ui-tests/tests/hub.ts reads
    these. ``login`` is ``checkin`` when the hub logs in through the testbed's Keycloak."""
    from testbed.hub import DEMO_PASSWORD
    from testbed.keycloak import USERS_PASSWORD

    login = str(hub.get("login", "form"))
    return {
        "HUB_URL": str(hub["url"]),
        "HUB_LOGIN": login,
        "HUB_PASSWORD": USERS_PASSWORD if login == "checkin" else DEMO_PASSWORD,
    }


def failure_contexts(results: Path, limit: int = 8000) -> str:
    """The page as Playwright saw it when each failing test stopped (its ``error-context.md``:
    an accessibility snapshot), so a failure in CI, whose files are gone, can be read from the
    log alone."""
    parts = []
    for f in sorted(results.glob("**/error-context.md")):
        text = f.read_text(errors="replace")
        cut = f"\n[... {len(text) - limit} more characters]" if len(text) > limit else ""
        parts.append(f"\n--- {f.parent.name}/{f.name}\n{text[:limit]}{cut}")
    return "".join(parts)


def ui_test(
    spec: str,
    hub: Mapping[str, Any],
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    passed: int = 1,
    timeout: float = 600,
) -> str:
    """Run ``spec`` against ``hub`` and assert that exactly ``passed`` tests passed (a spec
    skipped for a missing variable passes none); returns Playwright's output, also printed
    (the browser's warnings, shown by ``pytest -rP``). ``INTERTWIN_SCREENSHOTS=docs`` makes
    the specs refresh the README's pictures."""
    full_env = {
        **hub_env(hub),
        "SCREENSHOT_DIR": os.environ.get("INTERTWIN_SCREENSHOTS", str(tmp_path)),
        **(env or {}),
    }
    r = run_spec(spec, full_env, tmp_path / "results", timeout)
    print(r.stdout)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}{failure_contexts(tmp_path / 'results')}"
    counts = re.search(r"^\s*(\d+) passed\b", r.stdout, re.M)
    assert counts and int(counts.group(1)) == passed, r.stdout
    return r.stdout
