"""Browser tests (Playwright in Debian's Chromium, ui-tests/) against the testbed hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .browser import ui_test

pytestmark = pytest.mark.testbed


def test_spawn_form_and_vega_progress_in_chromium(testbed: dict[str, Any], tmp_path: Path) -> None:
    # ui-tests/tests/spawn.spec.ts; INTERTWIN_SCREENSHOTS=docs refreshes the README's pictures
    ui_test("tests/spawn.spec.ts", testbed["hub"], tmp_path)
