"""Fresh DataLake tokens for running sessions: the whole chain is real.

A Keycloak of its own (realm ``egi``, access tokens of 60 s), a Rucio of its own that accepts
that Keycloak's tokens for the audience ``rucio`` (Rucio's OIDC, alice's identity mapped to her
account), and a hub logging in through the Keycloak whose sessions renew their Rucio token
through the ``intertwin`` service's ``GET /token/rucio`` (refresh grant, then Keycloak's
standard token exchange to the ``rucio`` audience).

alice's session browses and replicates for five minutes, five times longer than any token
lives, without a restart, while the hub's own stored token has long expired (this hub's
refresh_user waits an hour, so only the service renews anything). Then her sign-in is revoked
in Keycloak: the session's DataLake and the service say "sign in again", and everything else
(the jobs API) keeps working. The test has a Keycloak of its own: revoking alice's sign-in in
the session's would end the sessions other modules' hubs hold for her.

A batch cell (``%%offload``) of alice's takes a Rucio token with it, and Rucio knows her by
it at the site."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import requests

from testbed.hub import Hub, start_hub
from testbed.keycloak import USERS_PASSWORD, Keycloak, start_keycloak
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor, free_port
from testbed.rucio import start_rucio
from testbed.rucio.client import add_oidc_identity

from ..waiting import wait_for_async
from .hubapi import checkin_login, spawn, stop
from .test_offload import kernel_for, run_cell, text_of

ACCESS_TOKEN_LIFESPAN = 60
# how long the session keeps working on renewed tokens: five token lifetimes
KEEP_GOING_SECONDS = 300
SERVER = "tokens"
DATASET = "user.alice:alice.private"


@pytest.fixture(scope="module")
def chain(
    testbed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Keycloak, dict[str, Any], Hub]]:
    run = tmp_path_factory.mktemp("tokens")
    sup = Supervisor(run)
    port = free_port()
    try:
        kc = start_keycloak(
            sup,
            [f"http://127.0.0.1:{port}/hub/oauth_callback"],
            access_token_lifespan=ACCESS_TOKEN_LIFESPAN,
            progress=print,
        )
        rucio = start_rucio(
            sup,
            run,
            pump_interval=2.0,
            progress=print,
            oidc={
                "issuer": kc.issuer,
                "client_id": "rucio",
                "client_secret": kc.rucio_client_secret,
            },
        )
        add_oidc_identity(rucio, "alice", kc.user_id("alice"), "alice@example.org")
        hub = start_hub(
            sup,
            control_plane_of(testbed),
            name="tokens",
            keycloak=kc,
            rucio=rucio,
            port=port,
            # the hub's own refresh_user (on alice's requests, her tokens' too, once this old)
            # stays out of the way: what renews the session's tokens is the service alone
            auth_refresh_age=3600,
        )
        yield kc, rucio, hub
    finally:
        sup.stop_all(("jupyterhub-tokens", "proxy-tokens"))


@pytest_asyncio.fixture
async def admin(
    chain: tuple[Keycloak, dict[str, Any], Hub],
) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        headers={"Authorization": f"token {chain[2].service_token}"}
    ) as s:
        yield s


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.testbed
@pytest.mark.timeout(1200)
def test_a_batch_cell_takes_alices_rucio_token_and_rucio_knows_her_by_it(
    chain: tuple[Keycloak, dict[str, Any], Hub],
) -> None:
    kc, rucio, hub = chain

    async def log_in() -> tuple[int, str]:
        session, status, page, _ = await checkin_login(hub.url, kc.url, "alice", USERS_PASSWORD)
        await session.close()
        return status, page

    status, page = asyncio.run(log_in())
    assert status == 200, page
    r = requests.post(
        f"{hub.api_url}/users/alice/tokens",
        json={"scopes": ["access:services!service=intertwin"], "note": "offload rucio"},
        headers={"Authorization": f"token {hub.service_token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    with kernel_for({"url": hub.url}, r.json()["token"]) as k:
        # the session's DataLake, as the spawner gives it to a session of this hub
        reply, _ = run_cell(
            k,
            "import os\n"
            f"os.environ['RUCIO_BASE_URL'] = os.environ['RUCIO_AUTH_URL'] = {rucio['url']!r}\n",
        )
        assert reply["status"] == "ok", reply
        # no --rucio: a session with a DataLake takes a token by default
        submitted = time.time()
        reply, outputs = run_cell(
            k,
            "%%offload --site vega --gpus 0 --out who,claims\n"
            "import base64, json, os\n"
            "from rucio.client import Client\n"
            "payload = open(os.environ['BEARER_TOKEN_FILE']).read().split('.')[1]\n"
            "claims = json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))\n"
            "who = Client().whoami()['account']\n"
            "print('rucio says I am', who)\n",
        )
        assert reply["status"] == "ok", (reply, outputs)
        out = text_of(outputs)
        print(out)
        assert re.search(r"Rucio token valid until \d\d:\d\d UTC", out), out
        assert "rucio says I am alice" in out, out
        reply, outputs = run_cell(k, "import json\nprint(json.dumps(claims))")
        token = json.loads(text_of(outputs))
    aud = token["aud"] if isinstance(token["aud"], list) else [token["aud"]]
    assert "rucio" in aud and token["iss"] == kc.issuer
    assert token["sub"] == kc.user_id("alice") and token["preferred_username"] == "alice"
    # newly exchanged at submit: its whole lifetime ahead of the job
    assert token["iat"] >= submitted - 5
    print(f"the token lived {token['exp'] - token['iat']} s; the cell ran within it")


@pytest.mark.testbed
@pytest.mark.asyncio
# Keycloak, a Rucio and a hub of its own, then five minutes of use: more than the default 600 s
@pytest.mark.timeout(1800)
async def test_a_session_keeps_its_datalake_past_token_expiry_until_the_sign_in_is_revoked(
    chain: tuple[Keycloak, dict[str, Any], Hub], admin: aiohttp.ClientSession
) -> None:
    kc, rucio, hub = chain
    session, status, page, _ = await checkin_login(hub.url, kc.url, "alice", USERS_PASSWORD)
    await session.close()  # alice does not use the hub again: the hub never refreshes
    assert status == 200, page
    async with admin.post(
        f"{hub.api_url}/users/alice/tokens",
        json={"scopes": ["access:services!service=intertwin"], "note": "test_session_tokens"},
    ) as r:
        assert r.status == 201, await r.text()
        alice_token = (await r.json())["token"]
    service = f"{hub.url}/services/intertwin/api"
    as_alice = {"Authorization": f"token {alice_token}"}

    events = await spawn(admin, hub.api_url, "alice", SERVER, {"profile": "vega"})
    assert events[-1].get("ready"), events
    lab = f"{hub.url}/user/alice/{SERVER}/intertwin"
    try:
        async with admin.get(f"{hub.api_url}/users/alice") as r:
            stored = (await r.json())["auth_state"]["access_token"]
        stored_exp = claims(stored)["exp"]

        async with admin.get(f"{service}/token/rucio", headers=as_alice) as r:
            assert r.status == 200, await r.text()
            assert r.headers["Cache-Control"] == "no-store"
            first = await r.json()
        token = claims(first["access_token"])
        assert first["audience"] == "rucio" and token["aud"] == "rucio"
        assert token["preferred_username"] == "alice" and token["iss"] == kc.issuer
        assert token["exp"] - token["iat"] == ACCESS_TOKEN_LIFESPAN

        # five token lifetimes of browsing, with a replication in the middle
        start = time.monotonic()
        rule_id: str | None = None
        answered = 0
        while time.monotonic() - start < KEEP_GOING_SECONDS:
            async with admin.get(f"{lab}/datalake/config") as r:
                assert r.status == 200, await r.text()
                cfg = await r.json()
            assert cfg["account"] == "alice", cfg
            # both asked of Rucio each time (no cache in the session)
            async with admin.get(f"{lab}/datalake/scopes") as r:
                assert r.status == 200, await r.text()
                assert "user.alice" in (await r.json())["scopes"]
            async with admin.get(f"{lab}/datalake/rules") as r:
                assert r.status == 200, await r.text()
            if rule_id is None and time.monotonic() - start > KEEP_GOING_SECONDS / 2:
                async with admin.post(
                    f"{lab}/datalake/rules", json={"did": DATASET, "lifetime_days": 1}
                ) as r:
                    assert r.status == 201, await r.text()
                    rule_id = (await r.json())["rule"]["id"]
            answered += 3
            print(f"{time.monotonic() - start:.0f} s: {answered} DataLake answers, rule {rule_id}")
            await asyncio.sleep(15)
        assert rule_id is not None
        # the hub's own copy of alice's token expired minutes ago: the session did not need it
        assert time.time() > stored_exp + KEEP_GOING_SECONDS / 2
        async with admin.get(f"{hub.api_url}/users/alice") as r:
            assert (await r.json())["auth_state"]["access_token"] == stored

        async def replicated() -> list[Path] | None:
            async with admin.get(f"{lab}/datalake/dids/{DATASET.replace(':', '/')}/paths") as r:
                assert r.status == 200, await r.text()
                items = (await r.json())["items"]
            paths = [Path(f["path"]) for f in items if f.get("path")]
            return paths if paths and all(p.is_file() for p in paths) else None

        paths = await wait_for_async(replicated, "alice's replica at Vega", 120, 3.0)
        assert all(str(p).startswith(rucio["rses"]["VEGA-DCACHE"]["path"]) for p in paths)

        async with admin.get(f"{service}/token/rucio", headers=as_alice) as r:
            assert r.status == 200, await r.text()
            later = await r.json()
        assert later["access_token"] != first["access_token"]
        assert claims(later["access_token"])["exp"] > token["exp"] + KEEP_GOING_SECONDS / 2
        print(f"{answered} DataLake answers over {KEEP_GOING_SECONDS} s")

        # the operator (or alice, on a lost laptop) ends her sign-in at Check-in
        await asyncio.to_thread(kc.revoke_sessions, "alice")

        async def says_sign_in_again() -> dict[str, Any] | None:
            async with admin.get(f"{lab}/datalake/scopes") as r:
                if r.status == 200:
                    return None
                body: dict[str, Any] = await r.json()
                assert (r.status, body["error"]) == (401, "sign_in_again"), body
                return body

        # the tokens already handed out live on for up to a minute
        body = await wait_for_async(
            says_sign_in_again, "the DataLake saying sign in again", 150, 3.0
        )
        assert "sign in to the hub again" in body["message"].lower()
        async with admin.get(f"{service}/token/rucio", headers=as_alice) as r:
            assert r.status == 401
            assert r.headers["Content-Type"].startswith("application/json")
            said = await r.json()
        assert said["error"] == "sign_in_again"
        assert "sign in to the hub again" in said["message"].lower()

        # nothing else breaks: the session's jobs routes and the service's jobs API answer
        async with admin.get(f"{lab}/jobs") as r:
            assert r.status == 200, await r.text()
            jobs = (await r.json())["jobs"]
        assert any(j["server_name"] == SERVER for j in jobs), jobs
        async with admin.get(f"{service}/jobs", headers=as_alice) as r:
            assert r.status == 200, await r.text()
    finally:
        await stop(admin, hub.api_url, "alice", SERVER)
