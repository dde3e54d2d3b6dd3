"""``testbed up --slurm``: the hub's Vega sessions go through Kubernetes, the interLink virtual
kubelet and API, and the local plugin into a real Slurm queue. What the scientist sees (the
spawn progress) carries Slurm's job id, a session waits while Slurm has no free GPU, and
stopping a session ends its Slurm job."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dirq.QueueSimple import QueueSimple

from intertwin_hub.usage.slurm import SACCT_FORMAT
from testbed.lifecycle import down, up
from testbed.procs import Supervisor, group_members
from testbed.slurm import SlurmCluster

from ..conftest import QUEUE_SECONDS
from ..waiting import wait_for
from .hubapi import follow, spawn, start, stop
from .test_offload import Api, kernel_for, run_cell, text_of, token_for
from .test_slurm import cpu_seconds, kib
from .test_teardown import processes_under

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def slurm_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    run_dir = tmp_path_factory.mktemp("slurm-testbed")
    # Slurm holds each job QUEUE_SECONDS (sbatch --begin), so the hub sees it queued
    state = up(
        run_dir,
        hub=True,
        queue_seconds=QUEUE_SECONDS,
        rucio=False,
        slurm=True,
        progress=lambda m: print(f"[slurm testbed] {m}"),
    )
    pids = Supervisor(run_dir).pids()
    try:
        yield state
    finally:
        down(run_dir)
        left = [n for n, p in pids.items() if group_members(p)]
        assert not left, f"left running after down: {left}"
        # the notebooks ran as Slurm job steps: none may outlive the testbed
        assert not processes_under(run_dir)


def squeue(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Jobs by name: Slurm's id, state, partition and GPUs."""
    env = {"SLURM_CONF": state["slurm"]["conf"], "PATH": "/usr/bin:/bin:/usr/sbin"}
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%j|%i|%T|%P|%b"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        name, jid, st, part, gres = line.split("|")
        jobs[name] = {"id": jid, "state": st, "partition": part, "gres": gres}
    return jobs


@pytest.mark.asyncio
async def test_vega_sessions_queue_in_slurm(slurm_testbed: dict[str, Any]) -> None:
    hub = slurm_testbed["hub"]
    api = hub["api_url"]
    async with aiohttp.ClientSession(
        headers={"Authorization": f"token {hub['service_token']}"}
    ) as s:
        # all four GPUs of the Slurm node
        events = await spawn(s, api, "alice", "big", {"profile": "vega", "gpus": "gpu-4"})
        assert events[-1].get("ready"), events
        jobs = squeue(slurm_testbed)
        big = jobs["intertwin-jupyter-alice--big"]
        assert (big["state"], big["partition"], big["gres"]) == ("RUNNING", "gpu", "gres:gpu:4")
        messages = [e.get("message", "") for e in events]
        assert f"queued at Vega (batch job {big['id']})" in messages, messages

        # a second session needs a GPU: Slurm keeps it pending until the first one stops
        status, text = await start(s, api, "alice", "small", {"profile": "vega", "gpus": "gpu-1"})
        assert status in (201, 202), text
        following = asyncio.create_task(follow(s, api, "alice", "small"))
        await asyncio.sleep(10)
        small = squeue(slurm_testbed)["intertwin-jupyter-alice--small"]
        assert small["state"] == "PENDING", small
        assert not following.done()

        await stop(s, api, "alice", "big")
        events = await following
        assert events[-1].get("ready"), events
        assert any(
            re.fullmatch(rf"queued at Vega \(batch job {small['id']}\)", e.get("message", ""))
            for e in events
        ), events
        jobs = squeue(slurm_testbed)
        assert jobs["intertwin-jupyter-alice--big"]["state"] in ("COMPLETING", "CANCELLED")
        assert jobs["intertwin-jupyter-alice--small"]["state"] == "RUNNING"
        await stop(s, api, "alice", "small")


