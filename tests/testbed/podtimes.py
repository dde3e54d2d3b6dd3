"""A pod's own times, as the Kubernetes API tells them, for checking the usage ledger: a watch
of one pod (by name) in the test's process, from before the pod ends until it is gone. The
start is its containers' ``startedAt`` once every container runs; the end their latest
``finishedAt`` once every container has terminated (interLink's virtual kubelet sets it when
the pod is deleted, VKProviderPodContainerDeleted)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes_asyncio import watch


def _t(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class PodTimes:
    started: datetime | None = None
    finished: datetime | None = None
    requests: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    running: asyncio.Event = field(default_factory=asyncio.Event)

    def see(self, pod: dict[str, Any]) -> None:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        states = [cs.get("state") or {} for cs in statuses]
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        self.requests = (container.get("resources") or {}).get("requests") or {}
        self.limits = (container.get("resources") or {}).get("limits") or {}
        phase = (pod.get("status") or {}).get("phase")
        if states and phase == "Running" and all(s.get("running") for s in states):
            starts = [_t(s["running"].get("startedAt")) for s in states]
            if all(starts) and self.started is None:
                self.started = min(t for t in starts if t)
                self.running.set()
        if states and all(s.get("terminated") for s in states):
            ends = [_t(s["terminated"].get("finishedAt")) for s in states]
            if all(ends):
                self.finished = max(t for t in ends if t)


@contextlib.asynccontextmanager
async def watching(kube: Any, namespace: str, name: str) -> AsyncIterator[PodTimes]:
    """Watch the pod ``name`` while the block runs; its times so far in the yielded object."""
    times = PodTimes()

    async def run() -> None:
        while not times.gone.is_set():
            w = watch.Watch()
            async with w.stream(
                kube.list_namespaced_pod,
                namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=300,
            ) as stream:
                async for ev in stream:
                    times.see(ev["raw_object"])
                    if ev["type"] == "DELETED":
                        times.gone.set()
                        return

    task = asyncio.create_task(run())
    try:
        yield times
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
