"""A user's monthly usage summary over a big usage ledger, on SQLite and on PostgreSQL, and the
ledger's write cost per pod event with 10,000 live pods.

    .venv/bin/python bench/usage.py [--rows 1000000] [--users 1000] [--requests 200]
    .venv/bin/python bench/usage.py --smoke      # 20,000 rows of 100 users: does it still work

Fills ``usage_ledger`` (``intertwin_hub.service.db``) with ``--rows`` closed pods of ``--users``
users over the twelve months before December 2026 (sites, GPUs, CPUs and memory as the shipped
catalogue offers them; running times from a minute to three days, a few still running), and its
per-day rollup ``usage_daily`` computed from the rows as the service's writes compute it; then
asks, for random users, November 2026's summary by site (what ``GET /usage`` answers) three
ways, in the same run on the same data:

- **ours**: ``intertwin_hub.usage.ledger.by_site`` (the rollup's days plus the open pods);
- **rows, indexed**: the user's ledger rows that ran in the month through the
  ``(user, ended_at)`` index, summed per row in Python (``summary.by_site``);
- **naive full scan**: the same rows and sums with every index defeated (the columns wrapped in
  ``coalesce``), so the database reads the whole table on each request.

Checks, for a few users, that the three answer the same. PostgreSQL is the testbed's server
(``testbed/rucio/postgres.py``), started in a scratch folder and stopped by its pid.

Write cost: an ``Index`` (the service's watch bookkeeping) on the filled database lists 10,000
running pods (``--live``), then is fed MODIFIED events: a running pod told again (nothing
changes), a pod ending (its row closed, its days added to the rollup) and a new pod starting;
each event timed alone, with the ledger and with its writes switched off (the history alone).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, or_, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from intertwin_hub import labels  # noqa: E402
from intertwin_hub.service import db  # noqa: E402
from intertwin_hub.service.index import Index  # noqa: E402
from intertwin_hub.sites import load_catalogue  # noqa: E402
from intertwin_hub.usage import ledger, summary  # noqa: E402
from intertwin_hub.usage.accounting import Usage  # noqa: E402
from testbed.procs import Supervisor  # noqa: E402
from testbed.rucio.postgres import start_postgres  # noqa: E402

GOAL_P95_MS = 50.0
CATALOGUE = load_catalogue()
MODELS = {s.slug: s.node.gpu.model for s in CATALOGUE if s.node.gpu}
FIRST = datetime(2025, 12, 1, tzinfo=UTC)
MONTH = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
# (site, GPUs, CPUs, memory GiB) as the catalogue's choices go
SHAPES = [
    ("vega", 1, 16.0, 64), ("vega", 4, 64.0, 256), ("psnc", 1, 16.0, 128),
    ("psnc", 0, 8.0, 32), ("kbfi", 0, 4.0, 16), ("kbfi", 0, 1.0, 4), ("ukri", 0, 2.0, 8),
    ("ukri", 1, 8.0, 32),
]  # fmt: skip


def ledger_rows(n: int, users: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    span = (NOW - FIRST).total_seconds()
    for i in range(n):
        site, gpus, cpu, gib = rnd.choice(SHAPES)
        start = FIRST + timedelta(seconds=rnd.uniform(0, span))
        # a minute to three days, mostly short (batch cells), some long (notebooks)
        secs = min(3 * 86400, 60 + rnd.expovariate(1 / 7200))
        end: datetime | None = start + timedelta(seconds=secs)
        if end is not None and end > NOW:
            end = None  # still running
        wall = (end - start).total_seconds() if end else 0.0
        mem = gib * 2**30
        yield {
            "uid": f"{i:08d}-bench", "user": f"user{rnd.randrange(users):04d}",
            "vo": "dev.intertwin.eu" if rnd.random() < 0.7 else None, "site": site,
            "node": f"{site}-vk", "kind": rnd.choice(["notebook", "batch-cell"]),
            "pod": f"p{i}", "image": "img", "cpu": cpu, "memory": mem, "cpu_request": cpu,
            "cpu_limit": cpu, "memory_request": mem, "memory_limit": mem, "gpus": gpus,
            "gpu_model": MODELS.get(site) if gpus else None, "started_at": start,
            "ended_at": end, "last_seen": end or NOW, "wall_seconds": wall,
            "cpu_core_seconds": cpu * wall, "memory_gb_seconds": mem / 1e9 * wall,
            "gpu_seconds": gpus * wall, "estimated": False,
        }  # fmt: skip


def fill(store: db.Store, n: int, users: int) -> tuple[int, float]:
    """The ledger and its rollup (the closed rows' days, as ``db._add_days`` adds them);
    (rollup rows, seconds)."""
    t0 = time.perf_counter()
    days: dict[tuple[str, date, str, str, str], dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for row in ledger_rows(n, users):
            batch.append(row)
            if len(batch) == 10_000:
                conn.execute(insert(db.LedgerRow), batch)
                batch = []
            if row["ended_at"] is None:
                continue
            for day, a, b in db.day_pieces(row["started_at"], row["ended_at"]):
                secs = (b - a).total_seconds()
                key = (row["user"], day, row["site"], row["vo"] or "", row["gpu_model"] or "")
                d = days.get(key)
                if d is None:
                    d = days[key] = dict(
                        zip(("user", "day", "site", "vo", "gpu_model"), key, strict=True),
                        wall_seconds=0.0, cpu_core_seconds=0.0, memory_gb_seconds=0.0,
                        gpu_seconds=0.0, jobs=0, started=0, estimated=0,
                    )  # fmt: skip
                d["wall_seconds"] += secs
                d["cpu_core_seconds"] += row["cpu"] * secs
                d["memory_gb_seconds"] += row["memory"] / 1e9 * secs
                d["gpu_seconds"] += row["gpus"] * secs
                d["jobs"] += 1
                d["started"] += a == row["started_at"]
        if batch:
            conn.execute(insert(db.LedgerRow), batch)
        todo = list(days.values())
        for i in range(0, len(todo), 10_000):
            conn.execute(insert(db.DailyUse), todo[i : i + 10_000])
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return len(todo), time.perf_counter() - t0


def rows_of(store: db.Store, user: str, naive: bool) -> list[Usage]:
    """The user's rows that ran in the month; ``naive``: every index defeated (full scan)."""
    start, end = MONTH
    L = db.LedgerRow
    if naive:
        far = datetime(9999, 1, 1, tzinfo=UTC)
        conds = [
            func.coalesce(L.user, "") == user,
            func.coalesce(L.started_at, far) < end,
            func.coalesce(L.ended_at, far) >= start,
        ]
    else:
        conds = [L.user == user, L.started_at < end, or_(L.ended_at.is_(None), L.ended_at >= start)]
    until = min(end, NOW)
    with Session(store.engine) as s:
        found = [
            ledger.usage_of_row(r, CATALOGUE, until) for r in s.scalars(select(L).where(*conds))
        ]
    return [u for u in found if u is not None]


def ours(store: db.Store, user: str) -> dict[str, summary.Totals]:
    return ledger.by_site(store, *MONTH, ledger.Scope(user), now=NOW)


def by_rows(store: db.Store, user: str, naive: bool) -> dict[str, summary.Totals]:
    return summary.by_site(rows_of(store, user, naive), *MONTH)


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def agree(a: dict[str, summary.Totals], b: dict[str, summary.Totals]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k].to_json(), b[k].to_json()
        if x["jobs"] != y["jobs"] or abs(x["wall_seconds"] - y["wall_seconds"]) > 1:
            return False
        if abs(x["cpu_core_hours"] - y["cpu_core_hours"]) > 0.01:
            return False
    return True


def summaries(store: db.Store, users: int, requests: int, naive_requests: int) -> dict[str, Any]:
    rnd = random.Random(3)
    names = [f"user{rnd.randrange(users):04d}" for _ in range(requests)]
    for name in names[:5]:  # the three ways answer the same
        a, b, c = ours(store, name), by_rows(store, name, False), by_rows(store, name, True)
        assert agree(a, b) and agree(a, c), f"the answers for {name} differ"
    for name in names[:10]:  # warm-up
        ours(store, name)
        by_rows(store, name, False)
    return {
        "ours": [timed(partial(ours, store, n)) for n in names],
        "rows": [timed(partial(by_rows, store, n, False)) for n in names],
        "naive": [timed(partial(by_rows, store, n, True)) for n in names[:naive_requests]],
    }


def pod(uid: str, user: str, site: str, state: dict[str, Any], phase: str) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid, "name": f"cell-{uid}", "creationTimestamp": "2026-12-04T10:00:00Z",
            "labels": {**labels.workload_labels(site, "batch-cell"), labels.LABEL_USER: user},
            "annotations": {labels.ANNOTATION_USER: user, labels.ANNOTATION_VO: "dev.intertwin.eu"},
        },
        "spec": {
            "nodeName": f"{site}-vk",
            "containers": [{"name": "cell", "image": "img", "resources": {
                "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                "requests": {"cpu": "4", "memory": "16Gi"}}}],
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "cell", "state": state}]},
    }  # fmt: skip


