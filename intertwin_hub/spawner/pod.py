"""Pure builders: what a site means for a notebook pod. No I/O, so every rule is unit-testable.

interLink's rules for offloaded pods (reference/interlink.md §0, §3): toleration of the
virtual-node taint with ``operator: Exists``, long not-ready/unreachable tolerations so a short
interLink outage does not evict a notebook, explicit CPU and memory limits (Slurm otherwise asks
for 1 MB), GPUs as ``nvidia.com/gpu`` plus ``--gres``, no service-account token.
"""

from __future__ import annotations

from typing import Any

from ..sites import Site

INTERLINK_TAINT = "virtual-node.interlink/no-schedule"
# long enough to ride out an interLink API restart, short enough to free a dead node's GPUs
NODE_TROUBLE_TOLERATION_SECONDS = 3600

LABEL_SITE = "intertwin.eu/site"
LABEL_WORKLOAD = "intertwin.eu/workload"
LABEL_USER = "hub.jupyter.org/username"


def offload_tolerations() -> list[dict[str, Any]]:
    return [
        {"key": INTERLINK_TAINT, "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": NODE_TROUBLE_TOLERATION_SECONDS},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": NODE_TROUBLE_TOLERATION_SECONDS},
    ]


def slurm_flags(site: Site, partition: str | None, gpus: int) -> str:
    flags = []
    if partition:
        flags.append(f"--partition={partition}")
    if gpus:
        flags.append(f"--gres=gpu:{gpus}")
    if site.batch and site.batch.time:
        flags.append(f"--time={site.batch.time}")
    if site.batch and site.batch.account:
        flags.append(f"--account={site.batch.account}")
    return " ".join(flags)


def site_annotations(site: Site, partition: str | None, gpus: int) -> dict[str, str]:
    ann = {"interlink.eu/pod-vpn": "true"} if site.offload else {}
    if site.batch and site.batch.system == "slurm":
        ann["slurm-job.vk.io/flags"] = slurm_flags(site, partition, gpus)
    return ann


def site_env(site: Site) -> dict[str, str]:
    """What the session knows about where it runs (read by the lab server extension)."""
    env = {
        "INTERTWIN_SITE": site.slug,
        "INTERTWIN_SITE_TITLE": site.title,
        "INTERTWIN_SCRATCH_PATH": site.scratch.mount_path,
    }
    if site.scratch.rse:
        env["INTERTWIN_SCRATCH_RSE"] = site.scratch.rse
    return env
