"""A session that renews its Rucio token through the intertwin hub service
(``c.DataLake.token_from_service``): against the real Rucio, with a stand-in service answering
``GET api/token/rucio`` with alice's real Rucio tokens (the real service and Keycloak are
tests/testbed/test_session_tokens.py). A token Rucio refuses is replaced by the service's next
one, the session's JupyterHub token is what it sends, and the service's ``sign_in_again`` is
the DataLake API's."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testbed.rucio.client import expired_token, token

from .conftest import Api

pytestmark = pytest.mark.timeout(300)
HUB_TOKEN = "session-hub-token"


class StandIn:
    """The service's /api/token/rucio: hands out ``tokens`` in turn (the last one again when
    they run out), or the sign-in-again refusal; records the Authorization headers."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.sign_in_again = False
        self.asked: list[str] = []


@pytest.fixture
def service() -> Iterator[tuple[StandIn, str]]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.asked.append(self.headers.get("Authorization", ""))
            if self.path != "/api/token/rucio":
                self._json(404, {"error": "not_found", "message": "no such route"})
            elif self.headers.get("Authorization") != f"token {HUB_TOKEN}":
                self._json(403, {"error": "forbidden", "message": "Sign in to the hub."})
            elif state.sign_in_again:
                self._json(
                    401,
                    {
                        "error": "sign_in_again",
                        "message": "Your EGI Check-in sign-in has ended. Sign in to the hub "
                        "again; your running sessions keep running.",
                    },
                )
            else:
                tok = state.tokens.pop(0) if len(state.tokens) > 1 else state.tokens[0]
                self._json(
                    200,
                    {
                        "access_token": tok,
                        "expires_at": "2099-01-01T00:00:00+00:00",
                        "expires_in": 3600,
                        "audience": "rucio",
                    },
                )

        def _json(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def through_service(use_datalake: Callable[..., Any], url: str) -> None:
    use_datalake(
        "alice",
        auth_type="oidc",
        token_from_service=True,
        service_url=url,
        hub_api_token=HUB_TOKEN,
        account="",
        password="",
    )


async def test_a_token_rucio_refuses_is_renewed_through_the_service(
    api: Api,
    use_datalake: Callable[..., Any],
    service: tuple[StandIn, str],
    rucio: dict[str, Any],
) -> None:
    stand_in, url = service
    stand_in.tokens = [expired_token(rucio, "alice"), token(rucio, "alice")]
    through_service(use_datalake, url)
    status, body = await api("GET", "scopes")
    assert status == 200, body
    assert "user.alice" in body["scopes"]
    # the expired token first, then the fresh one after Rucio refused it; the account is
    # the token's (Rucio's whoami)
    assert stand_in.asked == [f"token {HUB_TOKEN}"] * 2
    status, cfg = await api("GET", "config")
    assert (status, cfg["account"]) == (200, "alice")


async def test_the_services_sign_in_again_is_the_datalake_apis(
    api: Api,
    use_datalake: Callable[..., Any],
    service: tuple[StandIn, str],
) -> None:
    stand_in, url = service
    stand_in.sign_in_again = True
    through_service(use_datalake, url)
    status, body = await api("GET", "scopes")
    assert (status, body["error"]) == (401, "sign_in_again"), body
    assert "Sign in to the hub again" in body["message"]
    status, body = await api("GET", "rules")
    assert (status, body["error"]) == (401, "sign_in_again"), body


async def test_an_unreachable_service_is_a_503_that_says_so(
    api: Api, use_datalake: Callable[..., Any]
) -> None:
    from testbed.procs import free_port

    through_service(use_datalake, f"http://127.0.0.1:{free_port()}/")
    status, body = await api("GET", "scopes")
    assert (status, body["error"]) == (503, "service_unreachable"), body
    assert "intertwin hub service" in body["message"]
