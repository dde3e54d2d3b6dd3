"""A Slurm site's accounting into the usage ledger's measured columns (``usage/slurm.py``,
``intertwin-hub usage import-slurm``).

The files in ``data/`` are real output of the testbed's Slurm (Debian's slurm-wlm 22.05),
unedited, from runs on 4 Dec 2026:

- ``jobcomp-testbed.txt``: the ``jobcomp/filetxt`` log of a run of
  ``tests/testbed/test_slurm.py`` (one line per job that test queued);
- ``sacct-testbed.txt`` and ``jobcomp-sacct-run.txt``: one run of three pods (one burning 3 s
  of CPU in 256 MiB, one failing, one cancelled by the site) through the testbed's local
  plugin on its Slurm with accounting (slurmdbd, ``jobacct_gather/linux``):
  ``sacct --allusers --parsable2 --noheader
  --format=JobID,JobName,State,Start,End,ElapsedRaw,TotalCPU,MaxRSS,AllocTRES`` and the job
  completion log of the same jobs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from intertwin_hub.service import db
from intertwin_hub.status import JobStatus
from intertwin_hub.usage import slurm
from intertwin_hub.usage.slurm import JOBCOMP, SACCT, SlurmJob, import_measured

CLI = str(Path(sys.executable).parent / "intertwin-hub")
DATA = Path(__file__).with_name("data")
JOBCOMP_LOG = DATA / "jobcomp-testbed.txt"
SACCT_OUT = DATA / "sacct-testbed.txt"
SACCT_RUN_JOBCOMP = DATA / "jobcomp-sacct-run.txt"
UTC_TZ = ZoneInfo("UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_jobcomp_log_of_a_testbed_run() -> None:
    text = JOBCOMP_LOG.read_text()
    assert slurm.detect(text.splitlines()) == JOBCOMP
    jobs = slurm.parse(text)
    assert sorted(jobs) == ["1", "2", "3", "4", "5", "6"]
    # job 2 ("jhub-second") ran 21:50:51 to 21:50:53 and completed
    assert jobs["2"] == SlurmJob(
        "2", JOBCOMP, "COMPLETED", at("2026-12-04T21:50:51"), at("2026-12-04T21:50:53"), 2.0
    )
    assert [jobs[j].state for j in sorted(jobs)] == [
        "CANCELLED", "COMPLETED", "FAILED", "FAILED", "CANCELLED", "COMPLETED",
    ]  # fmt: skip
    # the log tells nothing measured of CPU or memory
    assert all(j.cpu_seconds is None and j.max_rss_bytes is None for j in jobs.values())
    # job 4 was refused (more GPUs than the node has): it never ran, start = end
    assert jobs["4"].wall_seconds == 0.0


def test_sacct_output_of_a_testbed_run() -> None:
    text = SACCT_OUT.read_text()
    assert slurm.detect(text.splitlines()) == SACCT
    jobs = slurm.parse(text)
    assert sorted(jobs) == ["1", "2", "3"]
    # job 1 burnt CPU: its steps' TotalCPU summed (1.batch 00:00.026 + 1.0 00:03.055; the
    # job's own line says 00:03.082, the same total rounded apart), the peak of its steps'
    # MaxRSS (1.0: 282524K), its own ElapsedRaw
    assert jobs["1"] == SlurmJob(
        "1", SACCT, "COMPLETED", at("2026-12-04T21:57:52"), at("2026-12-04T21:58:07"),
        15.0, 3.081, 282524 * 1024,
    )  # fmt: skip
    assert jobs["1"].cpu_seconds >= 3.0  # type: ignore[operator]
    # "CANCELLED by 0" is CANCELLED; a step too short to be sampled has no MaxRSS
    assert (jobs["2"].state, jobs["3"].state) == ("FAILED", "CANCELLED")
    assert (jobs["2"].max_rss_bytes, jobs["3"].max_rss_bytes) == (3232 * 1024, None)
    assert (jobs["2"].cpu_seconds, jobs["3"].cpu_seconds) == (0.048, 0.003)


def test_sacct_and_jobcomp_of_one_run_agree_on_the_wall_time() -> None:
    sacct = slurm.parse(SACCT_OUT.read_text())
    jobcomp = slurm.parse(SACCT_RUN_JOBCOMP.read_text())
    assert (
        {j: m.wall_seconds for j, m in sacct.items()}
        == {j: m.wall_seconds for j, m in jobcomp.items()}
        == {"1": 15.0, "2": 1.0, "3": 1.0}
    )


def test_sacct_fields_come_from_its_header_or_the_format_given() -> None:
    text = SACCT_OUT.read_text()
    expected = slurm.parse(text)
    # sacct --parsable2 without --noheader names the fields in its first line
    header = slurm.SACCT_FORMAT.replace(",", "|")
    assert slurm.parse(f"{header}\n{text}") == expected
    assert slurm.parse(text, fields=slurm.SACCT_FORMAT.split(",")) == expected
    # the wrong format is told, not misread
    with pytest.raises(slurm.SlurmFormatError, match="line 1 has 9 fields where the format"):
        slurm.parse(text, fields=["JobID", "State", "ElapsedRaw"])


def test_times_are_the_sites_local_time() -> None:
    jobs = slurm.parse(JOBCOMP_LOG.read_text(), ZoneInfo("Europe/Ljubljana"))
    # CET in December: 21:50:51 at Vega is 20:50:51 UTC
    assert jobs["2"].start == at("2026-12-04T20:50:51")
    assert jobs["2"].wall_seconds == 2.0


def test_a_job_name_with_spaces_stays_whole() -> None:
    line = JOBCOMP_LOG.read_text().splitlines()[1].replace("Name=jhub-second", "Name=my job")
    assert slurm._key_values(line)["Name"] == "my job"
    assert slurm.parse(line)["2"].wall_seconds == 2.0


def test_what_is_not_slurms_is_refused() -> None:
    with pytest.raises(slurm.SlurmFormatError, match="neither sacct"):
        slurm.parse("hello world\n")
    with pytest.raises(slurm.SlurmFormatError, match="line 2"):
        slurm.parse(JOBCOMP_LOG.read_text().splitlines()[0] + "\nsomething else\n")
    # a sacct format without anything measured, or without the job id
    with pytest.raises(slurm.SlurmFormatError, match="nothing measured"):
        slurm.parse("1|x|COMPLETED\n", fields=["JobID", "JobName", "State"])
    with pytest.raises(slurm.SlurmFormatError, match="lacks JobID"):
        slurm.parse("x|COMPLETED|10\n", fields=["JobName", "State", "ElapsedRaw"])


def test_slurm_durations_and_memory_as_apel_reads_them() -> None:
    # sacct's TotalCPU forms (APEL's parse_time: d-h:m:s, h:m:s, m:s.s)
    assert slurm.parse_duration("2-01:24:56") == 2 * 86400 + 3600 + 24 * 60 + 56
    assert slurm.parse_duration("01:09:18") == 3600 + 9 * 60 + 18
    assert slurm.parse_duration("01:05.753") == pytest.approx(65.753)
    with pytest.raises(ValueError):
        slurm.parse_duration("12")
    # MaxRSS: K/M/G... in powers of 1024; empty is unknown
    assert slurm.parse_memory("3228K") == 3228 * 1024
    assert slurm.parse_memory("438.50M") == int(438.5 * 1024**2)
    assert slurm.parse_memory("2G") == 2 * 1024**3
    assert slurm.parse_memory("") is None


# --- into the ledger ------------------------------------------------------------------------


def workload(uid: str, site: str = "vega") -> db.Workload:
    return db.Workload(
        uid=uid,
        user="alice",
        kind="batch-cell",
        site=site,
        pod=f"cell-alice-{uid}",
        submitted=at("2026-12-04T21:50:00"),
        cpu=4.0,
        memory=16 * 2**30,
        gpus=1,
        vo="dev.intertwin.eu",
    )


def ran(store: db.Store, uid: str, job: str, start: str, end: str, site: str = "vega") -> None:
    """A pod that ran as Slurm job ``job`` from ``start`` to ``end`` (as the service saw it)."""
    w = workload(uid, site)
    running = JobStatus("running", "running on vega-vk", node="vega-vk", batch_job=job)
    done = JobStatus("succeeded", "done", node="vega-vk", batch_job=job, exit_code=0)
    store.record(w, running, at(start))
    store.record(w, done, at(end))


def snapshot(store: db.Store) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    with Session(store.engine) as s:
        rows = [
            {c.name: getattr(r, c.name) for c in db.LedgerRow.__table__.columns}
            for r in s.scalars(select(db.LedgerRow).order_by(db.LedgerRow.uid))
        ]
        daily = [
            (d.user, d.day, d.site, d.wall_seconds, d.cpu_core_seconds, d.jobs)
            for d in s.scalars(select(db.DailyUse).order_by(db.DailyUse.day))
        ]
    return rows, daily


MEASURED = ("measured_cpu_seconds", "measured_max_rss_bytes", "measured_wall_seconds")


def with_pods(store: db.Store) -> db.Store:
    # the pods of the log's jobs 2 and 6 at Vega; job 3 is a pod of another site's Slurm
    ran(store, "p2", "2", "2026-12-04T21:50:52", "2026-12-04T21:50:54")
    ran(store, "p6", "6", "2026-12-04T21:51:03", "2026-12-04T21:51:05")
    ran(store, "psnc3", "3", "2026-12-04T21:50:54", "2026-12-04T21:50:56", site="psnc")
    return store


@pytest.fixture
def store(service_db_url: str) -> Iterator[db.Store]:
    """The pods above in the service's database, on SQLite and on PostgreSQL."""
    s = with_pods(db.open_store(service_db_url))
    yield s
    s.engine.dispose()


