"""The user's Rucio credentials, in memory only.

rucio-clients caches tokens in files under the shared temp directory and starts an interactive
login when one is refused; a JupyterLab server of one user needs neither. :class:`TokenSource`
reads the user's token from the environment or a file, signs in with userpass, or (under a hub
that logs in through EGI Check-in) asks the intertwin hub service for a fresh one, and
:class:`UserClient` is rucio-clients' ``Client`` taking its token from it.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

import requests
from rucio.client import Client
from rucio.common import exception as rexc

from intertwin_hub.errors import ApiError

from .config import DataLake

SERVICE_UNREACHABLE = (
    "The intertwin hub service, which renews your DataLake sign-in, cannot be reached right "
    "now; try again in a minute."
)
SIGN_IN_AGAIN = (
    "Your EGI Check-in sign-in has ended, so the DataLake cannot be reached as you any more. "
    "Sign in to the hub again; this session keeps running."
)


def jwt_expiry(token: str) -> float | None:
    """A JWT's ``exp`` (read, not verified: Rucio judges the token), None for other tokens."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class TokenSource:
    """The user's Rucio token, in memory: from the environment, from a file (re-read when Rucio
    refuses it, so a refresher can renew it), or from a userpass sign-in."""

    def __init__(self, cfg: DataLake) -> None:
        self.cfg = cfg
        self._token: str | None = None
        self._lock = threading.Lock()
        # the last JWT sent again after Rucio refused it (see renew)
        self._retried: str | None = None

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._expiring(self._token):
                self._token = self._read()
            return self._token

    def _expiring(self, token: str) -> bool:
        """A token from the service that is about to expire is renewed before it is sent."""
        if not self.cfg.token_from_service:
            return False
        exp = jwt_expiry(token)
        return exp is not None and exp - time.time() < self.cfg.token_min_life

    def renew(self, rejected: str) -> str:
        """Rucio refused ``rejected``: read the token again (or sign in again); raise
        CannotAuthenticate when nothing new is to be had."""
        with self._lock:
            if self._token is not None and self._token != rejected:
                return self._token  # another thread renewed it already
            fresh = self._read()
            if (self.cfg.token_from_service or self.cfg.auth_type != "userpass") and (
                fresh == rejected
            ):
                # Rucio saves a JWT it has not seen in its tokens table when it first accepts
                # it (rucio.core.oidc.validate_jwt); two requests bringing a new JWT at once
                # both save it, and the second, refused by the table's primary key, is
                # answered 401. That token is good: it is sent once more (then Rucio finds it
                # saved), a token Rucio really refuses is refused again
                exp = jwt_expiry(fresh)
                if self._retried != fresh and exp is not None and exp > time.time():
                    self._retried = fresh
                    self._token = fresh
                    return fresh
                raise rexc.CannotAuthenticate("the token was refused and no newer one exists")
            self._token = fresh
            return fresh

    def _read(self) -> str:
        cfg = self.cfg
        if cfg.token_from_service:
            return self._from_service()
        if cfg.auth_type == "userpass":
            return self._userpass()
        if cfg.oidc_auth == "file":
            if not cfg.oidc_file_name:
                raise rexc.NoAuthInformation("RUCIO_OIDC_FILE_NAME is not set")
            try:
                with open(os.path.expanduser(cfg.oidc_file_name)) as f:
                    token = f.read().strip()
            except OSError as e:
                raise rexc.NoAuthInformation(f"cannot read the token file: {e}") from e
        else:
            token = os.environ.get(cfg.oidc_env_name, "").strip()
        if not token:
            raise rexc.NoAuthInformation("no Rucio token in this session")
        return token

    def _from_service(self) -> str:
        """``GET {service}api/token/rucio`` with this server's JupyterHub token (the user is
        the token's). The service's 401 ``sign_in_again`` becomes the DataLake API's."""
        cfg = self.cfg
        if not (cfg.service_url and cfg.hub_api_token):
            raise rexc.NoAuthInformation("no intertwin service URL or hub token in this session")
        url = cfg.service_url.rstrip("/") + "/api/token/rucio"
        try:
            r = requests.get(
                url,
                headers={"Authorization": f"token {cfg.hub_api_token}"},
                timeout=cfg.request_timeout,
            )
        except requests.exceptions.RequestException:
            raise ApiError(503, "service_unreachable", SERVICE_UNREACHABLE) from None
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code == 200 and body.get("access_token"):
            return str(body["access_token"])
        if r.status_code == 401 and body.get("error") == "sign_in_again":
            raise ApiError(401, "sign_in_again", str(body.get("message") or SIGN_IN_AGAIN))
        if r.status_code >= 500:
            message = body.get("message") or SERVICE_UNREACHABLE
            raise ApiError(503, "service_unreachable", str(message))
        raise rexc.CannotAuthenticate(
            f"the intertwin service gave no DataLake token: HTTP {r.status_code} "
            f"{body.get('message') or r.text[:200]}"
        )

    def _userpass(self) -> str:
        cfg = self.cfg
        account = cfg.account or cfg.username
        if not (cfg.username or account) or not cfg.password:
            raise rexc.NoAuthInformation("no Rucio username/password configured")
        headers = {
            "X-Rucio-Account": account,
            "X-Rucio-Username": cfg.username or account,
            "X-Rucio-Password": cfg.password,
            "X-Rucio-VO": cfg.vo,
            "X-Rucio-AppID": "intertwin-lab",
        }
        r = requests.get(
            f"{cfg.auth_url}/auth/userpass",
            headers=headers,
            timeout=cfg.request_timeout,
            verify=cfg.ca_cert or True,
        )
        if r.status_code in (502, 503, 504):
            raise rexc.ServerConnectionException(f"Rucio auth answered {r.status_code}")
        token = r.headers.get("X-Rucio-Auth-Token")
        if r.status_code != 200 or not token:
            raise rexc.CannotAuthenticate(r.headers.get("ExceptionMessage") or r.text[:200])
        return token


class UserClient(Client):
    """rucio-clients' Client whose token comes from a :class:`TokenSource`: the client's own
    token-file cache (under the shared temp directory) is never read nor written, and a
    refused token is renewed from the source instead of starting an interactive login."""

    def __init__(self, source: TokenSource, **kwargs: Any) -> None:
        self._source = source
        super().__init__(**kwargs)

    # the private hooks of rucio.client.baseclient.BaseClient (name-mangled)
    def _BaseClient__read_token(self) -> bool:
        self.auth_token = self._source.token()
        self.headers["X-Rucio-Auth-Token"] = self.auth_token
        return True

    def _BaseClient__write_token(self) -> None:
        return None

    def _send_request(self, *args: Any, **kwargs: Any) -> Any:
        # the source's current token for every request: one about to expire is renewed first
        # (rucio-clients otherwise renews only after Rucio refused a request with it)
        self.auth_token = self._source.token()
        self.headers["X-Rucio-Auth-Token"] = self.auth_token
        return super()._send_request(*args, **kwargs)

    def _BaseClient__get_token(self) -> None:
        self.auth_token = self._source.renew(self.auth_token)
        self.headers["X-Rucio-Auth-Token"] = self.auth_token
