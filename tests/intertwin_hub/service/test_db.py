"""The service's history database: migrations, one row per pod UID with every state change,
reconcile-friendly ends, paging newest first with an opaque cursor. Each test runs on SQLite
and on a real PostgreSQL server (the testbed's, as Rucio's: testbed/rucio/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from intertwin_hub.service import db
from intertwin_hub.status import JobStatus
from testbed.rucio.postgres import Postgres

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    # the server lets its role reach one database only: empty it
    pg: Postgres = request.getfixturevalue("postgres")
    engine = create_engine(pg.sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "DROP TABLE IF EXISTS usage_daily, usage_ledger, state_changes, jobs,"
                " alembic_version"
            )
        )
    engine.dispose()
    return pg.sqlalchemy_url


@pytest.fixture
def store(db_url: str) -> Iterator[db.Store]:
    s = db.open_store(db_url)
    yield s
    s.engine.dispose()


def workload(
    uid: str, user: str = "alice", site: str = "vega", kind: str = "notebook", minutes: int = 0
) -> db.Workload:
    return db.Workload(
        uid=uid,
        user=user,
        kind=kind,
        site=site,
        pod=f"jupyter-{user}-{uid}",
        submitted=T0 + timedelta(minutes=minutes),
        cpu=16.0,
        memory=64 * 2**30,
        gpus=2,
        image="itwinai",
    )


QUEUED = JobStatus("queued", "queued at Vega (batch job 1001)", node="vega-vk", batch_job="1001")
RUNNING = JobStatus("running", "running on vega-vk", node="vega-vk", batch_job="1001")


def test_the_migrations_build_exactly_the_models(store: db.Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    assert diff == []


def test_migrations_run_again_on_an_existing_database(db_url: str) -> None:
    first = db.open_store(db_url)
    first.record(workload("a"), QUEUED, T0)
    first.engine.dispose()
    again = db.open_store(db_url)
    assert again.count() == 1
    again.engine.dispose()


def test_one_row_per_uid_with_the_time_of_every_state_change(store: db.Store) -> None:
    w = workload("u1")
    assert store.record(w, QUEUED, T0)
    assert not store.record(w, QUEUED, T0 + timedelta(seconds=5))  # nothing new
    assert store.record(w, RUNNING, T0 + timedelta(minutes=2))
    job = store.get("u1")
    assert job is not None and store.count() == 1
    assert [(h.state, db._utc(h.at)) for h in job.history] == [
        ("queued", T0),
        ("running", T0 + timedelta(minutes=2)),
    ]
    assert db._utc(job.started or T0) == T0 + timedelta(minutes=2) and job.finished is None
    out = db.job_json(job, "Vega")
    assert (out["batch_job"], out["resources"]["memory"]) == ("1001", 64 * 2**30)


def test_a_gone_pod_is_cancelled_or_lost_and_final_states_stay(store: db.Store) -> None:
    store.record(workload("c"), RUNNING, T0)
    store.record(workload("l"), QUEUED, T0)
    at = T0 + timedelta(hours=1)
    cancelled = store.end("c", "Vega", cancelled=True, at=at)
    assert cancelled is not None and cancelled.state == "cancelled"
    lost = store.end("l", "Vega", cancelled=False, at=at)
    assert lost is not None and lost.state == "lost"
    assert store.active_uids() == set()
    # a final state is never left again (a late event of a deleted pod)
    assert not store.record(workload("c"), RUNNING, at + timedelta(seconds=1))
    job = store.get("c")
    assert job is not None and job.state == "cancelled" and db._utc(job.finished or T0) == at
    assert store.end("nope", "Vega", cancelled=True, at=at) is None


def test_an_ended_pod_keeps_its_own_end_when_deleted(store: db.Store) -> None:
    store.record(
        workload("f"),
        JobStatus(
            "failed", "KBFI ended the session: Error (exit code 3).", exit_code=3, reason="Error"
        ),
        T0,
    )
    final = store.end("f", "KBFI", cancelled=True, at=T0 + timedelta(minutes=1))
    assert final is not None and (final.state, final.exit_code) == ("failed", 3)


def test_pages_newest_first_filtered_by_owner_and_fields(store: db.Store) -> None:
    for i in range(7):
        store.record(
            workload(f"a{i}", minutes=i, site="vega" if i % 2 else "psnc"),
            RUNNING if i < 5 else QUEUED,
            T0,
        )
    store.record(workload("b0", user="bob", minutes=3), RUNNING, T0)
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = store.page("alice", db.Filters(), 3, cursor)
        seen += [r.uid for r in rows]
        if cursor is None:
            break
    assert seen == [f"a{i}" for i in reversed(range(7))]
    rows, nxt = store.page(
        "alice", db.Filters(site="vega", states=frozenset({"running"})), 10, None
    )
    assert [r.uid for r in rows] == ["a3", "a1"] and nxt is None
    rows, _ = store.page(None, db.Filters(until=T0 + timedelta(minutes=1)), 10, None)
    assert [r.uid for r in rows] == ["a0"]
    everyone, _ = store.page(None, db.Filters(), 100, None)
    assert len(everyone) == 8


def test_a_foreign_cursor_is_refused(store: db.Store) -> None:
    with pytest.raises(db.CursorError):
        store.page("alice", db.Filters(), 3, "not-a-cursor")


def test_an_older_database_gains_the_last_lines(db_url: str) -> None:
    """An existing history (revision 0001, before the VO and the last lines were kept) is
    upgraded in place: its rows stay, with no last lines, and can keep them from then on."""
    from alembic import command

    engine = create_engine(db_url)
    cfg = db.alembic_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                'INSERT INTO jobs (uid, "user", kind, site, pod, server_name, state, sentence,'
                " gpus, submitted) VALUES ('old', 'alice', 'notebook', 'vega', 'jupyter-alice',"
                " '', 'running', 'running on vega-vk', 0, :t)"
            ),
            {"t": T0},
        )
    engine.dispose()
    store = db.open_store(db_url)
    try:
        job = store.get("old")
        assert job is not None and job.state == "running" and db.last_lines(job) is None
        assert store.keep_last_lines("old", "one\ntwo\n")
        job = store.get("old")
        assert job is not None and db.last_lines(job) == ["one", "two"]
        assert not store.keep_last_lines("nope", "x")
    finally:
        store.engine.dispose()


def test_a_failed_job_keeps_its_end_and_its_last_lines(store: db.Store) -> None:
    failed = JobStatus(
        "failed", "Vega ended the session: Error (exit code 3).", exit_code=3, reason="Error"
    )
    store.record(workload("f"), failed, T0)
    assert store.keep_last_lines("f", "line 1\nline 2\n")
    # the pod's deletion later keeps both its own end and the lines
    store.end("f", "Vega", cancelled=True, at=T0 + timedelta(minutes=1))
    job = store.get("f")
    assert job is not None
    out = db.job_json(job, "Vega")
    assert (out["state"], out["exit_code"], out["reason"]) == ("failed", 3, "Error")
    assert db.last_lines(job) == ["line 1", "line 2"]
