"""Usage figures read from the service's ledger (``intertwin_hub.service.db``: ``usage_ledger``
and its per-day rollup ``usage_daily``), so a user's month costs a few dozen rollup rows and
their open pods, not their whole history.

A period is cut into UTC days: a whole day is read from the rollup (the closed pods), a day the
period only partly covers (its first and last) from the ledger rows that ran in that part, and
the open pods (still running) from the ledger in every day, accruing up to now. Every figure is
cut at the period's, the buckets' and the days' edges to the second, as ``summary`` does for a
list of usages. A bucket's job count is the pods that ran in its first day plus those that
started in its later days."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ..service.db import DailyUse, LedgerRow, Store, _utc, day_pieces
from ..sites import Budget, Catalogue, Site
from . import summary
from .accounting import Measured, Usage
from .budgets import BudgetUse, budget_use_of, period_bounds

GROUPS = ("site", "user", "vo")


@dataclass(frozen=True)
class Scope:
    """Whose usage: one user's (None: everyone's), at one site, of one VO."""

    user: str | None = None
    site: str | None = None
    vo: str | None = None


@dataclass(frozen=True)
class _Piece:
    day: date
    a: datetime
    b: datetime
    whole: bool
    bucket: datetime
    first: bool  # the first day of its bucket


def _pieces(start: datetime, end: datetime, unit: str | None) -> list[_Piece]:
    spans = summary.buckets(start, end, unit) if unit else iter([(start, end)])
    found = []
    for ba, bb in spans:
        first = True
        for day, a, b in day_pieces(ba, bb):
            found.append(_Piece(day, a, b, b - a == timedelta(days=1), ba, first))
            first = False
    return found


def _scoped(q: Any, model: Any, scope: Scope) -> Any:
    for name in ("user", "site", "vo"):
        value = getattr(scope, name)
        if value is not None:
            q = q.where(getattr(model, name) == value)
    return q


Key = tuple[Any, ...]


def totals(
    store: Store,
    start: datetime,
    end: datetime,
    scope: Scope = Scope(),
    by: Sequence[str] = ("site",),
    unit: str | None = None,
    now: datetime | None = None,
) -> dict[Key, summary.Totals]:
    """Totals per (bucket start, *``by``) over [start, end): one bucket (``start``) without a
    ``unit``, else one per day, week or month (``summary.buckets``). ``by`` names ``GROUPS``;
    a pod with no VO is grouped under None."""
    if unit is not None and unit not in summary.UNITS:
        raise ValueError(f"unit must be one of {', '.join(summary.UNITS)}")
    if any(g not in GROUPS for g in by):
        raise ValueError(f"groups are {', '.join(GROUPS)}")
    start, end = _utc(start), _utc(end)
    now = _utc(now or datetime.now(UTC))
    pieces = _pieces(start, end, unit)
    out: dict[Key, summary.Totals] = defaultdict(summary.Totals)
    if not pieces:
        return {}
    whole = {p.day: p for p in pieces if p.whole}
    partial = [p for p in pieces if not p.whole]
    with Session(store.engine) as s:
        if whole:
            cols = [getattr(DailyUse, g) for g in by]
            q = select(
                DailyUse.day,
                *cols,
                DailyUse.gpu_model,
                func.sum(DailyUse.wall_seconds),
                func.sum(DailyUse.cpu_core_seconds),
                func.sum(DailyUse.memory_gb_seconds),
                func.sum(DailyUse.gpu_seconds),
                func.sum(DailyUse.jobs),
                func.sum(DailyUse.started),
                func.sum(DailyUse.estimated),
            ).where(DailyUse.day >= min(whole), DailyUse.day <= max(whole))
            q = _scoped(q, DailyUse, scope).group_by(DailyUse.day, *cols, DailyUse.gpu_model)
            for row in s.execute(q):
                day, groups = row[0], row[1 : 1 + len(by)]
                model, wall, cpu, mem, gpu, jobs, started, est = row[1 + len(by) :]
                p = whole.get(day if isinstance(day, date) else date.fromisoformat(str(day)))
                if p is None or not (jobs or wall):
                    continue
                t = out[(p.bucket, *_group_values(by, groups))]
                t.add_seconds(wall, cpu, mem, gpu, model or None, bool(est))
                t.jobs += int(jobs if p.first else started)
        # the open pods, and the closed ones in the partly covered days
        live = [LedgerRow.ended_at.is_(None)] + [
            and_(LedgerRow.ended_at > p.a, LedgerRow.started_at < p.b) for p in partial
        ]
        q = select(LedgerRow).where(LedgerRow.started_at < min(end, now), or_(*live))
        for row in s.scalars(_scoped(q, LedgerRow, scope)):
            groups = tuple(getattr(row, g) for g in by)
            key_groups = _group_values(by, groups)
            rs = _utc(row.started_at)
            re = _utc(row.ended_at) if row.ended_at else now
            for p in pieces if row.ended_at is None else partial:
                secs = (min(re, p.b) - max(rs, p.a)).total_seconds()
                if secs <= 0:
                    continue
                t = out[(p.bucket, *key_groups)]
                t.add_seconds(
                    secs,
                    (row.cpu or 0.0) * secs,
                    (row.memory or 0) / 1e9 * secs,
                    row.gpus * secs,
                    row.gpu_model,
                    row.estimated,
                )
                if p.first or p.a <= rs < p.b:
                    t.jobs += 1
    return dict(out)


def _group_values(by: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((v or None) if g == "vo" else v for g, v in zip(by, values, strict=True))


def by_site(
    store: Store,
    start: datetime,
    end: datetime,
    scope: Scope = Scope(),
    now: datetime | None = None,
) -> dict[str, summary.Totals]:
    return {k[1]: t for k, t in totals(store, start, end, scope, ("site",), now=now).items()}


def series(
    store: Store,
    start: datetime,
    end: datetime,
    unit: str,
    scope: Scope = Scope(),
    now: datetime | None = None,
) -> list[tuple[datetime, str, summary.Totals]]:
    """(bucket start, site, totals) for every bucket and site with any use, in time order."""
    found = totals(store, start, end, scope, ("site",), unit, now)
    return [(k[0], k[1], found[k]) for k in sorted(found)]


def by_user_and_vo(
    store: Store, start: datetime, end: datetime, now: datetime | None = None
) -> tuple[dict[str, summary.Totals], dict[str | None, summary.Totals]]:
    """Everyone's totals per user and per VO (the admins' view)."""
    users = {k[1]: t for k, t in totals(store, start, end, Scope(), ("user",), now=now).items()}
    vos = {k[1]: t for k, t in totals(store, start, end, Scope(), ("vo",), now=now).items()}
    return users, vos


def used(
    store: Store, start: datetime, end: datetime, scope: Scope, now: datetime | None = None
) -> summary.Totals:
    """All of the scope's use in the period, in one Totals (a VO's budget at a site)."""
    found = totals(store, start, end, scope, ("site",), now=now)
    return summary.total({k[1]: t for k, t in found.items()})


def usages(
    store: Store,
    catalogue: Catalogue,
    start: datetime,
    end: datetime,
    scope: Scope = Scope(),
    now: datetime | None = None,
) -> list[Usage]:
    """Every pod (of the scope) that ran in [start, end), oldest first, its running time counted
    up to ``end`` (or now, when that is earlier): the ledger's rows for per-pod lists (top
    jobs, CSV, APEL records)."""
    start, end = _utc(start), _utc(end)
    until = min(end, _utc(now or datetime.now(UTC)))
    q = (
        select(LedgerRow)
        .where(LedgerRow.started_at < end)
        .where(or_(LedgerRow.ended_at.is_(None), LedgerRow.ended_at >= start))
        .order_by(LedgerRow.started_at, LedgerRow.uid)
    )
    found = []
    with Session(store.engine) as s:
        for row in s.scalars(_scoped(q, LedgerRow, scope)):
            found.append(usage_of_row(row, catalogue, until))
    return [u for u in found if u is not None]


def usage_of_row(row: LedgerRow, catalogue: Catalogue, until: datetime) -> Usage | None:
    """A ledger row as a ``Usage`` up to ``until`` (None if it started at or after it)."""
    start = _utc(row.started_at)
    if start >= until:
        return None
    end = _utc(row.ended_at) if row.ended_at else None
    if end is not None and end > until:
        end = None  # still running at the end of the period asked for
    model = row.gpu_model
    if model is None and row.gpus:
        site = catalogue.get(row.site)
        model = site.node.gpu.model if site and site.node.gpu else None
    return Usage(
        uid=row.uid,
        pod=row.pod,
        user=row.user,
        vo=row.vo,
        site=row.site,
        kind=row.kind,
        image=row.image,
        start=start,
        end=end,
        until=until,
        cpu=row.cpu or 0.0,
        memory_bytes=row.memory or 0,
        gpus=row.gpus,
        gpu_model=model,
        estimated=row.estimated,
        measured=(
            Measured(
                row.measured_source,
                row.measured_cpu_seconds,
                row.measured_max_rss_bytes,
                row.measured_wall_seconds,
            )
            if row.measured_source
            else None
        ),
    )


def budget_use(store: Store, site: Site, budget: Budget, now: datetime) -> BudgetUse:
    """What the budget's VO used of it at ``site`` in the period ``now`` falls in."""
    start, end = period_bounds(budget.period, now)
    t = used(store, start, end, Scope(site=site.slug, vo=budget.vo), now)
    return budget_use_of(site, budget, t, now)
