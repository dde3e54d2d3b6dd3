"""Client-side helpers for tests and the demo (run in .venv with rucio-clients, not in the
Rucio venv): a signed-in client per account, and fresh data with real bytes."""

from __future__ import annotations

import hashlib
import sqlite3
import urllib.request
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def client(state: dict[str, Any], account: str = "root") -> Any:
    """A rucio.client.Client signed in with ``account``'s userpass identity of this run."""
    from rucio.client import Client

    creds = state["root"] if account == "root" else state["accounts"][account]
    return Client(
        rucio_host=state["url"],
        auth_host=state["url"],
        account=creds["account"],
        auth_type="userpass",
        creds={"username": creds["username"], "password": creds["password"]},
    )


def add_oidc_identity(state: dict[str, Any], account: str, sub: str, email: str) -> str:
    """Map the OIDC identity ``sub`` of the Rucio's identity provider (``start_rucio(oidc=)``)
    to ``account``, as its default account: Rucio then takes that user's access tokens for
    the account (rucio.core.identity: the identity string is ``SUB=<sub>, ISS=<issuer>``)."""
    identity = f"SUB={sub}, ISS={state['oidc_issuer']}"
    client(state, "root").add_identity(account, identity, "OIDC", email, default=True)
    return identity


def add_dataset(
    state: dict[str, Any], scope: str, name: str, files: dict[str, bytes], rse: str = "DESY-DCACHE"
) -> list[dict[str, Any]]:
    """Write ``files`` (name -> bytes) where ``rse`` keeps them (Rucio's own lfns2pfns says
    where), register them as replicas and attach them to a new dataset, as root (only root may
    declare replicas). Returns the file DIDs with sizes and checksums."""
    root = client(state, "root")
    lfns = [f"{scope}:{f}" for f in files]
    pfns = root.lfns2pfns(rse, lfns, operation="write", scheme="file")
    dids = []
    for (fname, data), lfn in zip(files.items(), lfns, strict=True):
        path = Path(urlparse(pfns[lfn]).path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        dids.append(
            {
                "scope": scope,
                "name": fname,
                "bytes": len(data),
                "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}",
                "md5": hashlib.md5(data).hexdigest(),
            }
        )
    root.add_dataset(scope, name)
    root.add_files_to_dataset(scope, name, dids, rse=rse)
    return dids


def rse_path(state: dict[str, Any], rse: str, scope: str, name: str) -> Path:
    """Where ``rse`` keeps (or will keep) the file ``scope:name`` on this machine."""
    h = hashlib.md5(f"{scope}:{name}".encode()).hexdigest()
    sdir = scope.replace(".", "/") if scope.startswith(("user", "group")) else scope
    return Path(state["rses"][rse]["path"]) / sdir / h[0:2] / h[2:4] / name


def userpass(url: str, account: str, username: str, password: str, timeout: float = 30) -> str:
    """A fresh Rucio token from ``GET /auth/userpass``; a refusal raises urllib's HTTPError."""
    req = urllib.request.Request(
        f"{url}/auth/userpass",
        headers={
            "X-Rucio-Account": account,
            "X-Rucio-Username": username,
            "X-Rucio-Password": password,
        },
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return str(r.headers["X-Rucio-Auth-Token"])


def token(state: dict[str, Any], account: str) -> str:
    """A fresh Rucio token of ``account`` (rucio-clients' Client may hand back one cached on
    disk by an earlier run)."""
    creds = state["root"] if account == "root" else state["accounts"][account]
    return userpass(state["url"], creds["account"], creds["username"], creds["password"])


def expired_token(state: dict[str, Any], account: str) -> str:
    """A real token of ``account`` that Rucio itself rejects as expired: issued, then its expiry
    moved into the past in the database before its first use (the server caches a token's
    lifetime from its first validation on)."""
    tok = token(state, account)
    db = state.get("database", {"kind": "sqlite"})
    if db["kind"] == "postgresql":
        from .postgres import query

        literal = tok.replace("'", "''")
        query(db, f"UPDATE tokens SET expired_at = '2000-01-01' WHERE token = '{literal}'")
        return tok
    con = sqlite3.connect(Path(state["dir"]) / "rucio.db", timeout=30)
    try:
        con.execute(
            "UPDATE tokens SET expired_at = ? WHERE token = ?", ("2000-01-01 00:00:00.000000", tok)
        )
        con.commit()
    finally:
        con.close()
    return tok


def oidc_tokens(state: dict[str, Any], account: str) -> list[dict[str, Any]]:
    """The identity provider's access tokens Rucio accepted for ``account``, from its own
    ``tokens`` table: rucio.core.oidc.validate_jwt saves each JWT it validates there, with the
    identity it mapped (``SUB=<sub>, ISS=<issuer>``), the token's audience and scopes. Tokens
    Rucio issued itself (userpass) have the plain identity instead and are left out. Times are
    UTC, as Rucio stores them; Rucio deletes an account's expired rows when it next issues the
    account a token."""
    sql = (
        "SELECT identity, audience, oidc_scope, created_at, expired_at FROM tokens "
        "WHERE account = '{}' AND identity LIKE 'SUB=%'".format(account.replace("'", "''"))
    )
    db = state.get("database", {"kind": "sqlite"})
    if db["kind"] == "postgresql":
        from .postgres import query

        rows: list[Any] = query(db, sql)
    else:
        con = sqlite3.connect(Path(state["dir"]) / "rucio.db", timeout=30)
        try:
            rows = con.execute(sql).fetchall()
        finally:
            con.close()
    keys = ("identity", "audience", "scope", "created_at", "expired_at")
    return [
        {
            **dict(zip(keys, row, strict=True)),
            "created_at": datetime.fromisoformat(str(row[3])),
            "expired_at": datetime.fromisoformat(str(row[4])),
        }
        for row in rows
    ]
