"""``GET /token/rucio``'s logic (intertwin_hub/service/tokens.py) against a stand-in hub API and
a stand-in OAuth token endpoint speaking RFC 6749 / RFC 8693, for the cases the testbed cannot
produce on demand (an identity provider that is down, or without token exchange; a hub that
hides auth state). The real chain (Keycloak, the hub, Rucio) is
tests/testbed/test_session_tokens.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import pytest_asyncio
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from intertwin_hub.errors import ApiError
from intertwin_hub.service.tokens import (
    TOKEN_EXCHANGE,
    Issuer,
    RucioTokens,
    issuer_from_env,
)
from testbed.procs import free_port


def jwt(**claims: Any) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


@dataclass
class World:
    """What the stand-ins answer, and what they were asked."""

    auth_state: dict[str, Any] | None = None
    show_auth_state: bool = True
    refresh_ok: bool = True
    idp_down: bool = False
    grants: list[dict[str, str]] = field(default_factory=list)
    lifetime: int = 60


class HubUser(RequestHandler):
    def initialize(self, world: World) -> None:
        self.world = world

    def get(self, name: str) -> None:
        model: dict[str, Any] = {"name": name, "kind": "user"}
        if self.world.show_auth_state:
            model["auth_state"] = self.world.auth_state
        self.finish(model)


class TokenEndpoint(RequestHandler):
    def initialize(self, world: World) -> None:
        self.world = world

    def post(self) -> None:
        w = self.world
        if w.idp_down:
            self.set_status(503)
            self.finish("down")
            return
        form = {k: v[0] for k, v in parse_qs(self.request.body.decode()).items()}
        w.grants.append(form)
        now = int(time.time())
        if form["grant_type"] == "refresh_token":
            if not w.refresh_ok:
                self.set_status(400)
                self.finish({"error": "invalid_grant", "error_description": "Session not active"})
                return
            token = jwt(aud="hub", exp=now + w.lifetime, iat=now, n=len(w.grants))
        elif form["grant_type"] == TOKEN_EXCHANGE:
            token = jwt(
                aud=form["audience"],
                scope=form["scope"],
                exp=now + w.lifetime,
                iat=now,
                n=len(w.grants),
            )
        else:
            self.set_status(400)
            self.finish({"error": "unsupported_grant_type"})
            return
        self.finish({"access_token": token, "expires_in": w.lifetime, "token_type": "Bearer"})


@pytest_asyncio.fixture
async def world() -> AsyncIterator[tuple[World, str]]:
    w = World()
    port = free_port()
    app = Application(
        [
            (r"/hub/api/users/([^/]+)", HubUser, {"world": w}),
            (r"/token", TokenEndpoint, {"world": w}),
        ]
    )
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    try:
        yield w, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def tokens(base: str, **issuer: Any) -> RucioTokens:
    return RucioTokens(
        Issuer(token_url=f"{base}/token", client_id="hub", client_secret="s", **issuer),
        f"{base}/hub/api",
        "service-token",
    )


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.asyncio
async def test_an_expired_token_is_refreshed_exchanged_and_reused_until_near_expiry(
    world: tuple[World, str],
) -> None:
    w, base = world
    w.auth_state = {"access_token": jwt(exp=time.time() - 5), "refresh_token": "r1"}
    t = tokens(base)
    first = await t.token_for("alice")
    assert claims(first.access_token)["aud"] == "rucio"
    assert claims(first.access_token)["scope"] == "openid profile rucio"
    assert [g["grant_type"] for g in w.grants] == ["refresh_token", TOKEN_EXCHANGE]
    assert w.grants[0]["refresh_token"] == "r1"
    assert claims(w.grants[1]["subject_token"])["n"] == 1  # the refreshed token is exchanged
    # the same token while it has more than min_token_life left: nothing asked again
    assert (await t.token_for("alice")).access_token == first.access_token
    assert len(w.grants) == 2


@pytest.mark.asyncio
async def test_a_batch_job_gets_a_newly_exchanged_token_not_the_last_one_handed_out(
    world: tuple[World, str],
) -> None:
    w, base = world
    w.auth_state = {"access_token": jwt(exp=time.time() + 50), "refresh_token": "r1"}
    t = tokens(base)
    first = await t.token_for("alice")
    # a job cannot renew its token: it gets one with its whole lifetime ahead
    job = await t.token_for("alice", fresh=True)
    assert job.access_token != first.access_token
    assert [g["grant_type"] for g in w.grants] == [TOKEN_EXCHANGE, TOKEN_EXCHANGE]
    # and the sessions get that one next
    assert (await t.token_for("alice")).access_token == job.access_token


@pytest.mark.asyncio
async def test_a_fresh_stored_token_is_exchanged_without_a_refresh(
    world: tuple[World, str],
) -> None:
    w, base = world
    stored = jwt(exp=time.time() + 50)
    w.auth_state = {"access_token": stored, "refresh_token": "r1"}
    await tokens(base).token_for("alice")
    assert [g["grant_type"] for g in w.grants] == [TOKEN_EXCHANGE]
    assert w.grants[0]["subject_token"] == stored


@pytest.mark.asyncio
async def test_without_exchange_the_refreshed_access_token_is_handed_out(
    world: tuple[World, str],
) -> None:
    w, base = world
    w.auth_state = {"access_token": jwt(exp=time.time() - 5), "refresh_token": "r1"}
    token = await tokens(base, exchange=False).token_for("alice")
    assert [g["grant_type"] for g in w.grants] == ["refresh_token"]
    assert claims(token.access_token)["aud"] == "hub"


@pytest.mark.asyncio
async def test_a_refused_refresh_token_means_sign_in_again(world: tuple[World, str]) -> None:
    w, base = world
    w.auth_state = {"access_token": jwt(exp=time.time() - 5), "refresh_token": "r1"}
    w.refresh_ok = False
    with pytest.raises(ApiError) as e:
        await tokens(base).token_for("alice")
    assert (e.value.status, e.value.code) == (401, "sign_in_again")
    assert "Sign in to the hub again" in e.value.message
    # no refresh token at all (a login without offline access, or none stored): the same
    w.auth_state = {"access_token": jwt(exp=time.time() - 5)}
    with pytest.raises(ApiError) as e:
        await tokens(base).token_for("alice")
    assert e.value.code == "sign_in_again"


@pytest.mark.asyncio
async def test_an_unreachable_identity_provider_is_a_503(world: tuple[World, str]) -> None:
    w, base = world
    w.auth_state = {"access_token": jwt(exp=time.time() - 5), "refresh_token": "r1"}
    w.idp_down = True
    with pytest.raises(ApiError) as e:
        await tokens(base).token_for("alice")
    assert (e.value.status, e.value.code) == (503, "idp_unavailable")


@pytest.mark.asyncio
async def test_a_hub_hiding_auth_state_and_a_hub_without_idp_are_said(
    world: tuple[World, str],
) -> None:
    w, base = world
    w.show_auth_state = False
    with pytest.raises(ApiError) as e:
        await tokens(base).token_for("alice")
    assert (e.value.status, e.value.code) == (502, "hub_error")
    assert "admin:auth_state" in e.value.message
    with pytest.raises(ApiError) as e:
        await RucioTokens(None, f"{base}/hub/api", "t").token_for("alice")
    assert (e.value.status, e.value.code) == (404, "no_token")


def test_the_identity_provider_comes_from_the_environment() -> None:
    assert issuer_from_env({}) is None
    issuer = issuer_from_env(
        {
            "INTERTWIN_OIDC_TOKEN_URL": "https://aai.egi.eu/auth/realms/egi/token",
            "INTERTWIN_OIDC_CLIENT_ID": "hub",
            "INTERTWIN_OIDC_CLIENT_SECRET": "s",
            "INTERTWIN_TOKEN_EXCHANGE": "0",
        }
    )
    assert issuer is not None
    assert (issuer.client_id, issuer.audience, issuer.exchange) == ("hub", "rucio", False)
    assert issuer.scope == "openid profile rucio"
