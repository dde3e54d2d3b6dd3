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

from testbed.lifecycle import down, up
from testbed.procs import Supervisor, group_members

from ..conftest import QUEUE_SECONDS
from ..waiting import wait_for
from .hubapi import follow, spawn, start, stop
from .test_offload import Api, kernel_for, run_cell, text_of, token_for
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


def test_the_sites_job_completion_log_fills_the_measured_columns(
    slurm_testbed: dict[str, Any],
) -> None:
    """An offloaded cell at Vega runs as a Slurm job and ends. The operator imports the job
    completion log the testbed's Slurm wrote (``intertwin-hub usage import-slurm``): the
    cell's ledger row gets the Slurm job's wall time from the log, source ``slurm-jobcomp``,
    beside its allocated figures, which stay as they were; importing again changes nothing."""
    hub = slurm_testbed["hub"]
    token = token_for(hub, "alice")
    with kernel_for(hub, token) as kc:
        reply, outputs = run_cell(
            kc,
            "%%offload --site vega\nimport time\ntime.sleep(5)\nprint('slept')\n",
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
    assert slurm_wall >= 5, values  # the cell slept 5 s in its Slurm job
    period = {"from": (datetime.fromisoformat(job["submitted"]) - timedelta(minutes=1)).isoformat()}

    def row() -> dict[str, Any] | None:
        st, top = api("GET", "usage/jobs", params={"limit": 1000, **period})
        assert st == 200, top
        mine = [j for j in top["jobs"] if j["id"] == job["id"]]
        return mine[0] if mine and mine[0]["end"] else None

    before = wait_for(row, "the cell's ledger row closed", 120, 0.5)
    assert before["measured"] is None
    db_file = Path(slurm_testbed["run_dir"]) / "hub" / "intertwin-service.sqlite"
    command = [
        str(Path(sys.executable).parent / "intertwin-hub"), "usage", "import-slurm",
        "--db", f"sqlite:///{db_file}", "--site", "vega", str(log),
    ]  # fmt: skip
    r = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "(slurm-jobcomp)" in r.stdout, (r.stdout, r.stderr)
    print(f"[measured] {r.stdout.strip()}")
    after = row()
    assert after is not None
    assert after["measured"] == {
        "source": "slurm-jobcomp",
        "cpu_seconds": None,  # the log has no CPU or memory figures
        "max_rss_bytes": None,
        "wall_seconds": slurm_wall,
    }
    assert {k: v for k, v in after.items() if k != "measured"} == {
        k: v for k, v in before.items() if k != "measured"
    }
    print(
        f"[measured] Slurm job {jid}: {slurm_wall:.0f} s in Slurm's log, "
        f"{before['wall_seconds']:.1f} s allocated (the pod's own start to end)"
    )
    st, text = api("GET", "usage.csv", params=period)
    assert st == 200, text
    line = next(r for r in csv.DictReader(io.StringIO(text)) if r["id"] == job["id"])
    assert (line["measured_source"], float(line["measured_wall_seconds"])) == (
        "slurm-jobcomp",
        slurm_wall,
    )
    assert line["measured_cpu_seconds"] == line["measured_max_rss_bytes"] == ""

    r = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "(0 changed)" in r.stdout, (r.stdout, r.stderr)
    assert row() == after
