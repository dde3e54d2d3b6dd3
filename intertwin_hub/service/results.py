"""Batch cells' results: taken once from the end of the job's log, kept by the service, and
answered by ``GET /jobs/{id}/result`` long after the pod is gone.

The log (virtual kubelet → interLink → the site's plugin) is the one channel every site has,
and it lives at the site only as long as the pod. So when the watch sees a batch cell end, the
service reads its log once, as a stream, finds the runner's frame
(:mod:`intertwin_hub.offload.frame`) and writes its payload, checked (size, sha256), to a file
in its results folder, then deletes the finished pod and its inputs Secret after a short grace
(``finished_pod_grace``), so finished cells do not pile up at the sites. The history row says
what became of the result (``result_state``: ``stored``, ``missing``, ``corrupt``) with its
status, size and sha256.

Why files and not a database column: a result may weigh hundreds of MiB (the limit below is
on what is answered at once, not on what is kept); a file is written and read a chunk at a
time (the service never holds a result, or its log, in memory), and the history database
stays small for the queries the Jobs and Usage panels make. The folder sits next to the
default SQLite database (the hub's persistent volume in the chart).

The service never unpickles a result (only the user's own kernel does)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import aiohttp
from kubernetes_asyncio.client.rest import ApiException
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Configurable

from ..errors import ApiError
from ..labels import KIND_BATCH_CELL, kind_of
from ..offload.frame import BEGIN, END, FrameError, StreamDecoder
from ..status import FINAL
from . import db
from .index import LAST_LINES, ended_container, kept_tail
from .submit import inputs_secret_name

if TYPE_CHECKING:
    from .app import Service

log = logging.getLogger("intertwin.service")

STORED, MISSING, CORRUPT, EXPIRED = "stored", "missing", "corrupt", "expired"
# the log is read in chunks of this size; a line longer than LONG_LINE (never a frame's: its
# lines are 76 characters) is skipped rather than held
READ_CHUNK = 256 * 1024
LONG_LINE = 1024 * 1024
# a stored result is answered in chunks of this many bytes (a multiple of 3: whole base64)
ANSWER_CHUNK = 3 * 256 * 1024
# how often a log that could not be read is tried again before the pod is left for later
READ_RETRY_SECONDS = (2, 5, 15, 30, 60)
LOG_TIMEOUT_SECONDS = 600


def _env_number(name: str, fallback: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else fallback


class ResultSettings(Configurable):
    """How batch cells' results are kept and handed out."""

    max_result_bytes = Integer(
        64 * 2**20,
        config=True,
        help="""The largest batch-cell result (the frame's payload: compressed, pickled
        values) that GET /jobs/{id}/result answers unless the caller asks for more
        (?max_bytes=, %%offload --allow-large); a larger one is kept whole and refused with a
        409 saying its size and this limit. The kernel that loads a result holds it about six
        times over for a moment (the answer's text, the payload, the decompressed values, the
        objects: a 64 MiB one peaked at 370 MiB, measured), so 64 MiB stays within a few
        percent of the smallest session (8 GiB). Default from
        $INTERTWIN_RESULT_MAX_BYTES.""",
    )
    finished_pod_grace = Float(
        60.0,
        config=True,
        help="""Seconds a finished batch cell's pod (and its inputs Secret) is left at its site
        once its result is kept, before the service deletes it: a cell waiting for the job
        reads the end of the live log in that time. Default from
        $INTERTWIN_FINISHED_POD_GRACE.""",
    )
    keep_days = Float(
        30.0,
        config=True,
        help="""Days a batch cell's result is kept on the service after the cell ended; then
        its file is removed (hourly), while the job, its last lines and the result's size stay
        in the history, and asking for the result says when it was removed. 0 keeps results for
        ever (the folder then only grows). Default from $INTERTWIN_RESULT_KEEP_DAYS.""",
    )
    results_dir = Unicode(
        config=True,
        help="""The folder where batch cells' results are kept, one file each (created if
        missing). Default from $INTERTWIN_RESULTS_DIR, else intertwin-results in the service's
        working directory (next to its default SQLite database).""",
    )

    @default("max_result_bytes")
    def _max_default(self) -> int:
        return int(_env_number("INTERTWIN_RESULT_MAX_BYTES", 64 * 2**20))

    @default("finished_pod_grace")
    def _grace_default(self) -> float:
        return _env_number("INTERTWIN_FINISHED_POD_GRACE", 60.0)

    @default("keep_days")
    def _keep_default(self) -> float:
        return _env_number("INTERTWIN_RESULT_KEEP_DAYS", 30.0)

    @default("results_dir")
    def _dir_default(self) -> str:
        return os.environ.get("INTERTWIN_RESULTS_DIR") or "intertwin-results"


