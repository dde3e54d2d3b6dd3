"""The DataLake API of the interTwin lab extension: Rucio for the DataLake panel.

Routes under ``<base_url>intertwin/datalake/`` (documented in ``openapi.yaml``), configured by
:class:`DataLake` (rucio-jupyterlab's ``RUCIO_*`` environment convention).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import DataLake
    from .service import DataLakeService

__all__ = ["DataLake", "DataLakeService", "setup_datalake"]


def __getattr__(name: str) -> Any:
    # lazy: the kernel side (``.kernel``) lives in this package and must import in a blink
    if name == "DataLake":
        from .config import DataLake

        return DataLake
    if name == "DataLakeService":
        from .service import DataLakeService

        return DataLakeService
    raise AttributeError(name)


def setup_datalake(server_app: Any) -> DataLakeService:
    """Register the DataLake routes on the server's web app, configured from its config."""
    from .config import DataLake
    from .handlers import SETTINGS_KEY, handlers
    from .service import DataLakeService

    cfg = DataLake(parent=server_app)
    service = DataLakeService(cfg)
    web_app = server_app.web_app
    web_app.settings[SETTINGS_KEY] = service
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    server_app.log.info(
        "intertwin_lab: DataLake API on Rucio %s (site %s, scratch RSE %s)",
        cfg.rucio_base_url or "(not configured)",
        cfg.site_name or "-",
        cfg.destination_rse or "none",
    )
    return service
