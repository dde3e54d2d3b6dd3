"""REST handlers of the DataLake API (``<base_url>intertwin/datalake/...``): parse, delegate to
:class:`~.service.DataLakeService`, answer JSON. Errors are ``{"error", "message"}``."""

from __future__ import annotations

from urllib.parse import unquote

import tornado.web
from jupyter_server.utils import url_path_join

from intertwin_hub.errors import ApiError, bad_request

from ..handlers import IntertwinHandler
from .model import (
    check_body_keys,
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
from .service import DataLakeService

SETTINGS_KEY = "intertwin_datalake"


class DataLakeHandler(IntertwinHandler):
    """Base of the DataLake routes: the user's :class:`DataLakeService`."""

    @property
    def datalake(self) -> DataLakeService:
        return self.settings[SETTINGS_KEY]

    def page_args(self, *, offset: bool = True) -> tuple[int, int]:
        """``(first row, limit)`` of the page asked for: from ``cursor`` (the ``next`` of the
        page before), else from ``offset`` where a route also allows jumping to a row."""
        start = parse_cursor(self.arg("cursor"))
        if start is None:
            start = parse_int(self.arg("offset"), "offset", 0) if offset else 0
        limit = parse_int(self.arg("limit"), "limit", 100, 1, self.datalake.cfg.max_page_size)
        return start, limit

    def did_args(self, scope: str, name: str) -> tuple[str, str]:
        return check_scope(unquote(scope)), check_name(unquote(name))


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
        fresh = not self.arg("cursor")
        self.answer(await self.datalake.search(scope, filters, did_type, start, limit, fresh))


class DidHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        self.answer(await self.datalake.details(*self.did_args(scope, name)))


class ContentHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        did = self.did_args(scope, name)
        self.answer(await self.datalake.content(*did, *self.page_args(), self.flag("refresh")))


class PathsHandler(DataLakeHandler):
    @tornado.web.authenticated
    async def get(self, scope: str, name: str) -> None:
        did = self.did_args(scope, name)
        self.answer(await self.datalake.paths(*did, *self.page_args(), self.flag("whole")))


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
        days = parse_lifetime_days(
            body.get("lifetime_days"), cfg.lifetime_days, cfg.max_lifetime_days
        )
        rule = await self.datalake.add_rule(scope, name, days)
        self.set_header(
            "Location", url_path_join(self.base_url, "intertwin", "datalake", "rules", rule["id"])
        )
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
            raise bad_request("lifetime_days", "Give the new lifetime in days ('lifetime_days').")
        cfg = self.datalake.cfg
        days = parse_lifetime_days(body["lifetime_days"], cfg.lifetime_days, cfg.max_lifetime_days)
        self.answer({"rule": await self.datalake.extend_rule(rule_id, days)})

    @tornado.web.authenticated
    async def delete(self, rule_id: str) -> None:
        await self.datalake.delete_rule(check_rule_id(rule_id))
        self.set_status(204)
        self.finish()


class NotFoundHandler(DataLakeHandler):
    """Any other path under datalake/: a JSON 404, not Tornado's HTML page."""

    def prepare(self) -> None:  # type: ignore[override]
        raise ApiError(404, "not_found", "There is no such DataLake API route.")


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
