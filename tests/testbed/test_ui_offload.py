"""``%%offload`` in Debian's Chromium (ui-tests/tests/offload.spec.ts) on the hub of helm-values'
hub.config (logging in through Keycloak) with the real intertwin service: alice's notebook at
UKRI offloads a cell to Vega, its widget goes queued → running → succeeded, the next cell prints
the returned variable, the Jobs panel lists the batch cell and opens the notebook at it; a
second cell is cancelled with its widget's Cancel button. The service's API then tells both
jobs as the page showed them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..waiting import wait_for_async
from .browser import ui_test
from .hubapi import logged_in, stop
from .test_service import token_for

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]
SERVER = "offload"


async def alice_token(hub: dict[str, Any]) -> str:
    """alice logged in once (her VO, from her entitlement, admits her to Vega), and a token of
    hers for the service's API."""
    await logged_in(hub, "alice")
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        return await token_for(s, hub["api_url"], "alice")


async def batch_cells(hub: dict[str, Any], token: str) -> list[dict[str, Any]]:
    base = f"{hub['url']}/services/intertwin/api"
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as u:

        async def listed() -> tuple[list[dict[str, Any]]] | None:
            params = {"kind": "batch-cell", "limit": "1000"}
            async with u.get(f"{base}/jobs", params=params) as r:
                if r.status == 404:
                    return None  # the proxy routes the service once the hub has seen it answer
                assert r.status == 200, await r.text()
                return (list((await r.json())["jobs"]),)  # truthy, also when empty

        (jobs,) = await wait_for_async(listed, "the intertwin service behind the proxy", 120)
        return jobs


async def stop_server(hub: dict[str, Any]) -> None:
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        await stop(s, hub["api_url"], "alice", SERVER)


def test_offload_cell_in_chromium(checkin_hub: dict[str, Any], tmp_path: Path) -> None:
    hub = checkin_hub
    token = asyncio.run(alice_token(hub))
    before = {j["id"] for j in asyncio.run(batch_cells(hub, token))}
    # INTERTWIN_SCREENSHOTS=docs refreshes docs/offload-widget.png
    env = {"OFFLOAD_UI": "1", "OFFLOAD_SERVER": SERVER}
    try:
        ui_test("tests/offload.spec.ts", hub, tmp_path, env, timeout=800)

        # the service tells the two batch cells as the page showed them
        new = [j for j in asyncio.run(batch_cells(hub, token)) if j["id"] not in before]
        states = sorted((j["site"], j["state"]) for j in new)
        assert states == [("vega", "cancelled"), ("vega", "succeeded")], new
        for job in new:
            # as the contents API names it (the Jobs panel opens it from there)
            assert job["notebook_path"].endswith(".ipynb"), job
            assert not job["notebook_path"].startswith("/"), job
            assert job["cell_id"], job
    finally:
        asyncio.run(stop_server(hub))
