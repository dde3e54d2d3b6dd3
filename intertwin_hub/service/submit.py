"""``POST /jobs``: a batch cell (``%%offload``) becomes a pod at a site.

The request is checked by the spawner's own rules (:func:`intertwin_hub.spawner.options.
validate_batch`: the catalogue, the caller's VOs from their hub groups, partitions, GPU
limits, images, the partition's time limit) and the pod comes from the spawner's pure planner
(:func:`intertwin_hub.spawner.pod.plan_pod`: node selector, interLink's tolerations, equal
requests and limits, GPUs and ``--gres``, Slurm flags). A refusal is a 400 with the sentence,
and nothing is created.

The cell's inputs travel in a Secret mounted as files (interLink ships ConfigMaps and Secrets
only as volumes), created right after the pod and owned by it, so Kubernetes deletes it with
the pod; the site's virtual kubelet waits for a secret volume's Secret, as a kubelet does
(https://github.com/interlink-hq/interLink/blob/9ed14a4/pkg/virtualkubelet/execute.go,
``remoteExecutionHandleVolumes``). The pod carries no service-account token and mounts no PVC.

A cell that asks for it (``rucio``) also gets a DataLake (Rucio) token in that Secret, obtained
as ``GET /token/rucio`` obtains one (:meth:`intertwin_hub.service.tokens.RucioTokens.token_for`),
with the session's Rucio host; the runner hands both to rucio-clients. The token is not renewed
during the job: the job holds no hub credentials to renew it with.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from kubernetes_asyncio.client.rest import ApiException

from ..errors import ApiError, bad_request
from ..labels import (
    ANNOTATION_CELL_ID,
    ANNOTATION_NOTEBOOK_PATH,
    ANNOTATION_USER,
    KIND_BATCH_CELL,
    LABEL_USER,
    kind_of,
    site_of,
)
from ..offload.frame import MAX_INPUT_BYTES
from ..offload.runner import RUCIO_FILE, RUCIO_TOKEN_FILE
from ..sites import Site
from ..spawner.options import (
    BatchSelection,
    OptionsError,
    max_cells_per_user,
    validate_batch,
    vos_of,
)
from ..spawner.pod import GPU_RESOURCE, PodPlan, plan_pod
from ..status import FINAL, pod_status
from ..usage import ledger
from ..usage.budgets import EXHAUSTED, WARNING
from . import db
from .index import resources_of
from .tokens import Token

if TYPE_CHECKING:
    from .app import Service

INPUTS_DIR = "/var/run/intertwin/cell"
INPUTS_FILE = "inputs"
INPUTS_VOLUME = "cell-inputs"
# whether a batch cell gets a DataLake token: it must (a 400 when the hub has none to give),
# when the hub has one for the caller, or not at all (the default)
RUCIO_CHOICES = ("required", "if-available", "none")
CONTAINER = "cell"
# a batch cell's name as given by the user (shown in the Jobs panel)
ANNOTATION_CELL_NAME = "intertwin.eu/cell-name"
FIELDS = (
    "site",
    "partition",
    "gpus",
    "cpus",
    "memory",
    "time",
    "image",
    "name",
    "notebook_path",
    "cell_id",
    "inputs",
    "rucio",
    "rucio_host",
    "rucio_auth_host",
)
_LABEL_UNSAFE = re.compile(r"[^a-z0-9-]+")
# one submission at a time per user, so two cells sent at once cannot both pass the limit
_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


def _text(body: dict[str, Any], key: str, limit: int) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise bad_request(key, f"{key} must be text of at most {limit} characters.")
    return v


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise bad_request("body", "The request body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise bad_request("body", "The request body must be a JSON object.")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise bad_request(
            unknown[0], f"Unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}."
        )
    return body


@dataclass
class RucioGrant:
    """The DataLake token a batch cell takes with it, and the Rucio it is for."""

    token: Token
    rucio_host: str | None = None
    auth_host: str | None = None

    def files(self) -> dict[str, bytes]:
        """The Secret's entries for it, next to the inputs: the token, and its expiry and the
        Rucio hosts (the runner reads them)."""
        info = {
            "expires_at": self.token.expires_at,
            "rucio_host": self.rucio_host,
            "auth_host": self.auth_host or self.rucio_host,
        }
        return {
            RUCIO_TOKEN_FILE: self.token.access_token.encode(),
            RUCIO_FILE: json.dumps(info).encode(),
        }


def rucio_choice(body: dict[str, Any]) -> str:
    choice = body.get("rucio", "none")
    if choice not in RUCIO_CHOICES:
        raise bad_request("rucio", f"rucio must be one of {', '.join(RUCIO_CHOICES)}.")
    return str(choice)


def _rucio_url(body: dict[str, Any], key: str) -> str | None:
    url = _text(body, key, 2048)
    # no white space anywhere: the runner writes it into a rucio.cfg
    if url is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
        raise bad_request(key, f"{key} must be an http or https URL, as rucio_host in rucio.cfg.")
    return url


async def rucio_grant(svc: Service, user: str, body: dict[str, Any]) -> RucioGrant | None:
    """The DataLake token the cell asked for (``rucio``), or None. A hub that signs users in
    without an identity provider (its service has no token endpoint to renew tokens at, e.g.
    the testbed's dummy login) has none: a 400 with the sentence when the cell requires one,
    else the cell goes without. Refusals of the identity provider (a revoked sign-in, one that
    is down) are told as ``GET /token/rucio`` tells them."""
    choice = rucio_choice(body)
    host, auth_host = _rucio_url(body, "rucio_host"), _rucio_url(body, "rucio_auth_host")
    if choice == "none":
        return None
    if svc.rucio_tokens.issuer is None:
        if choice == "if-available":
            return None
        raise ApiError(
            400,
            "no_rucio_token",
            "This hub signs you in without EGI Check-in, so it has no DataLake (Rucio) token "
            "to give the batch cell; send the cell without asking for one (without --rucio).",
        )
    token = await svc.rucio_tokens.token_for(user, fresh=True)
    return RucioGrant(token, host, auth_host)


def decode_inputs(body: dict[str, Any]) -> bytes:
    raw = body.get("inputs")
    if not isinstance(raw, str) or not raw:
        raise bad_request("inputs", "inputs (the packed cell, base64) is required.")
    # the base64 text alone tells the size: refuse before decoding a huge body
    if len(raw) * 3 // 4 > MAX_INPUT_BYTES + 3:
        raise too_large(len(raw) * 3 // 4)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("inputs", "inputs must be base64.") from None
    if len(data) > MAX_INPUT_BYTES:
        raise too_large(len(data))
    return data


def too_large(size: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"The cell's inputs are {_size(size)}, over the {_size(MAX_INPUT_BYTES)} a batch cell "
        "can carry. Put large data in the DataLake (the DataLake panel makes it available at "
        "the site) and read it in the cell from there.",
        limit=MAX_INPUT_BYTES,
    )


def _size(n: int) -> str:
    for unit, div in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} bytes"


def label_value(text: str) -> str:
    """A label-safe form of ``text`` (lower case, [a-z0-9-], at most 63 characters)."""
    v = _LABEL_UNSAFE.sub("-", text.lower()).strip("-")[:63].strip("-")
    return v or "x"


def pod_name(user: str) -> str:
    return f"cell-{label_value(user)[:40]}-{secrets.token_hex(4)}"


def cell_pod(
    name: str,
    user: str,
    plan: PodPlan,
    python: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """The batch cell's pod (API-shaped dict): pure, so every rule is unit-testable."""
    annotations = {**plan.annotations, ANNOTATION_USER: user}
    for key, ann in (
        ("notebook_path", ANNOTATION_NOTEBOOK_PATH),
        ("cell_id", ANNOTATION_CELL_ID),
        ("name", ANNOTATION_CELL_NAME),
    ):
        if body.get(key):
            annotations[ann] = body[key]
    res: dict[str, str] = {"cpu": f"{plan.cpu:g}", "memory": str(plan.memory)}
    if plan.gpus:
        res[GPU_RESOURCE] = str(plan.gpus)
    env = {**plan.env, "PYTHONUNBUFFERED": "1", "INTERTWIN_CELL_POD": name}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [
            {
                "name": CONTAINER,
                "image": plan.image,
                "command": [python, "-m", "intertwin_hub.offload.runner"],
                "args": [f"{INPUTS_DIR}/{INPUTS_FILE}"],
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "resources": {"requests": dict(res), "limits": dict(res)},
                "volumeMounts": [
                    {"name": INPUTS_VOLUME, "mountPath": INPUTS_DIR, "readOnly": True}
                ],
            }
        ],
        "volumes": [
            {
                "name": INPUTS_VOLUME,
                "secret": {"secretName": inputs_secret_name(name), "defaultMode": 0o400},
            }
        ],
    }
    if plan.offload:
        spec["nodeSelector"] = plan.node_selector
        spec["tolerations"] = plan.tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {**plan.labels, LABEL_USER: label_value(user)},
            "annotations": annotations,
        },
        "spec": spec,
    }


