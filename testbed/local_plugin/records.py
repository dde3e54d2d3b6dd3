"""The records of the local plugin's jobs: one :class:`Job` per pod, one
:class:`ContainerRecord` per container, kept as ``<root>/<ns>-<uid>/job.json`` so a job
survives a restart of the plugin."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

# job states
QUEUED, INIT, RUNNING, FINISHED, DELETING, DELETED = (
    "queued",
    "init",
    "running",
    "finished",
    "deleting",
    "deleted",
)
ACTIVE_STATES = (INIT, RUNNING, DELETING)
# container states
WAITING, CTR_RUNNING, TERMINATED = "waiting", "running", "terminated"


@dataclass
class ContainerRecord:
    name: str
    init: bool
    state: str = WAITING
    pid: int | None = None  # the wrapper shell: leader of the container's process group
    start_ticks: int | None = None  # identifies that pid after a plugin restart
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    gpus: list[int] = field(default_factory=list)
    teardown_at: float | None = None


@dataclass
class Job:
    uid: str
    name: str
    namespace: str
    jid: str
    pod_ip: str
    submitted_at: float
    queue_until: float
    state: str = QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    gpus: list[int] = field(default_factory=list)
    config_error: str | None = None
    containers: list[ContainerRecord] = field(default_factory=list)
    # with a real Slurm queue: why Slurm keeps the job pending (Resources, BeginTime...), and
    # the job's final state once Slurm has one
    batch_reason: str | None = None
    slurm_state: str | None = None

    @classmethod
    def from_json(cls, data: JSON) -> Job:
        ctrs = [ContainerRecord(**c) for c in data.pop("containers", [])]
        return cls(**data, containers=ctrs)

    def container(self, name: str) -> ContainerRecord | None:
        return next((c for c in self.containers if c.name == name), None)

    @property
    def inits(self) -> list[ContainerRecord]:
        return [c for c in self.containers if c.init]

    @property
    def mains(self) -> list[ContainerRecord]:
        return [c for c in self.containers if not c.init]


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
