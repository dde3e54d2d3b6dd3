"""Fixtures shared by the hub's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from testbed.procs import Supervisor
from testbed.rucio.postgres import Postgres, start_postgres


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL server of its own for a test module (the testbed's, as Rucio's), stopped
    at the module's end."""
    run_dir = tmp_path_factory.mktemp("pg")
    sup = Supervisor(run_dir)
    try:
        yield start_postgres(sup, run_dir / "pg")
    finally:
        sup.stop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for the service's store, on SQLite and on the module's PostgreSQL
    (whose tables an earlier test left are dropped first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.sqlite'}"
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
