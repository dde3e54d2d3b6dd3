"""The service's live view: the workload pods and site nodes the shared watch reports, indexed
by user, and the history rows they feed. Pure bookkeeping on API-shaped dicts (camelCase, as
``ApiClient.sanitize_for_serialization`` gives them), so every rule is unit-testable; the
cluster I/O is in ``watch.py``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from .. import labels
from ..offload import frame
from ..sites import Catalogue, Site, quantity_bytes
from ..status import JobStatus, node_note, pod_status
from .db import PodFacts, Store, Workload

GPU_RESOURCE = "nvidia.com/gpu"
# how many of a finished workload's last log lines the history keeps, and at most how much text
LAST_LINES = 50
LAST_LINES_BYTES = 64 * 1024
# how long a pod at an offload site tolerates its node not ready (the spawner's tolerations)
NODE_TROUBLE_TOLERATION_SECONDS = 3600

Pod = Mapping[str, Any]


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _cpu(q: Any) -> float | None:
    if q is None:
        return None
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def resources_of(pod: Pod) -> tuple[float | None, int | None, int]:
    """CPU, memory bytes and GPUs the pod's containers ask for (limits, else requests)."""
    cpu: float | None = None
    mem: int | None = None
    gpus = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        want = {**(res.get("requests") or {}), **(res.get("limits") or {})}
        if "cpu" in want:
            cpu = (cpu or 0) + (_cpu(want["cpu"]) or 0)
        if "memory" in want:
            try:
                mem = (mem or 0) + quantity_bytes(str(want["memory"]))
            except ValueError:  # a form quantity_bytes does not read ("1e9"): not told
                pass
        gpus += int(want.get(GPU_RESOURCE) or 0)
    return cpu, mem, gpus


def pod_facts(pod: Pod) -> PodFacts:
    """The ledger's facts of the pod: its containers' own start and end (``startedAt`` of the
    running or terminated state, the earliest; ``finishedAt`` once every container has
    terminated, the latest) and the requests and limits, summed over its containers."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cs in statuses:
        state = cs.get("state") or {}
        for part in (state.get("running"), state.get("terminated")):
            t = _time((part or {}).get("startedAt"))
            if t is not None:
                starts.append(t)
        t = _time((state.get("terminated") or {}).get("finishedAt"))
        if t is not None:
            ends.append(t)
    totals: dict[str, dict[str, float]] = {"requests": {}, "limits": {}}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for which, got in totals.items():
            want = res.get(which) or {}
            if "cpu" in want:
                got["cpu"] = got.get("cpu", 0.0) + (_cpu(want["cpu"]) or 0.0)
            if "memory" in want:
                try:
                    got["memory"] = got.get("memory", 0) + quantity_bytes(str(want["memory"]))
                except ValueError:
                    pass

    def mem(which: str) -> int | None:
        v = totals[which].get("memory")
        return None if v is None else int(v)

    return PodFacts(
        started=min(starts) if starts else None,
        finished=max(ends) if statuses and len(ends) == len(statuses) else None,
        cpu_request=totals["requests"].get("cpu"),
        cpu_limit=totals["limits"].get("cpu"),
        memory_request=mem("requests"),
        memory_limit=mem("limits"),
    )


def workload_of(pod: Pod) -> Workload | None:
    """The history row's fixed part, or None for a pod that is not a workload of ours."""
    meta = pod.get("metadata") or {}
    uid, user, kind, site = (
        meta.get("uid"),
        labels.owner_of(pod),
        labels.kind_of(pod),
        labels.site_of(pod),
    )
    if not (uid and user and kind and site):
        return None
    ann = meta.get("annotations") or {}
    cpu, mem, gpus = resources_of(pod)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return Workload(
        uid=uid,
        user=user,
        kind=kind,
        site=site,
        pod=meta.get("name") or "",
        submitted=_time(meta.get("creationTimestamp")) or datetime.now(UTC),
        server_name=labels.server_of(pod),
        notebook_path=ann.get(labels.ANNOTATION_NOTEBOOK_PATH),
        cell_id=ann.get(labels.ANNOTATION_CELL_ID),
        cpu=cpu,
        memory=mem,
        gpus=gpus,
        image=containers[0].get("image"),
        vo=ann.get(labels.ANNOTATION_VO),
    )


