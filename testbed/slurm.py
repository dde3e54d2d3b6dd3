"""A real single-node Slurm cluster for the testbed's Slurm sites (Vega, PSNC): Debian's
``slurm-wlm`` daemons (slurmctld, slurmd) and its accounting (slurmdbd on a MariaDB server of
the run) with everything under the run folder, on 127.0.0.1 with free ports. Optional
(``testbed up --slurm``): the local plugins of the sites whose catalogue entry says
``batch.system: slurm`` then queue their pods here instead of in the emulated queue (see
:mod:`testbed.local_plugin.slurm`).

What is real: sbatch/squeue/scontrol/scancel/srun, the scheduler (PENDING with Slurm's reason,
backfill, partitions from the catalogue, ``--gres=gpu:N`` against the node's GPUs, ``--begin``),
job steps and their signals, and the accounting: slurmdbd stores every job and step in MariaDB,
``jobacct_gather/linux`` measures the steps' CPU time and memory, so ``sacct`` answers as at a
site (:meth:`SlurmCluster.sacct_argv`); the job completion log (``jobcomp/filetxt``) is kept too.
What is not: the node is this machine, declared with the site's size
(``SlurmdParameters=config_overrides``); its GPUs are device nodes that point at ``/dev/null``
(Slurm only hands out their indices); authentication is ``auth/none``, for loopback only; every
daemon, MariaDB included, runs as root (slurmd must, to start steps as the job's user).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from intertwin_hub.sites import Site

from .local_plugin.slurm import Slurm, memory_mib
from .procs import Supervisor, TestbedError, free_port, log_tail, wait_until

NODE = "testbed-slurm"
CLUSTER = "intertwin-testbed"
DAEMONS = ("slurmctld", "slurmd", "slurmdbd")
# MariaDB's server and client and the installer of its system tables (Debian's mariadb-server-core
# and mariadb-client-core)
MARIADB = ("mariadbd", "mariadb-install-db", "mariadb")
ACCT_DB = "slurm_acct_db"
# the Supervisor names of the cluster's processes, in the order they are stopped: the daemons
# that write accounting records before slurmdbd, slurmdbd before its database
STOP_ORDER = ("slurmd", "slurmctld", "slurmdbd", "mariadb")
# the fields of `sacct` that measure a job (https://slurm.schedmd.com/sacct.html#OPT_format)
SACCT_FIELDS = (
    "JobID",
    "JobName",
    "User",
    "Account",
    "Partition",
    "State",
    "ExitCode",
    "Submit",
    "Start",
    "End",
    "ElapsedRaw",
    "TotalCPU",
    "MaxRSS",
    "AllocTRES",
)


@dataclass
class SlurmCluster:
    conf: str
    partitions: list[str]
    gpus: int
    jobcomp: str
    slurmdbd_port: int = 0
    mariadb_socket: str = ""

    def env(self) -> dict[str, str]:
        """The environment of Slurm's commands (sbatch, squeue, sacct...) for this cluster."""
        return dict(os.environ, SLURM_CONF=self.conf)

    def sacct_argv(self, *args: str, fields: Iterable[str] = SACCT_FIELDS) -> list[str]:
        """``sacct`` on this cluster's accounting, to run with :meth:`env`: every user's jobs,
        one ``|``-separated line per job and step (``--parsable2``, no header), the ``fields``
        in that order, then ``args`` (e.g. ``-j 7`` or ``--starttime=2026-01-01``; without
        either, sacct lists only the jobs since midnight). Times are local, TotalCPU is
        ``[D-][HH:]MM:SS[.mmm]`` (``00:03.073``), MaxRSS has a K/M/G suffix and is only on the
        steps' lines; slurmdbd stores a job's records a moment after Slurm ends it."""
        return [
            "sacct",
            "--allusers",
            "--parsable2",
            "--noheader",
            f"--format={','.join(fields)}",
            *args,
        ]

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
    dbd_port: int,
) -> str:
    """slurm.conf of the testbed cluster (pure: the text only)."""
    lines = [
        "# intertwin-hub testbed: one node standing for the Slurm sites' GPU nodes",
        f"ClusterName={CLUSTER}",
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
        # jobs and steps are recorded by slurmdbd (sacct); GPUs are an accounted TRES
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=127.0.0.1",
        f"AccountingStoragePort={dbd_port}",
        "AccountingStorageTRES=gres/gpu",
        # each step's CPU time and memory (TotalCPU, MaxRSS) from /proc, sampled every second
        # (default 30 s) so that the testbed's short steps have a MaxRSS too
        "JobAcctGatherType=jobacct_gather/linux",
        "JobAcctGatherFrequency=task=1",
        f"NodeName={NODE} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 "
        f"CPUs={cpus} RealMemory={mem_mib} Gres=gpu:{gpus} State=UNKNOWN",
    ]
    lines += [f"PartitionName={p} Nodes={NODE} MaxTime=INFINITE State=UP" for p in partitions]
    return "\n".join(lines) + "\n"


