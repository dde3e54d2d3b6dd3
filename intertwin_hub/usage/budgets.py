"""A VO's budget at a site: what the current period's allocations used of it, in a sentence a
scientist can act on. Pure: the usages (or their totals) come from the service's ledger."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..sites import Budget, Site
from . import summary
from .accounting import Usage

WARN_AT = 0.9
OK, WARNING, EXHAUSTED = "ok", "warning", "exhausted"


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The calendar period (UTC) ``now`` falls in."""
    start = summary.bucket_start(now, period)
    return start, summary.next_bucket(start, period)


def period_words(period: str, start: datetime) -> str:
    if period == "month":
        return f"{start:%B %Y}"
    if period == "week":
        return f"the week of {start.day} {start:%B}"
    return f"{start.day} {start:%B}"


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 10 else f"{h:g}"


@dataclass(frozen=True)
class BudgetUse:
    site: Site
    budget: Budget
    start: datetime
    end: datetime
    gpu_used: float
    cpu_used: float

    def _parts(self) -> list[tuple[str, float, float]]:
        parts = []
        if self.budget.gpu_hours is not None:
            parts.append(("GPU hours", self.gpu_used, self.budget.gpu_hours))
        if self.budget.cpu_hours is not None:
            parts.append(("CPU-core hours", self.cpu_used, self.budget.cpu_hours))
        return parts

    @property
    def fraction(self) -> float:
        """The largest share used of any limit."""
        return max(used / limit for _, used, limit in self._parts())

    @property
    def state(self) -> str:
        f = self.fraction
        return EXHAUSTED if f >= 1 else WARNING if f >= WARN_AT else OK

    @property
    def sentence(self) -> str:
        what, _, limit = max(self._parts(), key=lambda p: p[1] / p[2])
        vo, site = self.budget.vo, self.site.name
        when = period_words(self.budget.period, self.start)
        if self.state == EXHAUSTED:
            return (
                f"The {vo} VO has used its {_hours(limit)} {what} at {site} for {when}; "
                "ask your VO manager."
            )
        # whole percents rounded down: a budget not used up never reads "100%"
        return (
            f"The {vo} VO has used {math.floor(self.fraction * 100)}% of its {_hours(limit)} "
            f"{what} at {site} for {when}."
        )

    def to_json(self) -> dict[str, Any]:
        def part(limit: float | None, used: float) -> dict[str, float] | None:
            return None if limit is None else {"used": round(used, 3), "budget": limit}

        return {
            "site": self.site.slug,
            "site_name": self.site.name,
            "vo": self.budget.vo,
            "period": self.budget.period,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "gpu_hours": part(self.budget.gpu_hours, self.gpu_used),
            "cpu_hours": part(self.budget.cpu_hours, self.cpu_used),
            "state": self.state,
            "sentence": self.sentence,
        }


def budget_use_of(site: Site, budget: Budget, used: summary.Totals, now: datetime) -> BudgetUse:
    """The budget against ``used``, the VO's totals at ``site`` in the period ``now`` falls in
    (as the ledger's rollup gives them)."""
    start, end = period_bounds(budget.period, now.astimezone(UTC))
    return BudgetUse(site, budget, start, end, sum(used.gpu_hours.values()), used.cpu_core_hours)


def budget_use(site: Site, budget: Budget, usages: Iterable[Usage], now: datetime) -> BudgetUse:
    """What the VO's workloads at ``site`` used in the period ``now`` falls in (``usages``
    may hold anything; only this VO's at this site count)."""
    start, end = period_bounds(budget.period, now.astimezone(UTC))
    mine = [u for u in usages if u.site == site.slug and u.vo == budget.vo]
    t = summary.by_site(mine, start, end).get(site.slug, summary.Totals())
    return BudgetUse(site, budget, start, end, sum(t.gpu_hours.values()), t.cpu_core_hours)
