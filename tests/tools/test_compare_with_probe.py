"""The comparison tool's own logic (tools/compare_with_probe.py): reading both sides' cloud
messages from their dirq spools and the field-by-field table. The comparison itself needs the
probe, which is not on PyPI, so it is a manual check (docs/apel-probe-comparison.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intertwin_hub.usage.apel import write_spool
from tools.compare_with_probe import compare_records, parse_cloud_message, read_spool, summary

# a record as the probe writes it (every field it knows, zeros for what it did not measure)
PROBE = """APEL-cloud-message: v0.4
VMUUID: 1b2c
SiteName: INTERTWIN-TESTBED
MachineName: jupyter-alice--probe-vega
GlobalUserName: alice
Status: completed
StartTime: 1796000000
EndTime: 1796000095
SuspendDuration: 0
WallDuration: 95
CpuDuration: 0
CpuCount: 4.0
NetworkInbound: 0
NetworkOutbound: 0
Memory: 0
Disk: 0
ImageId: ghcr.io/intertwin-eu/itwinai:jlab-slim-latest
CloudType: intertwin-hub
PublicIPCount: 0"""
OURS = """APEL-cloud-message: v0.4
VMUUID: 1b2c
SiteName: INTERTWIN-TESTBED
CloudComputeService: Vega
MachineName: jupyter-alice--probe-vega
GlobalUserName: alice
FQAN: dev.intertwin.eu
Status: completed
StartTime: 1796000021
EndTime: 1796000099
SuspendDuration: 0
WallDuration: 78
CpuCount: 4
Memory: 17179
ImageId: ghcr.io/intertwin-eu/itwinai:jlab-slim-latest
CloudType: intertwin-hub
%%
VMUUID: 9f00
SiteName: INTERTWIN-TESTBED
StartTime: 1796000030
"""


def test_both_spools_are_read_back(tmp_path: Path) -> None:
    write_spool(tmp_path / "ours", [OURS, '{"Type": "APEL-accelerator-message"}'])
    write_spool(tmp_path / "probe", [PROBE])
    ours = read_spool(tmp_path / "ours")
    assert [r["VMUUID"] for r in ours] == ["1b2c", "9f00"]
    assert read_spool(tmp_path / "probe") == parse_cloud_message(PROBE)
    with pytest.raises(ValueError, match="not an APEL cloud message"):
        parse_cloud_message('{"Type": "APEL-accelerator-message"}')


def test_fields_compare_as_numbers_or_text_and_sum_up() -> None:
    ours = {r["VMUUID"]: r for r in parse_cloud_message(OURS)}
    theirs = {r["VMUUID"]: r for r in parse_cloud_message(PROBE)}
    rows = {(r["uid"], r["field"]): r for r in compare_records(ours, theirs)}
    # 4 and 4.0 are the same CPU count; times and durations differ by ours minus theirs
    assert rows["1b2c", "CpuCount"]["same"] is True
    assert rows["1b2c", "StartTime"]["delta"] == 21
    assert rows["1b2c", "WallDuration"]["delta"] == -17
    # a field on one side only, and a pod only we account
    assert rows["1b2c", "FQAN"] == {
        "uid": "1b2c",
        "field": "FQAN",
        "ours": "dev.intertwin.eu",
        "probe": None,
        "same": False,
        "delta": None,
    }
    assert rows["1b2c", "CpuDuration"]["ours"] is None
    assert rows["9f00", "StartTime"]["probe"] is None and not rows["9f00", "StartTime"]["same"]
    assert rows["1b2c", "ImageId"]["same"] is True
    s = summary(rows.values())
    assert s["StartTime"] == {"same": 0, "differ": 2, "min_delta": 21, "max_delta": 21}
    assert s["SiteName"]["same"] == 1 and s["SiteName"]["differ"] == 1
