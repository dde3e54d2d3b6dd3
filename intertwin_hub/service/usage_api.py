"""The ``/usage`` routes of the hub service: a user's own usage (an admin's: anyone's, or
everyone's), read from the usage ledger and its per-day rollup (``intertwin_hub.usage.ledger``).
The user comes from the token only; a non-admin's ``user`` parameter is ignored, as on
``/jobs``."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from ..errors import ApiError, bad_request
from ..spawner.options import vos_of
from ..usage import ledger, summary
from ..usage.accounting import Usage
from .app import BaseHandler, _time_param

MAX_DAYS = 3700  # about ten years: a period longer is a typo


def this_month(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return start, summary.next_bucket(start, "month")


class UsageBase(BaseHandler):
    def period(self) -> tuple[datetime, datetime]:
        default_from, default_to = this_month(datetime.now(UTC))
        start = _time_param(self, "from") or default_from
        end = _time_param(self, "to") or default_to
        if end <= start:
            raise bad_request("to", "to must be after from.")
        if (end - start).days > MAX_DAYS:
            raise bad_request("from", "Ask for at most ten years at a time.")
        return start, end

    def whose(self) -> str | None:
        """The user whose usage is asked: the caller's own; an admin's pick (``user``), or
        everyone's (``all=true``)."""
        if not self.admin:
            return self.user_name
        if self.get_query_argument("all", "false").lower() in ("1", "true", "yes"):
            return None
        return self.get_query_argument("user", None) or self.user_name

    def usages(self, start: datetime, end: datetime, user: str | None) -> list[Usage]:
        return ledger.usages(self.svc.store, self.svc.catalogue, start, end, ledger.Scope(user))

    def site_name(self, slug: str) -> str:
        return self.svc.index.site_name(slug)

    def period_json(self, start: datetime, end: datetime, user: str | None) -> dict[str, Any]:
        return {"from": start.isoformat(), "to": end.isoformat(), "user": user}


class SummaryHandler(UsageBase):
    async def get(self) -> None:
        start, end = self.period()
        user = self.whose()
        per_site = ledger.by_site(self.svc.store, start, end, ledger.Scope(user))
        self.write_json(
            {
                **self.period_json(start, end, user),
                "totals": summary.total(per_site).to_json(),
                "sites": [
                    {"site": slug, "site_name": self.site_name(slug), **t.to_json()}
                    for slug, t in sorted(per_site.items())
                ],
            }
        )


class SeriesHandler(UsageBase):
    async def get(self) -> None:
        start, end = self.period()
        unit = self.get_query_argument("unit", "day")
        if unit not in summary.UNITS:
            raise bad_request("unit", f"unit must be one of {', '.join(summary.UNITS)}.")
        user = self.whose()
        rows = ledger.series(self.svc.store, start, end, unit, ledger.Scope(user))
        self.write_json(
            {
                **self.period_json(start, end, user),
                "unit": unit,
                "points": [
                    {"start": a.isoformat(), "site": site, **t.to_json()} for a, site, t in rows
                ],
            }
        )


