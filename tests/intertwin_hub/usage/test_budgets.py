"""A VO's budget at a site: this period's allocations against it, in a sentence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from intertwin_hub.sites import Budget
from intertwin_hub.usage.accounting import Usage
from intertwin_hub.usage.budgets import EXHAUSTED, OK, WARNING, budget_use

from .rows import CATALOGUE, used

PSNC = CATALOGUE.get("psnc")
assert PSNC is not None
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def usage(
    uid: str, start: datetime, hours: float, gpus: int, vo: str = "dev.intertwin.eu"
) -> Usage:
    return used(
        uid=uid, pod=uid, vo=vo, site="psnc", kind="batch-cell", started=start,
        finished=start + timedelta(hours=hours), cpu=8.0, memory=10**9, gpus=gpus, until=NOW,
    )  # fmt: skip


def test_the_shipped_psnc_budget_is_the_dev_vos_500_gpu_hours_a_month() -> None:
    assert PSNC.budget_of("dev.intertwin.eu") == Budget("dev.intertwin.eu", "month", 500.0)
    assert PSNC.budget_of("other.eu") is None


def test_only_this_periods_allocations_of_this_vo_count() -> None:
    budget = PSNC.budget_of("dev.intertwin.eu")
    assert budget is not None
    used = [
        usage("oct", datetime(2026, 10, 20, tzinfo=UTC), 100, 4),  # last month
        usage("other", datetime(2026, 11, 2, tzinfo=UTC), 100, 4, vo="other.eu"),
        usage("a", datetime(2026, 11, 3, tzinfo=UTC), 50, 4),  # 200 GPU hours
        usage("b", datetime(2026, 10, 31, 22, tzinfo=UTC), 4, 1),  # 2 of them in November
    ]
    b = budget_use(PSNC, budget, used, NOW)
    assert (b.gpu_used, b.start, b.end) == (
        202.0,
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert b.state == OK
    out = b.to_json()
    assert out["gpu_hours"] == {"used": 202.0, "budget": 500.0} and out["cpu_hours"] is None


def test_warned_from_90_percent_and_refused_when_used_up() -> None:
    budget = PSNC.budget_of("dev.intertwin.eu")
    assert budget is not None
    start = datetime(2026, 11, 2, tzinfo=UTC)
    warned = budget_use(PSNC, budget, [usage("a", start, 115, 4)], NOW)
    assert warned.state == WARNING
    assert warned.sentence == (
        "The dev.intertwin.eu VO has used 92% of its 500 GPU hours at PSNC for November 2026."
    )
    # rounded down: 499.5 of 500 hours is not used up, and does not read "100%"
    almost = budget_use(PSNC, budget, [usage("a", start, 124.875, 4)], NOW)
    assert almost.state == WARNING and "has used 99% of its 500 GPU hours" in almost.sentence
    spent = budget_use(PSNC, budget, [usage("a", start, 125, 4)], NOW)
    assert spent.state == EXHAUSTED
    assert spent.sentence == (
        "The dev.intertwin.eu VO has used its 500 GPU hours at PSNC for November 2026; "
        "ask your VO manager."
    )
    # the CPU-core limit speaks when it is the tighter one
    both = replace(budget, cpu_hours=1000.0)
    cpu = budget_use(PSNC, both, [usage("c", start, 125, 0)], NOW)
    assert cpu.state == EXHAUSTED and "1,000 CPU-core hours" in cpu.sentence