class Results:
    """Keeps the results of ended batch cells and deletes their pods after the grace."""

    def __init__(self, svc: Service, settings: ResultSettings) -> None:
        self.svc = svc
        self.settings = settings
        self.dir = Path(settings.results_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        # one reading of a job's log at a time, shared by the watch and any request
        self._reading: dict[str, asyncio.Task[db.Job | None]] = {}
        # pods whose deletion is scheduled or under way
        self._reaping: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def path(self, uid: str) -> Path:
        return self.dir / f"{uid}.result"

    # --- the watch's side ---------------------------------------------------------------

    def ended(self, pod: dict[str, Any]) -> bool:
        """A labelled pod changed (or was listed): if it is a batch cell that has ended, keep
        its result and its last lines (read from the same pass over the log), and delete it
        after the grace. True when this takes care of the pod's last lines."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or meta.get("deletionTimestamp"):
            return False
        if uid in self._reaping:
            return True
        if kind_of(pod) != KIND_BATCH_CELL or ended_container(pod) is None:
            return False  # cheap checks first: a re-list hands over every pod
        job = self.svc.store.get(uid)
        if job is None or job.kind != KIND_BATCH_CELL or job.state not in FINAL:
            return False
        self._reaping.add(uid)
        self._spawn(self._keep_then_reap(uid, meta.get("name") or job.pod))
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_then_reap(self, uid: str, pod: str) -> None:
        try:
            for i, pause in enumerate((0, *READ_RETRY_SECONDS)):
                await asyncio.sleep(pause)
                try:
                    job = await self.keep(uid)
                except ApiError as e:
                    log.warning("the result of pod %s (try %d): %s", pod, i + 1, e.message)
                    continue
                if job is None:
                    return  # the job is gone from the history: nothing to do
                break
            else:
                log.warning("the result of pod %s could not be read: its pod is left", pod)
                if uid not in self.svc.watcher.tails:
                    await self.svc.watcher.keep_tail(uid, pod)
                self._reaping.discard(uid)  # a later event or re-list tries again
                return
            if job.last_lines is None:
                # the last lines for the history first: the log goes with the pod
                await self.svc.watcher.keep_tail(uid, pod)
            finished = job.finished
            waited = (datetime.now(UTC) - db.utc(finished)).total_seconds() if finished else 0.0
            await asyncio.sleep(max(0.0, self.settings.finished_pod_grace - waited))
            await self._delete(uid, pod)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("keeping the result of pod %s", pod)
            self._reaping.discard(uid)

    async def _delete(self, uid: str, pod: str) -> None:
        core, ns = self.svc.core, self.svc.namespace
        # the Secret is owned by the pod, so Kubernetes' garbage collector deletes it too; at
        # once here (and whether or not the pod is still there)
        for what, delete, name in (
            ("pod", core.delete_namespaced_pod, pod),
            ("inputs Secret", core.delete_namespaced_secret, inputs_secret_name(pod)),
        ):
            try:
                await delete(name, ns)
            except ApiException as e:
                if e.status != 404:
                    log.warning(
                        "deleting the finished %s %s: %s %s", what, name, e.status, e.reason
                    )
                    self._reaping.discard(uid)
                    return
            except (OSError, aiohttp.ClientError, TimeoutError) as e:
                log.warning(
                    "deleting the finished %s %s: Kubernetes is unreachable (%s)", what, name, e
                )
                self._reaping.discard(uid)
                return
        log.info("deleted the finished batch cell %s and its inputs (result kept)", pod)

    # --- keeping ----------------------------------------------------------------------------

    async def prune_forever(self, interval: float = 3600.0) -> None:
        """Remove results past their keeping time, now and every ``interval`` seconds."""
        while True:
            try:
                self.prune()
            except Exception:
                log.exception("removing old batch-cell results")
            await asyncio.sleep(interval)

    def prune(self, now: datetime | None = None) -> int:
        """Remove the files of results whose cells ended over ``keep_days`` ago; how many."""
        days = self.settings.keep_days
        if days <= 0:
            return 0
        now = now or datetime.now(UTC)
        old = self.svc.store.results_finished_before(now - timedelta(days=days))
        for job in old:
            self.path(job.uid).unlink(missing_ok=True)
            note = (
                f"kept for {days:g} days after the cell ended, removed on {now:%Y-%m-%d} "
                f"({human_size(job.result_bytes or 0)})"
            )
            self.svc.store.keep_result(
                job.uid, EXPIRED, job.result_status, job.result_bytes, job.result_sha256, note
            )
        if old:
            log.info("removed %d batch-cell results kept over %g days", len(old), days)
        return len(old)

    async def keep(self, uid: str) -> db.Job | None:
        """Read the job's log once and record its result (see the module's help); the job as
        recorded, None when the history has no such job. Raises ApiError when the log cannot
        be read (nothing is recorded then: a later try may succeed)."""
        job = self.svc.store.get(uid)
        if job is None or job.result_state is not None:
            return job
        task = self._reading.get(uid)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(job))
            self._reading[uid] = task
            task.add_done_callback(lambda t: self._reading.pop(uid, None))
        return await asyncio.shield(task)

    async def _read(self, job: db.Job) -> db.Job | None:
        part = self.dir / f"{job.uid}.part"
        sinks: list[BinaryIO] = []

        def open_sink() -> BinaryIO:
            # an earlier frame in the same log is dropped: only the last one counts
            for s in sinks:
                s.close()
            sinks.clear()
            sinks.append(open(part, "wb"))
            return sinks[-1]

        decoder = StreamDecoder(open_sink, lambda sink: sink.close())
        # the cell's own last lines (frames left out), kept with the job as the history's
        # last lines: the tail of the log alone may be all frame
        tail: deque[str] = deque(maxlen=LAST_LINES)
        inside = False
        t0 = time.monotonic()
        try:
            async for line in self._log_lines(job):
                decoder.feed(line)
                if BEGIN in line:
                    inside = True
                elif inside:
                    inside = END not in line
                else:
                    tail.append(line)
            self.svc.watcher.tails.add(job.uid)
            self.svc.store.keep_last_lines(job.uid, kept_tail("\n".join(tail)))
            try:
                found = decoder.close()
            except FrameError as e:
                state = MISSING if e.missing else CORRUPT
                self.svc.store.keep_result(job.uid, state, note=str(e))
                log.info("batch cell %s left no usable result: %s", job.pod, e)
            else:
                found.sink.close()
                os.replace(part, self.path(job.uid))
                self.svc.store.keep_result(job.uid, STORED, found.status, found.size, found.sha256)
                log.info(
                    "kept the result of batch cell %s: %s, %d bytes in %.2f s",
                    job.pod,
                    found.status,
                    found.size,
                    time.monotonic() - t0,
                )
        finally:
            for s in sinks:
                s.close()
            part.unlink(missing_ok=True)
        return self.svc.store.get(job.uid)

    async def _log_lines(self, job: db.Job) -> AsyncIterator[str]:
        """The pod's log a line at a time, read as a stream."""
        try:
            resp: Any = await self.svc.core.read_namespaced_pod_log(
                job.pod,
                self.svc.namespace,
                _preload_content=False,
                _request_timeout=LOG_TIMEOUT_SECONDS,
            )
        except ApiException as e:
            if e.status in (400, 404):
                raise ApiError(
                    410, "result_gone", f"The site has no log of this job any more: {e.reason}"
                ) from None
            raise ApiError(502, "kubernetes_error", f"Kubernetes: {e.reason}") from None
        except (TimeoutError, OSError, aiohttp.ClientError):
            raise ApiError(
                503, "kubernetes_unavailable", "The Kubernetes API cannot be reached."
            ) from None
        try:
            rest = b""
            skipping = False
            async for chunk in resp.content.iter_chunked(READ_CHUNK):
                rest += chunk
                lines = rest.split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    if skipping:
                        skipping = False
                        continue
                    yield raw.decode(errors="replace")
                if len(rest) > LONG_LINE:
                    rest, skipping = b"", True
            if rest and not skipping:
                yield rest.decode(errors="replace")
        except (TimeoutError, OSError, aiohttp.ClientError):
            raise ApiError(
                503, "kubernetes_unavailable", "The job's log broke off while it was read."
            ) from None
        finally:
            resp.release()

    # --- answering --------------------------------------------------------------------------

    async def result_of(self, job: db.Job) -> db.Job:
        """The job with its result kept (reading the log now if the watch has not yet), or the
        ApiError that tells why there is none."""
        if job.kind != KIND_BATCH_CELL:
            raise ApiError(404, "not_found", "Only batch cells have a result; this is a notebook.")
        if job.state not in FINAL:
            raise ApiError(
                409,
                "still_running",
                f"The batch cell has not ended yet ({job.sentence}); ask again when it has.",
                state=job.state,
            )
        if job.result_state is None:
            if job.uid not in self.svc.index.pods:
                raise ApiError(
                    410,
                    "result_gone",
                    "The job's pod is gone, and its log with it: its result cannot be read "
                    "any more.",
                )
            job = await self.keep(job.uid) or job
        if job.result_state == MISSING:
            raise ApiError(
                409,
                "no_result",
                f"The batch cell ended ({job.sentence}) without leaving a result in its log: "
                "it was stopped before the cell finished. Its log tells more.",
                state=job.state,
            )
        if job.result_state == CORRUPT:
            raise ApiError(
                502,
                "result_corrupt",
                f"The batch cell's result in its log is damaged: {job.result_note}.",
            )
        if job.result_state == EXPIRED:
            raise ApiError(410, "result_gone", f"The batch cell's result was {job.result_note}.")
        if job.result_state != STORED or not self.path(job.uid).exists():
            raise ApiError(
                410, "result_gone", "The batch cell's kept result is no longer on the service."
            )
        return job

    def check_size(self, job: db.Job, max_bytes: int) -> None:
        size = job.result_bytes or 0
        if max_bytes and size > max_bytes:
            raise ApiError(
                409,
                "result_too_large",
                f"The batch cell's result is {human_size(size)}, over the "
                f"{human_size(max_bytes)} limit on a result loaded at once. It is kept whole "
                "with the job: ask for it with a larger max_bytes (in the notebook: "
                "%offload_attach with --allow-large, or .result(allow_large=True)).",
                bytes=size,
                limit=max_bytes,
                result_status=job.result_status,
                sha256=job.result_sha256,
            )

    def answer(self, job: db.Job) -> tuple[int, AsyncGenerator[bytes]]:
        """The JSON answer (``{"status", "bytes", "sha256", "payload"}``, the payload in
        base64) as its length and its chunks, read from the result's file a chunk at a time."""
        size = job.result_bytes or 0
        head = (
            json.dumps({"status": job.result_status, "bytes": size, "sha256": job.result_sha256})[
                :-1
            ].encode()
            + b', "payload": "'
        )
        tail = b'"}'
        length = len(head) + 4 * ((size + 2) // 3) + len(tail)
        f = open(self.path(job.uid), "rb")  # closed by the generator (aclose)

        async def chunks() -> AsyncGenerator[bytes]:
            try:
                yield head
                while data := f.read(ANSWER_CHUNK):
                    yield base64.b64encode(data)
                yield tail
            finally:
                f.close()

        return length, chunks()


def human_size(n: int) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} bytes"
