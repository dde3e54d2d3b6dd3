"""The one error path of the intertwin REST APIs (intertwin_hub/errors.py), on a plain tornado
app: whatever a handler raises, the client gets ``{"error", "message"}`` JSON with a truthful
status, and tornado's log line says the same sentence."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, HTTPError, RequestHandler

from intertwin_hub.errors import INTERNAL_MESSAGE, ApiError, JSONErrorsMixin, bad_request

pytestmark = pytest.mark.timeout(60)

# a sentence with what once broke tornado's %-formatting of the log line
PERCENT = "The filter 'size%=3' is not key<operator>value (100% sure; %s %d %(x)s)."


class Raises(JSONErrorsMixin, RequestHandler):
    def get(self, what: str) -> None:
        if what == "api":
            raise ApiError(409, "duplicate_rule", PERCENT, rule_id="abc")
        if what == "bad":
            raise bad_request("limit", "'limit' must be at least 1; got 0.")
        if what == "tornado":
            raise HTTPError(404)
        if what == "formatted":
            raise HTTPError(400, "no %s here", "cursor")
        raise RuntimeError("a bug")


@pytest_asyncio.fixture
async def url() -> AsyncIterator[str]:
    sock, port = bind_unused_port()
    server = HTTPServer(Application([(r"/(\w+)", Raises)]))
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}"
    server.stop()
    await server.close_all_connections()


async def fetch(url: str) -> tuple[int, str, Any]:
    r = await AsyncHTTPClient().fetch(url, raise_error=False)
    return r.code, r.headers.get("Content-Type", ""), json.loads(r.body)


class Lines(logging.Handler):
    """The formatted lines of a logger (formatting a record with a broken %-format raises)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def tornado_log() -> Iterator[Lines]:
    """What tornado logs about failed requests, caught on its own logger (another test's
    server may have configured logging so that it does not propagate)."""
    logger = logging.getLogger("tornado.general")
    handler, saved = Lines(), (logger.level, logger.disabled)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    yield handler
    logger.removeHandler(handler)
    logger.level, logger.disabled = saved


@pytest.mark.asyncio
async def test_a_percent_sign_reaches_the_client_and_the_log_intact(
    url: str, tornado_log: Lines
) -> None:
    code, ctype, body = await fetch(f"{url}/api")
    assert code == 409 and ctype.startswith("application/json")
    assert body == {"error": "duplicate_rule", "message": PERCENT, "rule_id": "abc"}
    assert tornado_log.lines == [f"409 GET /api (127.0.0.1): {PERCENT}"]


@pytest.mark.asyncio
async def test_every_failure_is_json_with_a_truthful_status(url: str) -> None:
    assert await fetch(f"{url}/bad") == (
        400,
        "application/json",
        {"error": "bad_request", "message": "'limit' must be at least 1; got 0.", "param": "limit"},
    )
    assert await fetch(f"{url}/tornado") == (
        404,
        "application/json",
        {"error": "not_found", "message": "Not Found"},
    )
    assert await fetch(f"{url}/formatted") == (
        400,
        "application/json",
        {"error": "bad_request", "message": "no cursor here"},
    )
    assert await fetch(f"{url}/bug") == (
        500,
        "application/json",
        {"error": "internal_error", "message": INTERNAL_MESSAGE},
    )


def test_an_api_error_reads_as_its_sentence() -> None:
    err = ApiError(503, "rucio_unavailable", "Rucio is down (50% of the time).")
    assert str(err) == "HTTP 503: Service Unavailable (Rucio is down (50% of the time).)"
    assert err.to_json() == {
        "error": "rucio_unavailable",
        "message": "Rucio is down (50% of the time).",
    }
