"""REST handlers of the Jobs API (``<base_url>intertwin/jobs...``, ``<base_url>intertwin/sites``):
each forwards the request to the ``intertwin`` hub service (``{service_url}api/...``) with this
server's own JupyterHub token and answers what the service answered.

- the service's JSON errors ``{"error", "message"}`` come back with the service's status;
- a service that cannot be reached (refused, timed out, or the proxy's/hub's own error page in
  its place) is a 503 ``service_unreachable``;
- ``logs?follow=true`` is streamed through as the service writes it: tornado's
  ``streaming_callback`` hands over each chunk, which is written and flushed at once
  (https://www.tornadoweb.org/en/stable/httpclient.html#tornado.httpclient.HTTPRequest).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import tornado.web
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders, parse_response_start_line
from tornado.iostream import StreamClosedError

from intertwin_hub.errors import ApiError

from ..handlers import IntertwinHandler
from .config import JobsService

SETTINGS_KEY = "intertwin_jobs"
UNREACHABLE = (
    "The intertwin service is not reachable from this JupyterLab session, so jobs cannot be "
    "listed or cancelled now; try again in a minute (the hub operators know where it runs)."
)
NOT_CONFIGURED = (
    "The intertwin service is not reachable: this JupyterLab session was not told where it is "
    "($INTERTWIN_SERVICE_URL is not set; the interTwin hub sets it)."
)
# how much a followed log may carry in all (tornado's client stops at 100 MB by default)
FOLLOW_MAX_BYTES = 1 << 40


class _ClientGone(Exception):
    """The browser left while a log was streamed: raised in the streaming callback, which makes
    tornado's client close the connection to the service (so the service stops following)."""


def _unreachable(detail: str, message: str = UNREACHABLE) -> ApiError:
    return ApiError(503, "service_unreachable", message, detail=detail)


