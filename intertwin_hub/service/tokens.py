"""``GET /token/rucio``: a fresh DataLake (Rucio) access token for the caller's running session.

A session's token from spawn time expires (EGI Check-in's live an hour), so the session asks
the service for a fresh one with its own JupyterHub token. The service

1. reads the user's auth state through the hub's REST API (``GET /hub/api/users/{name}``
   returns ``auth_state`` to a token with ``admin:auth_state``, which only this service holds,
   together with a ``read:users`` scope;
   https://jupyterhub.readthedocs.io/en/stable/reference/rest-api.html);
2. refreshes the identity provider's access token with the refresh token when it has less than
   ``min_token_life`` seconds left (OAuth 2.0's refresh grant,
   https://www.rfc-editor.org/rfc/rfc6749#section-6);
3. exchanges it for a token whose audience is Rucio (OAuth 2.0 token exchange,
   https://www.rfc-editor.org/rfc/rfc8693; Keycloak's standard token exchange,
   https://www.keycloak.org/securing-apps/token-exchange), or, where the identity provider does
   not offer that, hands out the refreshed access token itself (it must then carry the Rucio
   audience from the login's scopes).

The refreshed tokens are **not written back** into the hub's auth state: JupyterHub's API
writes auth state only through ``PATCH /users/{name}``, which needs ``admin:users`` (the power
to rename and delete users) and is refused for admin users unless the writer is an admin too.
The service keeps what it obtained in memory instead, per user, and reuses it until it nears
its expiry; the hub's own ``refresh_user`` keeps the stored tokens current. This relies on the
identity provider accepting a refresh token more than once (Keycloak's default,
``revokeRefreshToken: false``). A refresh token the identity provider refuses (revoked,
expired, the user's sessions ended) is a 401 ``sign_in_again``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..errors import ApiError

log = logging.getLogger("intertwin.service.tokens")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SIGN_IN_AGAIN = (
    "Your EGI Check-in sign-in has ended (it was revoked or it expired), so the DataLake "
    "cannot be reached as you any more. Sign in to the hub again; your running sessions keep "
    "running."
)


@dataclass
class Issuer:
    """The identity provider the hub logs users in with, as this service uses it."""

    token_url: str
    client_id: str
    client_secret: str
    # the audience Rucio expects; exchanged tokens are asked for it
    audience: str = "rucio"
    # the scopes asked for in the exchange (Rucio checks `openid profile`; Keycloak's client
    # scope `rucio` adds the audience)
    scope: str = "openid profile rucio"
    # False: the identity provider offers no token exchange; the refreshed access token is
    # handed out as it is
    exchange: bool = True
    # a token with less than this left is renewed first
    min_token_life: float = 20.0
    timeout: float = 20.0


@dataclass
class Token:
    access_token: str
    expires_at: float


def expiry(jwt: str, fallback: float) -> float:
    """The ``exp`` claim of a JWT (not verified: the identity provider made it and will judge
    it; only its expiry is read here), else ``fallback``."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return fallback