def test_the_measured_columns_are_filled_and_nothing_else(store: db.Store) -> None:
    rows_before, daily_before = snapshot(store)
    jobs = slurm.parse(JOBCOMP_LOG.read_text())
    done = import_measured(store, "vega", jobs)
    assert (done.jobs, done.filled, done.changed, done.kept) == (6, 2, 2, 0)
    # Vega's ledger has no pod of jobs 1, 3, 4, 5 (psnc3 is job 3 of another site)
    assert done.unknown == ["1", "3", "4", "5"]
    rows, daily = snapshot(store)
    by_uid = {r["uid"]: r for r in rows}
    assert by_uid["p2"]["measured_source"] == "slurm-jobcomp"
    assert [by_uid["p2"][k] for k in MEASURED] == [None, None, 2.0]
    assert [by_uid["p6"][k] for k in MEASURED] == [None, None, 1.0]
    assert by_uid["psnc3"]["measured_source"] is None
    # the allocated figures, times and the rollup are as they were
    for before, after in zip(rows_before, rows, strict=True):
        for k in before:
            if not k.startswith("measured_"):
                assert after[k] == before[k], k
    assert daily == daily_before

    # again: the same rows, nothing changed
    again = import_measured(store, "vega", jobs)
    assert (again.filled, again.changed, again.unknown) == (2, 0, done.unknown)
    assert snapshot(store) == (rows, daily)


