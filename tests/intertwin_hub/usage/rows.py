"""One workload's history row as `usage_of` takes it, for the usage tests: a finished two-GPU
notebook at Vega; each test overrides what it is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from intertwin_hub.sites import load_catalogue
from intertwin_hub.usage.accounting import Usage, usage_of

CATALOGUE = load_catalogue()
T0 = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)


def row(**kw: Any) -> dict[str, Any]:
    """The keyword arguments of `usage_of` for one workload, with `kw` in place of defaults."""
    base: dict[str, Any] = dict(
        uid="u1",
        pod="jupyter-alice-vega1",
        user="alice",
        vo="dev.intertwin.eu",
        site="vega",
        kind="notebook",
        image="ghcr.io/intertwin-eu/itwinai:jlab-slim-latest",
        state="succeeded",
        started=T0,
        finished=T0 + timedelta(hours=2, seconds=30),
        cpu=16.0,
        memory=64 * 10**9,
        gpus=2,
        catalogue=CATALOGUE,
        until=T0 + timedelta(days=30),
    )
    return {**base, **kw}


def used(**kw: Any) -> Usage:
    """The usage of `row(**kw)`, which ran (so it has one)."""
    u = usage_of(**row(**kw))
    assert u is not None
    return u
