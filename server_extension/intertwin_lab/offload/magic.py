"""``%%offload``: run one cell as a batch job at a site and get its variables back.

    %%offload --site vega --gpus 1 --in x,df --out model,losses [--partition P] [--cpus 8]
              [--memory 32G] [--time 30m] [--image IMAGE] [--name NAME] [--no-wait]
              [--rucio | --no-rucio]

The cell's source, its ``--in`` variables and the names it reads but does not define (found
with the AST; ``--no-auto-in`` turns that off) are cloudpickled, each on its own (an error
names the variable), and sent to the ``intertwin`` hub service, which checks the request with
the spawner's rules and creates the job. The magic then shows the job's state in the site's
words and its log as the cell prints it (:mod:`.display`: a widget with a Cancel button in
JupyterLab, text elsewhere; the log followed once, :mod:`.follow`); at the end it assigns the
``--out`` variables, or re-raises the cell's exception with the remote traceback.
``--no-wait`` returns an :class:`OffloadJob` at once; ``%offload_attach ID`` attaches to a job
(after a kernel restart, say) and fetches its results; ``%offload_jobs`` lists this notebook's
batch cells.

A cell in a session with a DataLake takes a Rucio token with it (``--no-rucio``: not), which
``rucio.client.Client()`` in the cell finds, for the session's Rucio; ``--rucio`` asks for one
anywhere, and is refused when the hub has none to give.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from intertwin_hub.offload import frame
from intertwin_hub.offload.runner import PackError, pack_inputs
from intertwin_hub.status import FINAL

from .cellcode import needed_names
from .client import OffloadError, ServiceClient, notebook_path
from .display import Clock, View, make_view
from .follow import LogFollower

POLL_SECONDS = 1.0
# how often new log lines reach the cell between two looks at the job's state
PUMP_SECONDS = 0.2
# how long the end of a log may take to arrive once the job has ended
DRAIN_SECONDS = 30.0
# how long a cancelled job is shown ending (its pod being deleted) before the cell ends
CANCEL_SECONDS = 60.0
# the session's DataLake, as the spawner sets it for rucio-jupyterlab (intertwin_hub.spawner.pod.
# rucio_env)
RUCIO_BASE_URL_ENV = "RUCIO_BASE_URL"
RUCIO_AUTH_URL_ENV = "RUCIO_AUTH_URL"
# the service's refusals of a DataLake token (intertwin_hub.service.tokens)
_TOKEN_ERRORS = frozenset({"sign_in_again", "idp_unavailable", "idp_error", "hub_error"})
# names the notebook holds that are IPython's, not the user's
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


class RemoteTraceback(Exception):
    """The traceback of the cell's exception at the site (the cause of the re-raised one), as
    ``concurrent.futures`` shows a worker's traceback."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\n" + self.tb.rstrip()


class RemoteError(Exception):
    """The cell's exception at the site, when it cannot be rebuilt here."""


class ResultTooLarge(OffloadError):
    """The result is over the service's limit on a result loaded at once; it is kept."""


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def too_large(job_id: str, body: dict[str, Any]) -> ResultTooLarge:
    """The sentence for a result over the limit: its size, the limit, and how to load it."""
    return ResultTooLarge(
        f"The batch cell's result is {_mib(int(body.get('bytes') or 0))}, over the "
        f"{_mib(int(body.get('limit') or 0))} limit on a result loaded at once. Nothing is "
        f"lost: the service keeps it with job {job_id}; load it with "
        f"`%offload_attach {job_id} --allow-large` (or `.result(allow_large=True)` on its "
        "OffloadJob)."
    )


