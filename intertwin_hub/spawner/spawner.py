"""The spawner: a KubeSpawner whose profiles come from the site catalogue."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.utils import url_path_join
from kubespawner import KubeSpawner
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httputil import url_concat
from traitlets import Bool, Dict, Float, TraitError, Unicode, default
from traitlets import validate as validate_trait

from ..sites import REACH_MODES, Catalogue, CatalogueError, load_catalogue
from ..status import event_sentence, progress_sentence
from .compat import SpawnException
from .options import OptionsError, Selection, validate, vos_of
from .pod import (
    GPU_RESOURCE,
    SECRET_ENV_DIR,
    SECRET_ENV_VOLUME,
    PodPlan,
    conflicting_reach_annotations,
    is_secret_env,
    plan_pod,
    rucio_env,
    secret_env_command,
    site_env,
)
from .profiles import profile_list

_catalogues: dict[str | None, Catalogue] = {}
# how often progress says the site still keeps the user waiting, and how long it allows
PATIENCE_SECONDS = 30.0


# the session's address of the intertwin hub service (the lab extension and %%offload read it)
SERVICE_URL_ENV = "INTERTWIN_SERVICE_URL"
SERVICE_NAME = "intertwin"
# tells the session's DataLake gateway to renew its Rucio token through the service
# (server_extension/intertwin_lab/datalake/config.py reads it)
RUCIO_TOKEN_FROM_SERVICE_ENV = "INTERTWIN_RUCIO_TOKEN_FROM_SERVICE"


def service_url_of(public_hub_url: str) -> str:
    """The service's public address from the hub's (``https://h.example/hub/`` →
    ``https://h.example/services/intertwin/``: JupyterHub's proxy routes every service at
    ``{base_url}services/{name}/``,
    https://jupyterhub.readthedocs.io/en/stable/reference/services.html); "" without one."""
    if not public_hub_url:
        return ""
    base = public_hub_url if public_hub_url.endswith("/") else public_hub_url + "/"
    if base.endswith("/hub/"):
        base = base[: -len("hub/")]
    return f"{base}services/{SERVICE_NAME}/"


def catalogue_at(path: str | None) -> Catalogue:
    """One parsed catalogue per path for the whole hub, not one per spawner."""
    if path not in _catalogues:
        _catalogues[path] = load_catalogue(path)
    return _catalogues[path]


class InterTwinSpawner(KubeSpawner):
    """Spawn JupyterLab on a site of the catalogue: the UKRI cloud, or an HPC/HTC site through
    that site's interLink virtual node.

    Profile-dependent settings are applied after KubeSpawner's own profile overrides (in
    ``load_user_options`` and ``get_pod_manifest``), so neither a profile nor a group override
    can undo a site rule: JupyterHub runs group overrides, then ``apply_user_options`` (where
    the options are validated), then ``start()``, and KubeSpawner applies profile overrides in
    ``load_user_options``, inside ``_start``
    (https://github.com/jupyterhub/kubespawner/blob/main/kubespawner/spawner.py).
    """

    site_catalogue_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Path of the site catalogue YAML. None uses the catalogue shipped with
        intertwin-hub (UKRI, Vega, PSNC, KBFI). Adding a site is an edit of this file; it is
        validated when the hub starts.""",
    )

    @validate_trait("site_catalogue_path")
    def _valid_catalogue(self, proposal: Any) -> Any:
        try:
            catalogue_at(proposal.value)
        except CatalogueError as e:
            raise TraitError(f"InterTwinSpawner.site_catalogue_path: {e}") from None
        return proposal.value

    progress_poll_interval = Float(
        0.5,
        config=True,
        help="""Seconds between looks at the pod while reporting spawn progress in the site's
        language ("queued at Vega (Slurm job 1234)").""",
    )

    rucio_instance = Dict(
        default_value={},
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""The Rucio DataLake the lab's DataLake panel talks to, as rucio-jupyterlab
        ``RUCIO_*`` variables, e.g. ``{"RUCIO_BASE_URL": "https://rucio-intertwin-testbed.desy.de",
        "RUCIO_AUTH_URL": "https://rucio-intertwin-testbed.desy.de/auth"}``. The destination
        RSE and mount path come from the session's site; the user's OIDC access token (from
        the authenticator's auth_state) travels in the env Secret. Empty: no Rucio config.""",
    )

    scratch_mount_paths = Dict(
        default_value={},
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""Where a site's scratch RSE is mounted on its compute nodes, by site slug,
        overriding the catalogue's ``scratch.mount_path`` for this deployment (the local
        testbed points these at the directories of its Rucio RSEs). Sites not listed use the
        catalogue.""",
    )

    site_reach = Dict(
        default_value={},
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""How this deployment reaches the notebooks of an offload site, by site slug:
        ``"pod-vpn"`` (the site routes the virtual node's PodCIDR to this cluster; the pod gets
        ``interlink.eu/pod-vpn``) or ``"wstunnel"`` (interLink's tunnel: the virtual kubelet,
        with ``Network.EnableTunnel``, exposes the notebook port through an Ingress). Overrides
        the catalogue's ``reach`` (the local testbed routes its loopback PodCIDRs). Sites not
        listed use the catalogue.""",
    )

    service_url = Unicode(
        config=True,
        help="""Where the sessions reach the intertwin hub service (the Jobs panel, %%offload),
        set in each session's environment as INTERTWIN_SERVICE_URL, e.g.
        ``https://hub.intertwin.eu/services/intertwin/``. Default: the hub's public URL
        (``c.JupyterHub.public_url``) with the service's proxy route ``services/intertwin/``;
        offloaded sessions reach the hub only through its public address. Empty (no public URL
        configured): the sessions are not told, and the Jobs panel says the service is not
        reachable.""",
    )

    rucio_token_from_service = Bool(
        False,
        config=True,
        help="""Sessions renew their DataLake (Rucio) token through the intertwin service's
        ``GET /token/rucio`` (which refreshes the user's identity-provider tokens and exchanges
        them for Rucio's audience), instead of keeping the token of spawn time, which expires
        (EGI Check-in's after an hour). Needs a login through an OAuth identity provider with
        refresh tokens, and the service configured with it (INTERTWIN_OIDC_TOKEN_URL, ...).
        Sets INTERTWIN_RUCIO_TOKEN_FROM_SERVICE=1 in sessions that have a Rucio instance.""",
    )

    @default("service_url")
    def _default_service_url(self) -> str:
        return service_url_of(self.public_hub_url)

    selection: Selection | None = None
    _access_token: str | None = None
    # the env Secret's data, built with the pod and created once the pod exists
    _env_secret_data: dict[str, str] | None = None
    _env_secret_labels: dict[str, str] | None = None
    # this spawn's env Secret, named when the pod is built, kept in the state (a hub restart
    # still deletes it when the server stops), forgotten by clear_state
    _env_secret_name: str | None = None
    _configured_http_timeout: int | None = None
    # the pod plan of the selection, made once per spawn by load_user_options
    _plan: tuple[Selection, PodPlan] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._progress_sent = {}
        self._progress_moved = asyncio.Event()
        self._progress_lines = []

    @property
    def catalogue(self) -> Catalogue:
        return catalogue_at(self.site_catalogue_path)

    @property
    def user_vos(self) -> frozenset[str]:
        groups = getattr(self.user, "groups", None) or []
        return vos_of(getattr(g, "name", str(g)) for g in groups)

    @default("profile_list")
    def _default_profile_list(self) -> Any:
        # a callable: evaluated per user, so the form shows only the sites their VOs allow
        def for_user(spawner: InterTwinSpawner) -> list[dict[str, Any]]:
            return profile_list(spawner.catalogue.visible_to(spawner.user_vos))

        for_user.display_only = True  # type: ignore[attr-defined]
        return for_user

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # explicit, because credentials are exported by a prelude that then execs this
        # command: with none, the image's own CMD could not be known (Zero to JupyterHub
        # sets the same default)
        return ["jupyterhub-singleuser"]

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # JupyterHub runs this before start() and answers its SpawnException with a 400,
        # so a refused choice never creates anything, and the site's start_timeout is in
        # force when the hub reads it right after start() returns
        return lambda spawner, user_options: spawner.apply_catalogue_options()

    def select(self) -> Selection:
        """Validate the user's options against the catalogue and their VOs."""
        try:
            return validate(self.catalogue, self.user_vos, self.user_options)
        except OptionsError as e:
            raise SpawnException(str(e), reason="invalid_options", status_code=400) from None

    def apply_catalogue_options(self) -> Selection:
        """Validate ``user_options``, replace them with the canonical selection (what
        KubeSpawner's profile code then reads) and apply the site's timeouts. Idempotent:
        ``load_user_options`` runs it again, for hubs configured with their own
        ``apply_user_options``."""
        sel = self.select()
        self.selection = sel
        self.user_options = sel.user_options()
        if self._configured_http_timeout is None:
            self._configured_http_timeout = self.http_timeout
        self.start_timeout = sel.site.start_timeout
        # a batch job is "running" before its container image is pulled and the server is up
        # (Apptainer pulls inside the job), so an offload site gets the same time again
        self.http_timeout = (
            max(self._configured_http_timeout, sel.site.start_timeout)
            if sel.site.offload
            else self._configured_http_timeout
        )
        return sel

    async def load_user_options(self) -> None:
        sel = self.selection
        if sel is None or self.user_options != sel.user_options():
            # a hub configured with an apply_user_options of its own, or options changed
            # since: validate here (the hub's spawn runs apply_user_options first)
            sel = self.apply_catalogue_options()
        auth_state = (
            await self.user.get_auth_state() if hasattr(self.user, "get_auth_state") else None
        )
        self._access_token = (auth_state or {}).get("access_token")
        if not getattr(self.profile_list, "display_only", False):
            # an operator's own profile_list may carry kubespawner_override: KubeSpawner
            # applies it. Ours carries none (the planner decides the pod), so KubeSpawner's
            # second pass over the form, a deep copy of every visible site, is skipped.
            await super().load_user_options()
        self._apply(self._plan_of(sel))

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._env_secret_name:
            state["env_secret_name"] = self._env_secret_name
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._env_secret_name = state.get("env_secret_name") or None

    def clear_state(self) -> None:
        # JupyterHub clears the state before each spawn, ahead of apply_user_options: a
        # selection must never outlive the spawn it was validated for. After a stop it comes
        # once stop() has deleted the env Secret; before a spawn, the next pod gets a Secret
        # name of its own.
        super().clear_state()
        self.selection = None
        self._plan = None
        self._env_secret_name = None

    def _plan_of(self, sel: Selection) -> PodPlan:
        """The pod plan of ``sel``, made once per selection (options, then the manifest)."""
        if self._plan is None or self._plan[0] is not sel:
            self._plan = (sel, plan_pod(sel, self.reach_of(sel.site)))
        return self._plan[1]

    def reach_of(self, site: Any) -> str | None:
        """How the hub reaches this site's notebooks: this deployment's word, else the
        catalogue's (None for cloud sites)."""
        if not site.offload:
            return None
        reach = self.site_reach.get(site.slug, site.reach)
        if reach not in REACH_MODES:
            raise SpawnException(
                f"The hub configuration says {site.title} is reached by {reach!r}, which is "
                f"neither of {', '.join(REACH_MODES)}. Please tell the hub operators.",
                reason="bad_reach",
                status_code=500,
            )
        return str(reach)

    def _apply(self, plan: PodPlan) -> None:
        self.image = plan.image
        self.cpu_limit = self.cpu_guarantee = plan.cpu
        self.mem_limit = self.mem_guarantee = plan.memory
        limits = dict(self.extra_resource_limits)
        guarantees = dict(self.extra_resource_guarantees)
        limits.pop(GPU_RESOURCE, None)
        guarantees.pop(GPU_RESOURCE, None)
        if plan.gpus:
            # requests too: a GPU limit without a request can hang at Vega (Vega's
            # interLink pods set GPU requests equal to limits)
            limits[GPU_RESOURCE] = str(plan.gpus)
            guarantees[GPU_RESOURCE] = str(plan.gpus)
        self.extra_resource_limits = limits
        self.extra_resource_guarantees = guarantees
        if plan.offload:
            # only ConfigMap, Secret and emptyDir travel to a site: interLink's plugins ship
            # only these volume kinds to the batch job
            self.storage_pvc_ensure = False
            self.volumes = _without_pvc(self.volumes)
            self.volume_mounts = _mounts_of(self.volume_mounts, self.volumes)
            self.automount_service_account_token = False

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        if self.service_url:
            env[SERVICE_URL_ENV] = self.service_url
        if self.selection is not None:
            site = self.selection.site
            mount = self.scratch_mount_paths.get(site.slug)
            env.update(site_env(site, mount))
            env.update(rucio_env(site, dict(self.rucio_instance), self._access_token, mount))
            if self.rucio_token_from_service and self.rucio_instance and self.service_url:
                env[RUCIO_TOKEN_FROM_SERVICE_ENV] = "1"
        return env

    async def get_pod_manifest(self) -> Any:
        pod = await super().get_pod_manifest()
        if self.selection is None:
            return pod
        reach = self.reach_of(self.selection.site)
        plan = self._plan_of(self.selection)
        pod.metadata.labels = {**(pod.metadata.labels or {}), **plan.labels}
        # a pod-vpn annotation from the hub-wide extra_annotations would switch a wstunnel
        # site's VK to pod-vpn (any value does), and the notebook would be unreachable
        dropped = conflicting_reach_annotations(reach)
        pod.metadata.annotations = {
            **{k: v for k, v in (pod.metadata.annotations or {}).items() if k not in dropped},
            **plan.annotations,
        }
        await self._move_secrets_out_of_the_spec(pod)
        if plan.offload:
            pod.spec.node_selector = plan.node_selector
            keys = {t["key"] for t in plan.tolerations}
            kept = [t for t in pod.spec.tolerations or [] if _key(t) not in keys]
            pod.spec.tolerations = [*kept, *plan.tolerations]
            pod.spec.automount_service_account_token = False
            if any(_is_pvc(v) for v in pod.spec.volumes or []):
                raise SpawnException(
                    f"{self.selection.site.title} cannot mount persistent volumes; the hub "
                    "configuration adds one. Please tell the hub operators.",
                    reason="pvc_on_offload",
                    status_code=500,
                )
        return pod

    @property
    def env_secret_name(self) -> str:
        """The env Secret of this spawn: ``<pod>-env-<8 random hex digits>``, a new name for
        every spawn, so no Secret left by an earlier spawn (nor its token) can be mounted by
        the new pod, and nothing has to be deleted before the pod is created."""
        if self._env_secret_name is None:
            self._env_secret_name = f"{self.pod_name}-env-{secrets.token_hex(4)}"
        return self._env_secret_name

    async def _move_secrets_out_of_the_spec(self, pod: Any) -> None:
        """Put credential env vars (the hub API token first) into a Secret mounted as files,
        so no token is readable from the pod object by anyone who may list pods. The Secret
        itself is created right after the pod (``_make_create_pod_request``)."""
        from kubernetes_asyncio.client import (
            V1EnvVar,
            V1SecretVolumeSource,
            V1Volume,
            V1VolumeMount,
        )

        self._env_secret_data = None
        secret: dict[str, str] = {}
        for c in pod.spec.containers:
            kept = []
            for e in c.env or []:
                if is_secret_env(e.name) and e.value is not None:
                    secret[e.name] = e.value
                else:
                    kept.append(e)
            c.env = kept
        if not secret:
            return
        main = pod.spec.containers[0]
        main.env = [*main.env, V1EnvVar(name="INTERTWIN_SECRET_ENV_DIR", value=SECRET_ENV_DIR)]
        main.command, main.args = secret_env_command(main.command or [], main.args or [])
        main.volume_mounts = [
            *(main.volume_mounts or []),
            V1VolumeMount(name=SECRET_ENV_VOLUME, mount_path=SECRET_ENV_DIR, read_only=True),
        ]
        pod.spec.volumes = [
            *(pod.spec.volumes or []),
            V1Volume(
                name=SECRET_ENV_VOLUME,
                secret=V1SecretVolumeSource(secret_name=self.env_secret_name, default_mode=0o400),
            ),
        ]
        self._env_secret_data = secret
        self._env_secret_labels = dict(pod.metadata.labels or {})

    def get_env_secret_manifest(self, pod_uid: str) -> Any:
        """The env Secret, owned by the pod (uid ``pod_uid``): Kubernetes' garbage collector
        deletes it with the pod, even when the hub is not there to do it."""
        from kubernetes_asyncio.client import V1ObjectMeta, V1OwnerReference, V1Secret

        owner = V1OwnerReference(
            api_version="v1",
            kind="Pod",
            name=self.pod_name,
            uid=pod_uid,
            # blockOwnerDeletion would need "update" on pods/finalizers where the
            # OwnerReferencesPermissionEnforcement admission plugin runs; the Zero to
            # JupyterHub hub Role has no such rule, and the Secret needs no foreground deletion
            block_owner_deletion=False,
            controller=False,
        )
        return V1Secret(
            metadata=V1ObjectMeta(
                name=self.env_secret_name,
                labels=dict(self._env_secret_labels or {}),
                owner_references=[owner],
            ),
            string_data=dict(self._env_secret_data or {}),
            type="Opaque",
        )

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """KubeSpawner's pod creation, then the env Secret, owned by the new pod (an owner
        reference needs the pod's uid, which exists only once the pod does).

        The pod mounts a Secret that does not exist yet for a moment: the interLink virtual
        kubelet waits for a missing Secret of a secret volume (it retries every 2 s for 5 min:
        remoteExecutionHandleVolumes in https://github.com/interlink-hq/interLink/blob/9ed14a4/
        pkg/virtualkubelet/execute.go), as a kubelet does. The Secret's name is this spawn's
        own (``env_secret_name``): a Secret of an earlier spawn has another name, so no stale
        token can reach the new pod, and no API call is needed for it before the pod."""
        if self._env_secret_data is None:
            return bool(await super()._make_create_pod_request(pod, request_timeout))
        if not await super()._make_create_pod_request(pod, request_timeout):
            return False
        try:
            created = await self.api.read_namespaced_pod(self.pod_name, self.namespace)
            await self.create_env_secret(self.get_env_secret_manifest(created.metadata.uid))
        except Exception:
            # as KubeSpawner does when its own post-pod objects fail: no half-made server
            await self.stop(now=True)
            raise
        return True

    async def create_env_secret(self, body: Any) -> None:
        """Create the env Secret; one already there is deleted and the Secret created again
        (the hub Role of Zero to JupyterHub may create and delete Secrets, not update them)."""
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            await self.api.create_namespaced_secret(self.namespace, body)
        except ApiException as e:
            if e.status != 409:
                raise
            self.log.info("replacing leftover Secret %s", self.env_secret_name)
            await self._delete_env_secret()
            await self.api.create_namespaced_secret(self.namespace, body)

    async def _delete_env_secret(self) -> None:
        """Delete this spawn's env Secret, if this spawn named one (a server stopped after a
        hub restart: the name comes from the state)."""
        from kubernetes_asyncio.client.exceptions import ApiException

        if self._env_secret_name is None:
            return
        try:
            await self.api.delete_namespaced_secret(self.env_secret_name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                self.log.warning("could not delete Secret %s: %s", self.env_secret_name, e)

    async def stop(self, now: bool = False) -> Any:
        try:
            return await super().stop(now=now)
        finally:
            await self._delete_env_secret()

    async def budget_note(self) -> str | None:
        """Refuse the start once the VO's budget at the site is used up (a SpawnException with
        the service's sentence); the sentence when it is nearly so (from 90 %); else None. The
        intertwin service knows the use (``GET /budgets`` with this server's own token, whose
        scopes reach the service). When it cannot answer, the start goes ahead: a budget is
        accounting, and a service restart must not stop every spawn."""
        sel = self.selection
        budget = sel.site.budget_of(sel.vo) if sel else None
        if sel is None or budget is None:
            return None
        if not (self.service_url and self.api_token):
            self.log.warning("no intertwin service to ask for %s's budget", budget.vo)
            return None
        url = url_concat(
            url_path_join(self.service_url, "api/budgets"),
            {"site": sel.site.slug, "vo": budget.vo},
        )
        req = HTTPRequest(
            url, headers={"Authorization": f"token {self.api_token}"}, request_timeout=10
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
            budgets = json.loads(resp.body)["budgets"]
        except Exception as e:
            self.log.warning(
                "the budget of %s at %s is not known (%s); starting anyway",
                budget.vo,
                sel.site.name,
                e,
            )
            return None
        mine = next((b for b in budgets if b.get("site") == sel.site.slug), None)
        if mine is None:
            return None
        if mine["state"] == "exhausted":
            raise SpawnException(mine["sentence"], reason="budget_exhausted", status_code=403)
        return str(mine["sentence"]) if mine["state"] == "warning" else None

    async def _start(self) -> Any:
        self._progress_lines = []
        self._progress_grew = asyncio.Event()
        note = await self.budget_note()
        if note:
            self._progress_lines.append(note)
            self._progress_grew.set()
        # progress lines are gathered whether or not anyone watches: the progress page may be
        # opened late (the REST API answers only after slow_spawn_timeout)
        watcher = asyncio.ensure_future(self._watch_progress())
        try:
            url = await super()._start()
            # KubeSpawner saw the pod running: the last progress line says so even when the pod
            # went from queued to ready between two looks, and the watching progress pages get that
            # line before start() returns (JupyterHub stops reading progress once the server
            # is up)
            watcher.cancel()
            self._add_progress_lines(started=True)
            await self._progress_caught_up()
            return url
        except BaseException as e:
            await self._delete_env_secret()
            if not isinstance(e, TimeoutError):
                raise
            # KubeSpawner's own timeout text names the pod; say which site did not start it
            site = self.selection.site if self.selection else None
            if site is None:
                raise
            raise TimeoutError(
                f"{site.name} did not start your session within {site.start_timeout} s "
                f"(the queue there may be long). Try again later or pick another site. "
                f"[{e}]"
            ) from e
        finally:
            watcher.cancel()
            self._add_progress_lines()

    # the spawn's progress lines told so far, in order, each once; set when one is added
    _progress_lines: list[str]
    _progress_grew: asyncio.Event
    # open progress streams: how many progress lines each has handed over, and a wake-up call
    _progress_sent: dict[object, int]
    _progress_moved: asyncio.Event

    def _add_progress_lines(self, started: bool = False) -> None:
        """Add what the pod and its events say now to the progress lines told so far, once per
        message; ``started``: KubeSpawner found the pod running, so the last line names the
        node."""
        site = self.selection.site if self.selection else None
        if site is None:
            return
        messages = [
            m
            for ev in (self.events if self.events_enabled else [])
            if (m := event_sentence(site.name, ev))
        ]
        reflector = self.pod_reflector
        pod = reflector.pods.get(self._pod_key()) if reflector else None
        state = progress_sentence(site.name, pod)
        if started:
            node = ((pod or {}).get("spec") or {}).get("nodeName") or site.node.name
            state = f"running on {node}"
        if state:
            messages.append(state)
        for m in messages:
            if m not in self._progress_lines:
                self._progress_lines.append(m)
                self._progress_grew.set()

    async def _watch_progress(self) -> None:
        # Only reads what KubeSpawner's own reflectors hold. Starting a reflector here would
        # let the cancellation below (when options are refused) kill it half-started, and every
        # later spawn would wait forever for its first load.
        while True:
            try:
                self._add_progress_lines()
            except Exception:
                self.log.exception("could not read the spawn progress of %s", self._pod_key())
            await asyncio.sleep(self.progress_poll_interval)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Spawn progress in the site's words: submitted, queued (with the batch job id),
        running on the node; a note every 30 s while the site keeps us waiting."""
        site = self.selection.site if self.selection else None
        if site is None:
            async for event in super().progress():
                yield event
            return
        sent, progress = 0, 10
        t0 = time.monotonic()
        last_patience = 0.0
        reader = object()
        self._progress_sent[reader] = 0
        try:
            while True:
                done = self._start_future is not None and self._start_future.done()
                lines = getattr(self, "_progress_lines", [])
                for m in lines[sent:]:
                    progress += (90 - progress) // 3
                    sent += 1
                    # counted before the yield hands the line over: _start waits on this
                    self._progress_sent[reader] = sent
                    self._progress_moved.set()
                    yield {"progress": progress, "message": m}
                if done:
                    return
                elapsed = time.monotonic() - t0
                if elapsed >= PATIENCE_SECONDS and elapsed - last_patience >= PATIENCE_SECONDS:
                    last_patience = elapsed
                    # the limit in force: the site's, applied before start()
                    yield {
                        "message": f"still waiting for {site.name} after {int(elapsed)} s "
                        f"(the limit is {self.start_timeout} s)"
                    }
                # wake at once when a progress line is added: JupyterHub stops reading progress as
                # soon as the server is up, so the last words must not wait for a poll
                changed = getattr(self, "_progress_grew", None)
                if changed is None:
                    await asyncio.sleep(self.progress_poll_interval)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.progress_poll_interval)
                changed.clear()
        finally:
            self._progress_sent.pop(reader, None)
            self._progress_moved.set()

    async def _progress_caught_up(self, limit: float = 5.0) -> None:
        """Wait (briefly: a stalled page must not hold the spawn) until every open progress
        stream has handed over every progress line."""
        deadline = time.monotonic() + limit
        while any(n < len(self._progress_lines) for n in self._progress_sent.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._progress_moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress_moved.wait(), left)

    def _pod_key(self) -> str:
        return f"{self.namespace}/{self.pod_name}"


def _key(toleration: Any) -> str | None:
    return toleration.get("key") if isinstance(toleration, dict) else toleration.key


def _is_pvc(volume: Any) -> bool:
    if isinstance(volume, dict):
        return "persistentVolumeClaim" in volume or "persistent_volume_claim" in volume
    return getattr(volume, "persistent_volume_claim", None) is not None


def _without_pvc(volumes: Any) -> Any:
    if isinstance(volumes, dict):
        return {k: v for k, v in volumes.items() if not _is_pvc(v)}
    return [v for v in volumes if not _is_pvc(v)]


def _mounts_of(mounts: Any, volumes: Any) -> Any:
    names = {v.get("name") for v in (volumes.values() if isinstance(volumes, dict) else volumes)}
    if isinstance(mounts, dict):
        return {k: m for k, m in mounts.items() if m.get("name") in names}
    return [m for m in mounts if m.get("name") in names]


def check_catalogue_of(hub: Any) -> Catalogue:
    """The catalogue a hub's configuration names, parsed; logs and raises when broken."""
    path = hub.config.InterTwinSpawner.get("site_catalogue_path")
    try:
        catalogue = catalogue_at(path)
    except CatalogueError as e:
        hub.log.critical("The site catalogue is broken, so the hub cannot start: %s", e)
        raise
    hub.log.info("Site catalogue %s: %s", path or "(shipped)", ", ".join(s.slug for s in catalogue))
    return catalogue


def check_catalogue_at_hub_start() -> None:
    """Make JupyterHub parse the configured catalogue every time it starts.

    A spawner is only instantiated per user, so a broken catalogue would otherwise show at the
    first spawn form. JupyterHub imports every installed spawner class while it is constructed,
    before it reads its configuration, so nothing in this module can see the configuration at
    import. The check therefore runs first thing in ``JupyterHub.init_users``, which
    ``initialize()`` awaits at every start, after reading the configuration and before
    serving; an exception there stops the hub with exit code 1, the key at fault in its log.
    It acts only when the hub's spawner is this one."""
    try:
        from jupyterhub.app import JupyterHub
    except ImportError:
        return
    original = JupyterHub.init_users
    if getattr(original, "checks_intertwin_catalogue", False):
        return

    @functools.wraps(original)
    async def init_users(hub: Any) -> Any:
        if isinstance(hub.spawner_class, type) and issubclass(hub.spawner_class, InterTwinSpawner):
            check_catalogue_of(hub)
        return await original(hub)

    init_users.checks_intertwin_catalogue = True  # type: ignore[attr-defined]
    JupyterHub.init_users = init_users


check_catalogue_at_hub_start()
