"""intertwin_lab: the jupyter-server extension behind the interTwin JupyterLab panels."""

from __future__ import annotations

import os
from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "intertwin_lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    # imported here: kernels import intertwin_lab.datalake.kernel, and must not pay for
    # jupyter-server and rucio-clients
    from .datalake import setup_datalake
    from .handlers import setup_handlers
    from .jobs import setup_jobs
    from .usage import setup_usage

    setup_handlers(server_app.web_app)
    setup_datalake(server_app)
    setup_jobs(server_app)
    setup_usage(server_app)
    # kernels get this server's environment (jupyter-server starts them with os.environ plus
    # JPY_SESSION_NAME, the notebook's path on disk): with the root, %%offload names the
    # notebook as the contents API does, which the Jobs panel's "open at that cell" opens
    from .offload.client import SERVER_ROOT_ENV

    os.environ[SERVER_ROOT_ENV] = os.path.abspath(os.path.expanduser(server_app.root_dir))
    server_app.log.info("intertwin_lab: registered /intertwin handlers")