class RucioTokens:
    """Fresh Rucio tokens per user, refreshed and exchanged at the identity provider."""

    def __init__(self, issuer: Issuer | None, hub_api_url: str, hub_token: str) -> None:
        self.issuer = issuer
        self.hub_api_url = hub_api_url.rstrip("/")
        self.hub_token = hub_token
        # per user: the freshest identity-provider access token obtained here, and the Rucio
        # token handed out last
        self._access: dict[str, Token] = {}
        self._issued: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def token_for(self, user: str, fresh: bool = False) -> Token:
        """The user's Rucio token; ``fresh``: a newly exchanged one, not the one handed out
        last (a batch job takes its token with it and cannot renew it, so it gets one with
        its whole lifetime ahead)."""
        issuer = self.issuer
        if issuer is None:
            raise ApiError(
                404,
                "no_token",
                "This hub does not sign users in with an identity provider the service can "
                "renew tokens at, so it has no DataLake token to give.",
            )
        lock = self._locks.setdefault(user, asyncio.Lock())
        async with lock:  # one refresh per user at a time; the others reuse its result
            issued = self._issued.get(user)
            if issued and not fresh and issued.expires_at - time.time() > issuer.min_token_life:
                return issued
            access, refreshed = await self._access_token(user, issuer)
            if issuer.exchange:
                try:
                    token = await self._exchange(access.access_token, issuer)
                except ApiError as e:
                    if refreshed or e.status != 502:
                        raise
                    # a token that is not expired yet may still be refused when its session
                    # ended (a revoked sign-in): the refresh grant tells which it is
                    self._access.pop(user, None)
                    access, _ = await self._access_token(user, issuer, force_refresh=True)
                    token = await self._exchange(access.access_token, issuer)
            else:
                token = access
            self._issued[user] = token
            return token

    def forget(self, user: str) -> None:
        self._access.pop(user, None)
        self._issued.pop(user, None)

    async def _access_token(
        self, user: str, issuer: Issuer, force_refresh: bool = False
    ) -> tuple[Token, bool]:
        """The user's identity-provider access token with at least ``min_token_life`` left
        (the hub's, the one refreshed here earlier, or a newly refreshed one), and whether it
        was refreshed just now."""
        state = await self._auth_state(user)
        now = time.time()
        candidates = [self._access.get(user)]
        if state.get("access_token"):
            stored = str(state["access_token"])
            candidates.append(Token(stored, expiry(stored, now)))
        fresh = max(
            (c for c in candidates if c is not None),
            key=lambda t: t.expires_at,
            default=None,
        )
        if fresh and fresh.expires_at - now > issuer.min_token_life and not force_refresh:
            return fresh, False
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            self.forget(user)
            raise ApiError(401, "sign_in_again", SIGN_IN_AGAIN)
        body = await self._token_request(
            issuer,
            {"grant_type": "refresh_token", "refresh_token": str(refresh_token)},
            user,
        )
        token = Token(str(body["access_token"]), _expires_at(body))
        self._access[user] = token
        return token, True

    async def _exchange(self, access_token: str, issuer: Issuer) -> Token:
        body = await self._token_request(
            issuer,
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": access_token,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "requested_token_type": ACCESS_TOKEN_TYPE,
                "audience": issuer.audience,
                "scope": issuer.scope,
            },
            None,
        )
        return Token(str(body["access_token"]), _expires_at(body))

    async def _token_request(
        self, issuer: Issuer, form: dict[str, str], user: str | None
    ) -> dict[str, Any]:
        req = HTTPRequest(
            issuer.token_url,
            method="POST",
            body=urlencode(
                {**form, "client_id": issuer.client_id, "client_secret": issuer.client_secret}
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            request_timeout=issuer.timeout,
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as e:
            error, description = _oauth_error(e)
            if e.code in (400, 401) and error == "invalid_grant" and user is not None:
                # RFC 6749 5.2: the refresh token is invalid, expired or revoked
                log.info("the identity provider refused %s's refresh token: %s", user, description)
                self.forget(user)
                raise ApiError(401, "sign_in_again", SIGN_IN_AGAIN) from None
            if e.code >= 500 or e.code == 599:
                raise ApiError(
                    503,
                    "idp_unavailable",
                    "The sign-in service (EGI Check-in) cannot be reached right now; try again "
                    "in a minute.",
                ) from None
            raise ApiError(
                502,
                "idp_error",
                f"The sign-in service refused to issue a DataLake token: {error}"
                + (f" ({description})" if description else "")
                + ".",
            ) from None
        except OSError:
            raise ApiError(
                503,
                "idp_unavailable",
                "The sign-in service (EGI Check-in) cannot be reached right now; try again in "
                "a minute.",
            ) from None
        body: dict[str, Any] = json.loads(resp.body)
        if not body.get("access_token"):
            raise ApiError(502, "idp_error", "The sign-in service answered without a token.")
        return body

    async def _auth_state(self, user: str) -> dict[str, Any]:
        req = HTTPRequest(
            f"{self.hub_api_url}/users/{quote(user, safe='')}",
            headers={"Authorization": f"token {self.hub_token}"},
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as e:
            raise ApiError(
                502, "hub_error", f"The hub did not give the user's sign-in state: HTTP {e.code}."
            ) from None
        model = json.loads(resp.body) or {}
        if "auth_state" not in model:
            # the hub returns auth_state only to holders of admin:auth_state
            raise ApiError(
                502,
                "hub_error",
                "The hub does not show this service the users' sign-in state (it needs the "
                "scope admin:auth_state).",
            )
        return dict(model.get("auth_state") or {})


def _expires_at(body: dict[str, Any]) -> float:
    now = time.time()
    jwt_exp = expiry(str(body["access_token"]), 0.0)
    if jwt_exp:
        return jwt_exp
    try:
        return now + float(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        return now + 60.0


def _oauth_error(e: HTTPClientError) -> tuple[str, str]:
    """RFC 6749's error body (``error``, ``error_description``) of a refused token request."""
    raw = e.response.body if e.response is not None else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return f"HTTP {e.code}", ""
    return str(body.get("error") or f"HTTP {e.code}"), str(body.get("error_description") or "")


def issuer_from_env(env: dict[str, str] | None = None) -> Issuer | None:
    """The identity provider from the service's environment, None when it has none:
    ``INTERTWIN_OIDC_TOKEN_URL`` (the token endpoint), ``INTERTWIN_OIDC_CLIENT_ID`` and
    ``INTERTWIN_OIDC_CLIENT_SECRET`` (the hub's client, allowed to exchange tokens), optional
    ``INTERTWIN_RUCIO_AUDIENCE`` (``rucio``), ``INTERTWIN_RUCIO_SCOPE`` (``openid profile
    rucio``) and ``INTERTWIN_TOKEN_EXCHANGE`` (``0``: hand out the refreshed access token)."""
    import os

    e = os.environ if env is None else env
    url = e.get("INTERTWIN_OIDC_TOKEN_URL", "").strip()
    if not url:
        return None
    return Issuer(
        token_url=url,
        client_id=e.get("INTERTWIN_OIDC_CLIENT_ID", ""),
        client_secret=e.get("INTERTWIN_OIDC_CLIENT_SECRET", ""),
        audience=e.get("INTERTWIN_RUCIO_AUDIENCE", "").strip() or "rucio",
        scope=e.get("INTERTWIN_RUCIO_SCOPE", "").strip() or "openid profile rucio",
        exchange=e.get("INTERTWIN_TOKEN_EXCHANGE", "1").strip().lower() not in ("0", "false", "no"),
    )
