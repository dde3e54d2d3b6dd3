"""Browser tests (Playwright in Debian's Chromium, ui-tests/) against the hub of helm-values'
hub.config on the testbed, logging in through Keycloak's own page as on the real hub."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .browser import ui_test
from .hubapi import stop

pytestmark = pytest.mark.testbed


def test_spawn_form_and_vega_progress_in_chromium(
    checkin_hub: dict[str, Any], tmp_path: Path
) -> None:
    # ui-tests/tests/spawn.spec.ts; INTERTWIN_SCREENSHOTS=docs refreshes the README's pictures
    try:
        ui_test("tests/spawn.spec.ts", checkin_hub, tmp_path)
    finally:
        asyncio.run(stop_ui(checkin_hub))


async def stop_ui(hub: dict[str, Any]) -> None:
    """alice's server of the spec ends with the test (its two GPUs at Vega are the next test's)."""
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        async with s.get(f"{hub['api_url']}/users/alice") as r:
            servers = (await r.json())["servers"] if r.status == 200 else {}
        if "ui" in servers:
            await stop(s, hub["api_url"], "alice", "ui")
