"""A VO's budget, end to end: a hub whose catalogue gives a VO a tiny CPU-hour budget at KBFI
starts a session, the intertwin service counts its allocation, and once the budget is used up
the next start at KBFI is refused with the sentence (elsewhere the user still starts). From
90 % used, a batch cell (``%%offload``) is still submitted, and its cell says so once.

Its own hub (and service) on the session testbed's control plane, with a catalogue copy; the
VO exists only in this test, so no other test's pods count against it."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import aiohttp
import pytest
import requests
import yaml

from intertwin_hub.offload.runner import pack_inputs
from testbed.hub import Hub, start_hub
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor

from ..waiting import wait_for, wait_for_async
from .hubapi import spawn, start, stop
from .test_offload import Api, kernel_for, run_cell
from .test_offload import token_for as token_for_sync
from .test_service import client, token_for

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

VO = "budget-test.example.org"
# 18 CPU-core seconds: a 2-CPU session uses it up in 9 s
CPU_HOURS = 0.005
WARN_VO = "budget-warn.example.org"
# 360 CPU-core seconds: a 2-CPU batch cell (KBFI's smallest choice) reaches 90 % after 162 s
# and uses it all at 180 s, so there are 18 s to submit in while the budget warns
WARN_CPU_HOURS = 0.1


@pytest.fixture(scope="module")
def budget_hub(testbed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    run = tmp_path_factory.mktemp("budgets")
    data = yaml.safe_load(resources.files("intertwin_hub").joinpath("sites.yaml").read_text())
    data = copy.deepcopy(data)
    kbfi = next(s for s in data["sites"] if s["slug"] == "kbfi")
    kbfi["budgets"] = [
        {"vo": VO, "period": "month", "cpu_hours": CPU_HOURS},
        {"vo": WARN_VO, "period": "month", "cpu_hours": WARN_CPU_HOURS},
    ]
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


@pytest.mark.asyncio
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


def stderr_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == "stderr")


def test_from_90_percent_a_batch_cell_is_submitted_and_its_cell_warns_once(
    budget_hub: Hub,
) -> None:
    hub = budget_hub
    admin = {"Authorization": f"token {hub.service_token}"}
    for path, body, ok in (
        ("users/dave", None, (201, 409)),
        (f"groups/{WARN_VO}", None, (201, 409)),
        (f"groups/{WARN_VO}/users", {"users": ["dave"]}, (200,)),
    ):
        r = requests.post(f"{hub.api_url}/{path}", json=body, headers=admin, timeout=30)
        assert r.status_code in ok, r.text
    hub_info = {"url": hub.url, "api_url": hub.api_url, "service_token": hub.service_token}
    token = token_for_sync(hub_info, "dave")
    dave = Api(hub_info, token)  # every answer checked against openapi.yaml

    def budget() -> dict[str, Any]:
        st, body = dave("GET", "budgets", params={"site": "kbfi"})
        assert st == 200, body
        [b] = body["budgets"]
        assert b["vo"] == WARN_VO, b
        return dict(b)

    with kernel_for(hub_info, token) as kc:
        assert budget()["state"] == "ok"
        # the cell that spends the budget; below 90 % its cell says nothing of it
        reply, outputs = run_cell(
            kc,
            "%%offload --site kbfi --no-wait\nimport time\ntime.sleep(600)\n",
        )
        assert reply["status"] == "ok", (reply, outputs)
        assert stderr_of(outputs) == "", outputs
        run_cell(kc, "spender = _")

        def warning() -> dict[str, Any] | None:
            b = budget()
            assert b["state"] != "exhausted", f"the 90 % window was missed: {b}"
            return b if b["state"] == "warning" else None

        warned = wait_for(warning, "the KBFI budget at 90 %", 600, 0.5)
        # the share in whole percents, rounded down: a budget not used up reads 90-99 %
        said = re.compile(
            rf"The {re.escape(WARN_VO)} VO has used 9\d% of its {WARN_CPU_HOURS:g} "
            r"CPU-core hours at KBFI for \w+ \d{4}\.$"
        )
        assert said.match(warned["sentence"]), warned

        # POST /jobs still creates the job, and its answer carries the sentence
        inputs = base64.b64encode(pack_inputs("pass", {}, [])).decode()
        st, job = dave("POST", "jobs", json={"site": "kbfi", "inputs": inputs})
        assert st == 201, job
        assert said.match(job["warning"] or ""), job

        # %%offload prints it in the cell, on stderr, once, and the cell runs
        reply, outputs = run_cell(kc, "%%offload --site kbfi\nprint('ran anyway')\n")
        assert reply["status"] == "ok", (reply, outputs)
        [line] = [x for x in stderr_of(outputs).splitlines() if "VO has used" in x]
        assert said.match(line), outputs
        out = "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == "stdout")
        assert "ran anyway" in out, outputs
        reply, _ = run_cell(kc, "spender.cancel()")
        assert reply["status"] == "ok", reply
