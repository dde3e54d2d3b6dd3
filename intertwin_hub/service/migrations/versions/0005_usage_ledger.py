"""the usage ledger (one row per workload pod that ran) and its per-day rollup, filled from the
history of the jobs that ran before

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FINAL = ("succeeded", "failed", "cancelled", "lost")


def upgrade() -> None:
    ledger = op.create_table(
        "usage_ledger",
        sa.Column("uid", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("vo", sa.String(255), nullable=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("node", sa.String(253), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("pod", sa.String(253), nullable=False),
        sa.Column("image", sa.Text, nullable=True),
        sa.Column("cpu", sa.Float, nullable=True),
        sa.Column("memory", sa.BigInteger, nullable=True),
        sa.Column("cpu_request", sa.Float, nullable=True),
        sa.Column("cpu_limit", sa.Float, nullable=True),
        sa.Column("memory_request", sa.BigInteger, nullable=True),
        sa.Column("memory_limit", sa.BigInteger, nullable=True),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("gpu_model", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wall_seconds", sa.Float, nullable=False),
        sa.Column("cpu_core_seconds", sa.Float, nullable=False),
        sa.Column("memory_gb_seconds", sa.Float, nullable=False),
        sa.Column("gpu_seconds", sa.Float, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("measured_cpu_seconds", sa.Float, nullable=True),
        sa.Column("measured_max_rss_bytes", sa.BigInteger, nullable=True),
        sa.Column("measured_source", sa.String(64), nullable=True),
    )
    op.create_index("ix_usage_ledger_user_ended", "usage_ledger", ["user", "ended_at"])
    op.create_index("ix_usage_ledger_site_vo_ended", "usage_ledger", ["site", "vo", "ended_at"])
    op.create_index("ix_usage_ledger_ended", "usage_ledger", ["ended_at"])
    daily = op.create_table(
        "usage_daily",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("vo", sa.String(255), primary_key=True),
        sa.Column("gpu_model", sa.String(255), primary_key=True),
        sa.Column("wall_seconds", sa.Float, nullable=False),
        sa.Column("cpu_core_seconds", sa.Float, nullable=False),
        sa.Column("memory_gb_seconds", sa.Float, nullable=False),
        sa.Column("gpu_seconds", sa.Float, nullable=False),
        sa.Column("jobs", sa.Integer, nullable=False),
        sa.Column("started", sa.Integer, nullable=False),
        sa.Column("estimated", sa.Integer, nullable=False),
    )
    op.create_index("ix_usage_daily_site_vo_day", "usage_daily", ["site", "vo", "day"])
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"])
    _fill(ledger, daily)


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _gpu_models() -> dict[str, str]:
    """The GPU model of each site, from the catalogue the service runs with."""
    from intertwin_hub.sites import load_catalogue

    try:
        catalogue = load_catalogue(os.environ.get("INTERTWIN_SITE_CATALOGUE"))
    except Exception:
        return {}
    return {s.slug: s.node.gpu.model for s in catalogue if s.node.gpu}


def _fill(ledger: sa.Table, daily: sa.Table) -> None:
    """A row for every job of the history that ran (its times as the service saw them), and
    the closed ones' days in the rollup; written with this revision's own tables, so a later
    revision's columns never matter here."""
    conn = op.get_bind()
    when = sa.DateTime(timezone=True)
    jobs = sa.table(
        "jobs",
        *(sa.column(c) for c in ("uid", "user", "vo", "site", "node", "kind", "pod", "image")),
        sa.column("cpu", sa.Float),
        sa.column("memory", sa.BigInteger),
        sa.column("gpus", sa.Integer),
        sa.column("state", sa.String),
        sa.column("started", when),
        sa.column("finished", when),
    )
    models = _gpu_models()
    now = datetime.now(UTC)
    days: dict[tuple[str, date, str, str, str], dict[str, Any]] = {}
    rows = []
    for j in conn.execute(sa.select(jobs).where(jobs.c.started.is_not(None))).mappings():
        start = _utc(j["started"])
        final = j["state"] in FINAL
        end = None
        if final:  # a final state without an end time: nothing beyond the start
            end = max(_utc(j["finished"]), start) if j["finished"] else start
        cpu, mem, gpus = j["cpu"] or 0.0, j["memory"] or 0, j["gpus"] or 0
        wall = (end - start).total_seconds() if end else 0.0
        model = models.get(j["site"]) if gpus else None
        estimated = j["state"] == "lost"
        rows.append(
            {
                "uid": j["uid"], "user": j["user"], "vo": j["vo"], "site": j["site"],
                "node": j["node"], "kind": j["kind"], "pod": j["pod"], "image": j["image"],
                "cpu": j["cpu"], "memory": j["memory"], "gpus": gpus, "gpu_model": model,
                "started_at": start, "ended_at": end, "last_seen": end or now,
                "wall_seconds": wall, "cpu_core_seconds": cpu * wall,
                "memory_gb_seconds": mem / 1e9 * wall, "gpu_seconds": gpus * wall,
                "estimated": estimated,
            }
        )  # fmt: skip
        if end is None:
            continue
        t = datetime(start.year, start.month, start.day, tzinfo=UTC)
        while t < end:
            a, b = max(t, start), min(t + timedelta(days=1), end)
            secs = (b - a).total_seconds()
            if secs > 0:
                key = (j["user"], t.date(), j["site"], j["vo"] or "", model or "")
                d = days.setdefault(
                    key,
                    dict(
                        zip(("user", "day", "site", "vo", "gpu_model"), key, strict=True),
                        wall_seconds=0.0, cpu_core_seconds=0.0, memory_gb_seconds=0.0,
                        gpu_seconds=0.0, jobs=0, started=0, estimated=0,
                    ),
                )  # fmt: skip
                d["wall_seconds"] += secs
                d["cpu_core_seconds"] += cpu * secs
                d["memory_gb_seconds"] += mem / 1e9 * secs
                d["gpu_seconds"] += gpus * secs
                d["jobs"] += 1
                d["started"] += a == start
                d["estimated"] += estimated
            t += timedelta(days=1)
    for i in range(0, len(rows), 1000):
        conn.execute(ledger.insert(), rows[i : i + 1000])
    todo = list(days.values())
    for i in range(0, len(todo), 1000):
        conn.execute(daily.insert(), todo[i : i + 1000])


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("usage_ledger")
