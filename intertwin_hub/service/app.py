"""The ``intertwin`` hub service's tornado app: the jobs API of ``openapi.yaml``.

Started by JupyterHub as a managed service (``c.JupyterHub.services`` with a ``command``), which
hands it ``JUPYTERHUB_SERVICE_URL`` (where to listen), ``JUPYTERHUB_SERVICE_PREFIX``
(``/services/intertwin/``), ``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_API_URL``
(https://jupyterhub.readthedocs.io/en/stable/reference/services.html#launching-a-hub-managed-service).
Every request is authenticated with ``jupyterhub.services.auth.HubOAuth``: the caller's token
(``Authorization: token ...``) or the service's OAuth cookie, and the scope
``access:services!service=intertwin``. The caller's identity comes only from that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config import incluster_config
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.web import Application, RequestHandler

from ..errors import ApiError, JSONErrorsMixin, bad_request
from ..labels import KIND_NOTEBOOK, KINDS
from ..sites import Catalogue, load_catalogue
from ..status import FINAL, STATES
from . import db
from .index import Index
from .lifetime import exit_with_the_hub
from .results import Results, ResultSettings
from .submit import submit_cell
from .tokens import RucioTokens, issuer_from_env
from .watch import Watcher

log = logging.getLogger("intertwin.service")
ADMIN_CACHE_SECONDS = 60.0
# how long a cancel waits for the hub to finish what it is doing with a server
HUB_PENDING_SECONDS = 60.0
# says where a log answer comes from: "live" (the site, through the Kubernetes API) or
# "stored-tail" (the last lines the service kept when the job ended; its pod is gone)
LOG_SOURCE_HEADER = "Intertwin-Log-Source"
# how often the usage ledger notes the live pods as seen alive (the best known end of a pod
# that vanishes while the service is down is at most this old)
SEEN_ALIVE_SECONDS = 60.0


class Service:
    """What every handler shares: the index, the history, the cluster and the hub."""

    def __init__(
        self,
        catalogue: Catalogue,
        store: db.Store,
        namespace: str,
        api: client.ApiClient,
        results: ResultSettings | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.namespace = namespace
        self.api = api
        self.core = client.CoreV1Api(api)
        self.index = Index(catalogue, store)
        self.watcher = Watcher(api, namespace, self.index)
        self.results = Results(self, results or ResultSettings())
        self.watcher.on_pod = self.results.ended
        self.hub_api_url = os.environ.get("JUPYTERHUB_API_URL", "")
        self.hub_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        # fresh DataLake tokens for running sessions (GET /token/rucio)
        self.rucio_tokens = RucioTokens(issuer_from_env(), self.hub_api_url, self.hub_token)
        # how a batch cell's container starts Python (the job's image decides what that is)
        self.runner_python = "python3"

    async def hub(self, method: str, path: str) -> Any:
        req = HTTPRequest(
            url_path_join(self.hub_api_url, path),
            method=method,
            headers={"Authorization": f"token {self.hub_token}"},
            allow_nonstandard_methods=True,
        )
        resp = await AsyncHTTPClient().fetch(req)
        return json.loads(resp.body) if resp.body else None

    async def user_model(self, name: str) -> dict[str, Any]:
        """The hub's model of a user (admin flag, groups), asked of the hub with this
        service's own token (``read:users``), not with the caller's, whose scopes may not
        include them; kept for a minute."""
        hit = self._users.get(name)
        if hit and time.monotonic() - hit[0] < ADMIN_CACHE_SECONDS:
            return hit[1]
        model = await self.hub("GET", f"users/{quote(name, safe='')}") or {}
        # the service may read auth state (admin:auth_state, for /token/rucio): no tokens in
        # this cache
        model.pop("auth_state", None)
        self._users[name] = (time.monotonic(), model)
        return dict(model)

    async def is_admin(self, name: str) -> bool:
        return bool((await self.user_model(name)).get("admin"))


class BaseHandler(JSONErrorsMixin, HubOAuthenticated, RequestHandler):
    svc: Service
    user_name: str
    admin: bool

    def initialize(self, svc: Service) -> None:
        self.svc = svc

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        allowed = None
        if model and model.get("kind", "user") == "user":
            try:
                allowed = self.check_hub_user(model)
            except Exception:
                allowed = None
        if not allowed:
            raise ApiError(
                403,
                "forbidden",
                "Sign in to the hub; your token must allow access to the intertwin "
                "service (scope access:services!service=intertwin).",
            )
        self.user_name = allowed["name"]
        self.admin = await self.svc.is_admin(self.user_name)

    def check_xsrf_cookie(self) -> None:
        # token requests carry no cookie; cookie requests are checked by HubOAuth's own rule
        if self.request.headers.get("Authorization"):
            return
        super().check_xsrf_cookie()

    def job(self, uid: str) -> db.Job:
        """The caller's job (an admin's: anyone's); anything else is a 404 that does not
        say whether the id exists."""
        job = self.svc.store.get(uid)
        if job is None or (job.user != self.user_name and not self.admin):
            raise ApiError(404, "not_found", "There is no such job among yours.")
        return job

    def job_json(self, job: db.Job) -> dict[str, Any]:
        note = None if job.state in FINAL else self.svc.index.note_for(job.site, job.kind)
        return db.job_json(job, self.svc.index.site_name(job.site), note)

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def _time_param(h: RequestHandler, name: str) -> datetime | None:
    raw = h.get_query_argument(name, None)
    if raw is None:
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            name, f"{name} must be an ISO 8601 time such as 2026-12-04T12:00:00Z."
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class JobsHandler(BaseHandler):
    async def post(self) -> None:
        """Submit a batch cell (``submit.py``)."""
        done = await submit_cell(self.svc, self.user_name, self.request.body)
        expires = done.rucio_expires_at
        self.write_json(
            {
                **self.job_json(done.job),
                "warning": done.warning,
                "rucio_token_expires_at": None
                if expires is None
                else datetime.fromtimestamp(expires, UTC).isoformat(),
            },
            201,
        )

    async def get(self) -> None:
        site = self.get_query_argument("site", None)
        if site is not None and self.svc.catalogue.get(site) is None:
            raise bad_request(
                "site",
                f"No site is called {site!r}; the sites are "
                f"{', '.join(s.slug for s in self.svc.catalogue)}.",
            )
        kind = self.get_query_argument("kind", None)
        if kind is not None and kind not in KINDS:
            raise bad_request("kind", f"kind must be one of {', '.join(KINDS)}.")
        states: frozenset[str] | None = None
        raw_state = self.get_query_argument("state", None)
        if raw_state:
            wanted = {s.strip() for s in raw_state.split(",") if s.strip()}
            if "active" in wanted:
                wanted = (wanted - {"active"}) | (set(STATES) - FINAL)
            unknown = wanted - set(STATES)
            if unknown:
                raise bad_request(
                    "state",
                    f"Unknown state {sorted(unknown)[0]!r}; the states "
                    f"are {', '.join(STATES)} and active.",
                )
            states = frozenset(wanted)
        try:
            limit = int(self.get_query_argument("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise bad_request("limit", "limit must be a whole number from 1 to 1000.")
        user: str | None = self.user_name
        if self.admin:
            user = self.get_query_argument("user", None)
        filters = db.Filters(
            site=site,
            states=states,
            kind=kind,
            since=_time_param(self, "since"),
            until=_time_param(self, "until"),
        )
        try:
            rows, nxt = self.svc.store.page(
                user, filters, limit, self.get_query_argument("cursor", None)
            )
        except db.CursorError as e:
            raise bad_request("cursor", str(e).capitalize() + ".") from None
        self.write_json({"jobs": [self.job_json(j) for j in rows], "next": nxt})


class JobHandler(BaseHandler):
    async def get(self, uid: str) -> None:
        job = self.job(uid)
        self.write_json({**self.job_json(job), "last_lines": db.last_lines(job)})

    async def delete(self, uid: str) -> None:
        job = self.job(uid)
        if job.state in FINAL:
            raise ApiError(409, "already_ended", f"This job has already ended ({job.state}).")
        self.svc.index.cancelling.add(uid)
        if uid in self.svc.index.pods and uid not in self.svc.watcher.tails:
            # the log goes with the pod: its last lines before the cancel are kept
            await self.svc.watcher.keep_tail(uid, job.pod)
        if job.kind == KIND_NOTEBOOK:
            # through the hub, so it knows the server is gone
            user = quote(job.user, safe="")
            path = (
                f"users/{user}/servers/{quote(job.server_name, safe='')}"
                if job.server_name
                else f"users/{user}/server"
            )
            await self._wait_until_the_hub_is_done_with(job, f"users/{user}")
            try:
                await self.svc.hub("DELETE", path)
            except HTTPClientError as e:
                if e.code != 400:  # 400: the hub holds no such server any more
                    raise ApiError(
                        502, "kubernetes_error", f"The hub could not stop the server: {e}"
                    ) from None
                await self._delete_pod(job)
        else:
            await self._delete_pod(job)
        self.write_json(self.job_json(self.svc.store.get(uid) or job), 202)

    async def _wait_until_the_hub_is_done_with(self, job: db.Job, user_path: str) -> None:
        """JupyterHub refuses to stop a server while an action on it is pending (a start, or
        the check of every server it does right after its own restart) and answers 500: wait
        for the hub to finish, then stop. A server the hub no longer holds is left to DELETE."""
        end = time.monotonic() + HUB_PENDING_SECONDS
        while True:
            try:
                model = await self.svc.hub("GET", user_path)
            except HTTPClientError:
                return
            servers = (model or {}).get("servers") or {}
            pending = (servers.get(job.server_name or "") or {}).get("pending")
            if not pending:
                return
            if time.monotonic() > end:
                raise ApiError(
                    409,
                    "hub_busy",
                    f"The hub is still busy with this server ({pending}); try again in a minute.",
                )
            await asyncio.sleep(0.5)

    async def _delete_pod(self, job: db.Job) -> None:
        try:
            await self.svc.core.delete_namespaced_pod(job.pod, self.svc.namespace)
        except ApiException as e:
            if e.status != 404:
                raise ApiError(
                    502, "kubernetes_error", f"Kubernetes refused to delete the pod: {e.reason}"
                ) from None


class LogsHandler(BaseHandler):
    async def get(self, uid: str) -> None:
        job = self.job(uid)
        try:
            tail = int(self.get_query_argument("tail", "1000"))
        except ValueError:
            tail = 0
        if not 1 <= tail <= 100000:
            raise bad_request("tail", "tail must be a whole number from 1 to 100000.")
        follow = self.get_query_argument("follow", "false").lower() in ("1", "true", "yes")
        if uid not in self.svc.index.pods:
            self.stored_tail(job, tail, "The job's pod is gone, and its log with it.")
            return
        try:
            resp: Any = await self.svc.core.read_namespaced_pod_log(
                job.pod, self.svc.namespace, tail_lines=tail, follow=follow, _preload_content=False
            )
        except ApiException as e:
            if e.status in (400, 404):
                fresh = self.svc.store.get(uid) or job
                self.stored_tail(fresh, tail, f"The site has no log of this job (yet): {e.reason}")
                return
            raise ApiError(502, "kubernetes_error", f"Kubernetes: {e.reason}") from None
        except (TimeoutError, OSError):
            raise ApiError(
                503, "kubernetes_unavailable", "The Kubernetes API cannot be reached."
            ) from None
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header(LOG_SOURCE_HEADER, "live")
        try:
            async for chunk in resp.content.iter_any():
                self.write(chunk)
                if follow:
                    await self.flush()
        except StreamClosedError:
            pass
        finally:
            resp.release()
        self.finish()

    def stored_tail(self, job: db.Job, tail: int, none_kept: str) -> None:
        """The last lines kept when the job ended (at most ``tail`` of them), or a 409 saying
        ``none_kept`` when there are none."""
        lines = db.last_lines(job)
        if lines is None:
            raise ApiError(409, "already_ended", none_kept)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header(LOG_SOURCE_HEADER, "stored-tail")
        self.finish("".join(f"{line}\n" for line in lines[-tail:]))


class ResultHandler(BaseHandler):
    async def get(self, uid: str) -> None:
        """A batch cell's result frame, kept from its log (``results.py``), streamed from its
        file: the service holds a chunk of it at a time, whatever its size."""
        results = self.svc.results
        raw = self.get_query_argument("max_bytes", None)
        max_bytes = results.settings.max_result_bytes
        if raw is not None:
            try:
                max_bytes = int(raw)
            except ValueError:
                max_bytes = -1
            if max_bytes < 0:
                raise bad_request(
                    "max_bytes",
                    "max_bytes must be a whole number of bytes (0: the result whatever its size).",
                )
        job = await results.result_of(self.job(uid))
        results.check_size(job, max_bytes)
        length, chunks = results.answer(job)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Length", str(length))
        try:
            async for chunk in chunks:
                self.write(chunk)
                # written out before the next chunk is read: one chunk in memory at a time
                await self.flush()
        except StreamClosedError:
            return
        finally:
            await chunks.aclose()
        self.finish()


class SitesHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"sites": [self.svc.index.site_json(s) for s in self.svc.catalogue]})


class RucioTokenHandler(BaseHandler):
    async def get(self) -> None:
        """A fresh DataLake token for the caller (``tokens.py``): the user comes from the
        caller's token only; an admin gets their own too."""
        token = await self.svc.rucio_tokens.token_for(self.user_name)
        self.set_header("Cache-Control", "no-store")
        issuer = self.svc.rucio_tokens.issuer
        self.write_json(
            {
                "access_token": token.access_token,
                "expires_at": datetime.fromtimestamp(token.expires_at, UTC).isoformat(),
                "expires_in": max(0, int(token.expires_at - time.time())),
                "audience": issuer.audience if issuer else None,
            }
        )


