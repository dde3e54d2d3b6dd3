"""Usage over a period: cut at the period's and buckets' edges, to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intertwin_hub.usage import summary
from intertwin_hub.usage.accounting import Usage

from .rows import CATALOGUE, used

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def usage(
    uid: str, start: datetime, end: datetime | None, site: str = "vega", gpus: int = 1
) -> Usage:
    return used(
        uid=uid, pod=f"p-{uid}", site=site, state="succeeded" if end else "running",
        started=start, finished=end, cpu=4.0, memory=16 * 10**9, gpus=gpus,
        until=datetime(2026, 12, 10, tzinfo=UTC),
    )  # fmt: skip


A100 = CATALOGUE.get("vega").node.gpu.model  # type: ignore[union-attr]


def test_a_job_across_the_months_edge_counts_only_its_part_in_the_period() -> None:
    u = usage("x", DEC - timedelta(hours=3), DEC + timedelta(hours=5))
    sites = summary.by_site([u], NOV, DEC)
    t = sites["vega"].to_json()
    assert t["wall_seconds"] == 3 * 3600 and t["jobs"] == 1
    assert t["cpu_core_hours"] == 12.0 and t["memory_gb_hours"] == 48.0
    assert t["gpu_hours"] == {A100: 3.0}


def test_totals_add_up_the_sites() -> None:
    us = [
        usage("a", NOV, NOV + timedelta(hours=2)),
        usage("b", NOV, NOV + timedelta(hours=1), "kbfi", 0),
    ]
    total = summary.total(summary.by_site(us, NOV, DEC)).to_json()
    assert (total["wall_seconds"], total["jobs"], total["gpu_hours"]) == (3 * 3600, 2, {A100: 2.0})


@pytest.mark.parametrize(
    ("unit", "starts"),
    [
        ("day", ["2026-11-29", "2026-11-30", "2026-12-01"]),
        # ISO weeks from Monday: the week of 23 November (cut at the period's start) and
        # the week of Monday 30 November
        ("week", ["2026-11-28", "2026-11-30"]),
        ("month", ["2026-11-28", "2026-12-01"]),
    ],
)
def test_series_buckets_are_cut_at_their_edges(unit: str, starts: list[str]) -> None:
    # 22:00 on 29 November to 02:00 on 1 December: 2 + 24 + 2 = 28 hours
    u = usage("x", datetime(2026, 11, 29, 22, tzinfo=UTC), datetime(2026, 12, 1, 2, tzinfo=UTC))
    start = datetime(2026, 11, 28, tzinfo=UTC)
    rows = summary.series([u], start, datetime(2026, 12, 2, tzinfo=UTC), unit)
    assert [a.date().isoformat() for a, _, _ in rows] == starts
    assert sum(t.to_json()["wall_seconds"] for _, _, t in rows) == 28 * 3600


def test_top_jobs_are_the_gpu_hungry_first() -> None:
    cpu_heavy = usage("cpu", NOV, NOV + timedelta(days=3), "kbfi", 0)
    gpu_short = usage("gpu", NOV, NOV + timedelta(hours=1))
    assert [u.uid for u, _ in summary.top_jobs([cpu_heavy, gpu_short], NOV, DEC, 10)] == [
        "gpu",
        "cpu",
    ]
    assert len(summary.top_jobs([cpu_heavy, gpu_short], NOV, DEC, 1)) == 1