def slurmdbd_conf(folder: Path, dbd_port: int, db_port: int, password: str) -> str:
    """slurmdbd.conf of the testbed cluster (pure: the text only). It holds the database
    password: slurmdbd insists the file be readable by SlurmUser only (mode 600)."""
    lines = [
        "# intertwin-hub testbed: the accounting of the testbed's Slurm cluster",
        "AuthType=auth/none",
        "DbdHost=localhost",
        "DbdAddr=127.0.0.1",
        f"DbdPort={dbd_port}",
        "SlurmUser=root",
        f"PidFile={folder}/slurmdbd.pid",
        "StorageType=accounting_storage/mysql",
        "StorageHost=127.0.0.1",
        f"StoragePort={db_port}",
        "StorageUser=slurm",
        f"StoragePass={password}",
        f"StorageLoc={ACCT_DB}",
    ]
    return "\n".join(lines) + "\n"


def mariadb_options(datadir: Path) -> list[str]:
    """The options of the run's MariaDB server (also given to the installer, which bootstraps
    one): no option file of the machine's is read; InnoDB's buffer pool and log are small (a
    testbed records a few jobs; slurmdbd logs that they are below the values it recommends)."""
    return [
        "--no-defaults",
        f"--datadir={datadir}",
        # the testbed runs as root, and mariadbd refuses to unless told so
        "--user=root",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=8M",
        # as https://slurm.schedmd.com/accounting.html recommends (MariaDB's default is 50 s)
        "--innodb-lock-wait-timeout=900",
    ]


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
        d for d in (*DAEMONS, "sbatch", "srun", "sacct", "sacctmgr", *MARIADB) if _which(d) is None
    ]
    if missing:
        raise TestbedError(
            f"Slurm or its accounting is not installed ({', '.join(missing)} missing): "
            "apt-get install slurm-wlm slurmdbd mariadb-server-core mariadb-client-core "
            "(scripts/setup.sh does)"
        )


