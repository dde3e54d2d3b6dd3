"""Pure builders: what a validated selection means for the notebook pod. No I/O, so every rule
is unit-testable.

interLink's rules for offloaded pods
(https://interlink-hq.github.io/interLink/docs/guides/pod-annotations and
https://github.com/interlink-hq/interlink-slurm-plugin): toleration of the
virtual-node taint with ``operator: Exists``, long not-ready/unreachable tolerations so a short
interLink outage does not evict a notebook, explicit CPU and memory requests and limits (Slurm
otherwise asks for 1 MB), GPUs as ``nvidia.com/gpu`` requests and limits plus ``--gres``, no
PVC and no service-account token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..labels import ANNOTATION_VO, KIND_NOTEBOOK, workload_labels
from ..sites import Site, quantity_bytes, slurm_time
from .options import Selection

INTERLINK_TAINT = "virtual-node.interlink/no-schedule"
# long enough to ride out an interLink API restart, short enough to free a dead node's GPUs
NODE_TROUBLE_TOLERATION_SECONDS = 3600
GPU_RESOURCE = "nvidia.com/gpu"

ANNOTATION_IMAGE_OTHER = "intertwin.eu/other-image"
# How the hub reaches an offloaded notebook, as the interLink virtual kubelet reads it (CreatePod
# and shouldCreateWstunnel in https://github.com/interlink-hq/interLink/blob/9ed14a4/pkg/
# virtualkubelet/virtualkubelet.go):
# with pod-vpn the VK gives the pod an address of the node's PodCIDR (which the site must route),
# and any pod-vpn annotation, whatever its value, turns the VK's wstunnel exposure off.
ANNOTATION_POD_VPN = "interlink.eu/pod-vpn"
# wstunnel: the VK (with Network.EnableTunnel) exposes every containerPort of a pod without
# pod-vpn through a wstunnel server Deployment + Service + Ingress in the hub's cluster and waits
# this long (Go duration, default 30s) for that server's pod IP before giving up on the pod
ANNOTATION_WSTUNNEL_TIMEOUT = "interlink.virtual-kubelet.io/wstunnel-timeout"
WSTUNNEL_TIMEOUT = "5m"


def offload_tolerations() -> list[dict[str, Any]]:
    return [
        {"key": INTERLINK_TAINT, "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": NODE_TROUBLE_TOLERATION_SECONDS,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": NODE_TROUBLE_TOLERATION_SECONDS,
        },
    ]


def slurm_flags(sel: Selection, time: int | None = None) -> str:
    """The job's Slurm flags; ``time``: a batch cell's own limit in seconds (else the site's)."""
    flags = []
    if sel.partition:
        flags.append(f"--partition={sel.partition.batch_name}")
    if sel.gpus:
        # the Slurm plugin does not turn nvidia.com/gpu limits into --gres:
        # https://github.com/interlink-hq/interlink-slurm-plugin (flavors select on GPU count only)
        flags.append(f"--gres=gpu:{sel.gpus}")
    batch = sel.site.batch
    if time is not None:
        flags.append(f"--time={slurm_time(time)}")
    elif batch and batch.time:
        flags.append(f"--time={batch.time}")
    if batch and batch.account:
        flags.append(f"--account={batch.account}")
    return " ".join(flags)


@dataclass(frozen=True)
class PodPlan:
    """Everything the selection decides about the pod, applied by the spawner."""

    image: str
    cpu: float
    memory: int
    gpus: int
    labels: dict[str, str]
    annotations: dict[str, str]
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    offload: bool = False
    env: dict[str, str] = field(default_factory=dict)


def plan_pod(
    sel: Selection, reach: str | None = None, kind: str = KIND_NOTEBOOK, time: int | None = None
) -> PodPlan:
    """``reach``: how this deployment reaches the site's notebooks, if not the catalogue's;
    ``kind``: a notebook server or a batch cell (which nobody reaches: no reach annotations);
    ``time``: a batch cell's time limit in seconds (else the site's)."""
    site = sel.site
    annotations = reach_annotations(reach or site.reach) if kind == KIND_NOTEBOOK else {}
    if site.batch and site.batch.system == "slurm":
        annotations["slurm-job.vk.io/flags"] = slurm_flags(sel, time)
    if sel.other_image:
        annotations[ANNOTATION_IMAGE_OTHER] = "true"
    if sel.vo:
        annotations[ANNOTATION_VO] = sel.vo
    return PodPlan(
        image=sel.image,
        cpu=sel.resource.cpu,
        memory=quantity_bytes(sel.resource.memory),
        gpus=sel.gpus,
        labels=workload_labels(site.slug, kind),
        annotations=annotations,
        node_selector={"kubernetes.io/hostname": site.node.name} if site.offload else {},
        tolerations=offload_tolerations() if site.offload else [],
        offload=site.offload,
        env=site_env(site),
    )


def reach_annotations(reach: str | None) -> dict[str, str]:
    """The annotations that tell a site's virtual kubelet how the hub reaches the notebook
    (the catalogue's ``reach``), and only those: see ``conflicting_reach_annotations``."""
    if reach == "pod-vpn":
        return {ANNOTATION_POD_VPN: "true"}
    if reach == "wstunnel":
        # the VK exposes the notebook's containerPort (KubeSpawner declares it); the server
        # pod of the tunnel may be pulled first, so wait longer than the VK's 30 s
        return {ANNOTATION_WSTUNNEL_TIMEOUT: WSTUNNEL_TIMEOUT}
    return {}


def conflicting_reach_annotations(reach: str | None) -> tuple[str, ...]:
    """Annotations that would switch the site's VK to the other mode, to be removed even when
    the hub configuration (``extra_annotations``) adds them for every pod."""
    if reach == "wstunnel":
        return (ANNOTATION_POD_VPN,)
    if reach == "pod-vpn":
        return (ANNOTATION_WSTUNNEL_TIMEOUT,)
    return ()


def site_env(site: Site, mount_path: str | None = None) -> dict[str, str]:
    """What the session knows about where it runs (read by the lab server extension);
    ``mount_path`` where this deployment mounts the site's scratch, if not the catalogue's."""
    env = {
        "INTERTWIN_SITE": site.slug,
        "INTERTWIN_SITE_TITLE": site.title,
        "INTERTWIN_SITE_NAME": site.name,
        "INTERTWIN_SCRATCH_PATH": mount_path or site.scratch.mount_path,
    }
    if site.scratch.rse:
        env["INTERTWIN_SCRATCH_RSE"] = site.scratch.rse
    if site.node.gpu:
        env["INTERTWIN_GPU_MODEL"] = site.node.gpu.model
    return env


# Credentials never sit in the pod spec. interLink ships Secrets only as volumes: the VK fetches
# the Secrets of secret volumes and passes the pod spec on as it is, and the Slurm plugin writes
# only literal env values into the job's env-file (createEnvFile in
# https://github.com/interlink-hq/interlink-slurm-plugin/blob/main/pkg/slurm/prepare.go), so an
# env secretKeyRef would arrive empty. jupyterhub-singleuser reads its token only from
# $JUPYTERHUB_API_TOKEN (init_hub_auth in
# https://github.com/jupyterhub/jupyterhub/blob/main/jupyterhub/singleuser/mixins.py).
# So the credentials travel as files of a Secret volume and a tiny shell prelude exports them,
# then execs the notebook command. The prelude goes into the
# container's args (the image's CMD), never its command (the image's ENTRYPOINT): the
# entrypoint (tini + start.sh in docker-stacks images, an Apptainer runscript) runs first and
# execs it, as it would the notebook command.
SECRET_ENV_DIR = "/var/run/intertwin/env"
SECRET_ENV_VOLUME = "intertwin-env"
# TOKEN, *_API_KEY, AWS_SECRET_ACCESS_KEY, DB_PASSWORD, ...: a credential-looking last word,
# or SECRET/PASSWORD anywhere in the name
_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|KEY|"
    r"APIKEY)$|(^|_)(SECRET|PASSWORD|PASSWD)(_|$)",
    re.IGNORECASE,
)
ENV_PRELUDE = (
    'for f in "$INTERTWIN_SECRET_ENV_DIR"/*; do '
    '[ -f "$f" ] && export "${f##*/}=$(cat "$f")"; done; exec "$@"'
)