def make_app(svc: Service, prefix: str) -> Application:
    from . import usage_api  # its handlers build on BaseHandler above

    api = url_path_join(prefix, "api")
    args = {"svc": svc}
    return Application(
        [
            *usage_api.routes(api, args),
            (url_path_join(api, "jobs"), JobsHandler, args),
            (url_path_join(api, r"jobs/([^/]+)"), JobHandler, args),
            (url_path_join(api, r"jobs/([^/]+)/logs"), LogsHandler, args),
            (url_path_join(api, r"jobs/([^/]+)/result"), ResultHandler, args),
            (url_path_join(api, "sites"), SitesHandler, args),
            (url_path_join(api, "token/rucio"), RucioTokenHandler, args),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        hub_auth=HubOAuth.instance(),
    )


async def serve(argv: list[str] | None = None, hub_pid: int | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m intertwin_hub.service", description="The intertwin JupyterHub service."
    )
    p.add_argument(
        "--db-url",
        default=os.environ.get("INTERTWIN_SERVICE_DB_URL", "sqlite:///intertwin-service.sqlite"),
        help="SQLAlchemy URL of the history database",
    )
    p.add_argument(
        "--namespace",
        default=os.environ.get("INTERTWIN_NAMESPACE", "default"),
        help="the namespace of the workload pods",
    )
    p.add_argument(
        "--catalogue",
        default=os.environ.get("INTERTWIN_SITE_CATALOGUE"),
        help="the site catalogue (default: the shipped sites.yaml)",
    )
    p.add_argument(
        "--runner-python",
        default=os.environ.get("INTERTWIN_OFFLOAD_PYTHON", "python3"),
        help="the Python a batch cell's container runs the offload runner with (in the job's "
        "image; the testbed's plugin runs jobs on this machine, so it names the venv's)",
    )
    p.add_argument(
        "--max-result-bytes",
        type=int,
        help="the largest result answered unless the caller asks for more "
        "(ResultSettings.max_result_bytes; default $INTERTWIN_RESULT_MAX_BYTES or 64 MiB)",
    )
    p.add_argument(
        "--finished-pod-grace",
        type=float,
        help="seconds a finished batch cell's pod is left once its result is kept "
        "(ResultSettings.finished_pod_grace; default $INTERTWIN_FINISHED_POD_GRACE or 60)",
    )
    p.add_argument(
        "--results-dir",
        help="where results are kept (ResultSettings.results_dir; default "
        "$INTERTWIN_RESULTS_DIR or ./intertwin-results)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    store = db.open_store(a.db_url)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        # in the hub pod: the service's own ServiceAccount token (mounted from its Secret),
        # not the pod's, which is the hub's
        token = os.environ.get("INTERTWIN_KUBE_TOKEN_FILE", incluster_config.SERVICE_TOKEN_FILENAME)
        incluster_config.InClusterConfigLoader(
            token_filename=token,
            cert_filename=incluster_config.SERVICE_CERT_FILENAME,
        ).load_and_set()
    else:
        await config.load_kube_config()
    api = client.ApiClient()
    settings = ResultSettings()
    for name in ("max_result_bytes", "finished_pod_grace", "results_dir"):
        if getattr(a, name) is not None:
            setattr(settings, name, getattr(a, name))
    svc = Service(load_catalogue(a.catalogue), store, a.namespace, api, settings)
    svc.runner_python = a.runner_python
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/intertwin/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app = make_app(svc, prefix)
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    log.info(
        "intertwin service at %s%s, history in %s", url.geturl(), prefix, a.db_url.split("@")[-1]
    )
    # the hub stops a managed service with SIGINT, then SIGTERM: both end it at once (every
    # history write is its own committed transaction). asyncio.run's own SIGINT handling only
    # cancels the tasks, and on the testbed the service was seen to outlive its hub that way.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, sig)
    await asyncio.gather(
        svc.watcher.run(),
        svc.results.prune_forever(),
        _keep_seeing(svc),
        exit_with_the_hub(hub_pid or os.getppid()),
    )


async def _keep_seeing(svc: Service, interval: float = SEEN_ALIVE_SECONDS) -> None:
    """Note every live pod as seen alive, every ``interval``: a pod that vanishes while the
    service is down is closed in the ledger at the last such note (marked estimated)."""
    while True:
        await asyncio.sleep(interval)
        if svc.watcher.pods_listed.is_set():
            try:
                svc.index.seen_alive()
            except Exception:
                log.exception("noting the live pods in the usage ledger")


def _stop(sig: int) -> None:
    log.info("stopping on %s", signal.Signals(sig).name)
    os._exit(0)