def test_sacct_fills_every_measured_column_and_jobcomp_does_not_replace_it(
    tmp_path: Path,
) -> None:
    store = db.open_store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    # the pods of the sacct run's jobs 1 and 3, as the service saw them
    ran(store, "burn", "1", "2026-12-04T21:57:53", "2026-12-04T21:58:08")
    ran(store, "held", "3", "2026-12-04T21:58:09", "2026-12-04T21:58:10")
    rows_before, daily_before = snapshot(store)
    done = import_measured(store, "vega", slurm.parse(SACCT_OUT.read_text()))
    assert (done.filled, done.changed, done.unknown) == (2, 2, ["2"])
    rows, daily = snapshot(store)
    by_uid = {r["uid"]: r for r in rows}
    assert by_uid["burn"]["measured_source"] == "slurm-sacct"
    assert [by_uid["burn"][k] for k in MEASURED] == [3.081, 282524 * 1024, 15.0]
    assert [by_uid["held"][k] for k in MEASURED] == [0.003, None, 1.0]
    # the allocated figures stay: 4 CPUs x the pod's own 15 s
    assert by_uid["burn"]["cpu_core_seconds"] == rows_before[0]["cpu_core_seconds"] == 60.0
    assert daily == daily_before
    # the same run's jobcomp log knows no CPU or memory: sacct's figures stay
    done = import_measured(store, "vega", slurm.parse(SACCT_RUN_JOBCOMP.read_text()))
    assert (done.filled, done.kept, done.changed) == (0, 2, 0)
    assert snapshot(store) == (rows, daily)


def test_a_reused_job_id_goes_to_the_pod_that_ran_then(tmp_path: Path) -> None:
    store = db.open_store(f"sqlite:///{tmp_path / 'service.sqlite'}")
    # Slurm started counting again (its state reset): job 2 a week earlier was another pod
    week = timedelta(days=7)
    earlier = (at("2026-12-04T21:50:52") - week).isoformat()
    ran(store, "old", "2", earlier, (at("2026-12-04T21:59:00") - week).isoformat())
    ran(store, "new", "2", "2026-12-04T21:50:52", "2026-12-04T21:50:54")
    import_measured(store, "vega", slurm.parse(JOBCOMP_LOG.read_text()))
    rows, _ = snapshot(store)
    assert {r["uid"]: r["measured_wall_seconds"] for r in rows} == {"new": 2.0, "old": None}


def test_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    with_pods(db.open_store(url)).engine.dispose()
    args = [CLI, "usage", "import-slurm", "--db", url, "--site", "vega"]
    r = subprocess.run([*args, str(JOBCOMP_LOG)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "vega: 6 ended jobs read (slurm-jobcomp); 2 ledger rows measured (2 changed), "
        "4 unknown job ids: 1, 3, 4, 5"
    )
    r = subprocess.run([*args, str(JOBCOMP_LOG)], capture_output=True, text=True, timeout=120)
    assert "2 ledger rows measured (0 changed)" in r.stdout
    # an unknown site, a file that is not Slurm's, a missing file: a sentence, no traceback
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    for argv, words in [
        ([CLI, "usage", "import-slurm", "--db", url, "--site", "nope", str(JOBCOMP_LOG)],
         "no site 'nope' in the catalogue"),
        ([*args, str(bad)], f"error: {bad}: neither sacct"),
        ([*args, str(tmp_path / "missing")], "No such file or directory"),
        ([*args, "--timezone", "Mars/Olympus", str(JOBCOMP_LOG)], "no time zone 'Mars/Olympus'"),
    ]:  # fmt: skip
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    # both files of one run: sacct's figures win whatever the order
    r = subprocess.run(
        [*args, str(SACCT_RUN_JOBCOMP), str(SACCT_OUT)], capture_output=True, text=True, timeout=120
    )
    assert r.stdout.startswith("vega: 3 ended jobs read (slurm-sacct);"), r.stdout
    r = subprocess.run([*args[:3], "--help"], capture_output=True, text=True, timeout=120)
    assert "JobID,JobName,State,Start,End,ElapsedRaw,TotalCPU,MaxRSS,AllocTRES" in r.stdout
