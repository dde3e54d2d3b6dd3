"""The hub's login at EGI Check-in: oauthenticator's GenericOAuthenticator, plus a page that
says what is wrong when Check-in refuses the hub's request for offline access.

The hub asks for the scope ``offline_access`` (a refresh token that outlives the browser
session, so running sessions' DataLake tokens can be renewed). Keycloak, which Check-in runs on,
refuses to issue tokens at the code exchange when the user lacks the ``offline_access`` role
(the token endpoint answers 400 ``not_allowed``, "Offline tokens not allowed for the user or
client"); GenericOAuthenticator turns that into a 500 with a stack trace in the log. Here it is
a 403 page with a sentence saying what to do.
"""

from __future__ import annotations

import json
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Unicode

OFFLINE_ACCESS_MESSAGE = (
    "EGI Check-in signed you in, but refused to let the interTwin hub keep you signed in "
    "while your notebooks run (your account may not grant offline access, the "
    "offline_access role). The hub needs it to renew your sessions' access to the DataLake. "
    "Ask the EGI Check-in support (https://docs.egi.eu/users/check-in/ names how to reach "
    "them) to allow offline access for your account, then log in here again."
)


class CheckinAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator (configured in ``c.GenericOAuthenticator``, which applies to
    this subclass too) with a clear page for a user whom the identity provider refuses offline
    access."""

    offline_access_message = Unicode(
        OFFLINE_ACCESS_MESSAGE,
        config=True,
        help="""Shown (HTTP 403) to a user whom the identity provider refuses the scope
        offline_access at login (Keycloak's token endpoint answers `not_allowed`), instead of
        a 500.""",
    )

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> Any:
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as e:
            if params.get("grant_type") == "authorization_code" and _offline_refused(e):
                self.log.warning(
                    "the identity provider refused offline access at login: %s", _body(e)
                )
                raise web.HTTPError(403, "%s", self.offline_access_message) from None
            raise


def _body(e: HTTPClientError) -> dict[str, Any]:
    raw = e.response.body if e.response is not None else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _offline_refused(e: HTTPClientError) -> bool:
    """Keycloak's refusal of offline tokens at the code exchange: 400 with the OAuth error
    ``not_allowed`` ("Offline tokens not allowed for the user or client"; Keycloak 26.5.6,
    tests/testbed/test_login.py)."""
    body = _body(e)
    description = str(body.get("error_description", "")).lower()
    return e.code == 400 and (body.get("error") == "not_allowed" or "offline" in description)
