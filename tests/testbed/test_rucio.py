"""The testbed's Rucio is a real Rucio: real server, real accounts, rules that finish with real
bytes at the destination RSE. Only the transfer tool is a stand-in (the conveyor sidecar)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from rucio.common.exception import AccessDenied, InsufficientAccountLimit

from testbed.rucio import (
    conveyor_step,
    rucio_server_running,
    set_pump_interval,
    start_rucio_server,
    stop_rucio_server,
)
from testbed.rucio.client import add_dataset, client, expired_token, rse_path, token, userpass

from .rucio_rules import replicate_to_vega

pytestmark = pytest.mark.timeout(300)


def test_ping(rucio: dict[str, Any]) -> None:
    with urllib.request.urlopen(f"{rucio['url']}/ping", timeout=10) as r:
        assert b'"41.5.1"' in r.read()


def test_user_logs_in_and_lists_scopes(rucio: dict[str, Any]) -> None:
    alice = client(rucio, "alice")
    assert alice.whoami()["account"] == "alice"
    scopes = set(alice.list_scopes())
    assert {"intertwin", "user.alice", "user.bob"} <= scopes


def test_wrong_password_is_refused(rucio: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as e:
        userpass(rucio["url"], "alice", "alice", "nope", timeout=10)
    assert e.value.code == 401


def test_expired_token_is_refused(rucio: dict[str, Any]) -> None:
    def whoami(tok: str) -> int:
        req = urllib.request.Request(
            f"{rucio['url']}/accounts/whoami", headers={"X-Rucio-Auth-Token": tok}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            assert b"CannotAuthenticate" in e.read()
            return e.code

    assert whoami(token(rucio, "bob")) == 200
    assert whoami(expired_token(rucio, "bob")) == 401


def test_big_dataset_has_100k_files(rucio: dict[str, Any]) -> None:
    scope, name = rucio["big_dataset"].split(":")
    bob = client(rucio, "bob")
    assert bob.get_did(scope, name)["length"] == 100_000
    t = time.monotonic()
    assert sum(1 for _ in bob.list_files(scope, name)) == 100_000
    print(f"listing 100k files: {time.monotonic() - t:.1f} s")
    # the first files have bytes at their origin, where Rucio says they are
    fscope, fname = rucio["datasets"][rucio["big_dataset"]]["first_file"].split(":")
    [rep] = bob.list_replicas([{"scope": fscope, "name": fname}], schemes=["file"])
    assert rep["states"] == {"DESY-DCACHE": "AVAILABLE"}
    assert Path(urlparse(rep["rses"]["DESY-DCACHE"][0]).path).stat().st_size == rep["bytes"]


def test_metadata_filters(rucio: dict[str, Any]) -> None:
    alice = client(rucio, "alice")
    found = set(alice.list_dids("intertwin", {"datatype": "climate"}, did_type="dataset"))
    assert found == {"climate.era5.2020", "climate.era5.2021"}
    meta = alice.get_metadata("intertwin", "physics.virgo.o3")
    assert (meta["project"], meta["run_number"]) == ("virgo", 3)


def test_rule_replicates_real_bytes(rucio: dict[str, Any]) -> None:
    alice, rule_id = replicate_to_vega(rucio, "rule-test", client_location={"site": "VEGA"})

    # isolation: bob can neither delete nor extend alice's rule; alice can do both
    bob = client(rucio, "bob")
    with pytest.raises(AccessDenied):
        bob.delete_replication_rule(rule_id)
    with pytest.raises(AccessDenied):
        bob.update_replication_rule(rule_id, {"lifetime": 7200})
    assert not [r for r in bob.list_replication_rules({"account": "bob"}) if r["id"] == rule_id]
    alice.update_replication_rule(rule_id, {"lifetime": 7200})
    alice.delete_replication_rule(rule_id)


def test_big_dataset_file_gets_its_bytes_on_transfer(rucio: dict[str, Any]) -> None:
    # most of the 100k files have no bytes at the origin: the conveyor writes the seed's
    # deterministic content, which matches the checksum Rucio has
    did = {"scope": "intertwin", "name": f"big.100k.{50_000 + secrets.randbelow(40_000):06d}.dat"}
    alice = client(rucio, "alice")
    [rule_id] = alice.add_replication_rule([did], 1, "VEGA-DCACHE", lifetime=600)
    assert conveyor_step(rucio)["copied"] == 1
    assert alice.get_replication_rule(rule_id)["state"] == "OK"
    data = rse_path(rucio, "VEGA-DCACHE", did["scope"], did["name"]).read_bytes()
    meta = alice.get_metadata(did["scope"], did["name"])
    assert (len(data), f"{zlib.adler32(data) & 0xFFFFFFFF:08x}") == (meta["bytes"], meta["adler32"])
    alice.delete_replication_rule(rule_id)


def test_automatic_pumping(rucio: dict[str, Any]) -> None:
    ds = f"auto-test.{secrets.token_hex(4)}"
    add_dataset(rucio, "intertwin", ds, {f"{ds}.dat": b"pumped"})
    bob = client(rucio, "bob")
    [rule_id] = bob.add_replication_rule(
        [{"scope": "intertwin", "name": ds}], 1, "PSNC-DCACHE", lifetime=600
    )
    set_pump_interval(rucio, 0.5)
    try:
        deadline = time.monotonic() + 30
        while bob.get_replication_rule(rule_id)["state"] != "OK":
            assert time.monotonic() < deadline, "the automatic pump did not finish the rule"
            time.sleep(0.3)
    finally:
        set_pump_interval(rucio, None)
    assert rse_path(rucio, "PSNC-DCACHE", "intertwin", f"{ds}.dat").read_bytes() == b"pumped"
    with urllib.request.urlopen(f"{rucio['conveyor_url']}/healthz", timeout=10) as r:
        assert json.loads(r.read())["interval"] is None


def test_quota_exceeded(rucio: dict[str, Any]) -> None:
    quota = rucio["quota"]
    big = next(
        name
        for name, d in rucio["datasets"].items()
        if d.get("bytes", 0) > quota["bytes"] and "length" not in d
    )
    scope, name = big.split(":")
    with pytest.raises(InsufficientAccountLimit):
        client(rucio, "alice").add_replication_rule(
            [{"scope": scope, "name": name}], 1, quota["rse"], lifetime=3600
        )


def test_server_stops_and_starts_again(rucio: dict[str, Any]) -> None:
    stop_rucio_server(rucio)
    try:
        assert not rucio_server_running(rucio)
    finally:
        start_rucio_server(rucio)
    assert client(rucio, "bob").whoami()["account"] == "bob"
