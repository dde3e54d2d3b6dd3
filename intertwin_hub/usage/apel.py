"""APEL records of workload pods, as the interTwin Kubernetes usage probe sends them for the
hub's cluster, plus the GPUs the probe cannot see:

- one cloud record per pod in an ``APEL-cloud-message: v0.4`` message (``Key: value`` lines,
  records separated by ``%%``; fields and types of APEL's ``CloudRecord``,
  https://github.com/apel/apel/blob/master/apel/db/records/cloud.py): ``VMUUID`` the pod's UID,
  ``MachineName`` its name, ``GlobalUserName`` the hub user, ``FQAN`` the VO, ``CpuCount`` the
  allocated cores as a decimal, durations and times in whole seconds; ``CpuDuration`` the CPU
  time the site measured (Slurm's ``TotalCPU``, imported into the ledger) once the pod has
  ended, else left out: the probe fills it from cAdvisor's measured
  ``container_cpu_usage_seconds_total``
  (https://github.com/interTwin-eu/kubernetes-usage-accounting/blob/main/egi_notebooks_accounting/pods.py),
  so it is consumed, not allocated, time, and APEL takes a missing field as unknown;
- one accelerator record per pod with GPUs and calendar month, in a JSON
  ``APEL-accelerator-message`` 0.1 (APEL's ``AcceleratorRecord``, in review upstream),
  linked to its cloud record by ``AssociatedRecordType: cloud`` and ``AssociatedRecord: <VMUUID>``.

Each message is one file of a ``dirq`` queue directory, which the APEL SSM sender reads
(https://github.com/apel/ssm).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .accounting import Usage

CLOUD_HEADER = "APEL-cloud-message: v0.4"
ACCELERATOR_TYPE = "APEL-accelerator-message"
ACCELERATOR_VERSION = "0.1"
# the order of a cloud record's lines (APEL's CloudRecord._msg_fields)
CLOUD_FIELDS = (
    "VMUUID",
    "SiteName",
    "CloudComputeService",
    "MachineName",
    "GlobalUserName",
    "FQAN",
    "Status",
    "StartTime",
    "EndTime",
    "SuspendDuration",
    "WallDuration",
    "CpuDuration",
    "CpuCount",
    "Memory",
    "ImageId",
    "CloudType",
)


@dataclass(frozen=True)
class Origin:
    """Who sends the records: the hub's accounting site and cloud type."""

    site_name: str  # the GOCDB site of the hub's cluster (APEL's SiteName)
    cloud_type: str = "intertwin-hub"
    # False drops GlobalUserName: a user name is personal data leaving the site
    user_names: bool = True


def _epoch(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp())


def cloud_record(u: Usage, origin: Origin, site_name: str) -> dict[str, Any]:
    """One pod's cloud record; fields with no value are left out, as the probe does.
    ``CloudComputeService`` is the catalogue name of the site the pod ran at, so a site's
    records can be told apart from the cluster's own."""
    start = _epoch(u.start)
    end = _epoch(u.end) if u.end else None
    record: dict[str, Any] = {
        "VMUUID": u.uid,
        "SiteName": origin.site_name,
        "CloudComputeService": site_name,
        "MachineName": u.pod,
        "GlobalUserName": u.user if origin.user_names else None,
        "FQAN": u.vo,
        "Status": "started" if u.end is None else "completed",
        "StartTime": start,
        "EndTime": end,
        "SuspendDuration": 0,
        # the record's own whole seconds, so that EndTime - StartTime = WallDuration (the
        # exact span truncated, Usage.wall_seconds, can be one second less)
        "WallDuration": max(0, (end if end is not None else _epoch(u.until)) - start),
        # measured CPU time only, and only for an ended pod (the site's figure is the whole
        # job's); the allocation is CpuCount x WallDuration
        "CpuDuration": (
            round(u.measured.cpu_seconds)
            if u.end is not None and u.measured and u.measured.cpu_seconds is not None
            else None
        ),
        "CpuCount": round(u.cpu, 3),
        # APEL's cloud record gives memory in MB
        "Memory": u.memory_bytes // 1_000_000,
        "ImageId": u.image,
        "CloudType": origin.cloud_type,
    }
    return {k: record[k] for k in CLOUD_FIELDS if record[k] is not None}


def cloud_message(records: Iterable[dict[str, Any]]) -> str:
    body = "\n%%\n".join("\n".join(f"{k}: {v}" for k, v in r.items()) for r in records)
    return f"{CLOUD_HEADER}\n{body}\n"


def _months(start: datetime, end: datetime) -> Iterator[tuple[int, int, datetime, datetime]]:
    """(year, month, from, to) for each calendar month (UTC) the span touches."""
    t = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while t < end:
        nxt = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
        yield t.year, t.month, t, min(nxt, end)
        t = nxt


def accelerator_records(u: Usage, origin: Origin) -> list[dict[str, Any]]:
    """The GPU records of one pod, one per calendar month it held them. ``AvailableDuration``
    is the time the GPUs were allocated in that month; ``ActiveDuration`` (busy time) is not
    known, so it is left out. A pod without a VO gets none (``FQAN`` is mandatory)."""
    if not u.gpus or not u.vo:
        return []
    records = []
    for year, month, a, b in _months(u.start, u.end or u.until):
        rec: dict[str, Any] = {
            "MeasurementMonth": month,
            "MeasurementYear": year,
            "AssociatedRecordType": "cloud",
            "AssociatedRecord": u.uid,
            "GlobalUserName": u.user if origin.user_names else None,
            "FQAN": u.vo,
            "SiteName": origin.site_name,
            "Count": float(u.gpus),
            "AvailableDuration": int((b - a).total_seconds()),
            "Type": "GPU",
            "Model": u.gpu_model,
        }
        records.append({k: v for k, v in rec.items() if v is not None})
    return records


def accelerator_message(records: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"Type": ACCELERATOR_TYPE, "Version": ACCELERATOR_VERSION, "UsageRecords": records},
        indent=1,
    )


def write_spool(out: Path, messages: Iterable[str]) -> list[str]:
    """Add each message to the dirq queue at ``out`` (created if missing); the queue's
    element names, in order."""
    from dirq.QueueSimple import QueueSimple  # the hub extra's; only this CLI needs it

    queue = QueueSimple(str(out))
    return [queue.add(m) for m in messages]
