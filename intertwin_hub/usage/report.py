"""``intertwin-hub usage apel``: a period's APEL records from the hub service's usage ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..service import db
from ..sites import Catalogue
from . import ledger
from .accounting import Usage
from .apel import (
    Origin,
    accelerator_message,
    accelerator_records,
    cloud_message,
    cloud_record,
    write_spool,
)


def usages(
    store: db.Store,
    catalogue: Catalogue,
    start: datetime,
    end: datetime,
    user: str | None = None,
    site: str | None = None,
    vo: str | None = None,
) -> list[Usage]:
    """Every workload (one user's, or everyone's) that ran in [start, end), its running time
    counted up to ``end`` (or now, when that is earlier): the usage ledger's rows."""
    return ledger.usages(store, catalogue, start, end, ledger.Scope(user, site, vo))


def write_apel(
    store: db.Store,
    catalogue: Catalogue,
    origin: Origin,
    start: datetime,
    end: datetime,
    out: Path,
) -> tuple[int, int]:
    """Write the period's cloud message and, when any pod had GPUs, its accelerator message
    into the queue at ``out``; (cloud records, accelerator records)."""
    found = usages(store, catalogue, start, end)
    if not found:
        return 0, 0

    def name_of(slug: str) -> str:
        site = catalogue.get(slug)
        return site.name if site else slug

    cloud = [cloud_record(u, origin, name_of(u.site)) for u in found]
    gpu = [r for u in found for r in accelerator_records(u, origin)]
    messages = [cloud_message(cloud)]
    if gpu:
        messages.append(accelerator_message(gpu))
    write_spool(out, messages)
    return len(cloud), len(gpu)


def parse_day(text: str) -> datetime:
    """A date (2026-11-01, midnight UTC) or an ISO 8601 time."""
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)
