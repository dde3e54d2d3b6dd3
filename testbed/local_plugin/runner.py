"""Job management of the local interLink plugin: a FAKE batch system that runs each pod's
containers as local processes (see the package docstring for what is and is not real).

Everything a job needs survives a restart of the plugin: it lives under the root folder.

    <root>/next-job-id                 the site-style batch job id counter (1001, 1002, ...)
    <root>/claims/<ns>/<claim>/        stand-ins for persistentVolumeClaims, kept across pods
    <root>/<ns>-<uid>/                 one folder per pod ("job")
        job.json                       uid, name, namespace, JID, state, pids, start times
        request.json                   the create body (pod, ConfigMaps, Secrets), mode 0600
        volumes/<volume>/              ConfigMaps, Secrets, projected maps as files; emptyDirs
        rootfs/<mountPath>             symlink to volumes/<volume>[/<subPath>] (see below)
        home/                          $HOME of the pod's processes
        <ctr>.out                      stdout+stderr of the container, as written
        <ctr>.log                      the same, each line prefixed with an RFC3339 timestamp
        <ctr>.status                   the exit code, written when the command exits
        <ctr>.wrapper                  stderr of the wrapper shell itself (normally empty)

Two stand-ins replace what a container runtime would give a real pod, because all
processes here share one filesystem and one network namespace:

* Mounts: a volumeMount at ``/etc/x`` becomes the symlink ``rootfs/etc/x`` (exported as
  ``INTERLINK_ROOTFS``), and every env value and argument that starts with a mount path is
  rewritten to the re-rooted path. That is the stand-in for a bind mount.
* Addresses: the pod's IP is the ``interlink.eu/pod-ip`` annotation (set by the virtual
  kubelet in pod-vpn mode; default 127.0.0.1), exported as ``POD_IP``. The wildcard bind
  address ``0.0.0.0`` in arguments and env values is rewritten to the pod IP, so each pod
  listens on its own address. That is the stand-in for the pod's own network namespace.
  (``[::]`` is not rewritten; a CIDR such as ``0.0.0.0/0`` is left alone.)

More of the fake:

* argv is what a container runtime would run, with K8s ``$(VAR)`` expansion: ``command`` +
  ``args``, or without ``command`` the image's ENTRYPOINT + (``args`` or its CMD), from the
  plugin's image map (:mod:`testbed.local_plugin.images`: the Jupyter docker-stacks images run
  a stand-in of their ``start.sh``). The executable is looked up in the plugin's own PATH
  (this machine plays the image). For an image not in the map, no ``command`` means the
  exec-style entrypoint of Jupyter images (``tini -g --``), which runs ``args`` as given (this
  is how KubeSpawner starts notebooks); with neither command nor args the container ends with
  "ImageEntrypointUnsupported".
* Env: the plugin's PATH, HOME=<pod>/home, HOSTNAME=<pod name>, then envFrom, then env
  (literal values, secretKeyRef/configMapKeyRef from the objects sent with the pod, the
  fieldRefs the VK left unresolved), then POD_IP, INTERLINK_ROOTFS, INTERLINK_SITE,
  INTERLINK_JOB_ID, PWD and, for GPU containers, CUDA_VISIBLE_DEVICES.
* GPUs (``--gpus N``) are indices only, no hardware: a pod whose ``nvidia.com/gpu`` limits
  exceed the free ones ends with "InsufficientGPU" instead of waiting.
* hostPath volumes are the real path; persistentVolumeClaims are folders under
  ``<root>/claims`` kept across pods; other volume types are empty folders.
* Containers are never restarted (restartPolicy, probes and lifecycle hooks are ignored), so
  ``Previous`` logs do not exist. A partial last line gets its timestamp when it completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..procs import alive, group_members, proc_stat
from .images import container_argv
from .logs import rfc3339
from .podspec import (
    DEFAULT_POD_IP,
    GPU_RESOURCE,
    ConfigError,
    PodObjects,
    configmap_items,
    container_env,
    expand_k8s_vars,
    field_ref,
    gpu_limit,
    pod_gpu_need,
    reroot,
    rewrite_wildcard,
    safe_relpath,
    secret_items,
)
from .records import (
    ACTIVE_STATES,
    CTR_RUNNING,
    DELETED,
    DELETING,
    FINISHED,
    INIT,
    QUEUED,
    RUNNING,
    TERMINATED,
    WAITING,
    ContainerRecord,
    Job,
    atomic_write,
)
from .slurm import ENDED, Slurm, SlurmJobState, SubmitError, pod_flags, pod_limits

log = logging.getLogger("testbed.local_plugin")

JSON = dict[str, Any]

POD_IP_ANNOTATION = "interlink.eu/pod-ip"
SLURM_FLAGS_ANNOTATION = "slurm-job.vk.io/flags"
KILLED_OUTSIDE = (
    "the container's processes were killed outside the plugin; no exit code was recorded"
)
FIRST_JOB_ID = 1001
MAX_GRACE_SECONDS = 5.0
DEFAULT_GRACE_SECONDS = 30.0
# after a container's main process exited, what is left of its process group (its orphaned
# children, the log pump) gets this long before it is killed, like a runtime tearing down
# the container's PID namespace
TEARDOWN_SECONDS = 1.0
# K8s' exit code for a container that could not be started
START_FAILURE_EXIT_CODE = 128
# what may become part of a file name: pod uids, namespaces, container names
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
# the log pump, run by the wrapper below as a script of its own
PUMP = Path(__file__).with_name("pump.py")


class RequestError(Exception):
    """A request the plugin cannot serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# --------------------------------------------------------------------------------------------
