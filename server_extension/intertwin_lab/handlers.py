"""REST handlers of the interTwin lab extension (``<base_url>/intertwin/...``)."""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .site_context import site_context


class IntertwinHandler(APIHandler):
    """Errors as JSON ``{"error": code, "message": sentence}`` with a truthful status."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        code = getattr(exc, "error_code", None) or reason.lower().replace(" ", "_")
        message = getattr(exc, "log_message", None) or reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))


class ApiError(tornado.web.HTTPError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.error_code = code


class SiteHandler(IntertwinHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        ctx = site_context()
        if ctx is None:
            raise ApiError(404, "no_site", "This JupyterLab session was not started by the "
                                           "interTwin hub, so it has no site.")
        self.finish(ctx.to_json())


def setup_handlers(web_app: Any) -> None:
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, "intertwin", "site"), SiteHandler)])
