"""Fixtures shared by the hub's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
