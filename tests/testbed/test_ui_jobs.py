"""The Jobs panel in Debian's Chromium (ui-tests/tests/jobs.spec.ts) on the hub of helm-values'
hub.config (logging in through Keycloak) with the real intertwin service: alice's Vega session
lists itself (status bar and panel), opens its own log and sees a line the server prints, and
cancels her second server (at UKRI) after confirming; the notification says it ended. The
service's API then says cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..waiting import wait_for_async
from .browser import ui_test
from .hubapi import logged_in, spawn, stop
from .test_service import token_for

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]
SERVER, SECOND = "jobs", "jobs-second"


async def start_second(hub: dict[str, Any]) -> str:
    """Alice's second server (UKRI: no queue), and a token of alice's for the API."""
    await logged_in(hub, "alice")
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        events = await spawn(s, hub["api_url"], "alice", SECOND, {"profile": "ukri"})
        assert events[-1].get("ready"), events
        return await token_for(s, hub["api_url"], "alice")


async def second_job(hub: dict[str, Any], token: str) -> dict[str, Any]:
    base = f"{hub['url']}/services/intertwin/api"
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as u:

        async def second() -> dict[str, Any] | None:
            async with u.get(f"{base}/jobs", params={"kind": "notebook"}) as resp:
                assert resp.status == 200, await resp.text()
                jobs = (await resp.json())["jobs"]
            return next((j for j in jobs if j["server_name"] == SECOND), None)

        return await wait_for_async(second, "the second server's job", 30)


async def stop_both(hub: dict[str, Any]) -> None:
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        for name in (SERVER, SECOND):
            await stop(s, hub["api_url"], "alice", name)


def test_jobs_panel_in_chromium(checkin_hub: dict[str, Any], tmp_path: Path) -> None:
    hub = checkin_hub
    token = asyncio.run(start_second(hub))
    # INTERTWIN_SCREENSHOTS=docs refreshes docs/jobs.png
    env = {"JOBS_UI": "1", "JOBS_SERVER": SERVER, "JOBS_SECOND": SECOND}
    try:
        ui_test("tests/jobs.spec.ts", hub, tmp_path, env, timeout=800)

        # the service says what the panel showed: the second server was cancelled
        job = asyncio.run(second_job(hub, token))
        assert (job["state"], job["site"]) == ("cancelled", "ukri"), job
    finally:
        asyncio.run(stop_both(hub))