def kept_tail(text: str) -> str:
    """What the history keeps of a log's last lines: without a batch cell's result frame (its
    base64 is no reading for people; the tail may begin inside it), at most
    ``LAST_LINES_BYTES`` of the end, in whole lines."""
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if frame.END in line), None)
    begin = next((i for i, line in enumerate(lines) if frame.BEGIN in line), None)
    if end is not None and (begin is None or begin > end):
        lines = lines[end + 1 :]
    kept: list[str] = []
    size = 0
    for line in reversed(list(frame.strip(lines))):
        size += len(line.encode()) + 1
        if size > LAST_LINES_BYTES:
            break
        kept.append(line)
    return "".join(f"{line}\n" for line in reversed(kept))


def ended_container(pod: Pod) -> str | None:
    """The container whose last log lines to keep once the pod has ended or is being deleted
    (its log goes with the pod): the first terminated one that failed, else the first
    terminated one, else (a deletion under way) the first container. None while it runs."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ended = [cs for cs in statuses if (cs.get("state") or {}).get("terminated")]
    failed = [cs for cs in ended if (cs["state"]["terminated"].get("exitCode") or 0) != 0]
    for cs in failed + ended:
        if cs.get("name"):
            return str(cs["name"])
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed") or (pod.get("metadata") or {}).get("deletionTimestamp"):
        containers = (pod.get("spec") or {}).get("containers") or []
        return str(containers[0].get("name")) if containers and containers[0].get("name") else None
    return None


def node_ready(node: Pod | None) -> tuple[bool | None, datetime | None]:
    """The node's Ready condition and when it last changed; (None, None) for no node."""
    if node is None:
        return None, None
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", _time(cond.get("lastTransitionTime"))
    return False, None


