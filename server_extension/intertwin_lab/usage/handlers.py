"""REST handlers of the Usage API (``<base_url>intertwin/usage``, ``usage/series``,
``usage/jobs``, ``usage/users``, ``usage.csv`` and ``<base_url>intertwin/budgets``): each
forwards to the ``intertwin`` hub service's route of the same name with this server's own
JupyterHub token, through the Jobs routes' handler base (JSON as it is, the service's JSON
errors with its status, a service that cannot be reached a 503 ``service_unreachable``); the CSV
is passed through as the service writes it, with its file name (Content-Disposition).
"""

from __future__ import annotations

import tornado.web
from jupyter_server.utils import url_path_join

from ..jobs.handlers import JobsHandler

UNREACHABLE = (
    "The intertwin service is not reachable from this JupyterLab session, so your usage and "
    "budgets cannot be shown now; try again in a minute (the hub operators know where it runs)."
)


class UsageHandler(JobsHandler):
    """A JSON route of the service, forwarded as it is (the query too)."""

    unreachable_message = UNREACHABLE

    def initialize(self, path: str) -> None:
        self.path = path

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.forward("GET", self.path)


class CsvHandler(UsageHandler):
    """``usage.csv``: the service's CSV, streamed through."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.stream(self.path, accept="text/csv")


def handlers(base_url: str) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, str]]]:
    root = url_path_join(base_url, "intertwin")
    json_routes = ["usage", "usage/series", "usage/jobs", "usage/users", "budgets"]
    return [
        *((url_path_join(root, p), UsageHandler, {"path": p}) for p in json_routes),
        (url_path_join(root, "usage.csv"), CsvHandler, {"path": "usage.csv"}),
    ]
