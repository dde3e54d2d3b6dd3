"""HTTP handlers of the local interLink plugin: the plugin REST API the interLink API server
calls (``/create``, ``/delete``, ``/status``, ``/getLogs``), in the shapes of interLink
0.5.2-pre2 (``pkg/interlink/types.go``). The batch system behind it is FAKE: see
:mod:`testbed.local_plugin`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import tornado.web
from tornado.iostream import StreamClosedError

from .logs import parse_rfc3339, select_log, strip_stamp
from .records import WAITING, Job
from .runner import RequestError, Runner

log = logging.getLogger("testbed.local_plugin")

FOLLOW_POLL_SECONDS = 0.2

H = TypeVar("H", bound="BaseHandler")


class ApiError(tornado.web.HTTPError):
    """An error answered as ``{"error": code, "message": sentence}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, "%s", message)
        self.code = code
        self.message = message


def api(
    method: Callable[[H], Awaitable[None]],
) -> Callable[[H], Awaitable[None]]:
    """Turn the runner's RequestErrors into JSON HTTP errors."""

    @functools.wraps(method)
    async def wrapper(self: H) -> None:
        try:
            await method(self)
        except RequestError as e:
            raise ApiError(e.status, e.code, e.message) from None

    return wrapper


class BaseHandler(tornado.web.RequestHandler):
    runner: Runner

    def initialize(self, runner: Runner) -> None:
        self.runner = runner

    def json_body(self) -> Any:
        body = self.request.body
        if not body.strip():
            raise ApiError(400, "BadRequest", "the request has no body; a JSON body is needed")
        try:
            return json.loads(body)
        except ValueError as e:
            raise ApiError(400, "MalformedJSON", f"the body is not valid JSON: {e}") from None

    def send_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj))

    def send_text(self, text: str) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            code, message = exc.code, exc.message
        elif isinstance(exc, tornado.web.HTTPError):
            code = self._reason.replace(" ", "")
            message = exc.log_message % exc.args if exc.log_message else self._reason
        else:
            code, message = "InternalError", f"the local plugin failed: {exc!r}"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ApiError):
            log.warning(
                "%s %s -> %d %s: %s",
                self.request.method,
                self.request.path,
                value.status_code,
                value.code,
                value.message,
            )
        else:
            super().log_exception(typ, value, tb)

    def meta_of(self, pod: Any) -> tuple[str, str, str]:
        if not isinstance(pod, dict):
            raise ApiError(400, "BadRequest", "expected a v1.Pod object")
        meta = pod.get("metadata") or {}
        uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
        if not uid and not name:
            raise ApiError(400, "BadRequest", "the pod has neither metadata.uid nor metadata.name")
        return uid, str(meta.get("namespace") or "default"), name


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"status": "ok", "site": self.runner.site})


class CreateHandler(BaseHandler):
    @api
    async def post(self) -> None:
        body = self.json_body()
        if isinstance(body, list):
            # interLink before ~0.3 sent a list of pods
            if not all(isinstance(b, dict) for b in body):
                raise ApiError(400, "BadRequest", "expected a list of create objects")
            jobs = [self.runner.create(b) for b in body]
            self.send_json([{"PodUID": j.uid, "PodJID": j.jid} for j in jobs])
        elif isinstance(body, dict):
            job = self.runner.create(body)
            self.send_json({"PodUID": job.uid, "PodJID": job.jid})
        else:
            raise ApiError(400, "BadRequest", 'expected {"pod": v1.Pod, "container": [...]}')


class DeleteHandler(BaseHandler):
    @api
    async def post(self) -> None:
        uid, namespace, name = self.meta_of(self.json_body())
        job = self.runner.find(uid, namespace, name)
        if job is None:
            self.send_text(
                f"pod {namespace}/{name} ({uid}) not found at {self.runner.site}, "
                "nothing to delete\n"
            )
            return
        self.send_text(await self.runner.delete(job))

    delete = post


class StatusHandler(BaseHandler):
    @api
    async def get(self) -> None:
        # "[]" is interLink's ping; an empty body too (some proxies drop the body of a GET)
        pods = self.json_body() if self.request.body.strip() else []
        if pods is None:
            pods = []
        if not isinstance(pods, list):
            raise ApiError(400, "BadRequest", "expected a JSON list of v1.Pod")
        self.runner.tick()
        if not pods:
            self.send_json(self.runner.ping())
            return
        out = []
        for pod in pods:
            uid, namespace, name = self.meta_of(pod)
            job = self.runner.find(uid, namespace, name)
            if job is None:
                # left out: the API then caches nothing and the VK logs "No status available"
                # and keeps the pod as it is (its create may still be on the way)
                log.info("status of unknown pod %s/%s (%s): left out", namespace, name, uid)
                continue
            out.append(self.runner.status(job))
        self.send_json(out)

    post = get


