"""APEL records field by field against the message formats: the cloud message v0.4 (APEL's
CloudRecord: mandatory VMUUID and SiteName, integer durations and epoch times, a decimal
CpuCount, memory in MB) and the accelerator message 0.1 (AcceleratorRecord: one per month,
linked to its cloud record)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intertwin_hub.usage import apel
from intertwin_hub.usage.accounting import Measured, Usage

from .rows import CATALOGUE, used

ORIGIN = apel.Origin(site_name="UKRI-STFC-CLOUD")
# APEL's CloudRecord: every message field in its order, and the typed ones
MSG_FIELDS = [
    "RecordCreateTime", "VMUUID", "SiteName", "CloudComputeService", "MachineName",
    "LocalUserId", "LocalGroupId", "GlobalUserName", "FQAN", "Status", "StartTime", "EndTime",
    "SuspendDuration", "WallDuration", "CpuDuration", "CpuCount", "NetworkType",
    "NetworkInbound", "NetworkOutbound", "PublicIPCount", "Memory", "Disk", "BenchmarkType",
    "Benchmark", "StorageRecordId", "ImageId", "CloudType",
]  # fmt: skip
INT_FIELDS = {"SuspendDuration", "WallDuration", "CpuDuration", "Memory", "Disk"}
EPOCH_FIELDS = {"StartTime", "EndTime"}
ACCEL_MANDATORY = {
    "MeasurementMonth", "MeasurementYear", "AssociatedRecordType", "AssociatedRecord", "FQAN",
    "SiteName", "Count", "AvailableDuration", "Type",
}  # fmt: skip


def usage(start: datetime, end: datetime | None, **kw: Any) -> Usage:
    defaults: dict[str, Any] = dict(
        uid="5b1c0e2a-0000-4000-8000-000000000001",
        state="succeeded" if end else "running",
        cpu=1.5,
        memory=8 * 10**9,
        until=datetime(2026, 12, 5, tzinfo=UTC),
    )
    return used(**{**defaults, **kw}, started=start, finished=end)


def parse_cloud_message(text: str) -> list[dict[str, str]]:
    """The message as APEL's loader splits it: a header line, then records separated by
    lines of ``%%``, each ``Key: value`` per line."""
    header, _, body = text.partition("\n")
    assert header == "APEL-cloud-message: v0.4"
    records = []
    for chunk in body.split("\n%%\n"):
        lines = [ln for ln in chunk.splitlines() if ln]
        records.append(dict(ln.split(": ", 1) for ln in lines))
    return records


def test_cloud_records_follow_the_v04_format() -> None:
    start = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    done = usage(start, start + timedelta(hours=4, seconds=1))
    running = usage(start, None, uid="5b1c0e2a-0000-4000-8000-000000000002", gpus=0)
    text = apel.cloud_message([apel.cloud_record(u, ORIGIN, "Vega") for u in (done, running)])
    first, second = parse_cloud_message(text)
    for rec in (first, second):
        assert {"VMUUID", "SiteName"} <= rec.keys()
        order = [MSG_FIELDS.index(k) for k in rec]
        assert order == sorted(order), "fields out of APEL's order"
        for k, v in rec.items():
            assert v not in ("", "None"), k
            if k in INT_FIELDS or k in EPOCH_FIELDS:
                assert v.isdigit(), (k, v)
        cpu = rec["CpuCount"]
        assert float(cpu) == 1.5 and len(cpu.split(".")[1]) <= 3
    assert first == {
        "VMUUID": done.uid,
        "SiteName": "UKRI-STFC-CLOUD",
        "CloudComputeService": "Vega",
        "MachineName": "jupyter-alice-vega1",
        "GlobalUserName": "alice",
        "FQAN": "dev.intertwin.eu",
        "Status": "completed",
        "StartTime": str(int(start.timestamp())),
        "EndTime": str(int(start.timestamp()) + 4 * 3600 + 1),
        "SuspendDuration": "0",
        "WallDuration": str(4 * 3600 + 1),
        "CpuCount": "1.5",
        "Memory": "8000",
        "ImageId": "ghcr.io/intertwin-eu/itwinai:jlab-slim-latest",
        "CloudType": "intertwin-hub",
    }
    # a running pod has no end yet, and its wall time counts up to the end of the period
    assert second["Status"] == "started" and "EndTime" not in second
    assert int(second["WallDuration"]) == int((running.until - start).total_seconds())


def test_the_wall_time_is_the_records_own_end_minus_its_start() -> None:
    """Times come from the service's watch with fractions of a second; the record gives whole
    seconds, and its WallDuration is its EndTime minus its StartTime (as in the probe's
    records), not the exact difference truncated: 10:00:00.8 to 10:01:22.3 is 81.5 s, written
    as StartTime ...600, EndTime ...682 and so 82 s. Seen side by side with the probe on the
    testbed (docs/apel-probe-comparison.md), where it was one second short."""
    start = datetime(2026, 11, 30, 10, 0, 0, 800_000, tzinfo=UTC)
    done = usage(start, start + timedelta(seconds=81.5))
    rec = apel.cloud_record(done, ORIGIN, "Vega")
    assert (rec["StartTime"], rec["EndTime"]) == (1796032800, 1796032882)
    assert rec["WallDuration"] == rec["EndTime"] - rec["StartTime"] == 82
    # still running: up to the end of the period, on the same whole seconds
    until = datetime(2026, 11, 30, 10, 5, 0, 300_000, tzinfo=UTC)
    running = usage(start, None, until=until)
    rec = apel.cloud_record(running, ORIGIN, "Vega")
    assert rec["WallDuration"] == int(until.timestamp()) - rec["StartTime"] == 300


def test_cpu_duration_is_the_sites_measured_cpu_time_or_left_out() -> None:
    """APEL's CpuDuration is consumed CPU time (the probe sums cAdvisor's measured
    container_cpu_usage_seconds_total): the site's own figure when the ledger has one and the
    pod has ended, never the allocation (that is CpuCount x WallDuration)."""
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    done = usage(start, start + timedelta(hours=1))
    sacct = Measured("slurm-sacct", cpu_seconds=4321.6, max_rss_bytes=2**30, wall_seconds=3590)
    rec = apel.cloud_record(dataclasses.replace(done, measured=sacct), ORIGIN, "Vega")
    assert rec["CpuDuration"] == 4322 and rec["WallDuration"] == 3600
    text = apel.cloud_message([rec])
    (parsed,) = parse_cloud_message(text)
    order = [MSG_FIELDS.index(k) for k in parsed]
    assert order == sorted(order) and parsed["CpuDuration"] == "4322"
    # no measured CPU (jobcomp tells only the wall time), none at all, or still running
    jobcomp = Measured("slurm-jobcomp", cpu_seconds=None, max_rss_bytes=None, wall_seconds=3590)
    running = usage(start, None)
    for u in (
        dataclasses.replace(done, measured=jobcomp),
        done,
        dataclasses.replace(running, measured=sacct),
    ):
        assert "CpuDuration" not in apel.cloud_record(u, ORIGIN, "Vega")


def test_user_names_can_stay_at_the_site() -> None:
    u = usage(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    private = apel.Origin(site_name="UKRI-STFC-CLOUD", user_names=False)
    assert "GlobalUserName" not in apel.cloud_record(u, private, "Vega")
    assert all("GlobalUserName" not in r for r in apel.accelerator_records(u, private))


def test_gpus_are_accelerator_records_per_month_linked_to_the_cloud_record() -> None:
    start = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    u = usage(start, start + timedelta(hours=4))
    records = apel.accelerator_records(u, ORIGIN)
    assert [(r["MeasurementYear"], r["MeasurementMonth"]) for r in records] == [
        (2026, 11),
        (2026, 12),
    ]
    assert [r["AvailableDuration"] for r in records] == [7200, 7200]
    model = CATALOGUE.get("vega").node.gpu.model  # type: ignore[union-attr]
    for r in records:
        assert ACCEL_MANDATORY <= r.keys()
        assert (r["AssociatedRecordType"], r["AssociatedRecord"]) == ("cloud", u.uid)
        assert (r["Type"], r["Model"], r["Count"]) == ("GPU", model, 2.0)
        assert isinstance(r["Count"], float) and isinstance(r["AvailableDuration"], int)
        assert "ActiveDuration" not in r  # busy time is not known: not invented
    message = json.loads(apel.accelerator_message(records))
    assert (message["Type"], message["Version"]) == ("APEL-accelerator-message", "0.1")
    assert message["UsageRecords"] == records


@pytest.mark.parametrize("change", [{"gpus": 0}, {"vo": None}])
def test_no_accelerator_record_without_gpus_or_a_vo(change: dict[str, Any]) -> None:
    u = usage(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC), **change)
    assert apel.accelerator_records(u, ORIGIN) == []


def test_the_spool_is_a_queue_the_ssm_sender_reads(tmp_path: Path) -> None:
    from dirq.QueueSimple import QueueSimple

    names = apel.write_spool(tmp_path / "outgoing", ["one", "two"])
    queue = QueueSimple(str(tmp_path / "outgoing"))
    got = []
    for name in queue:
        assert queue.lock(name)
        got.append(queue.get(name).decode())
    assert sorted(got) == ["one", "two"] and len(names) == 2