def _which(name: str) -> str | None:
    """The path of a command, also in /usr/sbin (not on every user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


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
    accounts = sorted({s.batch.account for s in sites if s.batch and s.batch.account})
    # Slurm's gres/gpu needs a device file per GPU: character devices that are /dev/null
    for i in range(gpus):
        dev = folder / "dev" / f"gpu{i}"
        if not dev.exists():
            os.mknod(dev, 0o600 | 0o020000, os.makedev(1, 3))
    dbd_port = free_port()
    conf = folder / "slurm.conf"
    conf.write_text(
        slurm_conf(folder, partitions, gpus, cpus, mem_mib, free_port(), free_port(), dbd_port)
    )
    (folder / "gres.conf").write_text(
        f"NodeName={NODE} Name=gpu File={folder}/dev/gpu[0-{max(gpus - 1, 0)}]\n" if gpus else ""
    )
    slurm = Slurm(conf)
    env = {"SLURM_CONF": str(conf)}
    db_socket, db_port = start_mariadb(sup, folder)
    start_slurmdbd(sup, slurm, folder, dbd_port, db_socket, db_port)
    register_accounts(slurm, accounts)
    progress(f"Slurm accounting ready: slurmdbd on 127.0.0.1:{dbd_port}, MariaDB {db_socket}")
    # -i: ignore state left by an earlier run of this folder
    ctld = sup.start("slurmctld", ["slurmctld", "-D", "-i"], env=env, cwd=folder)
    wait_until(
        lambda: slurm.run("scontrol", "ping", timeout=10).returncode == 0, "slurmctld", 30, ctld
    )
    slurmd = sup.start("slurmd", ["slurmd", "-D", "-N", NODE], env=env, cwd=folder)
    wait_until(lambda: node_state(slurm) == "idle", f"Slurm node {NODE} idle", 30, slurmd)
    progress(f"Slurm ready: partitions {', '.join(partitions)}, {gpus} GPUs on node {NODE}")
    return SlurmCluster(
        str(conf), partitions, gpus, str(folder / "jobcomp.txt"), dbd_port, str(db_socket)
    )


def start_mariadb(sup: Supervisor, folder: Path) -> tuple[Path, int]:
    """A MariaDB server of this run for slurmdbd: a new data folder under ``folder`` (the
    cluster keeps no state across runs, as slurmctld -i), its own socket, a free port on
    127.0.0.1; root logs in through the socket only (unix_socket authentication), slurmdbd as
    the user ``slurm`` with a password, allowed its database alone. Returns (socket, port)."""
    datadir = folder / "mariadb"
    shutil.rmtree(datadir, ignore_errors=True)
    datadir.mkdir()
    sock = folder / "mariadb.sock"
    if len(str(sock).encode()) > 107:  # sun_path holds 108 bytes with the final NUL
        raise TestbedError(f"MariaDB's socket path is too long for a Unix socket: {sock}")
    opts = mariadb_options(datadir)
    log = sup.log_dir / "mariadb-install-db.log"
    with open(log, "wb") as out:
        r = subprocess.run(
            [
                "mariadb-install-db",
                *opts,
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            check=False,
        )
    if r.returncode != 0:
        raise TestbedError(
            f"mariadb-install-db failed ({r.returncode}). Last log lines of {log}:\n{log_tail(log)}"
        )
    port = free_port()
    proc = sup.start(
        "mariadb",
        [
            _which("mariadbd") or "mariadbd",
            *opts,
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={folder}/mariadb.pid",
        ],
        cwd=folder,
    )
    wait_until(lambda: _sql(sock, "SELECT 1").returncode == 0, "MariaDB", 60, proc)
    return sock, port


def _sql(sock: Path, statements: str) -> subprocess.CompletedProcess[str]:
    """Run SQL as MariaDB's root through the server's socket."""
    return subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={sock}", "--user=root", "--batch"],
        input=statements,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def start_slurmdbd(
    sup: Supervisor,
    slurm: Slurm,
    folder: Path,
    dbd_port: int,
    db_socket: Path,
    db_port: int,
) -> None:
    """slurmdbd of this run, storing into the run's MariaDB as the database user ``slurm``
    (slurmdbd creates its tables on first start)."""
    password = secrets.token_urlsafe(18)
    r = _sql(
        db_socket,
        f"CREATE DATABASE {ACCT_DB};\n"
        f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL ON {ACCT_DB}.* TO 'slurm'@'127.0.0.1';\n",
    )
    if r.returncode != 0:
        raise TestbedError(f"creating slurmdbd's database and user failed: {r.stderr.strip()}")
    dbd_conf = folder / "slurmdbd.conf"
    dbd_conf.unlink(missing_ok=True)
    fd = os.open(dbd_conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(slurmdbd_conf(folder, dbd_port, db_port, password))
    # slurmdbd reads the slurmdbd.conf beside SLURM_CONF's slurm.conf
    proc = sup.start(
        "slurmdbd", [_which("slurmdbd") or "slurmdbd", "-D"], env=slurm.env, cwd=folder
    )
    wait_until(
        lambda: slurm.run("sacctmgr", "--noheader", "list", "cluster", timeout=10).returncode == 0,
        "slurmdbd",
        60,
        proc,
    )


def register_accounts(slurm: Slurm, accounts: list[str]) -> None:
    """Register the cluster, the sites' accounts and root (who submits the testbed's jobs) in
    slurmdbd, as a site's administrator does with ``sacctmgr``."""
    commands = [
        ["add", "cluster", CLUSTER],
        *(
            [
                "add",
                "account",
                a,
                f"Cluster={CLUSTER}",
                f"Description={a}",
                "Organization=intertwin",
            ]
            for a in accounts
        ),
        [
            "add",
            "user",
            "root",
            # the cluster's root account is there from `add cluster` on
            f"Account={','.join(accounts) or 'root'}",
            f"Cluster={CLUSTER}",
        ],
    ]
    for argv in commands:
        r = slurm.run("sacctmgr", "-i", *argv)
        if r.returncode != 0:
            raise TestbedError(
                f"sacctmgr {' '.join(argv)} failed ({r.returncode}): "
                f"{(r.stderr or r.stdout).strip()}"
            )


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