class LogsHandler(BaseHandler):
    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    @api
    async def get(self) -> None:
        req = self.json_body()
        if not isinstance(req, dict):
            raise ApiError(400, "BadRequest", "expected an interLink LogStruct object")
        uid, namespace = str(req.get("PodUID") or ""), str(req.get("Namespace") or "default")
        name, cname = str(req.get("PodName") or ""), str(req.get("ContainerName") or "")
        job = self.runner.find(uid, namespace, name)
        if job is None:
            raise ApiError(
                404,
                "PodNotFound",
                f"pod {namespace}/{name} ({uid}) is not known at {self.runner.site}",
            )
        if not cname and len(job.mains) == 1:
            cname = job.mains[0].name
        rec = job.container(cname)
        if rec is None:
            raise ApiError(
                404,
                "ContainerNotFound",
                f"container {cname!r} is not in pod {namespace}/{job.name}; it has "
                f"{', '.join(c.name for c in job.containers)}",
            )
        opts = req.get("Opts") or {}
        try:
            tail = int(opts.get("Tail") or 0)
            limit = int(opts.get("Bytes") or 0)
            since_seconds = int(opts.get("SinceSeconds") or 0)
        except (TypeError, ValueError):
            raise ApiError(
                400, "BadRequest", "Tail, Bytes, SinceSeconds must be integers"
            ) from None
        timestamps, follow = bool(opts.get("Timestamps")), bool(opts.get("Follow"))
        since = time.time() - since_seconds if since_seconds > 0 else None
        if since is None and opts.get("SinceTime"):
            since = parse_rfc3339(str(opts["SinceTime"]))
        if opts.get("Previous"):
            raise ApiError(
                400,
                "PreviousNotFound",
                f"previous terminated container {cname!r} in pod {job.name!r} not "
                "found (the local plugin never restarts containers)",
            )
        self.runner.tick()
        if rec.state == WAITING:
            if not follow:
                raise ApiError(
                    400,
                    "ContainerNotStarted",
                    f"container {cname!r} in pod {job.name!r} is waiting to start (job {job.jid})",
                )
            while rec.state == WAITING and not self._closed:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
                self.runner.tick()
        await self._send_logs(job, cname, tail, limit, timestamps, follow, since)

    post = get

    async def _send_logs(
        self,
        job: Job,
        cname: str,
        tail: int,
        limit: int,
        timestamps: bool,
        follow: bool,
        since: float | None,
    ) -> None:
        rec = job.container(cname)
        assert rec is not None
        raw_path, stamped_path = self.runner.log_files(job, rec)
        stamped = timestamps or since is not None
        path = stamped_path if stamped else raw_path
        data = _read_from(path, 0)
        if stamped:
            # only whole lines: the pump writes whole lines, a read may catch one half-written
            data = data[: data.rfind(b"\n") + 1]
        offset = len(data)
        first = select_log(
            data, stamped=stamped, tail=tail, limit_bytes=limit, timestamps=timestamps, since=since
        )
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        if not follow:
            self.finish(first)
            return
        sent = len(first)
        try:
            if first:
                self.write(first)
            await self.flush()
            while not self._closed and not (limit and sent >= limit):
                self.runner.tick()
                done = self.runner.container_drained(job, rec)
                chunk = _read_from(path, offset)
                if stamped:
                    chunk = chunk[: chunk.rfind(b"\n") + 1]
                offset += len(chunk)
                if stamped and not timestamps:
                    chunk = b"".join(strip_stamp(x) for x in chunk.splitlines(keepends=True))
                if limit:
                    chunk = chunk[: limit - sent]
                if chunk:
                    sent += len(chunk)
                    self.write(chunk)
                    await self.flush()
                if done:
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        except StreamClosedError:
            return
        if not self._closed:
            self.finish()


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise ApiError(
            404,
            "NotFound",
            f"no such endpoint: {self.request.path}; the plugin "
            "serves /create /delete /status /getLogs /healthz",
        )


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    quiet = handler.request.path in ("/status", "/healthz") and status < 400
    level = logging.DEBUG if quiet else (logging.INFO if status < 500 else logging.ERROR)
    log.log(
        level,
        "%d %s %s %.1f ms",
        status,
        handler.request.method,
        handler.request.path,
        1000.0 * handler.request.request_time(),
    )


def make_app(runner: Runner) -> tornado.web.Application:
    args = {"runner": runner}
    return tornado.web.Application(
        [
            (r"/create", CreateHandler, args),
            (r"/delete", DeleteHandler, args),
            (r"/status", StatusHandler, args),
            (r"/getLogs", LogsHandler, args),
            (r"/healthz", HealthHandler, args),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=args,
        log_function=_log_request,
    )
