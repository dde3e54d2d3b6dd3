"""The hub's login through the testbed's Keycloak (realm ``egi``, mirroring EGI Check-in), with
the authenticator configuration of ``helm-values/``: entitlements become groups, the admins'
entitlement makes admins, a user of no admitted VO is told how to join, and the tokens in the
auth state are refreshed, or the user sent to log in again once Keycloak revoked them.

The session's Keycloak (tests/testbed/conftest.py) and, for the whole module, a hub of its own
on the session testbed's control plane (requests refresh the tokens every few seconds here)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from intertwin_hub.spawner.options import vos_of
from testbed.hub import ADMINS, DEMO_USERS, Hub, checkin_values, start_hub, values_hub_config
from testbed.keycloak import (
    ADMIN_ENTITLEMENT,
    DEV_VO_ENTITLEMENT,
    REALM_FILE,
    USERS_PASSWORD,
    Keycloak,
)
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor, free_port

from ..waiting import wait_for_async
from .browser import ui_test
from .hubapi import checkin_login

# the session's Keycloak: Check-in's access tokens live an hour, the tests' a minute
ACCESS_TOKEN_LIFESPAN = 60
# a cookie-authenticated request this long after the last refresh refreshes again
AUTH_REFRESH_AGE = 5


@pytest.fixture(scope="module")
def checkin(
    testbed: dict[str, Any], keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Keycloak, Hub]]:
    assert keycloak.access_token_lifespan == ACCESS_TOKEN_LIFESPAN
    sup = Supervisor(tmp_path_factory.mktemp("login"))
    port = free_port()
    keycloak.allow_redirect(f"http://127.0.0.1:{port}/hub/oauth_callback")
    try:
        hub = start_hub(
            sup,
            control_plane_of(testbed),
            name="login",
            keycloak=keycloak,
            port=port,
            auth_refresh_age=AUTH_REFRESH_AGE,
        )
        yield keycloak, hub
    finally:
        sup.stop_all(("jupyterhub-login", "proxy-login"))


@pytest_asyncio.fixture
async def hub_api(checkin: tuple[Keycloak, Hub]) -> AsyncIterator[aiohttp.ClientSession]:
    hub = checkin[1]
    async with aiohttp.ClientSession(headers={"Authorization": f"token {hub.service_token}"}) as s:
        yield s


async def user_model(api: aiohttp.ClientSession, hub: Hub, name: str) -> dict[str, Any]:
    async with api.get(f"{hub.api_url}/users/{name}") as r:
        assert r.status == 200, await r.text()
        model: dict[str, Any] = await r.json()
        return model


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def test_the_login_is_helm_values_with_keycloak_for_check_in(unstarted_keycloak: Keycloak) -> None:
    """The login the testbed hub runs: helm-values' authenticator sections, Check-in's URLs on
    the testbed's Keycloak (testbed/hub.py: values_hub_config; the whole hub.config is checked
    in test_values_hub.py)."""
    config = values_hub_config(unstarted_keycloak, "http://127.0.0.1:3", auth_refresh_age=5)
    values = checkin_values()
    oauth = values["GenericOAuthenticator"]
    assert oauth["manage_groups"] is True
    assert oauth["auth_state_groups_key"] == "oauth_user.eduperson_entitlement"
    assert DEV_VO_ENTITLEMENT in oauth["allowed_groups"]
    assert ADMIN_ENTITLEMENT in oauth["admin_groups"]
    assert values["Authenticator"]["enable_auth_state"] is True
    assert values["Authenticator"]["refresh_pre_spawn"] is True
    run = config["GenericOAuthenticator"]
    assert run["token_url"] == "http://127.0.0.1:1/auth/realms/egi/protocol/openid-connect/token"
    assert run["oauth_callback_url"] == "http://127.0.0.1:3/hub/oauth_callback"
    assert (run["client_id"], run["client_secret"]) == ("intertwin-hub", "s")
    assert config["Authenticator"]["auth_refresh_age"] == 5
    assert config["JupyterHub"]["authenticator_class"] == "intertwin_hub.auth.CheckinAuthenticator"
    for key in ("allowed_groups", "admin_groups", "scope", "custom_403_message"):
        assert run[key] == oauth[key]


def test_the_realm_has_the_demo_users_with_their_vos() -> None:
    """The Keycloak realm's users are the demo login's, in the same VOs, the same admins."""
    realm = json.loads(REALM_FILE.read_text())
    entitlements = {
        u["username"]: u.get("attributes", {}).get("eduperson_entitlement", [])
        for u in realm["users"]
    }
    assert {u: sorted(vos_of(e)) for u, e in entitlements.items()} == {
        u: sorted(vos) for u, vos in DEMO_USERS.items()
    }
    admins = checkin_values()["GenericOAuthenticator"]["admin_groups"]
    assert sorted(u for u, e in entitlements.items() if set(e) & set(admins)) == sorted(ADMINS)
    hub_client = next(c for c in realm["clients"] if c["clientId"] == "intertwin-hub")
    assert hub_client["publicClient"] is False
    scopes = set(hub_client["defaultClientScopes"] + hub_client["optionalClientScopes"])
    # every scope the hub asks for (openid is OpenID Connect's own)
    assert set(checkin_values()["GenericOAuthenticator"]["scope"]) - {"openid"} <= scopes
    assert "rucio" in scopes


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_alice_logs_in_through_keycloak_and_gets_her_vo_group(
    checkin: tuple[Keycloak, Hub], hub_api: aiohttp.ClientSession
) -> None:
    kc, hub = checkin
    session, status, page, url = await checkin_login(hub.url, kc.url, "alice", USERS_PASSWORD)
    async with session:
        assert status == 200, page
        assert url == f"{hub.url}/hub/home"
        alice = await user_model(hub_api, hub, "alice")
        assert alice["groups"] == [DEV_VO_ENTITLEMENT]
        assert alice["admin"] is False
        state = alice["auth_state"]
        assert state["refresh_token"]
        token = claims(state["access_token"])
        assert token["iss"] == kc.issuer
        assert token["preferred_username"] == "alice"
        assert token["exp"] - token["iat"] == ACCESS_TOKEN_LIFESPAN
        # the spawn form shows alice the dev VO's sites (the spawner reads the groups)
        async with session.get(f"{hub.url}/hub/spawn") as r:
            assert r.status == 200
            form = await r.text()
        assert "Vega" in form


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_oper_is_admin_through_the_admins_entitlement(
    checkin: tuple[Keycloak, Hub], hub_api: aiohttp.ClientSession
) -> None:
    kc, hub = checkin
    session, status, page, _ = await checkin_login(hub.url, kc.url, "oper", USERS_PASSWORD)
    async with session:
        assert status == 200, page
        oper = await user_model(hub_api, hub, "oper")
        assert oper["admin"] is True
        assert set(oper["groups"]) == {DEV_VO_ENTITLEMENT, ADMIN_ENTITLEMENT}
        async with session.get(f"{hub.url}/hub/admin") as r:
            assert r.status == 200


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_bob_of_no_vo_is_told_which_vo_to_join(
    checkin: tuple[Keycloak, Hub], hub_api: aiohttp.ClientSession
) -> None:
    kc, hub = checkin
    session, status, page, url = await checkin_login(hub.url, kc.url, "bob", USERS_PASSWORD)
    async with session:
        assert status == 403
        assert url.startswith(f"{hub.url}/hub/oauth_callback")
        text = " ".join(page.split())
        assert "not a member of a virtual organisation (VO) this hub admits" in text
        assert "join the dev.intertwin.eu VO" in text
        assert "https://docs.egi.eu/users/check-in/joining-virtual-organisation/" in text
        assert "Traceback" not in page
        async with session.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
            assert r.status == 302 and "/hub/login" in r.headers["Location"]
    async with hub_api.get(f"{hub.api_url}/users/bob") as r:
        assert r.status == 404


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_a_user_refused_offline_access_gets_a_page_saying_so(
    checkin: tuple[Keycloak, Hub], hub_api: aiohttp.ClientSession
) -> None:
    """The hub asks for offline_access; Keycloak refuses a user without that role at the code
    exchange. The user reads what to do (403), not a 500."""
    kc, hub = checkin
    await asyncio.to_thread(kc.add_user, "carol", [DEV_VO_ENTITLEMENT], offline_access=False)
    session, status, page, url = await checkin_login(hub.url, kc.url, "carol", USERS_PASSWORD)
    async with session:
        assert status == 403, page
        assert url.startswith(f"{hub.url}/hub/oauth_callback")
        text = " ".join(page.split())
        assert "refused to let the interTwin hub keep you signed in" in text
        assert "offline_access" in text and "log in here again" in text
        assert "Traceback" not in page
    async with hub_api.get(f"{hub.api_url}/users/carol") as r:
        assert r.status == 404


@pytest.mark.testbed
def test_the_rucio_scope_adds_the_rucio_audience(checkin: tuple[Keycloak, Hub]) -> None:
    """Keycloak's own evaluation of the hub client's token for alice (the admin console's
    "Evaluate" tab): with the scope rucio the access token's audience names rucio; without it,
    not. The entitlements are in both."""
    kc, _ = checkin
    client = kc.admin("GET", "/clients?clientId=intertwin-hub")[0]["id"]
    alice = kc.user_id("alice")

    def example(scope: str) -> dict[str, Any]:
        token: dict[str, Any] = kc.admin(
            "GET",
            f"/clients/{client}/evaluate-scopes/generate-example-access-token"
            f"?scope={scope.replace(' ', '%20')}&userId={alice}",
        )
        return token

    def audience(token: dict[str, Any]) -> list[str]:
        aud = token.get("aud", [])
        return [aud] if isinstance(aud, str) else list(aud)

    with_rucio = example("openid eduperson_entitlement rucio")
    assert "rucio" in audience(with_rucio)
    assert with_rucio["eduperson_entitlement"] == [DEV_VO_ENTITLEMENT]
    assert "rucio" not in audience(example("openid eduperson_entitlement"))


@pytest.mark.testbed
def test_alice_signs_in_through_keycloaks_page_in_chromium(
    checkin: tuple[Keycloak, Hub], tmp_path: Path
) -> None:
    """ui-tests/tests/checkin.spec.ts: the same login in Debian's Chromium, clicking through."""
    _, hub = checkin
    ui_test(
        "tests/checkin.spec.ts", {**vars(hub), "login": "checkin"}, tmp_path, {"CHECKIN_UI": "1"}
    )


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_expired_access_token_is_refreshed_then_revocation_means_login(
    checkin: tuple[Keycloak, Hub], hub_api: aiohttp.ClientSession
) -> None:
    kc, hub = checkin
    session, status, page, _ = await checkin_login(hub.url, kc.url, "alice", USERS_PASSWORD)
    async with session:
        assert status == 200, page
        first = (await user_model(hub_api, hub, "alice"))["auth_state"]
        expires = claims(first["access_token"])["exp"]

        async def refreshed() -> dict[str, Any] | None:
            # alice keeps using the hub: her requests are what triggers refresh_user
            async with session.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
                assert r.status == 200, f"alice was sent to {r.headers.get('Location')}"
            state = (await user_model(hub_api, hub, "alice"))["auth_state"]
            return state if state["access_token"] != first["access_token"] else None

        state = await wait_for_async(
            refreshed, "a new access token in the auth state", ACCESS_TOKEN_LIFESPAN + 120, 2.0
        )
        # renewed once the old one had expired (Keycloak's userinfo refused it)
        assert time.time() >= expires - 1
        new = claims(state["access_token"])
        assert new["exp"] > expires
        assert new["preferred_username"] == "alice"
        assert state["refresh_token"]

        # the operator (or alice, on a lost laptop) ends her sessions in Keycloak
        await asyncio.to_thread(kc.revoke_sessions, "alice")

        async def sent_to_login() -> str | None:
            async with session.get(f"{hub.url}/hub/home", allow_redirects=False) as r:
                if r.status == 200:
                    return None
                assert r.status == 302, await r.text()
                return r.headers["Location"]

        where = await wait_for_async(sent_to_login, "alice sent to log in again", 60, 2.0)
        assert "/hub/login" in where
        async with session.get(f"{hub.url}{where}") as r:
            assert r.status == 200
            page = await r.text()
        # the hub's login page offers Check-in again, and Keycloak asks for her password
        assert "Sign in with EGI Check-in" in page
        m = re.search(r"""href=['"]([^'"]*/hub/oauth_login[^'"]*)['"]""", page)
        assert m, page
        async with session.get(f"{hub.url}{unescape(m.group(1))}") as r:
            assert r.status == 200
            assert "kc-form-login" in await r.text()
