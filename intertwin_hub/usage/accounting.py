"""What one workload pod used, from the hub service's history row: pure arithmetic on allocated
resources and the pod's running time (the interLink virtual kubelet's CPU and memory stats are
placeholders, so nothing measured is taken from the cluster). What a site measured itself
(Slurm's accounting, imported into the ledger) rides along in ``Usage.measured``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..sites import Catalogue
from ..status import FINAL, LOST


@dataclass(frozen=True)
class Usage:
    """One workload's allocation over its running time, up to ``until`` for a running one."""

    uid: str
    pod: str
    user: str
    vo: str | None
    site: str
    kind: str
    image: str | None
    start: datetime
    end: datetime | None  # None: still running at ``until``
    until: datetime
    cpu: float
    memory_bytes: int
    gpus: int
    gpu_model: str | None
    # the end is the best known, not observed (the pod vanished while the service was down)
    estimated: bool
    # what the site measured of the pod's batch job (the ledger's measured columns, filled by
    # ``intertwin-hub usage import-slurm``), beside the allocation above, never mixed into it
    measured: Measured | None = None

    @property
    def wall_seconds(self) -> int:
        """Whole seconds from the start to the end (or ``until``); never negative."""
        end = self.end or self.until
        return max(0, int((end - self.start).total_seconds()))

    @property
    def cpu_core_seconds(self) -> float:
        return self.cpu * self.wall_seconds

    @property
    def memory_gb_seconds(self) -> float:
        return self.memory_bytes / 1e9 * self.wall_seconds

    @property
    def gpu_seconds(self) -> int:
        return self.gpus * self.wall_seconds


@dataclass(frozen=True)
class Measured:
    """A site's own accounting of a pod's batch job; None where it measured nothing."""

    source: str  # "slurm-sacct", "slurm-jobcomp"
    cpu_seconds: float | None
    max_rss_bytes: int | None
    wall_seconds: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "cpu_seconds": self.cpu_seconds,
            "max_rss_bytes": self.max_rss_bytes,
            "wall_seconds": self.wall_seconds,
        }


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def usage_of(
    *,
    uid: str,
    pod: str,
    user: str,
    vo: str | None,
    site: str,
    kind: str,
    image: str | None,
    state: str,
    started: datetime | None,
    finished: datetime | None,
    cpu: float | None,
    memory: int | None,
    gpus: int,
    catalogue: Catalogue,
    until: datetime,
) -> Usage | None:
    """The usage of one history row, or None when it never ran (a pod that was refused,
    cancelled while queued, or is still queued uses nothing)."""
    if started is None:
        return None
    until = _utc(until)
    start = _utc(started)
    if start >= until:
        return None
    end = _utc(finished) if finished else None
    if end is None and state in FINAL:
        # a final state without an end time: count nothing beyond the start
        end = start
    if end is not None and end > until:
        end = None  # still running at the end of the period asked for
    entry = catalogue.get(site)
    gpu = entry.node.gpu if entry else None
    return Usage(
        uid=uid,
        pod=pod,
        user=user,
        vo=vo,
        site=site,
        kind=kind,
        image=image,
        start=start,
        end=end,
        until=until,
        cpu=cpu or 0.0,
        memory_bytes=memory or 0,
        gpus=gpus,
        gpu_model=gpu.model if gpu and gpus else None,
        estimated=state == LOST,
    )
