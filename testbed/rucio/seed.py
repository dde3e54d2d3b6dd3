"""Fill the testbed's Rucio database: runs INSIDE the Rucio venv (not .venv), by path.

``seed.py build SPEC`` creates the schema, RSEs, accounts, scopes and data (with real bytes in
the origin RSE folders) under ``SPEC["base"]``, in the database of SPEC["config"] (SQLite or
PostgreSQL); the result does not depend on the run, so testbed/rucio/instance.py caches it
(SQLite: the file, PostgreSQL: a pg_dump). ``seed.py finalize SPEC`` adapts a copy to one run:
RSE prefixes point at the run folder and every account gets this run's password.

It talks to rucio.core directly (one process, one transaction per step, no HTTP, no permission
checks): registering the 100k-file dataset this way takes seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

# the data set, part of the cache key (the whole file is hashed)
USERS = ("alice", "bob")
PROJECT_SCOPE = "intertwin"
BIG_DATASET = "big.100k"
BIG_FILES = 100_000
BIG_FILE_BYTES = 16
# bytes on disk for the first files only: the hash layout spreads 100k files over ~50k folders,
# and linking those into every run costs seconds; the rest are registered (sizes, checksums)
# but have no bytes, which listing and paging never notice
BIG_FILES_WITH_BYTES = 100
# (container, dataset, origin RSE kind, number of files, metadata)
PROJECT_DATA: list[tuple[str, str, str, int, dict[str, Any]]] = [
    (
        "climate",
        "climate.era5.2020",
        "EODC",
        4,
        {
            "datatype": "climate",
            "project": "destine",
            "campaign": "era5",
            "run_number": 2020,
            "version": "v1",
        },
    ),
    (
        "climate",
        "climate.era5.2021",
        "EODC",
        4,
        {
            "datatype": "climate",
            "project": "destine",
            "campaign": "era5",
            "run_number": 2021,
            "version": "v1",
        },
    ),
    (
        "physics",
        "physics.virgo.o3",
        "DESY-DCACHE",
        5,
        {
            "datatype": "gw-strain",
            "project": "virgo",
            "campaign": "o3",
            "run_number": 3,
            "version": "v2",
        },
    ),
    (
        "physics",
        "physics.lattice.qcd",
        "DESY-DCACHE",
        3,
        {
            "datatype": "lattice",
            "project": "lattice-qcd",
            "campaign": "2025",
            "run_number": 7,
            "version": "v1",
        },
    ),
]
FILE_BYTES = 4096


def lfn_path(scope: str, name: str) -> str:
    """Rucio's default ``hash`` lfn2pfn (rucio/rse/translation.py), to put the bytes where
    Rucio will look for them."""
    h = hashlib.md5(f"{scope}:{name}".encode()).hexdigest()
    if scope.startswith(("user", "group")):
        scope = scope.replace(".", "/")
    return f"{scope}/{h[0:2]}/{h[2:4]}/{name}"


def content(scope: str, name: str, size: int) -> bytes:
    """Deterministic bytes of a file, so the cache and every test agree on its checksum."""
    seed = hashlib.sha256(f"{scope}:{name}".encode()).digest()
    out = bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


def write_file(
    rse_dir: Path, scope: str, name: str, size: int, on_disk: bool = True
) -> dict[str, Any]:
    data = content(scope, name, size)
    if on_disk:
        p = rse_dir / lfn_path(scope, name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return {
        "name": name,
        "bytes": size,
        "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}",
        "md5": hashlib.md5(data).hexdigest(),
    }


def protocol(prefix: str) -> dict[str, Any]:
    # file on lan AND wan: the mock transfer tool only handles file/mock, and rucio-jupyterlab
    # resolves paths from the wan domain (a davs-only wan protocol would give it no local path)
    return {
        "scheme": "file",
        "hostname": "localhost",
        "port": 0,
        "prefix": prefix,
        "impl": "rucio.rse.protocols.posix.Default",
        "domains": {
            "lan": {"read": 1, "write": 1, "delete": 1},
            "wan": {
                "read": 1,
                "write": 1,
                "delete": 1,
                "third_party_copy_read": 1,
                "third_party_copy_write": 1,
            },
        },
    }


def davs_protocol(hostname: str, port: int, prefix: str, full: bool) -> dict[str, Any]:
    """A WebDAV door. ``full``: the RSE's only protocol (reads on lan and wan, writes, third
    party copies); otherwise a second door of an origin, a source for third-party copies to
    davs-only RSEs (Rucio pairs davs destinations with davs/https sources only)."""
    n = 1 if full else 0
    return {
        "scheme": "davs",
        "hostname": hostname,
        "port": port,
        "prefix": prefix,
        "impl": "rucio.rse.protocols.webdav.Default",
        "domains": {
            "lan": {"read": n, "write": n, "delete": n},
            "wan": {
                "read": 1 if full else 2,
                "write": n,
                "delete": n,
                "third_party_copy_read": 1 if full else 2,
                "third_party_copy_write": n,
            },
        },
    }


# the davs door of every origin RSE (its prefix is the origin's folder, set per run)
ORIGIN_DAVS_HOST, ORIGIN_DAVS_PORT = "localhost", 2880


def protocols(r: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    """The protocols of one RSE of the spec: a davs-only scratch RSE has its WebDAV door and
    nothing else; the others a ``file`` protocol on their folder, origins also a davs door."""
    davs = r.get("davs")
    if davs:
        return [davs_protocol(davs["hostname"], davs["port"], davs["prefix"], full=True)]
    out = [protocol(folder)]
    if r["kind"] == "origin":
        out.append(davs_protocol(ORIGIN_DAVS_HOST, ORIGIN_DAVS_PORT, folder, full=False))
    return out


def add_new_replicas(rse_id: str, files: list[dict[str, Any]], account: Any, s: Any) -> None:
    """What rucio.core.replica.add_replicas does for files that do not exist yet (file DIDs,
    AVAILABLE replicas without tombstone, the RSE's usage counter), minus the lookups."""
    from rucio.core.rse_counter import increase
    from rucio.db.sqla import models
    from rucio.db.sqla.constants import DIDType, ReplicaState
    from sqlalchemy import insert

    s.execute(
        insert(models.DataIdentifier),
        [
            {
                "scope": f["scope"],
                "name": f["name"],
                "account": account,
                "did_type": DIDType.FILE,
                "bytes": f["bytes"],
                "md5": f["md5"],
                "adler32": f["adler32"],
                "is_new": None,
            }
            for f in files
        ],
    )
    s.execute(
        insert(models.RSEFileAssociation),
        [
            {
                "rse_id": rse_id,
                "scope": f["scope"],
                "name": f["name"],
                "bytes": f["bytes"],
                "path": None,
                "state": ReplicaState.AVAILABLE,
                "md5": f["md5"],
                "adler32": f["adler32"],
                "lock_cnt": 0,
                "tombstone": None,
            }
            for f in files
        ],
    )
    increase(rse_id, files=len(files), bytes_=sum(f["bytes"] for f in files), session=s)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    from rucio.common.types import InternalAccount, InternalScope
    from rucio.core import account_limit, distance, rse, scope
    from rucio.core.account import add_account
    from rucio.core.did import add_did, attach_dids, set_metadata_bulk, set_status
    from rucio.core.rule import add_rule
    from rucio.db.sqla.constants import AccountType, DatabaseOperationType, DIDType
    from rucio.db.sqla.session import db_session
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account

    timings: dict[str, float] = {}
    t = time.monotonic()
    build_database()
    create_base_vo()
    create_root_account()
    timings["schema"] = time.monotonic() - t

    base = Path(spec["base"])
    root = InternalAccount("root")
    rses: dict[str, dict[str, Any]] = spec["rses"]
    t = time.monotonic()
    with db_session(DatabaseOperationType.WRITE) as s:
        ids = {}
        for name, r in rses.items():
            ids[name] = rse.add_rse(name, deterministic=True, session=s)
            for p in protocols(r, str(base / "rses" / name) + "/"):
                rse.add_protocol(ids[name], p, session=s)
            rse.add_rse_attribute(ids[name], "site", r["site"], session=s)
            rse.add_rse_attribute(ids[name], "kind", r["kind"], session=s)
            account_limit.set_local_account_limit(root, ids[name], -1, session=s)
        # the submitter finds no path without a distance for every ordered pair
        for a in rses:
            for b in rses:
                if a != b:
                    distance.add_distance(ids[a], ids[b], 1, session=s)
        scope.add_scope(InternalScope(PROJECT_SCOPE), root, session=s)
        for user in USERS:
            acc = InternalAccount(user)
            add_account(acc, AccountType.USER, f"{user}@testbed.invalid", session=s)
            scope.add_scope(InternalScope(f"user.{user}"), acc, session=s)
            for name in rses:
                limit = spec["quota"]["bytes"] if name == spec["quota"]["rse"] else -1
                account_limit.set_local_account_limit(acc, ids[name], limit, session=s)
    timings["rses_accounts"] = time.monotonic() - t

    containers: set[tuple[str, str]] = set()

    def dataset(
        scope_: str,
        name: str,
        owner: str,
        rse_name: str,
        n: int,
        size: int,
        meta: dict[str, Any],
        container: str | None = None,
        with_bytes: int | None = None,
        close: bool = True,
        pin: bool = True,
    ) -> list[dict[str, Any]]:
        sc, acc = InternalScope(scope_), InternalAccount(owner)
        rse_dir = base / "rses" / rse_name
        files = [
            write_file(
                rse_dir,
                scope_,
                f"{name}.{i:06d}.dat",
                size,
                on_disk=with_bytes is None or i < with_bytes,
            )
            for i in range(n)
        ]
        with db_session(DatabaseOperationType.WRITE) as s:
            add_did(sc, name, DIDType.DATASET, acc, session=s)
            dids = [{"scope": sc, "account": acc, **f} for f in files]
            if n > 1000:
                # Rucio's add_replicas first looks every file up with one OR-ed query; SQLite's
                # expression depth caps that at ~330 files a call, and 300 calls take 2 min.
                # These files are new: insert them as add_replicas would, then attach them
                # (attach_dids uses a temporary table, no such limit)
                add_new_replicas(ids[rse_name], dids, acc, s)
                for i in range(0, n, 10_000):
                    attach_dids(
                        sc,
                        name,
                        [{"scope": sc, "name": d["name"]} for d in dids[i : i + 10_000]],
                        acc,
                        session=s,
                    )
            else:
                attach_dids(sc, name, dids, acc, rse_id=ids[rse_name], session=s)
            if meta:
                set_metadata_bulk(sc, name, meta, session=s)
            if close:  # a finished data set: Rucio then keeps its length and bytes
                set_status(sc, name, open=False, session=s)
            if pin:
                # data at its origin is pinned by a rule of its owner, as in production; the
                # rule is OK at once (the replicas are there) and gives the dataset its
                # per-RSE collection replica
                add_rule(
                    [{"scope": sc, "name": name}],
                    acc,
                    1,
                    rse_name,
                    "DATASET",
                    None,
                    None,
                    False,
                    None,
                    comment="origin",
                    session=s,
                )
            if container:
                if (scope_, container) not in containers:  # several datasets per container
                    add_did(sc, container, DIDType.CONTAINER, acc, session=s)
                    containers.add((scope_, container))
                attach_dids(sc, container, [{"scope": sc, "name": name}], acc, session=s)
        return files

    t = time.monotonic()
    datasets: dict[str, Any] = {}
    for cont, ds, rse_name, n, meta in PROJECT_DATA:
        files = dataset(PROJECT_SCOPE, ds, "root", rse_name, n, FILE_BYTES, meta, cont)
        datasets[f"{PROJECT_SCOPE}:{ds}"] = {
            "container": f"{PROJECT_SCOPE}:{cont}",
            "rse": rse_name,
            "meta": meta,
            "files": [f"{PROJECT_SCOPE}:{f['name']}" for f in files],
            "bytes": sum(f["bytes"] for f in files),
        }
    for user in USERS:
        sc = f"user.{user}"
        name = f"{user}.private"
        files = dataset(
            sc,
            name,
            user,
            "DESY-DCACHE",
            3,
            2048,
            {"datatype": "notes", "project": "intertwin", "version": "v1"},
            f"{user}.work",
            close=False,
        )
        datasets[f"{sc}:{name}"] = {
            "container": f"{sc}:{user}.work",
            "rse": "DESY-DCACHE",
            "owner": user,
            "files": [f"{sc}:{f['name']}" for f in files],
            "bytes": sum(f["bytes"] for f in files),
        }
    timings["small_datasets"] = time.monotonic() - t

    t = time.monotonic()
    dataset(
        PROJECT_SCOPE,
        BIG_DATASET,
        "root",
        "DESY-DCACHE",
        BIG_FILES,
        BIG_FILE_BYTES,
        {"datatype": "benchmark", "project": "intertwin", "version": "v1"},
        with_bytes=BIG_FILES_WITH_BYTES,
        pin=False,
    )
    datasets[f"{PROJECT_SCOPE}:{BIG_DATASET}"] = {
        "rse": "DESY-DCACHE",
        "length": BIG_FILES,
        "bytes": BIG_FILES * BIG_FILE_BYTES,
        "files_with_bytes": BIG_FILES_WITH_BYTES,
        "first_file": f"{PROJECT_SCOPE}:{BIG_DATASET}.000000.dat",
    }
    timings["big_dataset"] = time.monotonic() - t
    # no rule exists yet, so the judge has nothing to re-evaluate for these attachments (it
    # would otherwise spend ~20 s on the 100k dataset in the first conveyor cycle)
    from rucio.db.sqla import models

    with db_session(DatabaseOperationType.WRITE) as s:
        s.query(models.UpdatedDID).delete()
    return {"datasets": datasets, "timings": {k: round(v, 2) for k, v in timings.items()}}


def finalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Point the RSEs at this run's folders and give every account this run's password."""
    from rucio.common.types import InternalAccount
    from rucio.core import rse
    from rucio.core.identity import add_account_identity
    from rucio.db.sqla import models
    from rucio.db.sqla.constants import DatabaseOperationType, IdentityType
    from rucio.db.sqla.session import db_session

    with db_session(DatabaseOperationType.WRITE) as s:
        for name, r in spec["rses"].items():
            rse_id = rse.get_rse_id(name, session=s)
            if not r.get("davs"):  # a davs-only RSE keeps its dCache namespace
                rse.update_protocols(
                    rse_id, "file", {"prefix": r["path"]}, "localhost", 0, session=s
                )
            if r["kind"] == "origin":
                rse.update_protocols(
                    rse_id,
                    "davs",
                    {"prefix": r["path"]},
                    ORIGIN_DAVS_HOST,
                    ORIGIN_DAVS_PORT,
                    session=s,
                )
            # the folder behind the RSE, for the conveyor sidecar (PFNs need not name it)
            rse.add_rse_attribute(rse_id, "testbed_dir", r["path"], session=s)
        # identities of a previous run (the cached DB holds none but root's) are replaced
        s.query(models.IdentityAccountAssociation).filter_by(
            identity_type=IdentityType.USERPASS
        ).delete()
        s.query(models.Identity).filter_by(identity_type=IdentityType.USERPASS).delete()
        s.flush()
        for acc in spec["accounts"].values():
            add_account_identity(
                acc["username"],
                IdentityType.USERPASS,
                InternalAccount(acc["account"]),
                f"{acc['account']}@testbed.invalid",
                default=True,
                password=acc["password"],
                session=s,
            )
    if spec.get("sqlite_db"):
        # readers (server threads) and the conveyor's writer do not block each other
        # (PostgreSQL's MVCC does this anyway)
        import sqlite3

        con = sqlite3.connect(spec["sqlite_db"])
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
    return {}


def main() -> int:
    cmd, spec_path = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(spec_path).read_text())
    os.environ["RUCIO_CONFIG"] = spec["config"]
    out = build(spec) if cmd == "build" else finalize(spec)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