def is_secret_env(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_env_command(command: list[str], args: list[str]) -> tuple[list[str], list[str]]:
    """``command``/``args`` of a container that exports the secret files as env vars before its
    program runs. With no command (as KubeSpawner starts notebooks: ``cmd`` becomes args), the
    image's entrypoint stays and the prelude wraps the args; a command set by the hub
    configuration already replaces the entrypoint, so the prelude wraps command and args."""
    prelude = ["/bin/sh", "-c", ENV_PRELUDE, "intertwin-env"]
    if command:
        return prelude, [*command, *args]
    return [], [*prelude, *args]


def rucio_env(
    site: Site, instance: dict[str, str], access_token: str | None, mount_path: str | None = None
) -> dict[str, str]:
    """The Rucio DataLake configuration of the session, in rucio-jupyterlab's ``RUCIO_*``
    convention so existing interTwin images keep working: the instance from the hub's
    configuration, the destination RSE and its mount path from the session's site (unless the
    deployment mounts it elsewhere: ``mount_path``), and the user's own OIDC token (moved into
    the env Secret like every credential)."""
    if not instance.get("RUCIO_BASE_URL"):
        return {}
    env = {
        "RUCIO_NAME": "intertwin",
        "RUCIO_DISPLAY_NAME": "interTwin DataLake",
        "RUCIO_MODE": "replica",
        # '1' is what rucio-jupyterlab means by enabled (interTwin's images compare
        # the variable with '0', which inverts it)
        "RUCIO_WILDCARD_ENABLED": "1",
        "RUCIO_DEFAULT_AUTH_TYPE": "oidc",
        "RUCIO_OIDC_AUTH": "env",
        "RUCIO_OIDC_ENV_NAME": "RUCIO_ACCESS_TOKEN",
        **instance,
        "RUCIO_SITE_NAME": site.name.upper(),
    }
    if site.scratch.rse:
        env["RUCIO_DESTINATION_RSE"] = site.scratch.rse
        env["RUCIO_RSE_MOUNT_PATH"] = mount_path or site.scratch.mount_path
        # how a PFN maps onto the mount (RSEs without a file protocol): rucio-jupyterlab's
        # RUCIO_PATH_BEGINS_AT, or our explicit prefix
        if site.scratch.path_begins_at is not None:
            env["RUCIO_PATH_BEGINS_AT"] = str(site.scratch.path_begins_at)
        if site.scratch.pfn_prefix:
            env["INTERTWIN_RUCIO_PFN_PREFIX"] = site.scratch.pfn_prefix
    if access_token:
        env["RUCIO_ACCESS_TOKEN"] = access_token
    return env
