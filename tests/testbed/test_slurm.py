"""The local plugin on a real Slurm queue (``--slurm-conf``, Debian's slurm-wlm started by
``testbed.slurm``): pods become sbatch jobs with the pod's Slurm flags, wait as PENDING with
Slurm's reason, run their containers as steps with the GPUs Slurm allocated, end COMPLETED, are
scancelled on delete, and are recorded by Slurm's accounting (slurmdbd, ``sacct``) with the CPU
time and memory they used. Nothing here is mocked; the containers are local processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intertwin_hub.sites import load_catalogue
from testbed.procs import Supervisor, group_members
from testbed.slurm import STOP_ORDER, SlurmCluster, cancel_all, slurm_sites, start_slurm

from ..waiting import wait_for
from .local_plugin.plugin import Plugin, create_body, ctr, make_pod

pytestmark = pytest.mark.testbed

VEGA_FLAGS = "--partition=gpu --gres=gpu:{n} --time=04:00:00 --account=intertwin"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    sup = Supervisor(tmp_path_factory.mktemp("slurm-run"))
    cluster = start_slurm(sup, slurm_sites(load_catalogue()))
    try:
        yield cluster
    finally:
        cancel_all(cluster.conf)
        pids = sup.pids()
        sup.stop_all(STOP_ORDER)
        left = [n for n, p in pids.items() if group_members(p)]
        assert not left, f"Slurm daemons left running: {left}"


@pytest.fixture(scope="module")
def plugin(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    p = Plugin(tmp_path_factory.mktemp("slurm-jobs") / "jobs", "--slurm-conf", slurm.conf)
    p.start()
    try:
        yield p
    finally:
        p.stop()
        p.cancel_all()


def scontrol(slurm: SlurmCluster, jid: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", jid],
        env=slurm.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(w.split("=", 1) for w in out.split() if "=" in w)


def gpu_pod(name: str, gpus: int, script: str) -> dict[str, Any]:
    limits = {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": str(gpus)}
    return make_pod(
        name,
        [ctr("notebook", script, resources={"limits": limits, "requests": limits})],
        annotations={"slurm-job.vk.io/flags": VEGA_FLAGS.format(n=gpus)},
    )


WAIT_FOR_STOP = (
    "import os, sys, time\n"
    "print('job', os.environ.get('SLURM_JOB_ID'), 'gpus', os.environ.get('CUDA_VISIBLE_DEVICES'),"
    " flush=True)\n"
    "while not os.path.exists(sys.argv[1]): time.sleep(0.1)\n"
)


def test_queue_run_gpus_and_scancel(plugin: Plugin, slurm: SlurmCluster, tmp_path: Path) -> None:
    # the first pod takes every GPU of the node; the second must wait in Slurm's queue
    stop_first = tmp_path / "stop-first"
    first = gpu_pod("first", 4, WAIT_FOR_STOP)
    first["spec"]["containers"][0]["args"] = [str(stop_first)]
    plugin.create(create_body(first))
    running = plugin.wait_state(first, "notebook", "running", timeout=30)
    jid = plugin.status(first)["JID"]  # type: ignore[index]
    job = scontrol(slurm, jid)
    assert (job["JobState"], job["Partition"]) == ("RUNNING", "gpu")
    # the pod's flags and limits, as the interLink Slurm plugin passes them
    assert (job["TresPerNode"], job["TimeLimit"]) == ("gres:gpu:4", "04:00:00"), job
    assert (job["NumCPUs"], job["MinMemoryNode"]) == ("4", "16G"), job
    wait_for(
        lambda: f"job {jid} gpus 0,1,2,3" in plugin.logs(first, "notebook")[1].decode(),
        "the first notebook's line",
        15,
    )
    assert running["state"]["running"]["startedAt"]

    second = gpu_pod(
        "second", 2, "import os; print('second on', os.environ.get('CUDA_VISIBLE_DEVICES'))"
    )
    plugin.create(create_body(second))
    waiting = wait_for(
        lambda: (
            (c := plugin.container(second, "notebook"))["state"]
            .get("waiting", {})
            .get("message", "")
            .endswith("Resources)")
            and c
        ),
        "the second pod pending",
        15,
    )
    jid2 = plugin.status(second)["JID"]  # type: ignore[index]
    assert (
        waiting["state"]["waiting"]["message"]
        == f"queued at TestSite (Slurm job {jid2}: Resources)"
    )
    assert scontrol(slurm, jid2)["JobState"] == "PENDING"

    # deleting the first pod cancels its Slurm job: its process dies, the second one starts
    code, text = plugin.delete(first)
    assert code == 200, text
    wait_for(lambda: scontrol(slurm, jid)["JobState"] == "CANCELLED", "job 1 CANCELLED", 15)
    wait_for(
        lambda: (
            not list(
                p
                for p in Path("/proc").glob("[0-9]*/cmdline")
                if str(stop_first).encode() in _read(p)
            )
        ),
        "the first notebook's process gone",
        15,
    )
    done = plugin.wait_state(second, "notebook", "terminated", timeout=30)
    assert done["state"]["terminated"]["exitCode"] == 0
    assert "second on 0,1" in plugin.logs(second, "notebook")[1].decode()
    wait_for(lambda: scontrol(slurm, jid2)["JobState"] == "COMPLETED", "job 2 COMPLETED", 15)


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


def test_a_failing_container_fails_the_slurm_job(plugin: Plugin, slurm: SlurmCluster) -> None:
    pod = gpu_pod("fails", 1, "import sys; print('bad input'); sys.exit(3)")
    plugin.create(create_body(pod))
    done = plugin.wait_state(pod, "notebook", "terminated", timeout=30)
    assert done["state"]["terminated"]["exitCode"] == 3
    jid = plugin.status(pod)["JID"]  # type: ignore[index]
    wait_for(lambda: scontrol(slurm, jid)["JobState"] == "FAILED", "job FAILED", 15)


def test_slurm_refusal_is_the_containers_reason(plugin: Plugin) -> None:
    pod = gpu_pod("refused", 1, "print('never')")
    pod["metadata"]["annotations"]["slurm-job.vk.io/flags"] = "--partition=nope --gres=gpu:1"
    plugin.create(create_body(pod))
    term = plugin.container(pod, "notebook")["state"]["terminated"]
    assert term["reason"] == "SlurmSubmitFailed"
    assert term["message"] == (
        "TestSite refused the job: invalid partition specified: nope; "
        "Batch job submission failed: Invalid partition name specified"
    )
    # more GPUs than the node has
    pod = gpu_pod("too-many", 8, "print('never')")
    plugin.create(create_body(pod))
    term = plugin.container(pod, "notebook")["state"]["terminated"]
    assert "Requested node configuration is not available" in term["message"]
    # a flag that would redirect the job's files is not passed to sbatch
    pod = gpu_pod("sneaky", 1, "print('never')")
    pod["metadata"]["annotations"]["slurm-job.vk.io/flags"] = "--output=/etc/passwd"
    plugin.create(create_body(pod))
    term = plugin.container(pod, "notebook")["state"]["terminated"]
    assert "'--output=/etc/passwd' is not allowed here" in term["message"]


def test_site_cancel_ends_the_pod_with_slurms_word(
    plugin: Plugin, slurm: SlurmCluster, tmp_path: Path
) -> None:
    pod = gpu_pod("cancelled", 1, WAIT_FOR_STOP)
    pod["spec"]["containers"][0]["args"] = [str(tmp_path / "never")]
    plugin.create(create_body(pod))
    plugin.wait_state(pod, "notebook", "running", timeout=30)
    jid = plugin.status(pod)["JID"]  # type: ignore[index]
    # the site's operator cancels the job: Slurm kills the step, the pod says why
    subprocess.run(["scancel", jid], env=slurm.env(), check=True)
    term = plugin.wait_state(pod, "notebook", "terminated", timeout=30)["state"]["terminated"]
    assert term["exitCode"] != 0
    # Slurm says CANCELLED once the job has finished COMPLETING (its steps are gone)
    wait_for(
        lambda: (
            plugin.container(pod, "notebook")["state"]["terminated"].get("message")
            == f"Slurm ended job {jid}: CANCELLED"
        ),
        "Slurm's word on the pod",
        15,
    )


def test_queue_seconds_is_slurms_begin_time(slurm: SlurmCluster, tmp_path: Path) -> None:
    p = Plugin(tmp_path / "jobs", "--slurm-conf", slurm.conf, "--queue-seconds", "4").start()
    try:
        pod = gpu_pod("later", 1, "print('ran')")
        p.create(create_body(pod))
        msg = p.container(pod, "notebook")["state"]["waiting"]["message"]
        jid = p.status(pod)["JID"]  # type: ignore[index]
        wait_for(
            lambda: (
                p.container(pod, "notebook")["state"].get("waiting", {}).get("message")
                == f"queued at TestSite (Slurm job {jid}: BeginTime)"
            ),
            "pending on BeginTime",
            10,
        )
        assert msg.startswith(f"queued at TestSite (Slurm job {jid}")
        p.wait_state(pod, "notebook", "terminated", timeout=30)
    finally:
        p.stop()
        p.cancel_all()
    assert os.path.exists(slurm.jobcomp)


# burns 3 s of CPU time (not wall time: the machine may be busy) holding 256 MiB it has written
BURN = (
    "import time\n"
    "block = b'x' * (256 * 2**20)\n"
    "while time.process_time() < 3: sum(range(10_000))\n"
    "print('burnt', len(block))\n"
)


def cpu_seconds(text: str) -> float:
    """sacct's TotalCPU, ``[D-][HH:]MM:SS[.mmm]``, in seconds."""
    days, _, clock = text.rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + float(part)
    return (int(days) if days else 0) * 86400 + seconds


