"""The testbed's login: demo users with a shared password, each signed in to the testbed's Rucio
with their OWN Rucio account.

In production GenericOAuthenticator logs users in at EGI Check-in and its access token (exchanged
for the ``rucio`` audience) is what the spawner hands to the session. Here a Rucio userpass token
of the user's own account plays that role: it is kept in the encrypted auth_state under the same
key (``access_token``), refreshed before it expires and before every spawn, and never shared.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

from jupyterhub.auth import DummyAuthenticator
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Dict, Float, Unicode

# fetch a new token when the one in auth_state has less than this left (Rucio gives 1 h)
MIN_TOKEN_LIFE = 15 * 60


class RucioDemoAuthenticator(DummyAuthenticator):
    """DummyAuthenticator that also signs each user in to Rucio with their own account."""

    rucio_url = Unicode(
        "",
        config=True,
        help="Base URL of the testbed's Rucio server (it serves /auth/userpass too).",
    )
    rucio_passwords = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="Rucio userpass password of each hub user's Rucio account (account = username). "
        "Users without an entry get no DataLake credentials.",
    )
    rucio_timeout = Float(
        10.0, config=True, help="Seconds to wait for Rucio when signing a user in."
    )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> Any:
        name = await super().authenticate(handler, data)
        if not name:
            return None
        return {"name": name, "auth_state": await self._rucio_auth_state(name)}

    async def refresh_user(self, user: Any, handler: Any = None) -> Any:
        state = await user.get_auth_state() or {}
        if state.get("rucio_token_expires", 0) - time.time() > MIN_TOKEN_LIFE:
            return True
        return {"name": user.name, "auth_state": await self._rucio_auth_state(user.name)}

    async def _rucio_auth_state(self, name: str) -> dict[str, Any]:
        password = self.rucio_passwords.get(name)
        if not (self.rucio_url and password):
            return {}
        req = HTTPRequest(
            f"{self.rucio_url}/auth/userpass",
            request_timeout=self.rucio_timeout,
            headers={
                "X-Rucio-Account": name,
                "X-Rucio-Username": name,
                "X-Rucio-Password": password,
            },
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except (HTTPClientError, OSError) as e:
            # the hub login must not depend on Rucio: the DataLake panel explains the rest
            self.log.warning("could not sign %s in to Rucio at %s: %s", name, self.rucio_url, e)
            return {}
        token = resp.headers.get("X-Rucio-Auth-Token", "")
        return {
            "access_token": token,
            "rucio_token_expires": _expiry(resp.headers.get("X-Rucio-Auth-Token-Expires", "")),
        }


def _expiry(header: str) -> float:
    """Rucio's expiry header (an HTTP date); its default hour when missing or unreadable."""
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return time.time() + 3600
