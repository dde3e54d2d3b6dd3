"""The Jobs API of the interTwin lab extension: the ``intertwin`` hub service, reached from the
browser through this single-user server.

The browser talks only to its own jupyter_server; routes under ``<base_url>intertwin/jobs`` (and
``<base_url>intertwin/sites``) forward to the service's REST API (its
``intertwin_hub/service/openapi.yaml``) with this server's own JupyterHub API token, which
carries ``access:services!service=intertwin``. Configured by :class:`JobsService`.
"""

from __future__ import annotations

from typing import Any

from .config import JobsService

__all__ = ["JobsService", "setup_jobs"]


def setup_jobs(server_app: Any) -> JobsService:
    """Register the Jobs routes on the server's web app, configured from its config."""
    from .handlers import SETTINGS_KEY, handlers

    cfg = JobsService(parent=server_app)
    web_app = server_app.web_app
    web_app.settings[SETTINGS_KEY] = cfg
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    server_app.log.info(
        "intertwin_lab: Jobs API forwarding to the intertwin service at %s",
        cfg.service_url or "(not configured)",
    )
    return cfg
