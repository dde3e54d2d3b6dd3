"""The DataLake through the hub: each spawned session talks to Rucio with its user's OWN
account (the token the hub got at sign-in travels in the server's Secret), makes data
available at the site the session runs at, and never sees another user's rules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from testbed.rucio import conveyor_step

from .hubapi import spawn, stop

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio]
# alice's own data: no other test rules it, so no rule of theirs (Rucio keeps deleted rules
# for an hour) can collide with this one
DATASET = "user.alice:alice.private"
TOO_BIG_FOR_KBFI = "intertwin:climate.era5.2020"


def api_session(hub: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})


async def test_sessions_use_their_users_rucio_account_at_their_site(
    testbed: dict[str, Any],
) -> None:
    hub, rucio = testbed["hub"], testbed["rucio"]
    async with api_session(hub) as s:
        alice, bob = await asyncio.gather(
            spawn(s, hub["api_url"], "alice", "data", {"profile": "vega", "gpus": "gpu-1"}),
            spawn(s, hub["api_url"], "bob", "data", {"profile": "kbfi"}),
        )
        assert alice[-1].get("ready") and bob[-1].get("ready"), (alice, bob)
        at_alice = f"{hub['url']}/user/alice/data/intertwin/datalake"
        at_bob = f"{hub['url']}/user/bob/data/intertwin/datalake"
        try:
            async with s.get(f"{at_alice}/config") as r:
                cfg = await r.json()
            assert (cfg["account"], cfg["rse"]) == ("alice", "VEGA-DCACHE"), cfg
            assert cfg["mount_path"] == rucio["rses"]["VEGA-DCACHE"]["path"], cfg
            async with s.get(f"{at_bob}/config") as r:
                assert (await r.json())["account"] == "bob"

            async with s.post(f"{at_alice}/rules", json={"did": DATASET, "lifetime_days": 1}) as r:
                assert r.status == 201, await r.text()
                rule = (await r.json())["rule"]
            assert rule["account"] == "alice" and rule["rse_expression"] == "VEGA-DCACHE"
            # bob's session can neither see nor delete alice's rule
            async with s.get(f"{at_bob}/rules/{rule['id']}") as r:
                assert r.status == 404, await r.text()
            async with s.delete(f"{at_bob}/rules/{rule['id']}") as r:
                assert r.status == 404, await r.text()
            async with s.get(f"{at_bob}/rules") as r:
                assert rule["id"] not in {x["id"] for x in (await r.json())["rules"]}
            # the same dataset does not fit bob's quota at KBFI: Rucio's refusal, explained
            async with s.post(f"{at_bob}/rules", json={"did": TOO_BIG_FOR_KBFI}) as r:
                body = await r.json()
                assert (r.status, body["error"]) == (507, "quota_exceeded"), body

            for _ in range(5):
                step = await asyncio.to_thread(conveyor_step, rucio)
                if not step["requests_after"]:
                    break
            async with s.get(f"{at_alice}/dids/{DATASET.replace(':', '/')}/paths") as r:
                page = await r.json()
            paths = [Path(f["path"]) for f in page["items"]]
            assert paths and all(p.is_file() for p in paths), page
            assert all(str(p).startswith(cfg["mount_path"]) for p in paths), page
            async with s.delete(f"{at_alice}/rules/{rule['id']}") as r:
                assert r.status == 204, await r.text()
        finally:
            await asyncio.gather(
                stop(s, hub["api_url"], "alice", "data"), stop(s, hub["api_url"], "bob", "data")
            )
