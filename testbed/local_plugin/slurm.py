"""The local plugin's optional real batch queue: a Slurm cluster (Debian's ``slurm-wlm``, started
by :mod:`testbed.slurm`) that queues, starts, cancels and records each pod's job.

With ``--slurm-conf`` the plugin submits every pod as a real ``sbatch`` job carrying the pod's
``slurm-job.vk.io/flags`` (partition, ``--gres=gpu:N``, time, account, as the interLink Slurm
plugin does) plus its CPU and memory limits. The batch script only holds the allocation: the
plugin starts each container inside it as a job step (``srun --jobid=J --overlap``), so Slurm
decides when the pod runs (PENDING with Slurm's reason, RUNNING, COMPLETED/FAILED/CANCELLED),
which GPUs it gets (``CUDA_VISIBLE_DEVICES`` from the gres allocation) and kills its processes on
``scancel``. What stays fake is the rest of a site: no container runtime, no image.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intertwin_hub.sites import quantity_bytes

# The batch script: hold the allocation until the plugin writes the pod's overall exit code
# (all containers ended) into job.done, then end with it (COMPLETED for 0, FAILED otherwise).
HOLD_SCRIPT = """#!/bin/sh
# intertwin-hub testbed: holds this Slurm allocation while the pod's containers run as steps
while [ ! -e "$1/job.done" ]; do sleep 1; done
exit "$(cat "$1/job.done")"
"""

# squeue/scontrol job states after which the job will not run (any more)
ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
    "REVOKED",
    "SPECIAL_EXIT",
}

# the flags a pod may pass to sbatch through slurm-job.vk.io/flags; the rest are the plugin's
ALLOWED_FLAGS = (
    "--partition",
    "-p",
    "--gres",
    "--time",
    "-t",
    "--account",
    "-A",
    "--qos",
    "--constraint",
    "-C",
    "--nodes",
    "-N",
    "--ntasks",
    "-n",
    "--gpus",
    "-G",
)

STATE_CACHE_SECONDS = 0.5


class SubmitError(Exception):
    """sbatch refused the job; the message is Slurm's own sentence."""


@dataclass
class SlurmJobState:
    state: str
    reason: str


def pod_flags(annotation: str) -> list[str]:
    """The sbatch flags of ``slurm-job.vk.io/flags``, refusing any the plugin sets itself
    (``--wrap``, ``--output``, ``--chdir``...) so a pod cannot redirect the job's files."""
    try:
        words = shlex.split(annotation)
    except ValueError as e:
        raise SubmitError(f"slurm-job.vk.io/flags cannot be parsed: {e}") from None
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name = word.split("=", 1)[0]
        if name not in ALLOWED_FLAGS:
            raise SubmitError(
                f"slurm-job.vk.io/flags: {word!r} is not allowed here "
                f"(allowed: {', '.join(ALLOWED_FLAGS)})"
            )
        if "=" in word:
            out.append(word)
            i += 1
        elif i + 1 < len(words):
            out += [word, words[i + 1]]
            i += 2
        else:
            raise SubmitError(f"slurm-job.vk.io/flags: {word} needs a value")
    return out


def _cpus(value: Any) -> float:
    """A Kubernetes CPU quantity ("4", "500m") in CPUs; 0 when absent or malformed."""
    text = str(value or "").strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return 0.0


def memory_mib(value: Any) -> int:
    """A Kubernetes memory quantity ("16Gi", "64G", "512Mi") in MiB, rounded up; 0 when absent
    or malformed."""
    try:
        return math.ceil(quantity_bytes(str(value).strip()) / 2**20) if value else 0
    except (KeyError, ValueError):
        return 0


def pod_limits(pod: dict[str, Any]) -> tuple[int, int]:
    """(CPUs, memory in MiB) the pod's main containers ask for together: limits, else requests,
    rounded up, as the interLink Slurm plugin turns them into --cpus-per-task and --mem."""
    cpus = 0.0
    mem = 0
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        res = ctr.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        cpus += _cpus(limits.get("cpu", requests.get("cpu")))
        mem += memory_mib(limits.get("memory", requests.get("memory")))
    return math.ceil(cpus), mem