def running(uid: str, user: str) -> dict[str, Any]:
    return pod(uid, user, "vega", {"running": {"startedAt": "2026-12-04T10:00:05Z"}}, "Running")


def ended(uid: str, user: str) -> dict[str, Any]:
    term = {"exitCode": 0, "reason": "Completed", "startedAt": "2026-12-04T10:00:05Z"}
    state = {"terminated": {**term, "finishedAt": "2026-12-05T01:30:00Z"}}
    return pod(uid, user, "vega", state, "Succeeded")


@dataclass
class WriteCost:
    """The first list's time (s), and each event's time (ms) by (mode, kind of event)."""

    list_s: float
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def write_cost(store: db.Store, live: int, events: int) -> WriteCost:
    """Per-event times (ms) with the ledger and with its writes off, 10,000 pods live; the two
    modes take turns event by event, so a change in the machine's load hits both alike."""
    index = Index(CATALOGUE, store)
    users = [f"user{i:04d}" for i in range(1000)]
    pods = [running(f"live-{i}", users[i % len(users)]) for i in range(live)]
    t = time.perf_counter()
    index.reconcile(pods, now=NOW)
    out = WriteCost(time.perf_counter() - t)
    real = db._ledger_observe

    def off(*args: Any, **kwargs: Any) -> None:
        return None

    def event(mode: str, kind: str, p: dict[str, Any]) -> None:
        db._ledger_observe = real if mode == "ledger" else off
        try:
            out.times.setdefault((mode, kind), []).append(
                timed(lambda: index.pod_event("ADDED" if kind == STARTS else "MODIFIED", p, NOW))
            )
        finally:
            db._ledger_observe = real

    for i in range(events):
        for mode in ("ledger", "history alone"):
            tag, user = ("a" if mode == "ledger" else "b"), users[i % 1000]
            event(mode, AGAIN, pods[(i * 7 + (mode == "ledger")) % live])
            event(mode, STARTS, running(f"new-{tag}-{i}", user))
    for i in range(events):
        for mode in ("ledger", "history alone"):
            tag, user = ("a" if mode == "ledger" else "b"), users[i % 1000]
            event(mode, ENDS, ended(f"new-{tag}-{i}", user))
    return out


