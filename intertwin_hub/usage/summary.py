"""A user's (or everyone's) usage over a period: totals by site, a series per day, week or
month, and the most expensive jobs. Each workload's running time is cut at the period's and the
buckets' edges, to the second."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .accounting import Usage

UNITS = ("day", "week", "month")


@dataclass
class Totals:
    """Allocated hours: CPU cores, memory GB, wall, and GPUs by model."""

    cpu_core_hours: float = 0.0
    memory_gb_hours: float = 0.0
    wall_hours: float = 0.0
    gpu_hours: dict[str, float] = field(default_factory=dict)
    jobs: int = 0
    estimated: bool = False  # some figure rests on an end nobody saw

    def add(self, u: Usage, seconds: float) -> None:
        hours = seconds / 3600
        self.cpu_core_hours += u.cpu * hours
        self.memory_gb_hours += u.memory_bytes / 1e9 * hours
        self.wall_hours += hours
        if u.gpus:
            model = u.gpu_model or "GPU"
            self.gpu_hours[model] = self.gpu_hours.get(model, 0.0) + u.gpus * hours
        self.estimated |= u.estimated

    def add_seconds(
        self,
        wall: float,
        cpu_core: float,
        memory_gb: float,
        gpu: float,
        gpu_model: str | None,
        estimated: bool,
    ) -> None:
        """Add figures already multiplied out, in seconds (the ledger's rollup)."""
        self.cpu_core_hours += cpu_core / 3600
        self.memory_gb_hours += memory_gb / 3600
        self.wall_hours += wall / 3600
        if gpu:
            model = gpu_model or "GPU"
            self.gpu_hours[model] = self.gpu_hours.get(model, 0.0) + gpu / 3600
        self.estimated |= estimated

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_core_hours": round(self.cpu_core_hours, 3),
            "memory_gb_hours": round(self.memory_gb_hours, 3),
            "wall_hours": round(self.wall_hours, 3),
            "wall_seconds": round(self.wall_hours * 3600),
            "gpu_hours": {k: round(v, 3) for k, v in sorted(self.gpu_hours.items())},
            "jobs": self.jobs,
            "estimated": self.estimated,
        }


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def seconds_within(u: Usage, start: datetime, end: datetime) -> float:
    """How long ``u`` ran inside [start, end)."""
    a = max(u.start, _utc(start))
    b = min(u.end or u.until, _utc(end))
    return max(0.0, (b - a).total_seconds())


def bucket_start(t: datetime, unit: str) -> datetime:
    t = _utc(t)
    day = datetime(t.year, t.month, t.day, tzinfo=UTC)
    if unit == "day":
        return day
    if unit == "week":  # ISO weeks start on Monday
        return day - timedelta(days=day.weekday())
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def next_bucket(t: datetime, unit: str) -> datetime:
    if unit == "day":
        return t + timedelta(days=1)
    if unit == "week":
        return t + timedelta(days=7)
    return datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)


def buckets(start: datetime, end: datetime, unit: str) -> Iterator[tuple[datetime, datetime]]:
    """The buckets of ``unit`` covering [start, end), cut at both ends."""
    t = bucket_start(start, unit)
    while t < end:
        nxt = next_bucket(t, unit)
        yield max(t, _utc(start)), min(nxt, _utc(end))
        t = nxt


def by_site(usages: Iterable[Usage], start: datetime, end: datetime) -> dict[str, Totals]:
    sites: dict[str, Totals] = defaultdict(Totals)
    for u in usages:
        s = seconds_within(u, start, end)
        if s > 0:
            sites[u.site].add(u, s)
            sites[u.site].jobs += 1
    return dict(sites)


def total(per_site: dict[str, Totals]) -> Totals:
    t = Totals()
    for s in per_site.values():
        t.cpu_core_hours += s.cpu_core_hours
        t.memory_gb_hours += s.memory_gb_hours
        t.wall_hours += s.wall_hours
        for model, h in s.gpu_hours.items():
            t.gpu_hours[model] = t.gpu_hours.get(model, 0.0) + h
        t.jobs += s.jobs
        t.estimated |= s.estimated
    return t


def series(
    usages: list[Usage], start: datetime, end: datetime, unit: str
) -> list[tuple[datetime, str, Totals]]:
    """(bucket start, site, totals) for every bucket and site with any use, in time order."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}")
    rows = []
    for a, b in buckets(start, end, unit):
        for site, t in sorted(by_site(usages, a, b).items()):
            rows.append((a, site, t))
    return rows


def top_jobs(
    usages: Iterable[Usage], start: datetime, end: datetime, limit: int
) -> list[tuple[Usage, Totals]]:
    """The most expensive jobs in the period: GPU hours first, then CPU-core hours."""
    found = []
    for u in usages:
        s = seconds_within(u, start, end)
        if s > 0:
            t = Totals(jobs=1)
            t.add(u, s)
            found.append((u, t))
    found.sort(key=lambda p: (-sum(p[1].gpu_hours.values()), -p[1].cpu_core_hours, p[0].uid))
    return found[:limit]