# the per-container wrapper

# Runs in its own session (process group = the wrapper's pid). The command's stdout+stderr go
# through a pipe into the log pump (pump.py) writing <ctr>.out and <ctr>.log; the exit code goes
# to <ctr>.status as soon as the command exits, like the Slurm plugin's run-<ctr>.status.
# The shells trap TERM/INT/HUP with a no-op handler (reset to default on exec, so the command
# still gets the signals) and the pump ignores them, so a SIGTERM to the whole group reaches
# the command, and its exit code and last words are still recorded.
WRAPPER_SCRIPT = r"""
trap : TERM INT HUP
p=$1; py=$2; pump=$3; shift 3
{ trap : TERM INT HUP
  "$@" </dev/null
  echo $? >"$p.status.tmp" && mv -f "$p.status.tmp" "$p.status"
} 2>&1 | "$py" -I "$pump" "$p.out" "$p.log"
"""


# --------------------------------------------------------------------------------------------
# the runner


class Runner:
    """All jobs of one fake site. Synchronous except for :meth:`delete`, which waits for
    processes to go; :meth:`tick` advances every job (queue → init containers → containers)
    and is called periodically and before every answer."""

    def __init__(
        self,
        root: Path,
        site: str,
        queue_seconds: float = 0.0,
        gpus: int | None = None,
        slurm: Slurm | None = None,
    ) -> None:
        self.root = root
        self.site = site
        self.queue_seconds = max(0.0, queue_seconds)
        self.gpus = gpus
        self.slurm = slurm
        self._slurm_states: dict[str, SlurmJobState] = {}
        self.jobs: dict[str, Job] = {}
        self._requests: dict[str, JSON] = {}
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        root.mkdir(parents=True, exist_ok=True)
        self._load()

    # ---- persistence

    def pod_dir(self, job: Job) -> Path:
        return self.root / f"{job.namespace}-{job.uid}"

    def _load(self) -> None:
        for f in sorted(self.root.glob("*/job.json")):
            try:
                job = Job.from_json(json.loads(f.read_text()))
            except (OSError, ValueError, TypeError) as e:
                log.error("cannot load %s: %s", f, e)
                continue
            self.jobs[job.uid] = job
            log.info(
                "re-attached job %s (pod %s/%s, %s)", job.jid, job.namespace, job.name, job.state
            )
            if job.state == DELETING:
                # the previous plugin stopped in the middle of deleting it: finish that now
                for rec in job.containers:
                    if rec.pid is not None and (rec.state == CTR_RUNNING or rec.teardown_at):
                        signal_group(rec.pid, signal.SIGKILL)
                self._mark_deleted(job, killed=True)

    def save(self, job: Job) -> None:
        atomic_write(self.pod_dir(job) / "job.json", json.dumps(asdict(job), indent=1).encode())

    def request(self, job: Job) -> JSON:
        if job.uid not in self._requests:
            self._requests[job.uid] = json.loads((self.pod_dir(job) / "request.json").read_text())
        return self._requests[job.uid]

    def _next_jid(self) -> str:
        counter = self.root / "next-job-id"
        try:
            jid = int(counter.read_text().strip())
        except (OSError, ValueError):
            jid = FIRST_JOB_ID
        atomic_write(counter, f"{jid + 1}\n".encode())
        return str(jid)

    # ---- lookups

    def find(self, uid: str = "", namespace: str = "", name: str = "") -> Job | None:
        if uid:
            return self.jobs.get(uid)
        live = [j for j in self.jobs.values() if j.namespace == namespace and j.name == name]
        # several pods of one name over time: the newest one
        return max(live, key=lambda j: j.submitted_at, default=None)

    # ---- create

    def create(self, req: JSON) -> Job:
        pod = req.get("pod")
        if not isinstance(pod, dict):
            raise RequestError(400, "BadRequest", 'the create body has no "pod" object')
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or "default")
        if not uid or not name:
            raise RequestError(400, "BadRequest", "the pod has no metadata.uid or metadata.name")
        if not _NAME.fullmatch(uid) or not _NAME.fullmatch(namespace):
            raise RequestError(
                400, "BadRequest", f"unusable pod uid {uid!r} or namespace {namespace!r}"
            )
        ctrs = spec.get("containers")
        inits = spec.get("initContainers") or []
        if not isinstance(ctrs, list) or not ctrs or not isinstance(inits, list):
            raise RequestError(400, "BadRequest", "the pod has no spec.containers list")
        names = [c.get("name") if isinstance(c, dict) else None for c in inits + ctrs]
        if not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names) or len(
            set(names)
        ) != len(names):
            raise RequestError(
                400, "BadRequest", f"container names must be unique DNS labels, got {names}"
            )
        if uid in self.jobs:
            log.info(
                "create of pod %s/%s again: already job %s", namespace, name, self.jobs[uid].jid
            )
            return self.jobs[uid]
        annotations = meta.get("annotations") or {}
        pod_ip = str(annotations.get(POD_IP_ANNOTATION) or DEFAULT_POD_IP)
        now = time.time()
        # with Slurm the queue is Slurm's (queue_seconds becomes sbatch --begin) and so is the id
        job = Job(
            uid=uid,
            name=name,
            namespace=namespace,
            jid="" if self.slurm else self._next_jid(),
            pod_ip=pod_ip,
            submitted_at=now,
            queue_until=now if self.slurm else now + self.queue_seconds,
        )
        job.containers = [ContainerRecord(str(c["name"]), True) for c in inits] + [
            ContainerRecord(str(c["name"]), False) for c in ctrs
        ]
        pdir = self.pod_dir(job)
        pdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("volumes", "rootfs", "home"):
            (pdir / sub).mkdir(exist_ok=True)
        atomic_write(pdir / "request.json", json.dumps(req).encode(), 0o600)
        self._requests[uid] = req
        try:
            self._prepare_volumes(job, pod, PodObjects.from_request(req))
        except (ConfigError, OSError) as e:
            job.config_error = str(e)
            log.warning("pod %s/%s: %s", namespace, name, e)
        if self.slurm is not None:
            self._submit(job, pod, annotations)
        self.jobs[uid] = job
        self.save(job)
        if req.get("jobScript"):
            log.info(
                "pod %s/%s: ignoring the jobScript (the local plugin runs the pod spec)",
                namespace,
                name,
            )
        log.info(
            "submitted pod %s/%s as job %s at %s (pod IP %s)",
            namespace,
            name,
            job.jid,
            self.site,
            pod_ip,
        )
        self.tick()
        return job

    def _submit(self, job: Job, pod: JSON, annotations: JSON) -> None:
        assert self.slurm is not None
        try:
            flags = pod_flags(str(annotations.get(SLURM_FLAGS_ANNOTATION) or ""))
            cpus, mem_mib = pod_limits(pod)
            job.jid = self.slurm.submit(
                self.pod_dir(job),
                f"{job.namespace}-{job.name}",
                flags,
                cpus,
                mem_mib,
                self.queue_seconds,
            )
        except SubmitError as e:
            job.jid = "none"
            self._never_started(
                job,
                "SlurmSubmitFailed",
                f"{self.site} refused the job: {e}",
                START_FAILURE_EXIT_CODE,
            )
            self._finish(job)

    def _prepare_volumes(self, job: Job, pod: JSON, objs: PodObjects) -> None:
        pdir = self.pod_dir(job)
        vols = pdir / "volumes"
        spec = pod.get("spec") or {}
        for vol in spec.get("volumes") or []:
            vname = str(vol.get("name", ""))
            if not safe_relpath(vname) or "/" in vname:
                continue
            target = vols / vname
            if vol.get("configMap") is not None:
                src = vol["configMap"]
                cm = objs.configmaps.get(str(src.get("name", "")))
                self._write_files(
                    target,
                    configmap_items(cm) if cm else {},
                    src.get("items"),
                    0o644,
                    f"ConfigMap {src.get('name')!r}",
                    cm is None,
                )
            elif vol.get("secret") is not None:
                src = vol["secret"]
                sec = objs.secrets.get(str(src.get("secretName", "")))
                self._write_files(
                    target,
                    secret_items(sec) if sec else {},
                    src.get("items"),
                    0o600,
                    f"Secret {src.get('secretName')!r}",
                    sec is None,
                )
            elif vol.get("projected") is not None:
                pm = objs.projected.get(vname)
                self._write_files(
                    target,
                    configmap_items(pm) if pm else {},
                    None,
                    0o600,
                    f"projected volume {vname!r}",
                    pm is None,
                )
            elif vol.get("downwardAPI") is not None:
                files = {}
                for item in vol["downwardAPI"].get("items") or []:
                    ref = item.get("fieldRef") or {}
                    value = field_ref(str(ref.get("fieldPath", "")), pod, job.pod_ip)
                    if value is not None:
                        files[str(item.get("path", ""))] = value.encode()
                self._write_files(target, files, None, 0o644, "downwardAPI", False)
            elif vol.get("hostPath") is not None:
                # this machine is the "host": the volume is the real path
                host = Path(str(vol["hostPath"].get("path", "/")))
                if vol["hostPath"].get("type") in ("DirectoryOrCreate",):
                    host.mkdir(parents=True, exist_ok=True)
                _replace_symlink(target, host)
            elif vol.get("persistentVolumeClaim") is not None:
                # a claim outlives its pods: one folder per claim under <root>/claims
                claim = str(vol["persistentVolumeClaim"].get("claimName", vname))
                cdir = self.root / "claims" / job.namespace / (safe_relpath(claim) or vname)
                cdir.mkdir(parents=True, exist_ok=True)
                _replace_symlink(target, cdir)
            else:
                if vol.get("emptyDir") is None:
                    log.warning(
                        "pod %s: volume %s of an unsupported type is an empty folder",
                        job.name,
                        vname,
                    )
                target.mkdir(exist_ok=True)
        rootfs = pdir / "rootfs"
        links: dict[Path, Path] = {}
        for ctr in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for vm in ctr.get("volumeMounts") or []:
                mp = str(vm.get("mountPath", "")).strip("/")
                if not mp or not safe_relpath(mp):
                    continue
                target = vols / str(vm.get("name", ""))
                sub = safe_relpath(str(vm.get("subPath") or ""))
                if sub:
                    target = target / sub
                    if not target.exists():
                        target.mkdir(parents=True, exist_ok=True)
                elif not target.exists():
                    target.mkdir(parents=True, exist_ok=True)
                link = rootfs / mp
                if link in links:
                    if links[link] != target:
                        log.warning(
                            "pod %s: %s is mounted from two volumes; the local plugin "
                            "shares one rootfs per pod and keeps %s",
                            job.name,
                            vm.get("mountPath"),
                            links[link],
                        )
                    continue
                link.parent.mkdir(parents=True, exist_ok=True)
                _replace_symlink(link, target)
                links[link] = target

    @staticmethod
    def _write_files(
        target: Path, files: Mapping[str, bytes], items: Any, mode: int, what: str, missing: bool
    ) -> None:
        target.mkdir(parents=True, exist_ok=True)
        if missing:
            log.warning("%s was not sent with the pod: its volume is empty", what)
        if items:
            chosen = {}
            for item in items:
                key = str(item.get("key", ""))
                if key in files:
                    chosen[str(item.get("path") or key)] = files[key]
            files = chosen
        for key, data in files.items():
            rel = safe_relpath(key)
            if rel is None:
                log.warning("%s: skipping unsafe file name %r", what, key)
                continue
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, mode)

    # ---- the state machine

    def tick(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]
        if self.slurm is not None:
            # one squeue for every live job of this site (cached for a moment inside)
            live = [
                j.jid
                for j in self.jobs.values()
                if j.jid.isdigit() and (j.state in (QUEUED, INIT, RUNNING) or j.slurm_state is None)
            ]
            self._slurm_states = self.slurm.states(live) if live else {}
        for job in list(self.jobs.values()):
            try:
                if self._advance(job):
                    self.save(job)
            except Exception:
                log.exception(
                    "job %s (pod %s/%s): internal error", job.jid, job.namespace, job.name
                )

    def _advance(self, job: Job) -> bool:
        changed = self._teardown(job) | self._slurm_ended(job)
        if job.state in (FINISHED, DELETING, DELETED):
            return changed
        for rec in job.containers:
            if rec.state == CTR_RUNNING:
                changed |= self._refresh(job, rec)
        now = time.time()
        if job.state == QUEUED and self.slurm is not None:
            st = self._slurm_states.get(job.jid)
            if st is None:
                return changed
            if st.state in ENDED:
                self._never_started(
                    job,
                    f"Slurm{st.state.title().replace('_', '')}",
                    f"Slurm job {job.jid} ended {st.state} before the pod started ({st.reason})",
                    START_FAILURE_EXIT_CODE,
                )
                self._finish(job)
                return True
            if st.state != "RUNNING":
                if job.batch_reason != st.reason:
                    job.batch_reason = st.reason
                    changed = True
                return changed
            # Slurm allocated the node and its GPUs: srun hands them to each step
            job.state, job.started_at, job.batch_reason = INIT, now, None
            log.info("Slurm job %s (pod %s/%s) is running", job.jid, job.namespace, job.name)
            changed = True
        if job.state == QUEUED:
            if now < job.queue_until:
                return changed
            if not self._allocate_gpus(job):
                return True
            job.state, job.started_at = INIT, now
            log.info("job %s (pod %s/%s) leaves the queue", job.jid, job.namespace, job.name)
            changed = True
        if job.state == INIT:
            while True:
                failed = next(
                    (r for r in job.inits if r.state == TERMINATED and r.exit_code != 0), None
                )
                if failed is not None:
                    self._never_started(
                        job,
                        "InitContainerFailed",
                        f"not started: init container {failed.name} failed "
                        f"with exit code {failed.exit_code}",
                        failed.exit_code or 1,
                    )
                    self._finish(job)
                    return True
                nxt = next((r for r in job.inits if r.state != TERMINATED), None)
                if nxt is None:
                    job.state = RUNNING
                    changed = True
                    break
                if nxt.state == CTR_RUNNING:
                    return changed
                self._start(job, nxt)
                changed = True
        if job.state == RUNNING:
            for rec in job.mains:
                if rec.state == WAITING:
                    self._start(job, rec)
                    changed = True
            if all(r.state == TERMINATED for r in job.mains):
                self._finish(job)
                changed = True
        return changed

    def _slurm_ended(self, job: Job) -> bool:
        """Record the Slurm job's final state; when the site ended it (scancel, time limit,
        node failure) the containers it killed say so."""
        if self.slurm is None or job.slurm_state is not None or not job.jid.isdigit():
            return False
        st = self._slurm_states.get(job.jid)
        if st is None or (st.state not in ENDED and st.state != "UNKNOWN"):
            return False
        if any(rec.state == CTR_RUNNING for rec in job.containers):
            return False  # Slurm is done with the job; the plugin sees its steps end next
        job.slurm_state = st.state
        if st.state not in ("COMPLETED", "FAILED", "UNKNOWN"):
            # COMPLETED/FAILED: the plugin released the job itself when the containers ended
            for rec in job.containers:
                if (
                    rec.state == TERMINATED
                    and rec.exit_code
                    and rec.message in (None, KILLED_OUTSIDE)
                ):
                    rec.message = f"Slurm ended job {job.jid}: {st.state}"
        return True

    def _finish(self, job: Job) -> None:
        job.state, job.finished_at = FINISHED, time.time()
        codes = ", ".join(f"{r.name}={r.exit_code}" for r in job.containers)
        if self.slurm is not None and job.jid.isdigit():
            ok = all(r.exit_code == 0 for r in job.mains)
            self.slurm.release(self.pod_dir(job), 0 if ok else 1)
        log.info("job %s (pod %s/%s) finished: %s", job.jid, job.namespace, job.name, codes)

    def _never_started(self, job: Job, reason: str, message: str, code: int) -> None:
        now = time.time()
        for rec in job.containers:
            if rec.state == WAITING:
                rec.state, rec.reason, rec.message = TERMINATED, reason, message
                rec.exit_code, rec.finished_at = code, now

    def _free_gpus(self) -> list[int]:
        used = {g for j in self.jobs.values() if j.state in ACTIVE_STATES for g in j.gpus}
        return [g for g in range(self.gpus or 0) if g not in used]

    def _allocate_gpus(self, job: Job) -> bool:
        need = pod_gpu_need(self.request(job)["pod"])
        if need <= 0:
            return True
        if self.gpus is None:
            log.info(
                "pod %s/%s asks for %d GPUs; this site was started without --gpus, "
                "so GPU limits are ignored",
                job.namespace,
                job.name,
                need,
            )
            return True
        free = self._free_gpus()
        if need > len(free):
            self._never_started(
                job,
                "InsufficientGPU",
                f"the pod asks for {need} {GPU_RESOURCE} but {self.site} has {len(free)} of "
                f"{self.gpus} free (the local plugin does not wait for GPUs)",
                START_FAILURE_EXIT_CODE,
            )
            self._finish(job)
            return False
        job.gpus = free[:need]
        # fake devices: indices for CUDA_VISIBLE_DEVICES, no hardware behind them
        spec = self.request(job)["pod"].get("spec") or {}
        offset = 0
        limits = {
            str(c.get("name")): gpu_limit(c)
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        }
        for rec in job.containers:
            n = limits.get(rec.name, 0)
            if rec.init:
                rec.gpus = job.gpus[:n]
            else:
                rec.gpus = job.gpus[offset : offset + n]
                offset += n
        return True

    def _spec(self, job: Job, rec: ContainerRecord) -> JSON:
        spec = self.request(job)["pod"].get("spec") or {}
        ctrs = spec.get("initContainers" if rec.init else "containers") or []
        return next((c for c in ctrs if c.get("name") == rec.name), {})

    def _fail(
        self,
        job: Job,
        rec: ContainerRecord,
        reason: str,
        message: str,
        code: int = START_FAILURE_EXIT_CODE,
    ) -> None:
        now = time.time()
        rec.state, rec.reason, rec.message = TERMINATED, reason, message
        rec.exit_code, rec.started_at, rec.finished_at = code, None, now
        # like a batch system's own lines in job.out: `kubectl logs` shows why nothing ran
        line = f"[local interLink plugin at {self.site}] {reason}: {message}\n".encode()
        pdir = self.pod_dir(job)
        with open(pdir / f"{rec.name}.out", "ab") as f:
            f.write(line)
        with open(pdir / f"{rec.name}.log", "ab") as f:
            f.write(rfc3339(now).encode() + b" " + line)
        log.warning(
            "job %s (pod %s/%s) container %s: %s: %s",
            job.jid,
            job.namespace,
            job.name,
            rec.name,
            reason,
            message,
        )

    def _start(self, job: Job, rec: ContainerRecord) -> None:
        pod = self.request(job)["pod"]
        ctr = self._spec(job, rec)
        pdir = self.pod_dir(job)
        if job.config_error:
            self._fail(job, rec, "CreateContainerConfigError", job.config_error)
            return
        command = [str(a) for a in ctr.get("command") or []]
        args = [str(a) for a in ctr.get("args") or []]
        argv0 = container_argv(str(ctr.get("image") or ""), command, args)
        if not argv0:
            self._fail(
                job,
                rec,
                "ImageEntrypointUnsupported",
                f"container {rec.name} has neither command nor args: the local plugin "
                f"cannot run the default command of image {ctr.get('image', '')!r} "
                "(images are not pulled here); set the container's command or args",
            )
            return
        rootfs = pdir / "rootfs"
        # without workingDir a process starts in $HOME, as in the Jupyter images (WORKDIR is
        # the home): the pod folder holds the plugin's own files, request.json's Secrets too
        workdir = pdir / "home"
        wd = str(ctr.get("workingDir") or "")
        if wd.startswith("/"):
            workdir = rootfs / wd.strip("/")
        elif wd:
            workdir = pdir / "home" / wd
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail(job, rec, "StartError", f"cannot create workingDir {wd}: {e}")
            return
        mounts = [str(vm.get("mountPath", "")) for vm in ctr.get("volumeMounts") or []]
        base = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(pdir / "home"),
            "HOSTNAME": job.name,
        }
        try:
            env = container_env(
                pod, ctr, PodObjects.from_request(self.request(job)), job.pod_ip, base
            )
        except ConfigError as e:
            self._fail(job, rec, "CreateContainerConfigError", str(e))
            return
        env = {k: rewrite_wildcard(reroot(v, mounts, rootfs), job.pod_ip) for k, v in env.items()}
        env.update(
            {
                "POD_IP": job.pod_ip,
                "INTERLINK_ROOTFS": str(rootfs),
                "INTERLINK_SITE": self.site,
                "INTERLINK_JOB_ID": job.jid,
                # the logical working dir (through the rootfs symlinks), as a shell would set it
                "PWD": str(workdir),
            }
        )
        if rec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in rec.gpus)
        argv = [
            rewrite_wildcard(reroot(expand_k8s_vars(a, env), mounts, rootfs), job.pod_ip)
            for a in argv0
        ]
        exe = argv[0]
        first = argv0[0]
        if exe != first and not os.path.exists(exe) and os.path.exists(first):
            # a program of the "image" (this machine) under a mount path: keep the real one
            exe = first
        if "/" not in exe:
            found = shutil.which(exe, path=os.environ.get("PATH", os.defpath))
            if found is None:
                self._fail(
                    job,
                    rec,
                    "StartError",
                    f"exec: {exe!r}: executable file not found in $PATH of the plugin",
                    127,
                )
                return
            exe = found
        elif not os.access(exe, os.X_OK):
            self._fail(job, rec, "StartError", f"exec: {exe!r}: not an executable file", 126)
            return
        step: list[str] = []
        if self.slurm is not None:
            # a step of the pod's Slurm job: Slurm runs it, gives it the job's GPUs, kills it
            step = self.slurm.step_argv(job.jid, workdir)
            env["SLURM_CONF"] = str(self.slurm.conf)
        prefix = pdir / rec.name
        for suffix in (".status", ".status.tmp"):
            prefix.with_name(rec.name + suffix).unlink(missing_ok=True)
        for suffix in (".out", ".log"):
            prefix.with_name(rec.name + suffix).touch()
        with open(prefix.with_name(rec.name + ".wrapper"), "ab") as werr:
            child = subprocess.Popen(
                [
                    *step,
                    "/bin/sh",
                    "-c",
                    WRAPPER_SCRIPT,
                    "local-plugin-wrapper",
                    str(prefix),
                    sys.executable,
                    str(PUMP),
                    exe,
                    *argv[1:],
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=werr,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._children[child.pid] = child
        st = proc_stat(child.pid)
        rec.pid, rec.start_ticks = child.pid, (st[2] if st else None)
        rec.state, rec.started_at = CTR_RUNNING, time.time()
        rec.reason = rec.message = None
        cmdline = shlex.join(argv)
        log.info(
            "job %s (pod %s/%s) started %scontainer %s: pid %d, %s",
            job.jid,
            job.namespace,
            job.name,
            "init " if rec.init else "",
            rec.name,
            child.pid,
            cmdline if len(cmdline) < 300 else cmdline[:300] + "...",
        )

    def _read_status(self, job: Job, rec: ContainerRecord) -> tuple[int, float] | None:
        path = self.pod_dir(job) / f"{rec.name}.status"
        try:
            return int(path.read_text().strip()), path.stat().st_mtime
        except (OSError, ValueError):
            return None

    def _alive(self, rec: ContainerRecord) -> bool:
        if rec.pid is None:
            return False
        child = self._children.get(rec.pid)
        if child is not None and child.poll() is not None:
            del self._children[rec.pid]
        return alive(rec.pid, rec.start_ticks)

    def _refresh(self, job: Job, rec: ContainerRecord) -> bool:
        status = self._read_status(job, rec)
        if status is None and self._alive(rec):
            return False
        if status is None:
            # the wrapper may have written it just now
            status = self._read_status(job, rec)
        rec.state = TERMINATED
        if status is None:
            rec.exit_code, rec.finished_at = 137, time.time()
            rec.reason = "Error"
            rec.message = KILLED_OUTSIDE
        else:
            rec.exit_code, rec.finished_at = status
            rec.reason = "Completed" if rec.exit_code == 0 else "Error"
            if rec.pid is not None and group_members(rec.pid):
                rec.teardown_at = time.time() + TEARDOWN_SECONDS
        log.info(
            "job %s (pod %s/%s) container %s exited with code %s",
            job.jid,
            job.namespace,
            job.name,
            rec.name,
            rec.exit_code,
        )
        return True

    def _teardown(self, job: Job) -> bool:
        changed = False
        now = time.time()
        for rec in job.containers:
            if rec.teardown_at is not None and now >= rec.teardown_at and rec.pid:
                left = group_members(rec.pid)
                if left:
                    log.info(
                        "job %s container %s exited; killing what is left of its process group: %s",
                        job.jid,
                        rec.name,
                        left,
                    )
                    signal_group(rec.pid, signal.SIGKILL)
                rec.teardown_at = None
                changed = True
        return changed

    def container_drained(self, job: Job, rec: ContainerRecord) -> bool:
        """The container has ended and its log pump has written everything."""
        return rec.state == TERMINATED and not (rec.pid is not None and self._alive(rec))

    # ---- delete

    async def delete(self, job: Job, poll: float = 0.05) -> str:
        what = f"pod {job.namespace}/{job.name} (job {job.jid})"
        if job.state == DELETED:
            return f"{what} was already deleted\n"
        self.tick()
        job.state = DELETING
        self.save(job)
        if self.slurm is not None and job.jid.isdigit():
            # scancel signals every step (the containers) and ends the allocation
            self.slurm.cancel(job.jid)
        pod = self.request(job)["pod"]
        tgps = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = min(float(DEFAULT_GRACE_SECONDS if tgps is None else tgps), MAX_GRACE_SECONDS)
        groups = [
            r.pid
            for r in job.containers
            if r.pid is not None and (r.state == CTR_RUNNING or r.teardown_at is not None)
        ]
        groups = [g for g in groups if group_members(g)]
        for g in groups:
            signal_group(g, signal.SIGTERM)
        killed = False
        deadline = time.monotonic() + grace
        while groups and time.monotonic() < deadline:
            await asyncio.sleep(poll)
            self.tick()
            groups = [g for g in groups if group_members(g)]
        if groups:
            killed = True
            log.info("%s: still running after %.1f s, SIGKILL", what, grace)
            for g in groups:
                signal_group(g, signal.SIGKILL)
            deadline = time.monotonic() + 2.0
            while groups and time.monotonic() < deadline:
                await asyncio.sleep(poll)
                self.tick()
                groups = [g for g in groups if group_members(g)]
        self._mark_deleted(job, killed)
        log.info("deleted %s", what)
        return f"deleted {what}\n"

    def _mark_deleted(self, job: Job, killed: bool) -> None:
        now = time.time()
        for rec in job.containers:
            rec.teardown_at = None
            if rec.state == CTR_RUNNING:
                status = self._read_status(job, rec)
                rec.state = TERMINATED
                if status is not None:
                    rec.exit_code, rec.finished_at = status
                    rec.reason = "Completed" if rec.exit_code == 0 else "Error"
                else:
                    rec.exit_code, rec.finished_at = (137 if killed else 143), now
                    rec.reason = "Error"
                    rec.message = "killed when the pod was deleted"
        self._never_started(
            job, "Cancelled", f"job {job.jid} was cancelled at {self.site} before it started", 0
        )
        job.state, job.finished_at = DELETED, job.finished_at or now
        self.save(job)

    async def cancel_all(self) -> list[str]:
        out = []
        for job in list(self.jobs.values()):
            if job.state != DELETED:
                out.append(await self.delete(job))
        return out

    # ---- answers

    def status(self, job: Job) -> JSON:
        pod = self.request(job)["pod"]
        spec = pod.get("spec") or {}
        images = {
            str(c.get("name")): str(c.get("image") or "")
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        }

        def one(rec: ContainerRecord) -> JSON:
            st: JSON = {
                "name": rec.name,
                "image": images.get(rec.name, ""),
                "imageID": "",
                "restartCount": 0,
                "ready": False,
                "started": False,
            }
            if rec.pid is not None:
                st["containerID"] = f"local://{job.jid}/{rec.name}"
            if rec.state == WAITING:
                if job.state == QUEUED and self.slurm is not None:
                    reason = job.batch_reason
                    why = f": {reason}" if reason and reason != "None" else ""
                    state = {
                        "reason": "Queued",
                        "message": f"queued at {self.site} (Slurm job {job.jid}{why})",
                    }
                elif job.state == QUEUED:
                    state = {
                        "reason": "Queued",
                        "message": f"queued at {self.site} (job {job.jid})",
                    }
                elif job.state == INIT:
                    state = {"reason": "PodInitializing"}
                else:
                    state = {"reason": "ContainerCreating"}
                st["state"] = {"waiting": state}
            elif rec.state == CTR_RUNNING:
                st["state"] = {"running": {"startedAt": rfc3339(rec.started_at or time.time())}}
                st["started"] = True
                st["ready"] = True
            else:
                term: JSON = {
                    "exitCode": rec.exit_code if rec.exit_code is not None else 0,
                    "reason": rec.reason or "Completed",
                    "finishedAt": rfc3339(rec.finished_at or time.time()),
                }
                term["startedAt"] = rfc3339(rec.started_at or rec.finished_at or time.time())
                if rec.message:
                    term["message"] = rec.message
                if rec.pid is not None:
                    term["containerID"] = st["containerID"]
                st["state"] = {"terminated": term}
            return st

        return {
            "name": job.name,
            "UID": job.uid,
            "namespace": job.namespace,
            "JID": job.jid,
            "containers": [one(r) for r in job.mains],
            "initContainers": [one(r) for r in job.inits],
        }

    def ping(self) -> JSON:
        counts: dict[str, int] = {}
        for j in self.jobs.values():
            counts[j.state] = counts.get(j.state, 0) + 1
        out: JSON = {
            "status": "ok",
            "site": self.site,
            "jobs": counts,
            "batch": "slurm" if self.slurm is not None else "emulated",
        }
        if self.gpus is not None:
            out["resources"] = {
                "accelerators": [{"resourceType": GPU_RESOURCE, "available": str(self.gpus)}]
            }
        return out

    def log_files(self, job: Job, rec: ContainerRecord) -> tuple[Path, Path]:
        pdir = self.pod_dir(job)
        return pdir / f"{rec.name}.out", pdir / f"{rec.name}.log"


def _replace_symlink(link: Path, target: Path) -> None:
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target)
