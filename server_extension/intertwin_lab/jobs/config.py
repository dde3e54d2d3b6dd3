"""Where the ``intertwin`` hub service is, as this session reaches it."""

from __future__ import annotations

import os

from traitlets import Float, Unicode, default, validate
from traitlets.config import Configurable

# the variable InterTwinSpawner sets in every session (``InterTwinSpawner.service_url``); the
# kernel side (``%%offload``) reads the same one
SERVICE_URL_ENV = "INTERTWIN_SERVICE_URL"


def _with_slash(url: str) -> str:
    url = url.strip()
    return url if not url or url.endswith("/") else url + "/"


class JobsService(Configurable):
    """The ``intertwin`` hub service (jobs across sites) for the Jobs panel of this session."""

    service_url = Unicode(
        config=True,
        help="Base URL of the intertwin hub service, ending in /services/intertwin/ "
        "(default: $INTERTWIN_SERVICE_URL, which the hub's InterTwinSpawner sets). The API "
        "is under its api/ path. Empty: the Jobs panel says the service is not configured.",
    )

    @default("service_url")
    def _default_service_url(self) -> str:
        return _with_slash(os.environ.get(SERVICE_URL_ENV, ""))

    @validate("service_url")
    def _slash(self, proposal: dict[str, str]) -> str:
        return _with_slash(proposal["value"])

    api_token = Unicode(
        config=True,
        help="The JupyterHub API token the requests carry (default: $JUPYTERHUB_API_TOKEN, "
        "this server's own token, which the hub gives the scope "
        "access:services!service=intertwin through Spawner.server_token_scopes).",
    )

    @default("api_token")
    def _default_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    connect_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for a connection to the service before answering 503.",
    )

    request_timeout = Float(
        60.0,
        config=True,
        help="Seconds a request to the service may take (list, one job, cancel, a log tail); "
        "a followed log (follow=true) has no limit and ends with the job or the browser.",
    )
