"""The testbed's Rucio on PostgreSQL (``start_rucio(database="postgresql")``, what
INTERTWIN_RUCIO_DB=postgresql picks): a real PostgreSQL server of its own, seeded fresh, behind
the same real Rucio server and conveyor as on SQLite, and gone when Rucio is stopped."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.procs import Supervisor, alive
from testbed.rucio import start_rucio, stop_rucio
from testbed.rucio.client import client, expired_token, userpass
from testbed.rucio.postgres import query

from .rucio_rules import replicate_to_vega

# fixture setup included: seeding the 100k-file dataset into PostgreSQL takes ~1 min
pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def pg_rucio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Rucio on PostgreSQL in a folder and Supervisor of its own (not the session's SQLite
    one), pumped by hand."""
    run_dir = tmp_path_factory.mktemp("rucio-pg")
    sup = Supervisor(run_dir)
    t = time.monotonic()
    try:
        state = start_rucio(
            sup,
            run_dir,
            pump_interval=None,
            database="postgresql",
            progress=lambda m: print(f"[rucio-pg] {m}"),
        )
        print(
            f"Rucio on PostgreSQL up in {time.monotonic() - t:.1f} s: {state['timings']}, "
            f"seed {state['seed_timings']}"
        )
        yield state
    finally:
        sup.stop_all()


def postgres_pids(data_dir: str) -> list[int]:
    """Every process running with this data dir on its command line (the postmaster; its
    backends and helpers are its children)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if data_dir in cmdline or ppid in out:
            out.append(int(proc.name))
    return out


def test_database_is_postgresql(pg_rucio: dict[str, Any]) -> None:
    db = pg_rucio["database"]
    assert db["kind"] == "postgresql"
    cfg = Path(pg_rucio["config"]).read_text()
    assert (
        f"default = postgresql+psycopg://rucio:{db['password']}@127.0.0.1:{db['port']}/rucio" in cfg
    )
    [[version]] = query(db, "SELECT version()")
    assert version.startswith("PostgreSQL ")
    # the seed went into it: 100k files of the big dataset, the small datasets' files and
    # the DIDs above them
    [[dids]] = query(db, "SELECT count(*) FROM dids")
    assert int(dids) > 100_000
    [[length]] = query(
        db, "SELECT length FROM dids WHERE scope = 'intertwin' AND name = 'big.100k'"
    )
    assert int(length) == 100_000
    assert not list(Path(pg_rucio["dir"]).glob("*.db"))  # no SQLite file anywhere
    # listening on 127.0.0.1 only, data and socket in the run folder, owned by postgres
    [[listen]] = query(db, "SHOW listen_addresses")
    assert listen == "127.0.0.1"
    assert Path(db["data_dir"]).is_relative_to(pg_rucio["dir"])
    assert Path(db["data_dir"]).owner() == "postgres"


def test_alice_logs_in_with_userpass(pg_rucio: dict[str, Any]) -> None:
    alice = client(pg_rucio, "alice")
    assert alice.whoami()["account"] == "alice"
    # Rucio's server holds pooled connections to this database, as its role
    [[conns]] = query(
        pg_rucio["database"],
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'rucio' AND pid <> pg_backend_pid()",
    )
    assert int(conns) >= 1
    # a wrong password and an expired token (expired in PostgreSQL) are refused
    with pytest.raises(urllib.error.HTTPError) as e:
        userpass(pg_rucio["url"], "alice", "alice", "nope", timeout=10)
    assert e.value.code == 401
    old = urllib.request.Request(
        f"{pg_rucio['url']}/accounts/whoami",
        headers={"X-Rucio-Auth-Token": expired_token(pg_rucio, "bob")},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(old, timeout=10)
    assert e.value.code == 401


def test_seeded_datasets_list(pg_rucio: dict[str, Any]) -> None:
    alice = client(pg_rucio, "alice")
    for scope in ("intertwin", "user.alice"):
        seeded = {d.split(":")[1] for d in pg_rucio["datasets"] if d.startswith(f"{scope}:")}
        listed = set(alice.list_dids(scope, {"name": "*"}, did_type="dataset"))
        assert seeded and seeded <= listed, (scope, seeded, listed)
    found = set(alice.list_dids("intertwin", {"datatype": "climate"}, did_type="dataset"))
    assert found == {"climate.era5.2020", "climate.era5.2021"}
    assert alice.get_did("intertwin", "big.100k")["length"] == 100_000


def test_custom_json_metadata(pg_rucio: dict[str, Any]) -> None:
    # what PostgreSQL adds over SQLite: Rucio's JSON metadata plugin (keys beyond the fixed
    # DID columns), stored in did_meta
    alice = client(pg_rucio, "alice")
    alice.set_metadata("user.alice", "alice.private", "instrument", "virgo-strain")
    assert alice.get_metadata("user.alice", "alice.private", plugin="JSON") == {
        "instrument": "virgo-strain"
    }
    assert set(
        alice.list_dids("user.alice", {"instrument": "virgo-strain"}, did_type="dataset")
    ) == {"alice.private"}
    [[rows]] = query(
        pg_rucio["database"],
        "SELECT count(*) FROM did_meta WHERE meta->>'instrument' = 'virgo-strain'",
    )
    assert int(rows) == 1


def test_rule_replicates_real_bytes(pg_rucio: dict[str, Any]) -> None:
    _, rule_id = replicate_to_vega(pg_rucio, "pg-rule", " on PostgreSQL")
    # and PostgreSQL has the lock rows Rucio's finisher set OK
    [[ok]] = query(
        pg_rucio["database"],
        f"SELECT count(*) FROM locks WHERE rule_id = '{rule_id}'::uuid AND state = 'O'",
    )
    assert int(ok) == 3


def test_stopping_leaves_no_postgres(pg_rucio: dict[str, Any]) -> None:
    # runs last in this module: the fixture's own teardown then has nothing left to stop
    data_dir = pg_rucio["database"]["data_dir"]
    before = postgres_pids(data_dir)
    assert before, "no postgres process found for the run's data dir"
    stop_rucio(pg_rucio)
    assert not [p for p in before if alive(p)]
    assert postgres_pids(data_dir) == []
    assert not (Path(data_dir) / "postmaster.pid").exists()  # a clean shutdown removes it
    assert not os.path.exists(Path(pg_rucio["run_dir"]) / "pids" / "rucio-postgres.pid")