AGAIN = "running pod told again"
STARTS = "pod starts"
ENDS = "pod ends (row closed, days rolled up)"


def report(name: str, res: dict[str, Any], naive_requests: int) -> None:
    o, r, n = res["ours"], res["rows"], res["naive"]
    print(f"\n== {name}: a user's monthly summary by site (ms)")
    for label, xs in (("ours (rollup + open pods)", o), ("rows, indexed", r),
                      (f"naive full scan ({len(n)} requests)", n)):  # fmt: skip
        print(f"  {label:38s} p50 {pct(xs, 0.5):8.2f}  p95 {pct(xs, 0.95):8.2f}  n={len(xs)}")
    ok = "met" if pct(o, 0.95) <= GOAL_P95_MS else "NOT met"
    print(f"  goal p95 <= {GOAL_P95_MS:.0f} ms: {ok} ({pct(o, 0.95):.2f} ms)")
    print(
        f"  ratio p95 naive / ours: {pct(n, 0.95) / pct(o, 0.95):.1f}x; "
        f"rows indexed / ours: {pct(r, 0.95) / pct(o, 0.95):.1f}x"
    )


def report_writes(name: str, w: WriteCost, live: int) -> None:
    print(f"\n== {name}: ledger write cost per pod event, {live:,} live pods (ms)")
    print(f"  first list of {live:,} running pods into the history and ledger: {w.list_s:.1f} s")
    kinds = [kind for mode, kind in w.times if mode == "ledger"]
    for kind in kinds:
        a, b = w.times[("ledger", kind)], w.times[("history alone", kind)]
        print(
            f"  {kind:40s} with ledger mean {statistics.mean(a):6.2f} p95 {pct(a, 0.95):6.2f}"
            f" | history alone mean {statistics.mean(b):6.2f} p95 {pct(b, 0.95):6.2f}"
            f" | {statistics.mean(a) - statistics.mean(b):+.2f} ms"
        )


def run_one(name: str, url: str, args: argparse.Namespace) -> None:
    store = db.open_store(url)
    store.gpu_models = dict(MODELS)
    try:
        daily, secs = fill(store, args.rows, args.users)
        print(f"\n{name}: {args.rows:,} ledger rows of {args.users:,} users, {daily:,} rollup rows"
              f" ({secs:.0f} s to fill)")  # fmt: skip
        res = summaries(store, args.users, args.requests, args.naive_requests)
        report(name, res, args.naive_requests)
        w = write_cost(store, args.live, args.events)
        report_writes(name, w, args.live)
    finally:
        store.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--requests", type=int, default=200, help="summaries timed per way")
    p.add_argument("--naive-requests", type=int, default=20, help="full scans timed")
    p.add_argument("--live", type=int, default=10_000, help="live pods for the write cost")
    p.add_argument("--events", type=int, default=300, help="events timed per kind")
    p.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    p.add_argument("--smoke", action="store_true", help="20,000 rows of 100 users, small counts")
    args = p.parse_args()
    if args.smoke:
        args.rows, args.users, args.requests = 20_000, 100, 20
        args.naive_requests, args.live, args.events = 5, 200, 20
    work = Path(tempfile.mkdtemp(prefix="bench-usage-"))
    sup = Supervisor(work)
    try:
        if args.only != "postgresql":
            run_one("SQLite", f"sqlite:///{work / 'usage.sqlite'}", args)
        if args.only != "sqlite":
            pg = start_postgres(sup, work / "pg")
            run_one(f"PostgreSQL {pg.major}", pg.sqlalchemy_url, args)
    finally:
        sup.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