def _names(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [n.strip() for n in v.split(",") if n.strip()]
    for n in out:
        if not n.isidentifier():
            raise UsageError(f"{n!r} is not a variable name.")
    return out


def decode_result(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The service's result answer, checked again here (sha256, size), as (status, payload)."""
    payload = base64.b64decode(body["payload"])
    if len(payload) != body["bytes"] or hashlib.sha256(payload).hexdigest() != body["sha256"]:
        raise OffloadError("The batch cell's result arrived damaged (its checksum differs).")
    return body["status"], json.loads(zlib.decompress(payload))


def unpickle_values(payload: dict[str, Any]) -> dict[str, Any]:
    import cloudpickle

    values = {}
    for name, b64 in payload.get("values", {}).items():
        try:
            values[name] = cloudpickle.loads(base64.b64decode(b64))
        except Exception as e:
            raise OffloadError(
                f"The output variable {name!r} cannot be unpickled here ({type(e).__name__}: "
                f"{e}); is its package installed in this session?"
            ) from e
    return values


def remote_exception(payload: dict[str, Any]) -> BaseException:
    exc: BaseException | None = None
    if payload.get("exception"):
        try:
            import cloudpickle

            exc = cloudpickle.loads(base64.b64decode(payload["exception"]))
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(f"{payload.get('type')}: {payload.get('message')}")
    exc.__cause__ = RemoteTraceback(payload.get("traceback") or "")
    return exc


class OffloadJob:
    """A batch cell at a site: ``status()``, ``logs()``, ``result()``, ``cancel()``, ``wait()``."""

    def __init__(
        self,
        client: ServiceClient,
        job: dict[str, Any],
        assign: Callable[[dict[str, Any]], None] | None = None,
        allow_large: bool = False,
    ) -> None:
        self._client = client
        self._job = job
        self._assign = assign
        self.id: str = job["id"]
        # take a result over the service's limit (--allow-large)
        self.allow_large = allow_large

    def __repr__(self) -> str:
        j = self._job
        return f"<OffloadJob {self.id} at {j.get('site_name')}: {j.get('sentence')}>"

    def status(self) -> dict[str, Any]:
        """The job as the service tells it now (``state``, ``sentence``, ``batch_job``, ...)."""
        self._job = self._client.job(self.id)
        return self._job

    @property
    def done(self) -> bool:
        return self._job.get("state") in FINAL

    def logs(self, tail: int = 1000) -> str:
        """The last lines the cell printed at the site (without the result frame)."""
        return "\n".join(frame.strip(self._client.logs(self.id, tail).splitlines()))

    def cancel(self) -> dict[str, Any]:
        self._job = self._client.cancel(self.id)
        return self._job

    def result(self, wait: bool = True, allow_large: bool | None = None) -> dict[str, Any]:
        """The ``--out`` values by name (waiting for the end unless ``wait=False``); the
        cell's exception, re-raised with the remote traceback, if it failed. A result over
        the service's limit raises ResultTooLarge (it stays kept) unless ``allow_large``."""
        while wait and self.status().get("state") not in FINAL:
            time.sleep(POLL_SECONDS)
        large = self.allow_large if allow_large is None else allow_large
        try:
            body = self._client.result(self.id, max_bytes=0 if large else None)
        except OffloadError as e:
            if getattr(e, "code", None) == "result_too_large":
                raise too_large(self.id, getattr(e, "body", {})) from None
            raise
        status, payload = decode_result(body)
        if status == "error":
            raise remote_exception(payload)
        return unpickle_values(payload)

    def wait(self, show: bool = True) -> dict[str, Any]:
        """Show the state and the cell's log as it comes until the job ends, then assign
        (and return) its ``--out`` values. Interrupting the kernel cancels the job."""
        watch = _Watch(self, make_view(self._job, None) if show else None)
        try:
            while True:
                job = watch.step(self.status())
                if job.get("state") in FINAL:
                    break
                end = time.monotonic() + POLL_SECONDS
                while time.monotonic() < end:
                    time.sleep(PUMP_SECONDS)
                    watch.pump()
            while watch.draining():
                time.sleep(PUMP_SECONDS)
                watch.pump()
        except KeyboardInterrupt:
            raise self._interrupted(watch) from None
        finally:
            watch.close()
        return self._finish(watch)

    async def wait_async(self) -> dict[str, Any]:
        """:meth:`wait` in the kernel's event loop, which goes on handling the front end's
        widget messages meanwhile (ipykernel dispatches comm messages while an async cell
        awaits, https://github.com/ipython/ipykernel/pull/1565): the widget's Cancel button
        cancels the job. Interrupting the kernel cancels it too (ipykernel cancels an async
        cell's task on SIGINT)."""
        clicked = asyncio.Event()
        watch = _Watch(self, make_view(self._job, clicked.set))
        try:
            while not clicked.is_set():
                job = watch.step(await asyncio.to_thread(self.status))
                if job.get("state") in FINAL:
                    break
                end = time.monotonic() + POLL_SECONDS
                while time.monotonic() < end and not clicked.is_set():
                    try:
                        await asyncio.wait_for(clicked.wait(), PUMP_SECONDS)
                    except TimeoutError:
                        pass
                    watch.pump()
            if clicked.is_set():
                return await self._cancelled_from_the_cell(watch)
            while watch.draining():
                await asyncio.sleep(PUMP_SECONDS)
                watch.pump()
        except asyncio.CancelledError:
            raise self._interrupted(watch) from None
        finally:
            watch.close()
        return self._finish(watch)

    def _interrupted(self, watch: _Watch) -> OffloadInterrupted:
        """An interrupted wait cancels the job; the one-line error that ends the cell."""
        watch.close()
        self._cancel_quietly()
        return OffloadInterrupted(
            f"Interrupted: the batch cell {self.id} is cancelled at {self._job.get('site_name')}."
        )

    async def _cancelled_from_the_cell(self, watch: _Watch) -> dict[str, Any]:
        """The Cancel button: cancel, show the job until it has ended (its pod gone), and end
        the cell with one line saying so. A job that ended meanwhile ends as it would have."""
        try:
            watch.step(await asyncio.to_thread(self.cancel))
        except OffloadError as e:
            if getattr(e, "code", None) != "already_ended":
                raise
        end = time.monotonic() + CANCEL_SECONDS
        while self._job.get("state") not in FINAL and time.monotonic() < end:
            await asyncio.sleep(POLL_SECONDS)
            watch.step(await asyncio.to_thread(self.status))
        if self._job.get("state") != "cancelled":
            if self._job.get("state") in FINAL:
                while watch.draining():
                    await asyncio.sleep(PUMP_SECONDS)
                    watch.pump()
                watch.close()
                return self._finish(watch)
        watch.close()
        where = self._job.get("site_name")
        if watch.view is not None:
            watch.view.finish(self._job, watch.clock(), f"Cancelled at {where} from this cell.")
        raise OffloadCancelled(
            f"The batch cell {self.id} is cancelled at {where}"
            + ("" if self._job.get("state") == "cancelled" else " (it is still ending)")
            + "; its variables are not set."
        )

    def _cancel_quietly(self) -> None:
        try:
            self.cancel()
        except OffloadError as e:
            if getattr(e, "code", None) != "already_ended":
                raise

    def _finish(self, watch: _Watch) -> dict[str, Any]:
        if watch.view is not None:
            watch.view.finish(self._job, watch.clock())
        values = self.result(wait=False)
        if self._assign is not None:
            self._assign(values)
        return values


class _Watch:
    """One wait's view and log follower: the state from each look at the job, the log's
    lines as they arrive (followed from the moment the job runs, or has ended)."""

    def __init__(self, job: OffloadJob, view: View | None) -> None:
        self.job = job
        self.view = view
        self.clock = Clock(job._job)
        self.follower: LogFollower | None = None
        self._drain_end: float | None = None

    def step(self, job: dict[str, Any]) -> dict[str, Any]:
        state = job.get("state")
        if self.view is not None:
            if self.follower is None and state in ("running", *FINAL) and state != "cancelled":
                self.follower = LogFollower(self.job._client, self.job.id).start()
            self.pump()
            self.view.show(job, self.clock())
        return job

    def pump(self) -> None:
        if self.view is not None:
            if self.follower is not None:
                self.view.lines(self.follower.take())
            self.view.show(self.job._job, self.clock())

    def draining(self) -> bool:
        """The job has ended: whether the rest of its log (up to the result frame) is still
        on its way; call again after a pause, with :meth:`pump` in between."""
        if self.view is None:
            return False
        if self._drain_end is None:
            self._drain_end = time.monotonic() + DRAIN_SECONDS
            if self.follower is None:
                self.step(self.job._job)
        if self.follower is None or self.follower.done.is_set():
            self.pump()
            return False
        return time.monotonic() < self._drain_end

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()


class OffloadCancelled(Exception):
    """The batch cell was cancelled with its Cancel button; told in one line (IPython shows
    what ``_render_traceback_`` returns instead of a traceback,
    https://ipython.readthedocs.io/en/stable/api/generated/IPython.core.interactiveshell.html)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class OffloadInterrupted(KeyboardInterrupt):
    """The kernel was interrupted while it waited for a batch cell, which is cancelled."""

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


@magics_class
class OffloadMagics(Magics):
    def _client(self) -> ServiceClient:
        try:
            return ServiceClient()
        except OffloadError as e:
            raise UsageError(str(e)) from None

    def _assigner(self) -> Callable[[dict[str, Any]], None]:
        return lambda values: self.shell.user_ns.update(values)  # type: ignore[union-attr]

    @magic_arguments()
    @argument(
        "--site", help="a site of the catalogue (vega, psnc, kbfi, ukri); default: this session's"
    )
    @argument("--gpus", type=int, help="GPUs for the job")
    @argument("--partition", help="the site's partition (default: one that offers the GPUs)")
    @argument("--cpus", type=int, help="CPUs for the job")
    @argument("--memory", help="memory for the job, e.g. 32G")
    @argument("--time", help="the job's time limit, e.g. 30m, 2h, 04:00:00")
    @argument("--image", help="the job's image; default: this session's")
    @argument("--in", dest="inputs", action="append", help="variables to send, e.g. x,df")
    @argument("--out", dest="outputs", action="append", help="variables to get back, e.g. model")
    @argument("--name", help="a name for the job (shown in the Jobs panel)")
    @argument("--no-auto-in", action="store_true", help="send only the --in variables")
    @argument(
        "--allow-large",
        action="store_true",
        help="load a result over the service's limit on a result loaded at once",
    )
    @argument(
        "--rucio",
        dest="rucio",
        action="store_true",
        default=None,
        help="take a DataLake (Rucio) token to the job (refused if the hub has none to give). "
        "Default: on in a session with a DataLake, whose data a cell most likely reads, and "
        "taken only when the hub signs in with EGI Check-in",
    )
    @argument(
        "--no-rucio",
        dest="rucio",
        action="store_false",
        help="send no DataLake token with the job (a cell that does not use the DataLake)",
    )
    @argument("--wait", dest="wait", action="store_true", default=True, help="wait (default)")
    @argument("--no-wait", dest="wait", action="store_false", help="return an OffloadJob at once")
    @cell_magic
    def offload(self, line: str, cell: str) -> OffloadJob | None:
        """Run this cell as a batch job at an interTwin site; see the module's help."""
        job, wait = self._submit(line, cell)
        if not wait:
            return job
        _wait(job)
        return None

    async def offload_async(self, line: str, cell: str) -> OffloadJob | None:
        """``%%offload`` as a kernel runs it (:func:`await_offload`): the wait goes on in the
        kernel's event loop, so the widget's Cancel button works."""
        job, wait = self._submit(line, cell)
        if not wait:
            return job
        await _wait_async(job)
        return None

    def _submit(self, line: str, cell: str) -> tuple[OffloadJob, bool]:
        args = parse_argstring(self.offload, line)
        shell = self.shell
        assert shell is not None
        ns = shell.user_ns
        explicit = _names(args.inputs)
        outputs = _names(args.outputs)
        for name in explicit:
            if name not in ns:
                raise UsageError(f"--in {name}: this notebook has no variable {name!r}.")
        try:
            auto = [] if args.no_auto_in else sorted(needed_names(cell))
        except SyntaxError as e:
            raise UsageError(f"The cell is not valid Python: {e}") from None
        hidden = getattr(shell, "user_ns_hidden", {})
        names = list(dict.fromkeys(explicit))
        for n in auto:
            if n in ns and n not in hidden and n not in _IPYTHON_NAMES and not n.startswith("_"):
                if n not in names:
                    names.append(n)
        try:
            packed = pack_inputs(cell, {n: ns[n] for n in names}, outputs)
        except PackError as e:
            raise UsageError(str(e)) from None
        if len(packed) > frame.MAX_INPUT_BYTES:
            raise UsageError(
                f"The cell's inputs ({', '.join(names) or 'its source'}) are "
                f"{len(packed) / 2**20:.1f} MiB packed, over the "
                f"{frame.MAX_INPUT_BYTES // 1024} KiB a batch cell can carry. Put large data "
                "in the DataLake (the DataLake panel makes it available at the site) and read "
                "it in the cell from there."
            )
        body: dict[str, Any] = {
            "site": args.site or os.environ.get("INTERTWIN_SITE") or None,
            "inputs": base64.b64encode(packed).decode(),
        }
        if body["site"] is None:
            raise UsageError("Say where to run the cell: --site vega (or psnc, kbfi, ukri).")
        image = args.image or os.environ.get("JUPYTER_IMAGE") or None
        for key, value in (
            ("gpus", args.gpus),
            ("partition", args.partition),
            ("cpus", args.cpus),
            ("memory", args.memory),
            ("time", args.time),
            ("image", image),
            ("name", args.name),
            ("notebook_path", notebook_path()),
            ("cell_id", _cell_id(shell)),
        ):
            if value is not None:
                body[key] = value
        body.update(rucio_fields(args.rucio, os.environ))
        client = self._client()
        try:
            submitted = client.submit(body)
        except OffloadError as e:
            if body.get("rucio") == "if-available" and getattr(e, "code", None) in _TOKEN_ERRORS:
                raise UsageError(
                    f"{e} (The cell takes a DataLake token because this session has a "
                    "DataLake; %%offload --no-rucio sends it without one.)"
                ) from None
            raise UsageError(str(e)) from None
        if submitted.get("warning"):  # the VO's budget at the site is 90 % used or more
            print(submitted["warning"], file=sys.stderr, flush=True)
        job = OffloadJob(client, submitted, self._assigner(), args.allow_large)
        return job, bool(args.wait)

    @line_magic
    def offload_jobs(self, line: str) -> None:
        """``%offload_jobs [--all]``: this notebook's batch cells, newest first (``--all``:
        every batch cell of yours)."""
        client = self._client()
        notebook = notebook_path()
        every = "--all" in line.split() or not notebook
        try:
            jobs = client.jobs(kind="batch-cell", limit=1000)["jobs"]
        except OffloadError as e:
            raise UsageError(str(e)) from None
        print(jobs_table([j for j in jobs if every or j.get("notebook_path") == notebook]))

    @line_magic
    def offload_attach(self, line: str) -> OffloadJob | None:
        """``%offload_attach ID [--no-wait] [--allow-large]``: attach to a batch cell (after a
        kernel restart, say): wait for it and assign the variables it returns; ``--no-wait``:
        its handle; ``--allow-large``: load a result over the service's limit."""
        job, wait = self._attach(line)
        if not wait:
            return job
        _wait(job)
        return None

    async def offload_attach_async(self, line: str) -> OffloadJob | None:
        """``%offload_attach`` alone in a cell, as a kernel runs it (:func:`await_offload`)."""
        job, wait = self._attach(line)
        if not wait:
            return job
        await _wait_async(job)
        return None

    def _attach(self, line: str) -> tuple[OffloadJob, bool]:
        parts = line.split()
        if not parts:
            raise UsageError("Usage: %offload_attach JOB_ID [--no-wait] [--allow-large]")
        client = self._client()
        try:
            job = OffloadJob(
                client, client.job(parts[0]), self._assigner(), "--allow-large" in parts[1:]
            )
        except OffloadError as e:
            raise UsageError(str(e)) from None
        return job, "--no-wait" not in parts[1:]


# IPython turns ``%%offload ARGS`` + BODY into this one line (its cell_magic transformer,
# https://github.com/ipython/ipython/blob/main/IPython/core/inputtransformer2.py), and a cell
# that is only ``%offload_attach ID`` into the second
_CELL_CALL = "get_ipython().run_cell_magic('offload', "
_ATTACH_CALL = "get_ipython().run_line_magic('offload_attach', "
_REGISTRY = "get_ipython().magics_manager.registry['OffloadMagics']"


def await_offload(lines: list[str]) -> list[str]:
    """An IPython input transformer (``input_transformers_post``,
    https://ipython.readthedocs.io/en/stable/config/inputtransforms.html): in a kernel that
    runs cells with top-level ``await`` in its asyncio loop, a ``%%offload`` cell awaits its
    job instead of blocking the loop, so the kernel still handles the widget's messages (the
    Cancel button) while it waits."""
    if not lines or not _kernel_awaits() or _inside_a_running_cell():
        return lines
    first = lines[0]
    if first.startswith(_CELL_CALL):
        return [f"await {_REGISTRY}.offload_async({first[len(_CELL_CALL) :]}", *lines[1:]]
    if first.startswith(_ATTACH_CALL) and len(lines) == 1:
        return [f"await {_REGISTRY}.offload_attach_async({first[len(_ATTACH_CALL) :]}"]
    return lines


def _inside_a_running_cell() -> bool:
    """Whether a running cell asks for this transformation (a magic such as ``%%time`` or
    ``%%capture`` runs its body itself, and not as a coroutine in the kernel's loop): then
    ``InteractiveShell.run_code`` is among the callers."""
    from IPython import get_ipython
    from IPython.core.interactiveshell import InteractiveShell

    codes = {InteractiveShell.run_code.__code__, type(get_ipython()).run_code.__code__}
    f = inspect.currentframe()
    while f is not None:
        if f.f_code in codes:
            return True
        f = f.f_back
    return False


def _kernel_awaits() -> bool:
    """A kernel (ipykernel) whose shell runs top-level ``await`` in the running asyncio loop
    (``%autoawait`` on, with the asyncio runner: what ipykernel requires to run a cell as a
    coroutine)."""
    from IPython import get_ipython

    try:
        from IPython.core.async_helpers import _asyncio_runner
    except ImportError:
        return False
    shell = get_ipython()
    return (
        shell is not None
        and getattr(shell, "kernel", None) is not None
        and bool(getattr(shell, "autoawait", False))
        and getattr(shell, "loop_runner", None) is _asyncio_runner
    )


def _wait(job: OffloadJob) -> None:
    """Wait for the job in the cell; a result over the limit ends the cell with its sentence
    (a UsageError shows it without a traceback of this module)."""
    try:
        job.wait()
    except ResultTooLarge as e:
        raise UsageError(str(e)) from None


async def _wait_async(job: OffloadJob) -> None:
    """:func:`_wait` in the kernel's event loop (the widget's Cancel button works)."""
    try:
        await job.wait_async()
    except ResultTooLarge as e:
        raise UsageError(str(e)) from None


def rucio_fields(asked: bool | None, env: Any) -> dict[str, str]:
    """The request's DataLake token fields: ``--rucio`` (True) requires a token, ``--no-rucio``
    (False) sends none; by default a session with a DataLake (``$RUCIO_BASE_URL``) takes one
    when the hub has one. With the session's Rucio hosts, which the job's rucio.cfg gets."""
    base = env.get(RUCIO_BASE_URL_ENV) or None
    if asked is False or (asked is None and base is None):
        return {}
    fields = {"rucio": "required" if asked else "if-available"}
    if base:
        fields["rucio_host"] = base
        fields["rucio_auth_host"] = env.get(RUCIO_AUTH_URL_ENV) or base
    return fields


def jobs_table(jobs: list[dict[str, Any]]) -> str:
    """One line a job: id, site, state in the site's words, submitted, cell."""
    if not jobs:
        return "No batch cells."
    rows = [("id", "site", "state", "submitted", "cell")]
    for j in jobs:
        rows.append(
            (
                j["id"],
                j.get("site_name") or j["site"],
                j.get("sentence") or j["state"],
                (j.get("submitted") or "")[:19].replace("T", " "),
                j.get("cell_id") or "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _cell_id(shell: Any) -> str | None:
    """The id JupyterLab sends with the cell's execute request (``metadata.cellId``)."""
    kernel = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        parent = None
    cell = ((parent or {}).get("metadata") or {}).get("cellId")
    return str(cell) if cell else None
