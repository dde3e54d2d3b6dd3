"""A real single-node Slurm cluster for the testbed's Slurm sites (Vega, PSNC): Debian's
``slurm-wlm`` daemons (slurmctld, slurmd) with everything under the run folder, on 127.0.0.1
with free ports. Optional (``testbed up --slurm``): the local plugins of the sites whose
catalogue entry says ``batch.system: slurm`` then queue their pods here instead of in the
emulated queue (see :mod:`testbed.local_plugin.slurm`).

What is real: sbatch/squeue/scontrol/scancel/srun, the scheduler (PENDING with Slurm's reason,
backfill, partitions from the catalogue, ``--gres=gpu:N`` against the node's GPUs, ``--begin``),
job steps and their signals. What is not: the node is this machine, declared with the site's
size (``SlurmdParameters=config_overrides``); its GPUs are device nodes that point at
``/dev/null`` (Slurm only hands out their indices); there is no accounting database (``sacct``
needs slurmdbd + MariaDB), so finished jobs are read with ``scontrol`` and the job completion log
(``jobcomp/filetxt``); authentication is ``auth/none``, for loopback only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from intertwin_hub.sites import Site

from .local_plugin.slurm import Slurm, memory_mib
from .procs import Supervisor, TestbedError, free_port, wait_until

NODE = "testbed-slurm"
DAEMONS = ("slurmctld", "slurmd")


@dataclass
class SlurmCluster:
    conf: str
    partitions: list[str]
    gpus: int
    jobcomp: str

    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=self.conf)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def slurm_sites(catalogue: Iterable[Site]) -> list[Site]:
    return [s for s in catalogue if s.offload and s.batch is not None and s.batch.system == "slurm"]


def slurm_conf(
    folder: Path,
    partitions: list[str],
    gpus: int,
    cpus: int,
    mem_mib: int,
    ctld_port: int,
    d_port: int,
) -> str:
    """slurm.conf of the testbed cluster (pure: the text only)."""
    lines = [
        "# intertwin-hub testbed: one node standing for the Slurm sites' GPU nodes",
        "ClusterName=intertwin-testbed",
        f"SlurmctldHost={socket.gethostname()}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={d_port}",
        # loopback only; munge would need a system daemon and a key in /etc
        "AuthType=auth/none",
        "CredType=cred/none",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd.log",
        # no cgroups here (no systemd, no delegation): processes are tracked through /proc
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        # look at pending jobs every 2 s (default 60 s): a freed GPU is used at once
        "SchedulerParameters=sched_interval=2,bf_interval=2",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "GresTypes=gpu",
        # the node is declared with a site's size, not this machine's
        "SlurmdParameters=config_overrides",
        # a cancelled step gets SIGTERM, then SIGKILL this many seconds later
        "KillWait=5",
        "MinJobAge=300",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={folder}/jobcomp.txt",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        f"NodeName={NODE} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 "
        f"CPUs={cpus} RealMemory={mem_mib} Gres=gpu:{gpus} State=UNKNOWN",
    ]
    lines += [f"PartitionName={p} Nodes={NODE} MaxTime=INFINITE State=UP" for p in partitions]
    return "\n".join(lines) + "\n"


def slurm_partitions(sites: list[Site]) -> list[str]:
    """The partitions of the run's one Slurm cluster: the catalogue's batch system names
    (``partitions[].name``), not the user-facing slugs. Two slugs of one site may share a
    partition; two sites may not, since they share the cluster."""
    names = [n for s in sites for n in dict.fromkeys(p.batch_name for p in s.partitions)]
    if len(set(names)) != len(names):
        raise TestbedError(f"Slurm partitions of the sites must be unique: {names}")
    return names


def require_slurm() -> None:
    """Raise, with what to do, when this machine or user cannot run the testbed's Slurm:
    checked before anything of a run starts."""
    if os.geteuid() != 0:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = f"uid {os.geteuid()}"
        raise TestbedError(
            "The testbed's real Slurm queue (testbed up --slurm, and the tests in "
            "tests/testbed/test_slurm.py and test_slurm_testbed.py) runs slurmctld and slurmd "
            f"as root, and this runs as {user}: run it as root (e.g. with sudo), or start the "
            "testbed without --slurm."
        )
    missing = [
        d
        for d in (*DAEMONS, "sbatch", "srun")
        if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()
    ]
    if missing:
        raise TestbedError(
            f"Slurm is not installed ({', '.join(missing)} missing): "
            "apt-get install slurm-wlm (scripts/setup.sh does)"
        )


def start_slurm(
    sup: Supervisor, sites: list[Site], progress: Callable[[str], None] = lambda m: None
) -> SlurmCluster:
    require_slurm()
    folder = sup.run_dir / "slurm"
    for sub in ("state", "spool", "dev"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    partitions = slurm_partitions(sites)
    gpus = max((p.max_gpus for s in sites for p in s.partitions), default=0)
    cpus = max(int(float(s.node.cpu)) for s in sites)
    mem_mib = max(memory_mib(s.node.memory) for s in sites)
    # Slurm's gres/gpu needs a device file per GPU: character devices that are /dev/null
    for i in range(gpus):
        dev = folder / "dev" / f"gpu{i}"
        if not dev.exists():
            os.mknod(dev, 0o600 | 0o020000, os.makedev(1, 3))
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, partitions, gpus, cpus, mem_mib, free_port(), free_port()))
    (folder / "gres.conf").write_text(
        f"NodeName={NODE} Name=gpu File={folder}/dev/gpu[0-{max(gpus - 1, 0)}]\n" if gpus else ""
    )
    cluster = SlurmCluster(str(conf), partitions, gpus, str(folder / "jobcomp.txt"))
    slurm = Slurm(conf)
    env = {"SLURM_CONF": str(conf)}
    # -i: ignore state left by an earlier run of this folder
    ctld = sup.start("slurmctld", ["slurmctld", "-D", "-i"], env=env, cwd=folder)
    wait_until(
        lambda: slurm.run("scontrol", "ping", timeout=10).returncode == 0, "slurmctld", 30, ctld
    )
    slurmd = sup.start("slurmd", ["slurmd", "-D", "-N", NODE], env=env, cwd=folder)
    wait_until(lambda: node_state(slurm) == "idle", f"Slurm node {NODE} idle", 30, slurmd)
    progress(f"Slurm ready: partitions {', '.join(partitions)}, {gpus} GPUs on node {NODE}")
    return cluster


def node_state(slurm: Slurm) -> str:
    r = slurm.run("sinfo", "--noheader", "--Node", "--format=%T", f"--nodes={NODE}")
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else ""


def cancel_all(conf: str, timeout: float = 30.0) -> None:
    """scancel every job and wait until Slurm has ended them (their steps are the notebooks),
    before the daemons are stopped: slurmstepd would outlive slurmd."""
    slurm = Slurm(Path(conf))
    if slurm.run("scancel", "--user=root", timeout=10).returncode != 0:
        return  # slurmctld is not answering: nothing to wait for through it
    try:
        wait_until(
            lambda: (
                not slurm.run(
                    "squeue", "--noheader", "--states=PD,R,CG,S", timeout=10
                ).stdout.strip()
            ),
            "Slurm jobs cancelled",
            timeout,
        )
    except TestbedError:
        pass
