"""A workload pod's status in the site's language, shared by the spawner's progress and the
``intertwin`` hub service: "submitted to Vega (node vega-vk)", "queued at Vega (batch job 1001)",
"running on vega-vk", "KBFI ended the session: Error (exit code 3)." (a notebook server) or
"the job ended at KBFI: Error (exit code 3)." (a batch cell, which is no session).

Pure functions of the pod as the Kubernetes API returns it (a dict in the API's camelCase, as
kubernetes_asyncio's ``ApiClient.sanitize_for_serialization`` and KubeSpawner's reflector hold
it) and of its events; nothing here talks to a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .labels import KIND_BATCH_CELL, kind_of

# "queued at Vega (job 1001)", "job id 77": the batch job id in a plugin's waiting message
JOB_ID = re.compile(r"\bjob (?:id )?(\d+)\b", re.IGNORECASE)

# every state a job can be in; the last five are final
PENDING = "pending"  # accepted by Kubernetes, no node yet
SUBMITTED = "submitted"  # bound to the site's virtual node, the site has not answered
QUEUED = "queued"  # a batch job waits in the site's queue
PREPARING = "preparing"  # the site works on it (image pull, a Secret not there yet)
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
LOST = "lost"  # the pod vanished while nobody watched; its end is unknown
STATES = (PENDING, SUBMITTED, QUEUED, PREPARING, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, LOST})


@dataclass(frozen=True)
class JobStatus:
    """Where a workload stands: ``state`` (one of ``STATES``) and the sentence telling it."""

    state: str
    sentence: str
    node: str | None = None
    batch_job: str | None = None
    reason: str | None = None
    exit_code: int | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def event_sentence(site: str, event: Mapping[str, Any]) -> str | None:
    """What a pod event says in the site's words, or None for events worth no line."""
    reason, text = event.get("reason") or "", event.get("message") or ""
    if reason == "Scheduled":
        node = text.rsplit(" to ", 1)[-1] if " to " in text else ""
        return f"submitted to {site}" + (f" (node {node})" if node else "")
    if reason == "FailedScheduling":
        return f"waiting for room at {site}: {text}"
    if reason in ("ProviderFailed", "ProviderCreateFailed", "Failed"):
        return f"{site} refused the session: {text}"
    return None


def pod_status(site: str, pod: Mapping[str, Any] | None) -> JobStatus | None:
    """The pod's status in the site's words; None without a pod.

    Neither the phase nor the containers alone decide: on CreatePod interLink's virtual kubelet
    marks every container running while the phase is still Pending (before the site has even
    answered), and while the job waits in the batch queue it reports the phase Running with
    waiting containers. So "running" needs both; a job id (the VK's ``JobID`` annotation, or the
    plugin's waiting message) with nothing really running means the job is queued at the site.
    """
    if not pod:
        return None
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName") or None
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    deleting = bool(meta.get("deletionTimestamp"))
    statuses = status.get("containerStatuses") or []
    waiting_text = ""
    for cs in statuses:
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        if terminated:
            code = terminated.get("exitCode")
            reason = terminated.get("reason") or "exited"
            if deleting:
                # the deletion ended it (interLink's VK reports the container terminated,
                # "VKProviderPodContainerDeleted", exit code 0): a job that ended on its own
                # was seen final before anyone deleted it
                return JobStatus(
                    CANCELLED,
                    f"cancelled at {site}",
                    node=node,
                    batch_job=_job_of(annotations, ""),
                    reason=reason,
                    exit_code=code,
                )
            sentence = (
                f"{_ended(site, pod)}: {reason} (exit code {code}). "
                f"{terminated.get('message') or ''}"
            ).strip()
            return JobStatus(
                SUCCEEDED if code == 0 else FAILED,
                sentence,
                node=node,
                batch_job=_job_of(annotations, ""),
                reason=reason,
                exit_code=code,
            )
        waiting = state.get("waiting")
        if waiting and not waiting_text:
            waiting_text = f"{waiting.get('reason') or ''} {waiting.get('message') or ''}".strip()
    phase = status.get("phase")
    job = _job_of(annotations, waiting_text)
    if phase == "Failed":
        reason = status.get("reason") or None
        sentence = (
            f"{site} refused the {_what(pod)}: {reason or ''} {status.get('message') or ''}"
        ).strip()
        return JobStatus(FAILED, sentence, node=node, batch_job=job, reason=reason)
    if phase == "Succeeded":
        return JobStatus(
            SUCCEEDED,
            f"{_ended(site, pod)}: Completed (exit code 0).",
            node=node,
            batch_job=job,
            reason="Completed",
            exit_code=0,
        )
    # the VK's own phase "Initializing" (a secret volume's Secret not there yet) is not running
    if (
        statuses
        and node
        and phase == "Running"
        and all((cs.get("state") or {}).get("running") is not None for cs in statuses)
    ):
        return JobStatus(RUNNING, f"running on {node}", node=node, batch_job=job)
    if job or "queue" in waiting_text.lower():
        return JobStatus(
            QUEUED,
            f"queued at {site}" + (f" (batch job {job})" if job else ""),
            node=node,
            batch_job=job,
            reason=waiting_text or None,
        )
    if waiting_text:
        return JobStatus(
            PREPARING,
            f"preparing the {_what(pod)} at {site}: {waiting_text}",
            node=node,
            reason=waiting_text,
        )
    if node:
        return JobStatus(SUBMITTED, f"submitted to {site} (node {node})", node=node)
    return JobStatus(PENDING, f"waiting for room at {site}")


