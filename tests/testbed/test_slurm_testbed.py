"""``testbed up --slurm``: the hub's Vega sessions go through Kubernetes, the interLink virtual
kubelet and API, and the local plugin into a real Slurm queue. What the scientist sees (the
spawn progress) carries Slurm's job id, a session waits while Slurm has no free GPU, and
stopping a session ends its Slurm job."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from testbed.lifecycle import down, up
from testbed.procs import Supervisor, group_members

from ..conftest import QUEUE_SECONDS
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
