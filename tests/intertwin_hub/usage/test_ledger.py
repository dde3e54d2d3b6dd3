"""The usage ledger: one row per pod that ran, with the pod's own times, counted once whatever
the events' order or repetition; a pod gone unseen closed at its last sighting, estimated; and
the per-day rollup answering exactly as the rows would, cut to the second. The rollup's test runs
on SQLite and on a real PostgreSQL server (the testbed's, as Rucio's)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from intertwin_hub.service import db
from intertwin_hub.service.index import Index
from intertwin_hub.sites import load_catalogue
from intertwin_hub.status import JobStatus
from intertwin_hub.usage import ledger, summary

from ..service.test_index import pod

CATALOGUE = load_catalogue()
A100 = CATALOGUE.get("vega").node.gpu.model  # type: ignore[union-attr]
T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
GIB64 = 64 * 2**30


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def running(uid: str, since: datetime, **kw: Any) -> dict[str, Any]:
    return pod(uid, state={"running": {"startedAt": iso(since)}}, **kw)


def ended(uid: str, since: datetime, until: datetime, code: int = 0) -> dict[str, Any]:
    term = {"exitCode": code, "reason": "Completed", "startedAt": iso(since)}
    return pod(uid, phase="Succeeded", state={"terminated": {**term, "finishedAt": iso(until)}})


def rows(store: db.Store) -> list[db.LedgerRow]:
    with Session(store.engine) as s:
        return list(s.scalars(select(db.LedgerRow)))


def days(store: db.Store) -> list[db.DailyUse]:
    with Session(store.engine) as s:
        return list(s.scalars(select(db.DailyUse).order_by(db.DailyUse.day)))


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(CATALOGUE, db.open_store(f"sqlite:///{tmp_path / 'ledger.sqlite'}"))


def test_a_pods_row_has_its_own_times_and_counts_once(index: Index) -> None:
    start = T0 + timedelta(seconds=10)
    # seen 20 s after its container started: the row starts when the container did
    index.pod_event("ADDED", running("u1", start), now=T0 + timedelta(seconds=30))
    index.pod_event("MODIFIED", running("u1", start), now=T0 + timedelta(minutes=1))
    (row,) = rows(index.store)
    assert db._utc(row.started_at) == start and row.ended_at is None
    assert (row.node, row.gpus, row.gpu_model) == ("vega-vk", 2, A100)
    assert (row.cpu_request, row.cpu_limit, row.memory_request, row.memory_limit) == (
        16.0,
        16.0,
        GIB64,
        GIB64,
    )
    assert days(index.store) == []  # an open row accrues when read

    end = start + timedelta(hours=1)
    index.pod_event("MODIFIED", ended("u1", start, end), now=end + timedelta(seconds=40))
    # late and repeated events: an old running one, a fresh list without it, its deletion
    index.pod_event("MODIFIED", running("u1", start), now=end + timedelta(minutes=2))
    index.reconcile([ended("u1", start, end)], now=end + timedelta(minutes=3))
    index.pod_event("DELETED", ended("u1", start, end), now=end + timedelta(minutes=4))
    index.reconcile([], now=end + timedelta(minutes=5))
    (row,) = rows(index.store)
    assert db._utc(row.ended_at or T0) == end and not row.estimated
    assert (row.wall_seconds, row.cpu_core_seconds, row.gpu_seconds) == (3600, 16 * 3600, 7200)
    assert row.memory_gb_seconds == pytest.approx(GIB64 / 1e9 * 3600)
    (day,) = days(index.store)
    assert (day.day, day.site, day.vo, day.gpu_model) == (date(2026, 11, 10), "vega", "", A100)
    assert (day.wall_seconds, day.jobs, day.started, day.estimated) == (3600, 1, 1, 0)


def test_a_pod_that_never_ran_has_no_row(index: Index) -> None:
    index.pod_event("ADDED", pod("q", phase="Pending", state={"waiting": {}}), now=T0)
    index.pod_event("DELETED", pod("q", phase="Pending", state={"waiting": {}}), now=T0)
    assert rows(index.store) == []


def test_a_pod_gone_unseen_ends_at_its_last_sighting_estimated_until_its_end_turns_up(
    index: Index,
) -> None:
    index.pod_event("ADDED", running("g", T0), now=T0 + timedelta(seconds=5))
    index.seen_alive(T0 + timedelta(minutes=5))
    # the service comes back an hour later; the pod is not listed any more
    index.reconcile([], now=T0 + timedelta(hours=1))
    (row,) = rows(index.store)
    assert db._utc(row.ended_at or T0) == T0 + timedelta(minutes=5) and row.estimated
    assert (days(index.store)[0].wall_seconds, days(index.store)[0].estimated) == (300, 1)
    job = index.store.get("g")
    assert job is not None and job.state == "lost"
    # the pod's own end, reported late, replaces the estimate (and only once)
    w = db.Workload(uid="g", user="alice", kind="notebook", site="vega", pod="p", submitted=T0)
    done = JobStatus("succeeded", "Vega ended the session")
    for _ in range(2):
        index.store.record(
            w, done, T0 + timedelta(hours=2), facts=db.PodFacts(T0, T0 + timedelta(minutes=20))
        )
    (row,) = rows(index.store)
    assert db._utc(row.ended_at or T0) == T0 + timedelta(minutes=20) and not row.estimated
    (day,) = days(index.store)
    assert (day.wall_seconds, day.jobs, day.estimated) == (1200, 1, 0)


def test_a_restart_under_a_running_pod_keeps_one_row_with_its_start(index: Index) -> None:
    index.pod_event("ADDED", running("r", T0), now=T0 + timedelta(seconds=3))
    fresh = Index(CATALOGUE, index.store)  # the restarted service, same database
    fresh.reconcile([running("r", T0)], now=T0 + timedelta(minutes=10))
    (row,) = rows(fresh.store)
    assert db._utc(row.started_at) == T0 and row.ended_at is None
    assert db._utc(row.last_seen) == T0 + timedelta(minutes=10)
    found = ledger.by_site(fresh.store, T0, T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    assert found["vega"].to_json()["wall_seconds"] == 3600


@pytest.fixture
def store(service_db_url: str) -> Iterator[db.Store]:
    s = db.open_store(service_db_url)
    s.gpu_models = {"vega": A100}
    yield s
    s.engine.dispose()


NOW = datetime(2026, 12, 3, 15, 30, 17, tzinfo=UTC)


def fill(store: db.Store, n: int = 80) -> None:
    """Pods of three users at two sites from 28 November on, across day edges: ended, still
    running at NOW, and gone unseen (estimated)."""
    rnd = random.Random(12)
    for i in range(n):
        start = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(seconds=rnd.randint(0, 5 * 86400))
        if start >= NOW:
            continue
        site, gpus = rnd.choice([("vega", 1), ("vega", 4), ("kbfi", 0)])
        w = db.Workload(
            uid=f"p{i}", user=rnd.choice(["alice", "bob", "carol"]), kind="batch-cell",
            site=site, pod=f"p{i}", submitted=start, cpu=rnd.choice([1.0, 2.5, 16.0]),
            memory=rnd.choice([2**30, 64 * 2**30]), gpus=gpus,
            vo=rnd.choice(["dev.intertwin.eu", None]),
        )  # fmt: skip
        store.record(w, JobStatus("running", "running"), start, facts=db.PodFacts(start))
        end = start + timedelta(seconds=rnd.randint(0, 2 * 86400))
        fate = rnd.random()
        if end < NOW and fate < 0.7:
            store.record(w, JobStatus("succeeded", "done"), end, facts=db.PodFacts(start, end))
        elif end < NOW and fate < 0.85:
            store.seen_alive([w.uid], end)
            store.end(w.uid, "Vega", cancelled=False, at=NOW, unseen=True)


def same(a: summary.Totals, b: summary.Totals) -> None:
    ja, jb = a.to_json(), b.to_json()
    assert ja["jobs"] == jb["jobs"] and ja["estimated"] == jb["estimated"]
    assert abs(ja["wall_seconds"] - jb["wall_seconds"]) <= 1
    for k in ("cpu_core_hours", "memory_gb_hours", "wall_hours"):
        assert ja[k] == pytest.approx(jb[k], abs=0.002), k
    assert ja["gpu_hours"].keys() == jb["gpu_hours"].keys()
    for m, h in ja["gpu_hours"].items():
        assert h == pytest.approx(jb["gpu_hours"][m], abs=0.002)


PERIODS = [
    (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    # cut inside days at both ends, to the second
    (datetime(2026, 11, 28, 7, 13, 5, tzinfo=UTC), datetime(2026, 12, 2, 22, 0, 1, tzinfo=UTC)),
    (datetime(2026, 11, 29, 10, tzinfo=UTC), datetime(2026, 11, 29, 11, tzinfo=UTC)),
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_the_rollup_answers_as_the_rows_do(store: db.Store, start: datetime, end: datetime) -> None:
    fill(store)
    rows_ = ledger.usages(store, CATALOGUE, start, end, now=NOW)
    for user in ("alice", "bob", None):
        mine = [u for u in rows_ if user is None or u.user == user]
        expected = summary.by_site(mine, start, end)
        got = ledger.by_site(store, start, end, ledger.Scope(user), now=NOW)
        assert got.keys() == expected.keys()
        for site in got:
            same(got[site], expected[site])
        for unit in summary.UNITS:
            want = summary.series(mine, start, end, unit)
            have = ledger.series(store, start, end, unit, ledger.Scope(user), now=NOW)
            assert [(a, s) for a, s, _ in have] == [(a, s) for a, s, _ in want]
            for (_, _, h), (_, _, w) in zip(have, want, strict=True):
                same(h, w)
    users, vos = ledger.by_user_and_vo(store, start, end, now=NOW)
    for who, t in users.items():
        same(t, summary.total(summary.by_site([u for u in rows_ if u.user == who], start, end)))
    for vo, t in vos.items():
        same(t, summary.total(summary.by_site([u for u in rows_ if u.vo == vo], start, end)))
    budget = ledger.used(store, start, end, ledger.Scope(site="vega", vo="dev.intertwin.eu"), NOW)
    theirs = [u for u in rows_ if u.site == "vega" and u.vo == "dev.intertwin.eu"]
    same(budget, summary.total(summary.by_site(theirs, start, end)))


def test_an_older_history_fills_the_ledger_on_upgrade(tmp_path: Path) -> None:
    """A history from before the ledger (revision 0003): its jobs that ran become rows, the
    ended ones in the rollup, on the upgrade."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    cfg = db.alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        for uid, state, started, finished in (
            ("done", "succeeded", T0, T0 + timedelta(hours=2)),
            ("lost", "lost", T0, T0 + timedelta(hours=1)),
            ("queued", "cancelled", None, T0),
        ):
            conn.execute(
                text(
                    'INSERT INTO jobs (uid, "user", kind, site, pod, server_name, state,'
                    " sentence, gpus, cpu, memory, vo, submitted, started, finished) VALUES"
                    " (:uid, 'alice', 'notebook', 'vega', :uid, '', :state, '', 1, 8, 0,"
                    " 'dev.intertwin.eu', :t, :started, :finished)"
                ),
                {"uid": uid, "state": state, "t": T0, "started": started, "finished": finished},
            )
    engine.dispose()
    store = db.open_store(url)
    try:
        assert sorted(r.uid for r in rows(store)) == ["done", "lost"]
        t = ledger.by_site(store, T0, T0 + timedelta(days=1))["vega"].to_json()
        assert (t["wall_seconds"], t["jobs"], t["estimated"]) == (3 * 3600, 2, True)
        assert t["gpu_hours"] == {A100: 3.0} and t["cpu_core_hours"] == 24.0
    finally:
        store.engine.dispose()
