"""``intertwin-hub usage apel``: a period's records from the service's history, into the queue
directory an SSM sender reads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dirq.QueueSimple import QueueSimple

from intertwin_hub.service import db
from intertwin_hub.status import JobStatus

CLI = str(Path(sys.executable).parent / "intertwin-hub")
NOV = datetime(2026, 11, 1, tzinfo=UTC)
RUNNING = JobStatus("running", "running on vega-vk", node="vega-vk", batch_job="1001")
DONE = JobStatus("succeeded", "finished at Vega", node="vega-vk", batch_job="1001")


def workload(uid: str, site: str = "vega", gpus: int = 1, vo: str | None = "dev.intertwin.eu"):
    return db.Workload(
        uid=uid,
        user="alice",
        kind="notebook",
        site=site,
        pod=f"jupyter-alice-{uid}",
        submitted=NOV,
        cpu=8.0,
        memory=32 * 10**9,
        gpus=gpus,
        image="ghcr.io/intertwin-eu/itwinai:jlab-slim-latest",
        vo=vo,
    )


def messages(out: Path) -> list[str]:
    queue = QueueSimple(str(out))
    found = []
    for name in queue:
        assert queue.lock(name)
        found.append(queue.get(name).decode())
    return found


def test_a_months_records_from_the_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    store = db.open_store(url)
    # ran in October only: not in November's records
    store.record(workload("oct"), RUNNING, NOV - timedelta(days=3))
    store.record(workload("oct"), DONE, NOV - timedelta(days=2))
    # ran 10:00-12:00 on 10 November with one GPU
    store.record(workload("nov"), RUNNING, NOV + timedelta(days=9, hours=10))
    store.record(workload("nov"), DONE, NOV + timedelta(days=9, hours=12))
    # started on 30 November, still running: counted up to the end of the month
    store.record(workload("run", site="kbfi", gpus=0), RUNNING, NOV + timedelta(days=29, hours=23))
    store.engine.dispose()

    out = tmp_path / "outgoing"
    r = subprocess.run(
        [CLI, "usage", "apel", "--db", url, "--site-name", "UKRI-STFC-CLOUD",
         "--from", "2026-11-01", "--to", "2026-12-01", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "2 cloud records and 1 accelerator record" in r.stdout
    cloud_text, accel_text = sorted(messages(out), key=lambda m: m.startswith("{"))
    records = [
        dict(ln.split(": ", 1) for ln in chunk.splitlines() if ln)
        for chunk in cloud_text.partition("\n")[2].split("\n%%\n")
    ]
    by_uid = {rec["VMUUID"]: rec for rec in records}
    assert set(by_uid) == {"nov", "run"}
    assert (by_uid["nov"]["Status"], by_uid["nov"]["WallDuration"]) == ("completed", "7200")
    assert (by_uid["run"]["Status"], by_uid["run"]["WallDuration"]) == ("started", "3600")
    assert by_uid["nov"]["FQAN"] == "dev.intertwin.eu"
    accel = json.loads(accel_text)["UsageRecords"]
    assert [(a["AssociatedRecord"], a["AvailableDuration"], a["Count"]) for a in accel] == [
        ("nov", 7200, 1.0)
    ]


def test_bad_days_are_a_sentence(tmp_path: Path) -> None:
    r = subprocess.run(
        [CLI, "usage", "apel", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "--site-name", "S",
         "--from", "2026-12-01", "--to", "2026-11-01", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "--to must be after --from" in r.stderr
    r = subprocess.run(
        [CLI, "usage", "apel", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "--site-name", "S",
         "--from", "November", "--to", "2026-11-01", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "write days as 2026-11-01" in r.stderr