def test_an_offloaded_cell_is_a_slurm_job_with_its_gpu(slurm_testbed: dict[str, Any]) -> None:
    """``%%offload --gpus 1`` at Vega: a Slurm job with ``--gres=gpu:1``, and the cell sees the
    GPU Slurm gave it."""
    hub = slurm_testbed["hub"]
    token = token_for(hub, "alice")
    with kernel_for(hub, token) as kc:
        reply, outputs = run_cell(
            kc,
            "%%offload --site vega --gpus 1 --out devices\n"
            "import os\ndevices = os.environ.get('CUDA_VISIBLE_DEVICES')\n"
            "print('slurm job', os.environ.get('SLURM_JOB_ID'))\n",
            cell_id="gpu-cell",
        )
        assert reply["status"] == "ok", (reply, outputs)
        reply, outputs = run_cell(kc, "print(devices)")
        # one GPU index, as Slurm's gres plugin sets it for the job step
        assert re.fullmatch(r"\d+", text_of(outputs).strip()), outputs
    job = next(j for j in Api(hub, token).batch_cells() if j["cell_id"] == "gpu-cell")
    slurm = squeue(slurm_testbed)[f"intertwin-{job['pod']}"]
    assert (slurm["id"], slurm["partition"], slurm["gres"]) == (
        job["batch_job"],
        "gpu",
        "gres:gpu:1",
    )


