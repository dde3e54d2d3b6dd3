"""REST handlers of the interTwin lab extension (``<base_url>/intertwin/...``)."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from intertwin_hub.errors import ApiError, JSONErrorsMixin, bad_request

from .site_context import site_context


class IntertwinHandler(JSONErrorsMixin, APIHandler):
    """The base of every handler of the extension: jupyter-server's ``APIHandler`` (its auth and
    XSRF checks) answering errors as JSON ``{"error": code, "message": sentence}`` with a
    truthful status (raise :class:`~intertwin_hub.errors.ApiError`)."""

    def json_body(self) -> dict[str, Any]:
        """The request body, which must be a JSON object (an empty body is ``{}``)."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise bad_request("body", "The request body must be JSON.") from None
        if not isinstance(body, dict):
            raise bad_request("body", "The request body must be a JSON object.")
        return body

    def arg(self, name: str) -> str | None:
        """A query argument without surrounding blanks; None when absent."""
        value = self.get_query_argument(name, None)
        return value.strip() if value is not None else None

    def flag(self, name: str) -> bool:
        """A yes/no query argument: ``1``, ``true`` or ``yes`` (any case) is yes."""
        return (self.arg(name) or "").lower() in ("1", "true", "yes")

    def answer(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class SiteHandler(IntertwinHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        ctx = site_context()
        if ctx is None:
            raise ApiError(
                404,
                "no_site",
                "This JupyterLab session was not started by the interTwin hub, so it has no site.",
            )
        self.answer(ctx.to_json())


def setup_handlers(web_app: Any) -> None:
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, "intertwin", "site"), SiteHandler)])
