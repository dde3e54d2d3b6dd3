"""The kernel's client of the ``intertwin`` hub service: the session's own JupyterHub token
(``JUPYTERHUB_API_TOKEN``, which carries ``access:services!service=intertwin``) and the
service's URL (``INTERTWIN_SERVICE_URL``, set by InterTwinSpawner). The kernel never talks to
Kubernetes."""

from __future__ import annotations

import os
from typing import Any

import requests

SERVICE_URL_ENV = "INTERTWIN_SERVICE_URL"
# the jupyter-server's root folder, set by the intertwin_lab server extension for its kernels
SERVER_ROOT_ENV = "INTERTWIN_SERVER_ROOT"
TIMEOUT = (10.0, 120.0)


def notebook_path() -> str | None:
    """The kernel's notebook as the contents API names it (relative to the server's root):
    jupyter-server gives a kernel its notebook's path on disk (``JPY_SESSION_NAME``,
    https://github.com/jupyter-server/jupyter_server/blob/main/jupyter_server/services/
    sessions/sessionmanager.py), and the intertwin_lab server extension the root."""
    path = os.environ.get("JPY_SESSION_NAME") or None
    root = os.environ.get(SERVER_ROOT_ENV)
    if path and root and os.path.isabs(path):
        rel = os.path.relpath(path, root)
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return path


class OffloadError(Exception):
    """A refusal or failure told in a sentence (the service's, or ours)."""


class ServiceClient:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        base = (url if url is not None else os.environ.get(SERVICE_URL_ENV, "")).strip()
        if not base:
            raise OffloadError(
                f"This session does not know where the intertwin hub service is "
                f"(${SERVICE_URL_ENV} is not set); %%offload needs a session started by the "
                "interTwin hub."
            )
        self.api = base.rstrip("/") + "/api/"
        self.session = requests.Session()
        tok = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.session.headers["Authorization"] = f"token {tok}"

    def fresh(self) -> ServiceClient:
        """The same client with a session of its own, for another thread (a
        ``requests.Session`` is not made to be shared between threads)."""
        other = ServiceClient.__new__(ServiceClient)
        other.api = self.api
        other.session = requests.Session()
        other.session.headers.update(self.session.headers)
        return other

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        try:
            r = self.session.request(method, self.api + path, **kw)
        except requests.RequestException as e:
            raise OffloadError(f"The intertwin hub service cannot be reached: {e}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                message = body.get("message") or r.reason
            except ValueError:
                body, message = {}, f"{r.status_code} {r.reason}"
            err = OffloadError(message)
            err.status = r.status_code  # type: ignore[attr-defined]
            err.code = body.get("error")  # type: ignore[attr-defined]
            err.body = body  # type: ignore[attr-defined]
            raise err
        return r

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "jobs", json=body).json())

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"jobs/{job_id}").json())

    def jobs(self, **params: Any) -> dict[str, Any]:
        return dict(self.call("GET", "jobs", params=params).json())

    def logs(self, job_id: str, tail: int = 100000) -> str:
        return self.call("GET", f"jobs/{job_id}/logs", params={"tail": tail}).text

    def follow_logs(self, job_id: str, tail: int) -> requests.Response:
        """The log's last ``tail`` lines, then its new lines as they come, until the job ends
        (an open answer, read as it arrives; no read timeout, a quiet cell may
        print nothing for hours)."""
        return self.call(
            "GET",
            f"jobs/{job_id}/logs",
            params={"tail": tail, "follow": "true"},
            stream=True,
            timeout=(TIMEOUT[0], None),
        )

    def result(self, job_id: str, max_bytes: int | None = None) -> dict[str, Any]:
        """The result answer; ``max_bytes``: the largest to take (0: any size; None: the
        service's limit)."""
        params = {} if max_bytes is None else {"max_bytes": max_bytes}
        return dict(self.call("GET", f"jobs/{job_id}/result", params=params).json())

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("DELETE", f"jobs/{job_id}").json())