def test_the_sites_accounting_fills_the_measured_columns(
    slurm_testbed: dict[str, Any], tmp_path: Path
) -> None:
    """An offloaded cell at Vega runs as a Slurm job, burns CPU and ends. The operator imports
    what the testbed's Slurm recorded (``intertwin-hub usage import-slurm``): first the job
    completion log (the Slurm job's wall time, source ``slurm-jobcomp``), then sacct's output
    (its CPU time, peak memory and wall time, source ``slurm-sacct``), each checked against the
    file; the allocated figures stay as they were, importing again changes nothing, and the
    cell's APEL record carries sacct's CPU time as its CpuDuration."""
    hub = slurm_testbed["hub"]
    token = token_for(hub, "alice")
    with kernel_for(hub, token) as kc:
        reply, outputs = run_cell(
            kc,
            "%%offload --site vega\n"
            # 3 s of CPU time (not wall time: the machine may be busy) in 64 MiB it wrote
            "import time\nblock = b'x' * (64 * 2**20)\n"
            "while time.process_time() < 3: sum(range(10_000))\nprint('burnt')\n",
            cell_id="measured-cell",
        )
        assert reply["status"] == "ok", (reply, outputs)
    api = Api(hub, token)
    job = next(j for j in api.batch_cells() if j["cell_id"] == "measured-cell")
    jid = job["batch_job"]
    assert jid, job
    log = Path(slurm_testbed["slurm"]["jobcomp"])

    def logged() -> dict[str, str] | None:
        text = log.read_text() if log.exists() else ""
        line = next((ln for ln in text.splitlines() if ln.startswith(f"JobId={jid} ")), None)
        return dict(w.split("=", 1) for w in line.split() if "=" in w) if line else None

    values = wait_for(logged, f"Slurm job {jid} in the job completion log", 120, 0.5)
    assert values["JobState"] == "COMPLETED", values
    slurm_wall = (
        datetime.fromisoformat(values["EndTime"]) - datetime.fromisoformat(values["StartTime"])
    ).total_seconds()
    period = {"from": (datetime.fromisoformat(job["submitted"]) - timedelta(minutes=1)).isoformat()}

    def row() -> dict[str, Any] | None:
        st, top = api("GET", "usage/jobs", params={"limit": 1000, **period})
        assert st == 200, top
        mine = [j for j in top["jobs"] if j["id"] == job["id"]]
        return mine[0] if mine and mine[0]["end"] else None

    before = wait_for(row, "the cell's ledger row closed", 120, 0.5)
    assert before["measured"] is None
    db_url = f"sqlite:///{Path(slurm_testbed['run_dir']) / 'hub' / 'intertwin-service.sqlite'}"
    cli = str(Path(sys.executable).parent / "intertwin-hub")

    def import_slurm(path: Path) -> str:
        r = subprocess.run(
            [cli, "usage", "import-slurm", "--db", db_url, "--site", "vega", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, (r.stdout, r.stderr)
        print(f"[measured] {r.stdout.strip()}")
        return r.stdout

    def allocated(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "measured"}

    # the job completion log: the wall time only
    assert "(slurm-jobcomp)" in import_slurm(log)
    after = row()
    assert after is not None and allocated(after) == allocated(before)
    assert after["measured"] == {
        "source": "slurm-jobcomp",
        "cpu_seconds": None,  # the log has no CPU or memory figures
        "max_rss_bytes": None,
        "wall_seconds": slurm_wall,
    }
    st, text = api("GET", "usage.csv", params=period)
    assert st == 200, text
    line = next(r for r in csv.DictReader(io.StringIO(text)) if r["id"] == job["id"])
    assert (line["measured_source"], float(line["measured_wall_seconds"])) == (
        "slurm-jobcomp",
        slurm_wall,
    )
    assert line["measured_cpu_seconds"] == line["measured_max_rss_bytes"] == ""
    assert "(0 changed)" in import_slurm(log)
    assert row() == after

    # sacct, as a site exports it: the job and its steps
    cluster = SlurmCluster(**slurm_testbed["slurm"])
    fields = SACCT_FORMAT.split(",")

    def accounted() -> dict[str, dict[str, str]] | None:
        out = subprocess.run(
            cluster.sacct_argv("-j", jid, fields=fields),
            env=cluster.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = (dict(zip(fields, ln.split("|"), strict=True)) for ln in out.splitlines())
        rows = {r["JobID"]: r for r in lines}
        # slurmdbd stores the job's end a moment after Slurm ends it
        done = rows.get(jid, {}).get("State") == "COMPLETED"
        if done:
            (tmp_path / "sacct.txt").write_text(out)
        return rows if done else None

    rows = wait_for(accounted, f"sacct's record of job {jid} COMPLETED", 120, 0.5)
    steps = [r for k, r in rows.items() if k.startswith(f"{jid}.")]
    assert steps, rows
    cpu = sum(cpu_seconds(r["TotalCPU"]) for r in steps)
    rss = max(int(kib(r["MaxRSS"]) * 1024) for r in [rows[jid], *steps])
    assert cpu >= 3 and rss >= 64 * 2**20, rows
    assert "(slurm-sacct)" in import_slurm(tmp_path / "sacct.txt")
    measured = row()
    assert measured is not None and allocated(measured) == allocated(before)
    assert measured["measured"]["source"] == "slurm-sacct"
    assert abs(measured["measured"]["cpu_seconds"] - cpu) < 0.002
    assert measured["measured"]["max_rss_bytes"] == rss
    assert measured["measured"]["wall_seconds"] == float(rows[jid]["ElapsedRaw"])
    print(
        f"[measured] Slurm job {jid}: sacct {cpu:.3f} s CPU, {rss / 2**20:.0f} MiB peak, "
        f"{rows[jid]['ElapsedRaw']} s wall; jobcomp {slurm_wall:.0f} s wall; allocated "
        f"{before['cpu']} CPUs x {before['wall_seconds']:.1f} s (the pod's own start to end)"
    )
    # the poorer log again: sacct's figures stay
    assert "1 kept with sacct's figures" in import_slurm(log)
    assert row() == measured

    # the cell's APEL record: sacct's CPU time as CpuDuration
    day = datetime.fromisoformat(job["submitted"]).date()
    out = tmp_path / "apel"
    r = subprocess.run(
        [cli, "usage", "apel", "--db", db_url, "--site-name", "TESTBED", "--out", str(out),
         "--from", day.isoformat(), "--to", (day + timedelta(days=1)).isoformat()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    queue = QueueSimple(str(out))
    texts = []
    for name in queue:
        assert queue.lock(name)
        texts.append(queue.get(name).decode())
    cloud = next(t for t in texts if t.startswith("APEL-cloud-message"))
    record = next(
        dict(ln.split(": ", 1) for ln in chunk.splitlines() if ": " in ln)
        for chunk in cloud.split("\n%%\n")
        if f"VMUUID: {job['id']}" in chunk
    )
    assert record["CpuDuration"] == str(round(measured["measured"]["cpu_seconds"]))