def _error_of(status: int, body: bytes, unreachable: str = UNREACHABLE) -> ApiError:
    """The service's own error, or — when the answer is not the service's JSON (the proxy's or
    the hub's error page: the service is down or not routed) — a 503."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data.get("message"):
        extra = {k: v for k, v in data.items() if k not in ("error", "message")}
        return ApiError(status, data["error"], str(data["message"]), **extra)
    return _unreachable(
        f"the service's address answered HTTP {status} without its JSON", unreachable
    )


class JobsHandler(IntertwinHandler):
    """Base of the routes forwarding to the intertwin service (the Jobs routes here, the Usage
    routes in ``intertwin_lab.usage``): :meth:`forward` for JSON, :meth:`stream` for text."""

    _gone = False
    #: the 503's sentence when the service cannot be reached (each panel says what it cannot do)
    unreachable_message = UNREACHABLE

    @property
    def jobs(self) -> JobsService:
        return self.settings[SETTINGS_KEY]

    def on_connection_close(self) -> None:
        self._gone = True
        super().on_connection_close()

    def _request(self, method: str, path: str, **kwargs: Any) -> HTTPRequest:
        cfg = self.jobs
        if not cfg.service_url:
            raise ApiError(503, "service_unreachable", NOT_CONFIGURED)
        url = url_path_join(cfg.service_url, "api", path)
        if self.request.query:
            url += "?" + self.request.query
        options: dict[str, Any] = {
            "connect_timeout": cfg.connect_timeout,
            "request_timeout": cfg.request_timeout,
            **kwargs,
        }
        return HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {cfg.api_token}", "Accept": "application/json"},
            follow_redirects=False,
            allow_nonstandard_methods=True,
            **options,
        )

    async def forward(self, method: str, path: str) -> None:
        """Ask the service and answer its JSON (or its error) as it is."""
        resp = await self._fetch(AsyncHTTPClient(), self._request(method, path))
        if resp.code >= 400 or resp.code < 200:
            raise _error_of(resp.code, resp.body or b"", self.unreachable_message)
        try:
            body = json.loads(resp.body) if resp.body else None
        except ValueError:
            raise _unreachable(
                "the service's address answered without JSON", self.unreachable_message
            ) from None
        self.answer(body, status=resp.code)

    async def _fetch(self, client: AsyncHTTPClient, req: HTTPRequest) -> HTTPResponse:
        try:
            return await client.fetch(req, raise_error=False)
        except HTTPClientError as e:  # 599: timed out or the connection broke
            raise _unreachable(str(e), self.unreachable_message) from None
        except OSError as e:  # refused, no route, name not known
            raise _unreachable(str(e), self.unreachable_message) from None

    async def stream(self, path: str, accept: str = "text/plain") -> None:
        """A log (or another text, `accept`: its media type), written through chunk by chunk as
        the service sends it (flushed each time, so a followed log reaches the browser line by
        line), with the service's Content-Type and Content-Disposition; errors as
        :meth:`forward`."""
        head: dict[str, Any] = {"status": 0, "headers": HTTPHeaders()}
        error_body: list[bytes] = []
        started = False

        def on_header(line: str) -> None:
            if line.startswith("HTTP/"):
                head["status"] = parse_response_start_line(line.strip()).code
                head["headers"] = HTTPHeaders()
            elif line.strip():
                head["headers"].parse_line(line)

        def on_chunk(chunk: bytes) -> None:
            nonlocal started
            if head["status"] != 200:
                error_body.append(chunk)
                return
            if self._gone:
                raise _ClientGone()
            if not started:
                started = True
                self.set_header(
                    "Content-Type", head["headers"].get("Content-Type", "text/plain; charset=utf-8")
                )
                if "Content-Disposition" in head["headers"]:
                    self.set_header("Content-Disposition", head["headers"]["Content-Disposition"])
                self.set_header("Cache-Control", "no-cache")
                # proxies in front of the session (nginx) must not hold the stream back
                self.set_header("X-Accel-Buffering", "no")
            self.write(chunk)
            self.flush().add_done_callback(_swallow_closed)

        follow = (self.arg("follow") or "").lower() in ("1", "true", "yes")
        req = self._request(
            "GET",
            path,
            header_callback=on_header,
            streaming_callback=on_chunk,
            # a followed log lasts as long as the job: no overall limit (0 turns it off)
            request_timeout=0 if follow else self.jobs.request_timeout,
        )
        req.headers["Accept"] = f"{accept}, application/json"
        client = AsyncHTTPClient(force_instance=True, max_body_size=FOLLOW_MAX_BYTES)
        try:
            resp = await self._fetch(client, req)
        except ApiError:
            if started:  # the log broke off midway: end what was sent
                self.finish()
                return
            raise
        except _ClientGone:
            return
        finally:
            client.close()
        status = head["status"] or resp.code
        if status != 200:
            raise _error_of(
                status, b"".join(error_body) or resp.body or b"", self.unreachable_message
            )
        if not started:  # an empty log
            self.set_header("Content-Type", f"{accept}; charset=utf-8")
        if not self._gone:
            self.finish()


def _swallow_closed(fut: Any) -> None:
    # the browser may leave between two chunks; the next chunk then stops the upstream
    exc = fut.exception()
    if exc is not None and not isinstance(exc, StreamClosedError):
        raise exc


class ListHandler(JobsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.forward("GET", "jobs")


class JobHandler(JobsHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        await self.forward("GET", f"jobs/{quote(job_id, safe='')}")

    @tornado.web.authenticated
    async def delete(self, job_id: str) -> None:
        await self.forward("DELETE", f"jobs/{quote(job_id, safe='')}")


class LogsHandler(JobsHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        await self.stream(f"jobs/{quote(job_id, safe='')}/logs")


class SitesHandler(JobsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.forward("GET", "sites")


def handlers(base_url: str) -> list[tuple[str, type[tornado.web.RequestHandler]]]:
    root = url_path_join(base_url, "intertwin")
    seg = r"([^/]+)"
    return [
        (url_path_join(root, "jobs"), ListHandler),
        (url_path_join(root, "jobs", seg), JobHandler),
        (url_path_join(root, "jobs", seg, "logs"), LogsHandler),
        (url_path_join(root, "sites"), SitesHandler),
    ]
