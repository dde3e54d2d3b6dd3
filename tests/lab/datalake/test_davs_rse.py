"""Local paths at a scratch RSE that exposes only WebDAV (the testbed's PSNC-DCACHE, as many
dCache scratch areas are): its PFNs name a dCache namespace, not the folder behind it, and the
site catalogue's rule maps them onto the mount."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest

from intertwin_hub.sites import load_catalogue
from testbed.rucio import DAVS_ONLY, conveyor_step
from testbed.rucio.client import add_dataset, client

from .conftest import Api, did_path

pytestmark = pytest.mark.timeout(300)

RSE = "PSNC-DCACHE"


def test_the_davs_rse_has_no_file_protocol(rucio: dict[str, Any]) -> None:
    protocols = client(rucio, "alice").get_protocols(RSE)
    assert {p["scheme"] for p in protocols} == {"davs"}
    assert rucio["rses"][RSE]["schemes"] == ["davs"]


@pytest.mark.parametrize("rule", ["catalogue", "protocol-prefix"])
async def test_a_replica_at_a_davs_only_rse_has_a_local_path(
    api: Api, rucio: dict[str, Any], use_datalake: Any, rule: str
) -> None:
    psnc = load_catalogue().get("psnc")
    assert psnc is not None and psnc.scratch.rse == RSE
    # the mount is the RSE's folder here; the PFN rule is the shipped catalogue's (or none:
    # then the davs protocol's prefix is cut)
    begins = psnc.scratch.path_begins_at if rule == "catalogue" else None
    use_datalake(rse=RSE, path_begins_at=begins, pfn_prefix=psnc.scratch.pfn_prefix)
    ds = f"davs-test.{secrets.token_hex(4)}"
    files = {f"{ds}.{i}.dat": secrets.token_bytes(64 + i) for i in range(3)}
    await asyncio.to_thread(add_dataset, rucio, "intertwin", ds, files)

    code, body = await api("POST", "rules", body={"did": f"intertwin:{ds}", "lifetime_days": 1})
    assert code == 201, body
    rule_id = body["rule"]["id"]
    try:
        for _ in range(5):
            await asyncio.to_thread(conveyor_step, rucio)
            code, body = await api("GET", f"rules/{rule_id}")
            if body["rule"]["state"] != "REPLICATING":
                break
        assert body["rule"]["state"] == "OK", body

        code, page = await api("GET", did_path(f"intertwin:{ds}", "paths"))
        assert code == 200 and page["total"] == 3
        mount = rucio["rses"][RSE]["path"]
        door = DAVS_ONLY[RSE]
        for item in page["items"]:
            assert item["state"] == "AVAILABLE", item
            assert item["pfn"].startswith(
                f"davs://{door['hostname']}:{door['port']}{door['prefix']}"
            ), item
            assert item["path"].startswith(mount), item
            data = await asyncio.to_thread(Path(item["path"]).read_bytes)
            assert data == files[item["name"]]
    finally:
        await api("DELETE", f"rules/{rule_id}")