def inputs_secret_name(pod: str) -> str:
    return f"{pod}-inputs"


def inputs_secret(
    pod: dict[str, Any], data: bytes, rucio: RucioGrant | None = None
) -> dict[str, Any]:
    """The inputs Secret, owned by the pod (Kubernetes deletes it with the pod); with the
    cell's DataLake token when it has one."""
    meta = pod["metadata"]
    files = {INPUTS_FILE: data, **(rucio.files() if rucio else {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": inputs_secret_name(meta["name"]),
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    # no foreground deletion needed, and blockOwnerDeletion would need update
                    # on pods/finalizers, which the service's Role does not have
                    "blockOwnerDeletion": False,
                    "controller": False,
                }
            ],
        },
        "data": {k: base64.b64encode(v).decode() for k, v in files.items()},
    }


def in_use(svc: Service, user: str, site: str) -> tuple[int, int]:
    """The user's batch cells queued or running at the site, and the GPUs their workloads
    there hold (notebook servers' too): from the service's index, pods not yet ended."""
    cells = gpus = 0
    for pod in svc.index.mine(user):
        if site_of(pod) != site:
            continue
        status = pod_status(svc.index.site_name(site), pod)
        if status is not None and status.state in FINAL:
            continue
        cells += kind_of(pod) == KIND_BATCH_CELL
        gpus += resources_of(pod)[2]
    return cells, gpus