class Slurm:
    """sbatch, squeue, srun and scancel against one cluster (``SLURM_CONF``)."""

    def __init__(self, conf: Path) -> None:
        self.conf = conf
        self.env = dict(os.environ, SLURM_CONF=str(conf))
        self._states: dict[str, SlurmJobState] = {}
        self._states_at = 0.0

    def run(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            # slurmctld not answering: callers treat it as any failed command
            return subprocess.CompletedProcess(
                argv, 124, "", f"{argv[0]}: error: Slurm did not answer within {timeout:.0f} s"
            )

    def submit(
        self,
        pod_dir: Path,
        name: str,
        flags: list[str],
        cpus: int,
        mem_mib: int,
        begin_seconds: float,
    ) -> str:
        """Submit the pod's holding job; return Slurm's job id."""
        script = pod_dir / "job.sh"
        script.write_text(HOLD_SCRIPT)
        script.chmod(0o700)
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--chdir={pod_dir}",
            f"--output={pod_dir}/slurm-%j.out",
            *flags,
        ]
        if cpus > 0:
            argv.append(f"--cpus-per-task={cpus}")
        if mem_mib > 0:
            argv.append(f"--mem={mem_mib}M")
        if begin_seconds > 0:
            argv.append(f"--begin=now+{max(1, round(begin_seconds))}")
        r = self.run(*argv, str(script), str(pod_dir))
        if r.returncode != 0:
            lines = [
                ln.removeprefix("sbatch: error: ").strip()
                for ln in r.stderr.splitlines()
                if ln.strip()
            ]
            raise SubmitError("; ".join(lines) or f"sbatch exited with {r.returncode}")
        jid = r.stdout.strip().split(";")[0]
        if not jid.isdigit():
            raise SubmitError(f"sbatch answered {r.stdout.strip()!r}, not a job id")
        self._states_at = 0.0
        return jid

    def states(self, jids: list[str]) -> dict[str, SlurmJobState]:
        """State and reason of these jobs, at most every STATE_CACHE_SECONDS (one squeue)."""
        now = time.monotonic()
        if jids and (
            now - self._states_at > STATE_CACHE_SECONDS or any(j not in self._states for j in jids)
        ):
            r = self.run(
                "squeue",
                "--noheader",
                "--states=all",
                "--format=%i|%T|%r",
                f"--jobs={','.join(jids)}",
            )
            if r.returncode == 0:
                self._states = {}
                for line in r.stdout.splitlines():
                    jid, _, rest = line.partition("|")
                    state, _, reason = rest.partition("|")
                    self._states[jid.strip()] = SlurmJobState(state.strip(), reason.strip())
                self._states_at = now
            for jid in jids:
                if jid not in self._states:
                    # squeue forgets a job MinJobAge after it ended; scontrol may still know it
                    self._states[jid] = self._scontrol_state(jid)
        return {j: self._states[j] for j in jids if j in self._states}

    def _scontrol_state(self, jid: str) -> SlurmJobState:
        r = self.run("scontrol", "--oneliner", "show", "job", jid)
        fields = dict(w.split("=", 1) for w in r.stdout.split() if "=" in w)
        if r.returncode != 0 or "JobState" not in fields:
            return SlurmJobState("UNKNOWN", "the job is not known to Slurm any more")
        return SlurmJobState(fields["JobState"], fields.get("Reason", "None"))

    def step_argv(self, jid: str, workdir: Path) -> list[str]:
        """The srun prefix that runs a container as a step of the pod's job."""
        return [
            "srun",
            f"--jobid={jid}",
            "--overlap",
            "--quiet",
            "--nodes=1",
            "--ntasks=1",
            f"--chdir={workdir}",
            "--kill-on-bad-exit=0",
        ]

    def release(self, pod_dir: Path, exit_code: int) -> None:
        """Let the holding job end: its containers are done."""
        done = pod_dir / "job.done"
        done.with_suffix(".tmp").write_text(f"{exit_code}\n")
        done.with_suffix(".tmp").replace(done)

    def cancel(self, jid: str) -> None:
        self.run("scancel", jid)
        self._states_at = 0.0
