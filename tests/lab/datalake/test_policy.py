"""Rule extend/delete under Rucio's stock ``generic`` permission policy (only root and admin
accounts may): a second real Rucio of the session with that policy. The API says what the
site's Rucio does not allow (403 with a sentence) and tells the panel, which hides the
buttons; under the interTwin policy (the session's Rucio) owners may do both."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from intertwin_lab.datalake import DataLake, DataLakeService
from intertwin_lab.datalake.handlers import SETTINGS_KEY

from testbed.procs import Supervisor
from testbed.rucio import start_rucio

from .conftest import Api, datalake_config

pytestmark = pytest.mark.timeout(300)

DID = "intertwin:climate.era5.2021"


@pytest.fixture(scope="module")
def generic_rucio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    run_dir: Path = tmp_path_factory.mktemp("rucio-generic")
    sup = Supervisor(run_dir)
    try:
        yield start_rucio(
            sup,
            run_dir,
            pump_interval=None,
            policy="generic",
            progress=lambda m: print(f"[rucio generic] {m}"),
        )
    finally:
        sup.stop_all()


async def test_the_stock_policy_refuses_owners_and_the_api_says_so(
    api: Api, jp_serverapp: Any, generic_rucio: dict[str, Any]
) -> None:
    assert generic_rucio["policy"] == "generic"
    service = DataLakeService(DataLake(**datalake_config(generic_rucio, "alice")))
    jp_serverapp.web_app.settings[SETTINGS_KEY] = service

    code, body = await api("GET", "rules")
    # alice's only rule pins her own data without a lifetime: nothing to learn from yet, so
    # the actions are offered
    assert code == 200 and [r["expires_at"] for r in body["rules"]] == [None]
    assert body["permissions"] == {"extend": None, "delete": None, "reason": None}

    code, body = await api("POST", "rules", body={"did": DID, "lifetime_days": 2})
    assert code == 201, body  # creating a rule for oneself is allowed
    rule = body["rule"]

    code, body = await api("GET", "rules")
    assert rule["id"] in [r["id"] for r in body["rules"]]
    perms = body["permissions"]
    assert perms["extend"] is False and perms["delete"] is False, perms
    assert "does not let your account extend or delete replication rules" in perms["reason"]
    assert generic_rucio["url"] in perms["reason"]

    code, body = await api("PATCH", f"rules/{rule['id']}", body={"lifetime_days": 5})
    assert code == 403 and body["error"] == "forbidden" and body["action"] == "extend", body
    assert (
        "does not let your account change the lifetime of replication rules" in body["message"]
        and "DataLake operators" in body["message"]
    )
    code, body = await api("DELETE", f"rules/{rule['id']}")
    assert code == 403 and body["action"] == "delete", body
    assert "does not let your account delete replication rules" in body["message"]
    assert rule["expires_at"] in body["message"]  # when it ends by itself
    code, body = await api("GET", f"rules/{rule['id']}")
    assert code == 200 and body["rule"]["expires_at"] == rule["expires_at"]  # untouched


async def test_an_admin_account_may_under_the_stock_policy(
    api: Api, jp_serverapp: Any, generic_rucio: dict[str, Any]
) -> None:
    from testbed.rucio.client import client

    root = client(generic_rucio, "root")
    await asyncio.to_thread(root.add_account_attribute, "bob", "admin", "true")
    try:
        service = DataLakeService(DataLake(**datalake_config(generic_rucio, "bob")))
        jp_serverapp.web_app.settings[SETTINGS_KEY] = service
        _, body = await api("GET", "rules")
        assert body["permissions"] == {"extend": True, "delete": True, "reason": None}
    finally:
        await asyncio.to_thread(root.delete_account_attribute, "bob", "admin")


async def test_owners_may_under_the_intertwin_policy(
    api: Api, rucio: dict[str, Any], use_datalake: Any
) -> None:
    from testbed.rucio.client import add_dataset

    use_datalake("alice")
    # a dataset of its own: Rucio keeps a deleted rule for an hour, and the session's Rucio is
    # shared with the UI tests, which need the seeded datasets not to be at Vega
    ds = f"policy-test.{secrets.token_hex(4)}"
    await asyncio.to_thread(add_dataset, rucio, "intertwin", ds, {f"{ds}.0.dat": b"x" * 16})
    code, body = await api("POST", "rules", body={"did": f"intertwin:{ds}", "lifetime_days": 3})
    assert code == 201, body
    rule = body["rule"]
    try:
        code, body = await api("GET", "rules")
        # learned by re-setting the rule's remaining lifetime: nothing visible changes
        assert body["permissions"] == {"extend": True, "delete": None, "reason": None}
        mine = next(r for r in body["rules"] if r["id"] == rule["id"])
        assert abs(_seconds(mine["expires_at"]) - _seconds(rule["expires_at"])) <= 5
    finally:
        code, _ = await api("DELETE", f"rules/{rule['id']}")
    assert code == 204
    code, body = await api("GET", "rules")
    assert body["permissions"]["delete"] is True


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").timestamp()
