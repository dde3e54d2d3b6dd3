"""REST handlers of the DataLake API (``<base_url>intertwin/datalake/...``): parse, delegate to
:class:`~.service.DataLakeService`, answer JSON. Errors are ``{"error", "message"}``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import tornado.web
from jupyter_server.utils import url_path_join

from ..handlers import IntertwinHandler
from .errors import DataLakeError, bad_request
from .model import (
    check_name,
    check_rule_id,
    check_scope,
    parse_cursor,
    parse_did,
    parse_filters,
    parse_int,
    parse_lifetime_days,
    parse_type,
)
from .service import DataLakeService, check_body_keys

SETTINGS_KEY = "intertwin_datalake"


class DataLakeHandler(IntertwinHandler):
    """Base: the user's DataLakeService, JSON bodies, DataLakeError → JSON error answer."""

    @property
    def datalake(self) -> DataLakeService:
        return self.settings[SETTINGS_KEY]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DataLakeError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.to_json()))
            return
        if status_code >= 500 and not isinstance(exc, tornado.web.HTTPError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": "internal_error",
                                    "message": "The DataLake API failed unexpectedly; the "
                                               "server log has the details."}))
            return
        super().write_error(status_code, **kwargs)

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise bad_request("body", "The request body must be JSON.") from None
        if not isinstance(body, dict):
            raise bad_request("body", "The request body must be a JSON object.")
        return body

    def arg(self, name: str) -> str | None:
        value = self.get_query_argument(name, None)
        return value.strip() if value is not None else None

    def page_args(self, *, offset: bool = True) -> tuple[int | None, int]:
        """``(first row, limit)`` of the page asked for: from ``cursor`` (the ``next`` of the
        page before), else from ``offset`` where a route also allows jumping to a row (None:
        neither given, the first page)."""
        start = parse_cursor(self.arg("cursor"))
        if start is None and offset and self.arg("offset"):
            start = parse_int(self.arg("offset"), "offset", 0)
        limit = parse_int(self.arg("limit"), "limit", 100, 1, self.datalake.cfg.max_page_size)
        return start, limit

    def did_args(self, scope: str, name: str) -> tuple[str, str]:
        return check_scope(unquote(scope)), check_name(unquote(name))

    def answer(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class ConfigHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.answer(await self.datalake.config())


class ScopesHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.answer(await self.datalake.scopes())


class SearchHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        scope = self.arg("scope") or ""
        name = self.arg("name") or "*"
        if not scope and ":" in name:  # rucio-jupyterlab style: scope:pattern in one box
            scope, name = name.split(":", 1)
        if not scope:
            raise bad_request("scope", "Choose a scope to search in ('scope').")
        check_scope(scope)
        check_name(name or "*", "name", pattern=True)
        did_type = parse_type(self.arg("type"))
        filters = parse_filters(self.arg("filters"), name or "*")
        start, limit = self.page_args(offset=False)
        # without a cursor Rucio is searched again; a cursor pages the same result
        self.answer(await self.datalake.search(scope, filters, did_type, start or 0, limit,
                                               fresh=start is None))


class DidHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        self.answer(await self.datalake.details(*self.did_args(scope, name)))


class ContentHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        start, limit = self.page_args()
        refresh = (self.arg("refresh") or "").lower() in ("1", "true", "yes")
        self.answer(await self.datalake.content(*self.did_args(scope, name), start or 0, limit,
                                                refresh))


class PathsHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        start, limit = self.page_args()
        whole = (self.arg("whole") or "").lower() in ("1", "true", "yes")
        self.answer(await self.datalake.paths(*self.did_args(scope, name), start or 0, limit,
                                              whole))


class RulesHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.answer(await self.datalake.rules())

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        check_body_keys(body, ("did", "lifetime_days"))
        scope, name = parse_did(body.get("did"))
        cfg = self.datalake.cfg
        days = parse_lifetime_days(body.get("lifetime_days"), cfg.lifetime_days,
                                   cfg.max_lifetime_days)
        rule = await self.datalake.add_rule(scope, name, days)
        self.set_header("Location", url_path_join(self.base_url, "intertwin", "datalake",
                                                  "rules", rule["id"]))
        self.answer({"rule": rule}, status=201)


class RuleHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, rule_id: str) -> None:
        self.answer({"rule": await self.datalake.rule(check_rule_id(rule_id))})

    @tornado.web.authenticated
    async def patch(self, rule_id: str) -> None:
        rule_id = check_rule_id(rule_id)
        body = self.json_body()
        check_body_keys(body, ("lifetime_days",))
        if body.get("lifetime_days") is None:
            raise bad_request("lifetime_days", "Give the new lifetime in days "
                                               "('lifetime_days').")
        cfg = self.datalake.cfg
        days = parse_lifetime_days(body["lifetime_days"], cfg.lifetime_days,
                                   cfg.max_lifetime_days)
        self.answer({"rule": await self.datalake.extend_rule(rule_id, days)})

    @tornado.web.authenticated
    async def delete(self, rule_id: str) -> None:
        await self.datalake.delete_rule(check_rule_id(rule_id))
        self.set_status(204)
        self.finish()


class NotFoundHandler(DataLakeHandler):
    """Any other path under datalake/: a JSON 404, not Tornado's HTML page."""

    def prepare(self) -> None:  # type: ignore[override]
        raise DataLakeError(404, "not_found", "There is no such DataLake API route.")


def handlers(base_url: str) -> list[tuple[str, type[tornado.web.RequestHandler]]]:
    root = url_path_join(base_url, "intertwin", "datalake")
    seg = r"([^/]+)"
    return [
        (url_path_join(root, "config"), ConfigHandler),
        (url_path_join(root, "scopes"), ScopesHandler),
        (url_path_join(root, "dids"), SearchHandler),
        (url_path_join(root, "dids", seg, seg), DidHandler),
        (url_path_join(root, "dids", seg, seg, "content"), ContentHandler),
        (url_path_join(root, "dids", seg, seg, "paths"), PathsHandler),
        (url_path_join(root, "rules"), RulesHandler),
        (url_path_join(root, "rules", seg), RuleHandler),
        (url_path_join(root, r"(?:.*)"), NotFoundHandler),
    ]
