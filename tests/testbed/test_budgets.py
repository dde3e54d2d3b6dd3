"""A VO's budget, end to end: a hub whose catalogue gives a VO a tiny CPU-hour budget at KBFI
starts a session, the intertwin service counts its allocation, and once the budget is used up
the next start at KBFI is refused with the sentence (elsewhere the user still starts).

Its own hub (and service) on the session testbed's control plane, with a catalogue copy; the
VO exists only in this test, so no other test's pods count against it."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from importlib import resources
from typing import Any

import aiohttp
import pytest
import yaml

from testbed.hub import Hub, start_hub
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor

from ..waiting import wait_for_async
from .hubapi import spawn, start, stop
from .test_service import client, token_for

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]

VO = "budget-test.example.org"
# 18 CPU-core seconds: a 2-CPU session uses it up in 9 s
CPU_HOURS = 0.005


@pytest.fixture(scope="module")
def budget_hub(testbed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    run = tmp_path_factory.mktemp("budgets")
    data = yaml.safe_load(resources.files("intertwin_hub").joinpath("sites.yaml").read_text())
    data = copy.deepcopy(data)
    kbfi = next(s for s in data["sites"] if s["slug"] == "kbfi")
    kbfi["budgets"] = [{"vo": VO, "period": "month", "cpu_hours": CPU_HOURS}]
    catalogue = run / "sites.yaml"
    catalogue.write_text(yaml.safe_dump(data))
    # the hub's spawner and its intertwin service read the same catalogue
    extra = f"""
c.InterTwinSpawner.site_catalogue_path = {str(catalogue)!r}
for _s in c.JupyterHub.services:
    if _s["name"] == "intertwin":
        _s.setdefault("environment", {{}})["INTERTWIN_SITE_CATALOGUE"] = {str(catalogue)!r}
"""
    sup = Supervisor(run)
    try:
        yield start_hub(sup, control_plane_of(testbed), name="budgets", extra_config=extra)
    finally:
        sup.stop_all(("jupyterhub-budgets", "proxy-budgets"))


async def test_a_used_up_budget_refuses_the_next_start_with_a_sentence(budget_hub: Hub) -> None:
    hub = budget_hub
    api = hub.api_url
    async with aiohttp.ClientSession(headers={"Authorization": f"token {hub.service_token}"}) as s:
        async with s.post(f"{api}/users/carol") as r:
            assert r.status in (201, 409), await r.text()
        async with s.post(f"{api}/groups/{VO}") as r:
            assert r.status in (201, 409), await r.text()
        async with s.post(f"{api}/groups/{VO}/users", json={"users": ["carol"]}) as r:
            assert r.status == 200, await r.text()
        token = await token_for(s, api, "carol")
        carol = client(f"{hub.url}/services/intertwin/api", token)

        async def service_up() -> bool:
            # the hub starts its managed service in the background: the proxy routes to it
            # once it is there
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as c,
                c.get(f"{hub.url}/services/intertwin/api/budgets") as r,
            ):
                return r.status == 200

        await wait_for_async(service_up, "the budgets hub's intertwin service", 120)

        st, body = await carol("GET", "budgets")
        assert st == 200, body
        [budget] = body["budgets"]
        assert (budget["site"], budget["vo"], budget["state"]) == ("kbfi", VO, "ok")
        assert budget["cpu_hours"] == {"used": 0, "budget": CPU_HOURS}

        events = await spawn(s, api, "carol", "first", {"profile": "kbfi"})
        assert events[-1].get("ready"), events

        async def used_up() -> dict[str, Any] | None:
            _, body = await carol("GET", "budgets", site="kbfi")
            b = body["budgets"][0]
            return b if b["state"] == "exhausted" else None

        spent = await wait_for_async(used_up, "the KBFI budget used up", 300)
        await stop(s, api, "carol", "first")
        sentence = f"The {VO} VO has used its {CPU_HOURS:g} CPU-core hours at KBFI for "
        assert spent["sentence"].startswith(sentence) and spent["sentence"].endswith(
            "; ask your VO manager."
        )

        # the next start at KBFI is refused with that sentence, and creates nothing
        status, text = await start(s, api, "carol", "second", {"profile": "kbfi"})
        assert status == 403, text
        assert sentence in text and "ask your VO manager" in text
        async with s.get(f"{api}/users/carol") as r:
            servers = (await r.json())["servers"]
            assert not (servers.get("second") or {}).get("ready")
        # so is a batch cell (%%offload) at KBFI, before anything is created
        inputs = base64.b64encode(b"unused").decode()
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as c,
            c.post(
                f"{hub.url}/services/intertwin/api/jobs", json={"site": "kbfi", "inputs": inputs}
            ) as r,
        ):
            body = await r.json()
            assert (r.status, body["error"]) == (403, "budget_exhausted"), body
            assert body["message"].startswith(sentence)
        st, page = await carol("GET", "jobs", kind="batch-cell")
        assert (st, page["jobs"]) == (200, [])
        # a site without a budget for the VO still starts
        events = await spawn(s, api, "carol", "cloud", {"profile": "ukri"})
        assert events[-1].get("ready"), events
        await stop(s, api, "carol", "cloud")