def progress_sentence(site: str, pod: Mapping[str, Any] | None) -> str | None:
    """The spawn progress line for the pod as it is now, or None while only the scheduler's
    events have something to say (submitted/pending are told from the ``Scheduled`` event,
    which names the node)."""
    status = pod_status(site, pod)
    if status is None or status.state in (PENDING, SUBMITTED):
        return None
    return status.sentence


def deleted_status(site: str, last: JobStatus | None, cancelled: bool) -> JobStatus:
    """The final status of a pod that is gone: its own final status if it had one; cancelled
    when someone deleted it before it ended; lost when it vanished unseen (its end unknown)."""
    if last is not None and last.final:
        return last
    node = last.node if last else None
    job = last.batch_job if last else None
    if cancelled:
        return JobStatus(CANCELLED, f"cancelled at {site}", node=node, batch_job=job)
    return JobStatus(
        LOST, f"lost at {site}: the job vanished while nobody watched", node=node, batch_job=job
    )


def node_note(
    site: str,
    ready: bool,
    since: datetime | None,
    grace_seconds: int | None,
    kind: str | None = None,
) -> str | None:
    """What the jobs of a site say while its interLink node is not ready ("Vega's interLink
    node is not ready since 12:03; your session keeps running for up to 1 h"): ``grace_seconds``
    is how long the pods tolerate a not-ready node before Kubernetes evicts them. ``kind``: the
    workload the note is shown on (a batch cell's says "your job")."""
    if ready:
        return None
    note = f"{site}'s interLink node is not ready"
    if since is not None:
        note += f" since {since.strftime('%H:%M')}"
    if grace_seconds:
        what = "job" if kind == KIND_BATCH_CELL else "session"
        note += f"; your {what} keeps running for up to {_duration(grace_seconds)}"
    return note


def _what(pod: Mapping[str, Any]) -> str:
    """What the pod is called in its sentences: a batch cell is a job; a notebook server (or a
    pod without the workload label) a session."""
    return "job" if kind_of(pod) == KIND_BATCH_CELL else "session"


def _ended(site: str, pod: Mapping[str, Any]) -> str:
    """The start of the sentence of a pod that ended: "Vega ended the session", "the job ended
    at Vega"."""
    if _what(pod) == "job":
        return f"the job ended at {site}"
    return f"{site} ended the session"


def _job_of(annotations: Mapping[str, Any], waiting_text: str) -> str | None:
    m = JOB_ID.search(waiting_text) or JOB_ID.search(f"job {annotations.get('JobID', '')}")
    return m.group(1) if m else None


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
