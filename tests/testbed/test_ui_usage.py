"""The Usage panel in Debian's Chromium (ui-tests/tests/usage.spec.ts) on the hub of helm-values'
hub.config (logging in through Keycloak) with the real intertwin service: after alice's Vega
session (with A100s) ran and was stopped, her Usage panel in another session shows Vega with
A100 GPU hours, the PSNC budget bar of her VO, the chart drawn by JupyterLab's Vega-Lite
renderer, the most expensive jobs opening the Jobs panel, and the CSV link answering her jobs'
rows (that Vega job's among them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..waiting import wait_for_async
from .browser import ui_test
from .hubapi import logged_in, spawn, stop
from .test_service import client, token_for

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]
VEGA, LAB = "usage-vega", "usage"


async def vega_ran_and_stopped(hub: dict[str, Any]) -> str:
    """alice's Vega session, running, then stopped; its job id once the service says it ended."""
    await logged_in(hub, "alice")  # her VO, from her entitlement, admits her to Vega
    admin = {"Authorization": f"token {hub['service_token']}"}
    base = f"{hub['url']}/services/intertwin/api"
    async with aiohttp.ClientSession(headers=admin) as s:
        events = await spawn(s, hub["api_url"], "alice", VEGA, {"profile": "vega"})
        assert events[-1].get("ready"), events
        alice = client(base, await token_for(s, hub["api_url"], "alice"))

        async def running() -> dict[str, Any] | None:
            _, page = await alice("GET", "jobs", site="vega", state="running")
            return next((j for j in page["jobs"] if j["server_name"] == VEGA), None)

        job = await wait_for_async(running, "alice's Vega session running", 300)
        assert job is not None
        assert job["resources"]["gpus"] >= 1
        job_id = str(job["id"])

        async def counted() -> bool:
            # running long enough for its A100 hours to read 0.01 in the panel (two decimals)
            _, top = await alice("GET", "usage/jobs", limit=1000)
            mine = next((j for j in top["jobs"] if j["id"] == job_id), None)
            return mine is not None and mine["gpu_hours"].get("A100", 0) >= 0.006

        await wait_for_async(counted, "alice's Vega session's A100 hours", 120, interval=2)
        await stop(s, hub["api_url"], "alice", VEGA)

        async def ended() -> dict[str, Any] | None:
            _, one = await alice("GET", f"jobs/{job_id}")
            return one if one["finished"] else None

        await wait_for_async(ended, "alice's Vega session ended", 120)
        return job_id


async def stop_lab(hub: dict[str, Any]) -> None:
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        async with s.delete(
            f"{hub['api_url']}/users/alice/servers/{LAB}", json={"remove": True}
        ) as r:
            assert r.status in (202, 204, 404), await r.text()


def test_usage_panel_in_chromium(checkin_hub: dict[str, Any], tmp_path: Path) -> None:
    hub = checkin_hub
    job_id = asyncio.run(vega_ran_and_stopped(hub))
    # INTERTWIN_SCREENSHOTS=docs refreshes docs/usage.png
    env = {"USAGE_UI": "1", "USAGE_SERVER": LAB, "USAGE_JOB": job_id}
    try:
        ui_test("tests/usage.spec.ts", hub, tmp_path, env, timeout=800)
    finally:
        asyncio.run(stop_lab(hub))