class TopJobsHandler(UsageBase):
    async def get(self) -> None:
        start, end = self.period()
        try:
            limit = int(self.get_query_argument("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise bad_request("limit", "limit must be a whole number from 1 to 1000.")
        user = self.whose()
        top = summary.top_jobs(self.usages(start, end, user), start, end, limit)
        self.write_json(
            {
                **self.period_json(start, end, user),
                "jobs": [
                    {
                        "id": u.uid,
                        "user": u.user,
                        "vo": u.vo,
                        "site": u.site,
                        "site_name": self.site_name(u.site),
                        "kind": u.kind,
                        "start": u.start.isoformat(),
                        "end": u.end.isoformat() if u.end else None,
                        "cpu": u.cpu,
                        "gpus": u.gpus,
                        "gpu_model": u.gpu_model,
                        "measured": u.measured.to_json() if u.measured else None,
                        **t.to_json(),
                    }
                    for u, t in top
                ],
            }
        )


CSV_COLUMNS = (
    "id", "user", "vo", "site", "kind", "start", "end", "cpu", "memory_bytes", "gpus",
    "gpu_model", "wall_hours", "cpu_core_hours", "memory_gb_hours", "gpu_hours", "estimated",
    # the site's own accounting of the whole job (not cut at the period), empty where none
    "measured_source", "measured_cpu_seconds", "measured_max_rss_bytes", "measured_wall_seconds",
)  # fmt: skip


def _measured_cells(u: Usage) -> list[Any]:
    m = u.measured
    if m is None:
        return ["", "", "", ""]
    return [
        m.source,
        *("" if v is None else v for v in (m.cpu_seconds, m.max_rss_bytes, m.wall_seconds)),
    ]


class CsvHandler(UsageBase):
    async def get(self) -> None:
        start, end = self.period()
        user = self.whose()
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(CSV_COLUMNS)
        for u in self.usages(start, end, user):
            s = summary.seconds_within(u, start, end)
            t = summary.Totals()
            t.add(u, s)
            w.writerow(
                [
                    u.uid, u.user, u.vo or "", u.site, u.kind, u.start.isoformat(),
                    u.end.isoformat() if u.end else "", u.cpu, u.memory_bytes, u.gpus,
                    u.gpu_model or "", round(t.wall_hours, 6), round(t.cpu_core_hours, 6),
                    round(t.memory_gb_hours, 6), round(sum(t.gpu_hours.values()), 6),
                    str(u.estimated).lower(), *_measured_cells(u),
                ]
            )  # fmt: skip
        name = f"usage-{user or 'all'}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(out.getvalue())


class UsersHandler(UsageBase):
    """Admins: every user's and every VO's totals in the period."""

    async def get(self) -> None:
        if not self.admin:
            raise ApiError(403, "forbidden", "Only hub admins see other users' usage.")
        start, end = self.period()
        per_user, per_vo = ledger.by_user_and_vo(self.svc.store, start, end)
        self.write_json(
            {
                **self.period_json(start, end, None),
                "users": [{"user": k, **t.to_json()} for k, t in sorted(per_user.items())],
                "vos": [
                    {"vo": k, **t.to_json()}
                    for k, t in sorted(per_vo.items(), key=lambda kv: kv[0] or "")
                ],
            }
        )


class BudgetsHandler(UsageBase):
    """The budgets of my VOs (an admin's: every VO's) and what this period used of them."""

    async def get(self) -> None:
        site_slug = self.get_query_argument("site", None)
        if site_slug is not None and self.svc.catalogue.get(site_slug) is None:
            raise bad_request("site", f"No site is called {site_slug!r}.")
        vo = self.get_query_argument("vo", None)
        mine: frozenset[str] | None = None
        if not self.admin:
            model = await self.svc.user_model(self.user_name)
            mine = vos_of(model.get("groups") or [])
        now = datetime.now(UTC)
        found = []
        for site in self.svc.catalogue:
            if site_slug is not None and site.slug != site_slug:
                continue
            for budget in site.budgets:
                if (vo is not None and budget.vo != vo) or (
                    mine is not None and budget.vo not in mine
                ):
                    continue
                found.append(ledger.budget_use(self.svc.store, site, budget, now).to_json())
        self.write_json({"budgets": found})


def routes(api: str, args: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    from jupyterhub.utils import url_path_join

    return [
        (url_path_join(api, "usage"), SummaryHandler, args),
        (url_path_join(api, "usage/series"), SeriesHandler, args),
        (url_path_join(api, "usage/jobs"), TopJobsHandler, args),
        (url_path_join(api, "usage/users"), UsersHandler, args),
        (url_path_join(api, "usage.csv"), CsvHandler, args),
        (url_path_join(api, "budgets"), BudgetsHandler, args),
    ]