def check_limits(site: Site, cells: int, gpus: int, asked_gpus: int) -> None:
    """A 429 with what is in use when one more batch cell asking for ``asked_gpus`` would go
    over the site's per-user limits (catalogue ``batch``)."""
    limit = max_cells_per_user(site)
    if cells >= limit:
        raise ApiError(
            429,
            "limit_reached",
            f"You have {cells} batch cells queued or running at {site.name}, the most "
            f"{site.name} allows at once; wait for one to end or cancel one.",
            in_use=cells,
            limit=limit,
        )
    cap = site.batch.max_gpus_per_user if site.batch else None
    if cap is not None and asked_gpus and gpus + asked_gpus > cap:
        raise ApiError(
            429,
            "limit_reached",
            f"Your sessions and batch cells at {site.name} hold {gpus} GPUs; this cell asks "
            f"for {asked_gpus} more, over the {cap} one user may hold there at once. Wait for "
            "a job to end, or stop one (the Jobs panel lists them).",
            in_use=gpus,
            limit=cap,
        )


def check_budget(svc: Service, site: Site, vo: str | None) -> str | None:
    """A 403 with the sentence when the VO's budget at the site is used up (as the spawner
    refuses a notebook server); from 90 % used, the warning sentence the spawner shows (both
    from :class:`intertwin_hub.usage.budgets.BudgetUse`), else None."""
    budget = site.budget_of(vo)
    if budget is None:
        return None
    verdict = ledger.budget_use(svc.store, site, budget, datetime.now(UTC))
    if verdict.state == EXHAUSTED:
        raise ApiError(403, "budget_exhausted", verdict.sentence)
    return verdict.sentence if verdict.state == WARNING else None


@dataclass
class Submitted:
    job: db.Job
    # the budget's sentence when the VO has used 90 % or more of its budget at the site
    warning: str | None
    # when the cell's DataLake token expires (None: the cell has none)
    rucio_expires_at: float | None


async def submit_cell(svc: Service, user: str, raw: bytes) -> Submitted:
    """The batch cell's job, the budget's warning and its DataLake token's expiry."""
    body = parse_body(raw)
    for key, limit in (("notebook_path", 4096), ("cell_id", 255), ("name", 63)):
        _text(body, key, limit)
    data = decode_inputs(body)
    model = await svc.user_model(user)
    vos = vos_of(model.get("groups") or [])
    try:
        batch: BatchSelection = validate_batch(svc.catalogue, vos, body)
    except OptionsError as e:
        raise ApiError(400, "bad_request", str(e)) from None
    site = batch.site
    plan = plan_pod(batch.selection, kind=KIND_BATCH_CELL, time=batch.time)
    # before anything is created: a refused token leaves nothing behind
    rucio = await rucio_grant(svc, user, body)
    async with _locks[user]:
        check_limits(site, *in_use(svc, user, site.slug), batch.selection.gpus)
        warning = check_budget(svc, site, batch.selection.vo)
        name = pod_name(user)
        manifest = cell_pod(name, user, plan, svc.runner_python, body)
        try:
            # the client takes API-shaped dicts as bodies as they are
            created = await svc.core.create_namespaced_pod(svc.namespace, cast(Any, manifest))
        except ApiException as e:
            raise ApiError(
                502, "kubernetes_error", f"Kubernetes refused the batch cell's pod: {e.reason}"
            ) from None
        except (TimeoutError, OSError):
            raise ApiError(
                503, "kubernetes_unavailable", "The Kubernetes API cannot be reached."
            ) from None
        pod = svc.api.sanitize_for_serialization(created)
        try:
            secret = inputs_secret(pod, data, rucio)
            await svc.core.create_namespaced_secret(svc.namespace, cast(Any, secret))
        except Exception as e:
            # no half-made job: the pod would wait for its Secret for minutes
            try:
                await svc.core.delete_namespaced_pod(name, svc.namespace)
            except Exception:
                pass
            reason = getattr(e, "reason", None) or type(e).__name__
            raise ApiError(
                502, "kubernetes_error", f"Kubernetes refused the batch cell's inputs: {reason}"
            ) from None
        # counted at once, unless the watch has already told a newer state of it
        if pod["metadata"]["uid"] not in svc.index.pods:
            svc.index.pod_event("ADDED", pod)
    job = svc.store.get(pod["metadata"]["uid"])
    assert job is not None
    return Submitted(job, warning, rucio.token.expires_at if rucio else None)