class Index:
    """Live workload pods by UID and by user, site nodes by name, and the history store."""

    def __init__(self, catalogue: Catalogue, store: Store) -> None:
        self.catalogue = catalogue
        self.store = store
        store.gpu_models = {s.slug: s.node.gpu.model for s in catalogue if s.node.gpu}
        self.pods: dict[str, Pod] = {}
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self.nodes: dict[str, Pod] = {}
        # when each node's current not-ready spell began
        self.not_ready_since: dict[str, datetime] = {}
        # pods this service was asked to cancel: their deletion is a cancel, not a loss
        self.cancelling: set[str] = set()

    def site_name(self, slug: str) -> str:
        site = self.catalogue.get(slug)
        return site.name if site else slug

    # --- pods ------------------------------------------------------------------------------

    def pod_event(
        self, kind: str, pod: Pod, now: datetime | None = None, session: Session | None = None
    ) -> JobStatus | None:
        """A watch event (ADDED, MODIFIED, DELETED) of a labelled pod; ``session``: inside
        ``Store.batch`` (ADDED and MODIFIED only)."""
        now = now or datetime.now(UTC)
        w = workload_of(pod)
        if w is None:
            return None
        facts = pod_facts(pod)
        if kind == "DELETED":
            self._forget(w.uid)
            last = pod_status(self.site_name(w.site), pod)
            if last is not None and last.final:
                self.store.record(w, last, now, facts=facts)
            return self.store.end(
                w.uid,
                self.site_name(w.site),
                cancelled=self._deleted_on_purpose(w.uid, pod),
                at=now,
            )
        self.pods[w.uid] = pod
        self.by_user[w.user].add(w.uid)
        status = pod_status(self.site_name(w.site), pod)
        if status is not None:
            self.store.record(w, status, now, session, facts)
        return status

    def reconcile(self, pods: Iterable[Pod], now: datetime | None = None) -> None:
        """A fresh list of every labelled pod (on start, and after the watch expired): record
        each one's status; a job still active in the history whose pod is not listed ended
        while nobody watched (cancelled if this service deleted it, else lost)."""
        now = now or datetime.now(UTC)
        seen: set[str] = set()
        self.pods.clear()
        self.by_user.clear()
        with self.store.batch() as session:
            for pod in pods:
                self.pod_event("ADDED", pod, now, session)
                uid = (pod.get("metadata") or {}).get("uid")
                if uid:
                    seen.add(uid)
        self.store.seen_alive(seen, now)
        for uid in self.store.active_uids() - seen:
            job = self.store.get(uid)
            if job is not None:
                self.store.end(
                    uid,
                    self.site_name(job.site),
                    cancelled=uid in self.cancelling,
                    at=now,
                    unseen=True,
                )
            self.cancelling.discard(uid)

    def seen_alive(self, now: datetime | None = None) -> None:
        """Every pod the watch holds is alive now: the ledger's best known end of each (what a
        pod that vanishes while the service is down is closed at) moves to ``now``."""
        self.store.seen_alive(list(self.pods), now or datetime.now(UTC))

    def _deleted_on_purpose(self, uid: str, pod: Pod) -> bool:
        # deleted through this service, or by whoever deletes (the hub stopping a server):
        # a pod that Kubernetes evicted (node trouble) carries the reason in its status
        self.cancelling.discard(uid)
        reason = (pod.get("status") or {}).get("reason") or ""
        return reason not in ("Evicted", "NodeLost")

    def _forget(self, uid: str) -> None:
        pod = self.pods.pop(uid, None)
        if pod is not None:
            user = labels.owner_of(pod)
            if user:
                self.by_user[user].discard(uid)
                if not self.by_user[user]:
                    del self.by_user[user]

    def mine(self, user: str) -> list[Pod]:
        """The user's live workload pods: the cost is the user's own pods, not the cluster's."""
        return [self.pods[u] for u in self.by_user.get(user, ()) if u in self.pods]

    # --- nodes -----------------------------------------------------------------------------

    def node_event(self, kind: str, node: Pod, now: datetime | None = None) -> None:
        name = (node.get("metadata") or {}).get("name")
        if not name:
            return
        if kind == "DELETED":
            self.nodes.pop(name, None)
            self.not_ready_since.pop(name, None)
        else:
            self.nodes[name] = node
            self._track_readiness(name, node, now)

    def reset_nodes(self, nodes: Iterable[Pod], now: datetime | None = None) -> None:
        self.nodes = {
            n["metadata"]["name"]: n for n in nodes if (n.get("metadata") or {}).get("name")
        }
        for name in set(self.not_ready_since) - set(self.nodes):
            del self.not_ready_since[name]
        for name, node in self.nodes.items():
            self._track_readiness(name, node, now)

    def _track_readiness(self, name: str, node: Pod, now: datetime | None) -> None:
        """Remember when the node's current not-ready spell began: interLink's virtual kubelet
        rewrites the Ready condition, lastTransitionTime included, on every failed ping, so
        the condition alone would move "not ready since" forward every 30 s."""
        ready, since = node_ready(node)
        if ready:
            self.not_ready_since.pop(name, None)
        elif name not in self.not_ready_since:
            self.not_ready_since[name] = since or now or datetime.now(UTC)

    def readiness(self, name: str) -> tuple[bool | None, datetime | None]:
        """The node's readiness and since when (for a node not ready: since its spell began)."""
        ready, since = node_ready(self.nodes.get(name))
        if ready is False:
            since = self.not_ready_since.get(name, since)
        return ready, since

    def note_for(self, slug: str, kind: str | None = None) -> str | None:
        """Trouble at the site, told on each of its jobs (``kind``: that job's workload)."""
        site = self.catalogue.get(slug)
        if site is None or not site.offload:
            return None
        ready, since = self.readiness(site.node.name)
        if ready is None:
            return None
        return node_note(site.name, ready, since, NODE_TROUBLE_TOLERATION_SECONDS, kind)

    def site_json(self, site: Site) -> dict[str, Any]:
        node = self.nodes.get(site.node.name)
        ready, since = self.readiness(site.node.name)
        allocatable = int(
            ((node or {}).get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE) or 0
        )
        requested = 0
        for pod in self.pods.values():
            if (pod.get("spec") or {}).get("nodeName") != site.node.name:
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            requested += resources_of(pod)[2]
        return {
            "site": site.slug,
            "name": site.name,
            "node": site.node.name,
            "ready": ready,
            "since": since.isoformat() if since else None,
            "note": self.note_for(site.slug),
            "gpus": {"allocatable": allocatable, "requested": requested},
        }
