"""The service's usage routes on the testbed: a real Vega session's allocation times its running
time, to the second (the pod's own: its container's startedAt and finishedAt), visible to its
owner and admins only. Every answer is checked against intertwin_hub/service/openapi.yaml."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ..waiting import wait_for_async
from .hubapi import start
from .podtimes import watching
from .test_service import Api, cancel, client, token_for

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_sessions_usage_is_its_own_and_to_the_second(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub = testbed["hub"]
    base = f"{hub['url']}/services/intertwin/api"
    admin_headers = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin_headers) as s:
        alice = client(base, await token_for(s, hub["api_url"], "alice"))
        bob = client(base, await token_for(s, hub["api_url"], "bob"))
        oper = client(base, await token_for(s, hub["api_url"], "oper"))
        status, text = await start(s, hub["api_url"], "alice", "use-vega", {"profile": "vega"})
        assert status in (201, 202), text
        try:

            async def running(api: Api) -> dict[str, Any] | None:
                _, page = await api("GET", "jobs", site="vega", state="running")
                return next((j for j in page["jobs"] if j["server_name"] == "use-vega"), None)

            job = await wait_for_async(lambda: running(alice), "alice's Vega session", 300)
            ns = testbed["control_plane"]["namespace"]
            async with watching(kube, ns, job["pod"]) as pod:
                await asyncio.wait_for(pod.running.wait(), 60)
                await cancel(alice, job["id"])
                await asyncio.wait_for(pod.gone.wait(), 120)
            _, job = await alice("GET", f"jobs/{job['id']}")
        finally:
            async with s.delete(
                f"{hub['api_url']}/users/alice/servers/use-vega", json={"remove": True}
            ) as r:
                assert r.status in (202, 204, 404), await r.text()

    assert pod.started is not None and pod.finished is not None
    started, finished = pod.started, pod.finished
    # the container started before the service saw it running (the virtual kubelet polls)
    assert started <= _t(job["started"])
    wall = (finished - started).total_seconds()
    period = {
        "from": (started - timedelta(minutes=1)).isoformat(),
        "to": (finished + timedelta(minutes=1)).isoformat(),
    }
    cpu, gpus = job["resources"]["cpu"], job["resources"]["gpus"]
    assert gpus >= 1

    st, mine = await alice("GET", "usage", **period)
    assert st == 200 and mine["user"] == "alice"
    vega = next(x for x in mine["sites"] if x["site"] == "vega")
    assert vega["site_name"] == "Vega" and vega["jobs"] >= 1
    # other tests may have run alice's jobs at Vega in the same minutes: the top-jobs list
    # has this one's own figures
    st, top = await alice("GET", "usage/jobs", limit=1000, **period)
    mine_job = next(j for j in top["jobs"] if j["id"] == job["id"])
    assert abs(mine_job["wall_seconds"] - wall) <= 1
    assert abs(mine_job["cpu_core_hours"] - cpu * wall / 3600) < 0.001
    assert list(mine_job["gpu_hours"]) == ["A100"]
    assert abs(mine_job["gpu_hours"]["A100"] - gpus * wall / 3600) < 0.001
    assert vega["wall_seconds"] >= mine_job["wall_seconds"] - 1

    st, series = await alice("GET", "usage/series", unit="day", **period)
    assert st == 200 and any(p["site"] == "vega" for p in series["points"])
    st, text = await alice("GET", "usage.csv", **period)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert job["id"] in {r["id"] for r in rows} and {r["user"] for r in rows} == {"alice"}

    # nothing of alice's reaches bob, even when he names her
    for params in ({}, {"user": "alice"}):
        st, theirs = await bob("GET", "usage/jobs", limit=1000, **period, **params)
        assert theirs["user"] == "bob" and job["id"] not in {j["id"] for j in theirs["jobs"]}
        st, text = await bob("GET", "usage.csv", **period, **params)
        assert job["id"] not in text
    st, body = await bob("GET", "usage/users", **period)
    assert (st, body["error"]) == (403, "forbidden")

    # an admin sees hers on asking, and everyone's
    st, hers = await oper("GET", "usage/jobs", user="alice", limit=1000, **period)
    assert job["id"] in {j["id"] for j in hers["jobs"]}
    st, everyone = await oper("GET", "usage/users", **period)
    assert "alice" in {u["user"] for u in everyone["users"]}
    assert "dev.intertwin.eu" in {v["vo"] for v in everyone["vos"]}

    # budgets: alice's VO has one at PSNC; bob is in no VO; the admin sees every VO's
    st, body = await alice("GET", "budgets")
    psnc = next(b for b in body["budgets"] if b["site"] == "psnc")
    assert (psnc["vo"], psnc["period"], psnc["gpu_hours"]["budget"]) == (
        "dev.intertwin.eu",
        "month",
        500,
    )
    assert psnc["state"] in ("ok", "warning", "exhausted") and "PSNC" in psnc["sentence"]
    st, body = await bob("GET", "budgets")
    assert (st, body["budgets"]) == (200, [])
    st, body = await oper("GET", "budgets", site="psnc")
    assert [b["vo"] for b in body["budgets"]] == ["dev.intertwin.eu"]
    st, body = await alice("GET", "budgets", site="mars")
    assert (st, body["param"]) == (400, "site")

    # bad periods are sentences
    st, body = await alice("GET", "usage", **{"from": period["to"], "to": period["from"]})
    assert (st, body["param"]) == (400, "to")
    st, body = await alice("GET", "usage/series", unit="year")
    assert (st, body["param"]) == (400, "unit")