def kib(text: str) -> float:
    """sacct's MaxRSS (``219580K``, ``1.50G``; empty when not measured) in KiB."""
    if not text:
        return 0.0
    units = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text) / 1024


def test_sacct_measures_the_jobs_cpu_time_and_memory(plugin: Plugin, slurm: SlurmCluster) -> None:
    pod = gpu_pod("measured", 1, BURN)
    plugin.create(create_body(pod))
    done = plugin.wait_state(pod, "notebook", "terminated", timeout=60)
    assert done["state"]["terminated"]["exitCode"] == 0
    jid = plugin.status(pod)["JID"]  # type: ignore[index]
    fields = ("JobID", "State", "ElapsedRaw", "TotalCPU", "MaxRSS", "AllocTRES")
    argv = slurm.sacct_argv("-j", jid, fields=fields)
    assert argv[:5] == [
        "sacct",
        "--allusers",
        "--parsable2",
        "--noheader",
        f"--format={','.join(fields)}",
    ]

    def records() -> dict[str, dict[str, str]]:
        out = subprocess.run(argv, env=slurm.env(), capture_output=True, text=True, check=True)
        rows = (dict(zip(fields, line.split("|"), strict=True)) for line in out.stdout.splitlines())
        return {r["JobID"]: r for r in rows}

    # slurmdbd stores the job's end a moment after slurmctld ends it: wait for it
    rows = wait_for(
        lambda: (r := records()).get(jid, {}).get("State") == "COMPLETED" and r,
        f"sacct's record of job {jid} COMPLETED",
        60,
        interval=0.5,
    )
    job = rows[jid]
    # the pod's container ran as step 0 of the job, the hold script as its batch step
    assert {f"{jid}.batch", f"{jid}.0"} <= set(rows), rows
    step = rows[f"{jid}.0"]
    assert step["State"] == "COMPLETED", rows
    # measured: the step's CPU time and peak memory; the job's CPU time sums its steps
    assert cpu_seconds(step["TotalCPU"]) >= 3.0, rows
    assert cpu_seconds(job["TotalCPU"]) >= cpu_seconds(step["TotalCPU"]), rows
    assert kib(step["MaxRSS"]) >= 256 * 1024, rows
    # allocated: what the pod asked for, GPUs included (AccountingStorageTRES=gres/gpu)
    tres = dict(t.split("=", 1) for t in job["AllocTRES"].split(","))
    assert (tres["cpu"], tres["mem"], tres["gres/gpu"]) == ("4", "16G", "1"), rows
    assert 3 <= int(job["ElapsedRaw"]) < 60, rows
