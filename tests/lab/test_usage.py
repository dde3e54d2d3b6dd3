"""The Usage routes (``intertwin/usage...``, ``intertwin/budgets``) forward to the intertwin
service: here against a stand-in service on a local port that records what it was asked (the
routes against the real service, in a real session, run on the testbed:
tests/testbed/test_ui_usage.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from .test_jobs import closed_port

CSV = "id,user,vo,site\r\nuid-1,alice,dev.intertwin.eu,vega\r\n"


class _Seen:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []


class _Service(tornado.web.RequestHandler):
    """Answers like the service: JSON naming the route and query, the CSV, or its JSON error."""

    def initialize(self, seen: _Seen) -> None:
        self.seen = seen

    def get(self, path: str) -> None:
        self.seen.requests.append(
            (path, self.request.query, self.request.headers.get("Authorization"))
        )
        if self.get_argument("from", "") == "bad":
            self.set_status(400)
            self.finish({"error": "bad_request", "message": "from is not a time", "param": "from"})
        elif path == "usage/users":
            self.set_status(403)
            self.finish({"error": "forbidden", "message": "Only hub admins see everyone's usage."})
        elif path == "usage.csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="usage-alice.csv"')
            self.finish(CSV)
        else:
            self.finish({"route": path, "query": self.request.query})


@pytest.fixture
def service(jp_serverapp: Any, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[_Seen]:
    """The stand-in service, listening on the loop the server and the test run on."""
    seen = _Seen()
    app = tornado.web.Application([(r"/services/intertwin/api/(.*)", _Service, {"seen": seen})])
    sock, port = bind_unused_port()
    server = HTTPServer(app)

    async def listen() -> None:
        server.add_sockets([sock])

    jp_asyncio_loop.run_until_complete(listen())
    cfg = jp_serverapp.web_app.settings["intertwin_jobs"]
    cfg.service_url = f"http://127.0.0.1:{port}/services/intertwin/"
    cfg.api_token = "server-token"
    yield seen
    server.stop()


@pytest.mark.parametrize("route", ["usage", "usage/series", "usage/jobs", "usage/users", "budgets"])
async def test_json_routes_forward_with_the_query_and_the_servers_token(
    jp_fetch: Any, service: _Seen, route: str
) -> None:
    params = {"unit": "week", "from": "2026-11-01T00:00:00Z"}
    if route == "usage/users":
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("intertwin", *route.split("/"), params=params)
        assert e.value.code == 403  # the service's own refusal, its status kept
        assert e.value.response is not None
        assert json.loads(e.value.response.body)["error"] == "forbidden"
    else:
        resp = await jp_fetch("intertwin", *route.split("/"), params=params)
        assert resp.code == 200
        body = json.loads(resp.body)
        assert body["route"] == route
        assert "unit=week" in body["query"]
    path, query, auth = service.requests[-1]
    assert path == route
    assert "unit=week" in query and "from=2026-11-01" in query
    assert auth == "token server-token"


async def test_the_services_json_error_keeps_its_status_and_fields(
    jp_fetch: Any, service: _Seen
) -> None:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("intertwin", "usage", params={"from": "bad"})
    assert e.value.code == 400 and e.value.response is not None
    body = json.loads(e.value.response.body)
    assert body["error"] == "bad_request" and body["param"] == "from"


async def test_the_csv_comes_through_as_a_download(jp_fetch: Any, service: _Seen) -> None:
    resp = await jp_fetch("intertwin", "usage.csv", params={"from": "2026-11-01T00:00:00Z"})
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="usage-alice.csv"'
    assert resp.body.decode() == CSV
    assert service.requests[-1][0] == "usage.csv"


@pytest.mark.parametrize(
    "path", [("usage",), ("usage", "series"), ("usage", "jobs"), ("usage.csv",), ("budgets",)]
)
async def test_a_service_nobody_answers_at_is_a_503_naming_usage(
    jp_fetch: Any, jp_serverapp: Any, path: tuple[str, ...]
) -> None:
    jp_serverapp.web_app.settings[
        "intertwin_jobs"
    ].service_url = f"http://127.0.0.1:{closed_port()}/services/intertwin/"
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("intertwin", *path)
    assert e.value.code == 503 and e.value.response is not None
    body = json.loads(e.value.response.body)
    assert body["error"] == "service_unreachable"
    assert body["message"].startswith("The intertwin service is not reachable")
    assert "usage" in body["message"]
