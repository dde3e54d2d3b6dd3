"""The Usage API of the interTwin lab extension: the ``intertwin`` hub service's ``/usage``
routes and ``/budgets``, reached from the browser through this single-user server.

Routes under ``<base_url>intertwin/usage`` and ``<base_url>intertwin/budgets`` forward to the
service (its ``intertwin_hub/service/openapi.yaml``) exactly as the Jobs routes do (the same
handler base, the same :class:`~intertwin_lab.jobs.JobsService` configuration: where the service
is and the server's own token).
"""

from __future__ import annotations

from typing import Any

__all__ = ["setup_usage"]


def setup_usage(server_app: Any) -> None:
    """Register the Usage routes on the server's web app (after :func:`setup_jobs`, whose
    configuration they share)."""
    from .handlers import handlers

    web_app = server_app.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
