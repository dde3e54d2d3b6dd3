"""One interLink stack per site: the local plugin (stand-in for the site's batch system), the
real interLink API, and the real interLink virtual kubelet registering the site's node.

Pod addresses use interLink's own pod-vpn mechanism: every node gets a PodCIDR inside
127.0.0.0/8 (all loopback on Linux), the VK hands each ``interlink.eu/pod-vpn`` pod a free
address from it as ``interlink.eu/pod-ip`` and reports it as the pod IP, and the plugin makes
the pod's processes listen on it. So many notebooks run at once, each at its own address the
hub can reach, through the production code path.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from intertwin_hub.sites import Site

from .binaries import Binaries
from .cluster import ControlPlane
from .procs import Supervisor, TestbedError, free_port, http_ok, wait_until


@dataclass
class SiteStack:
    slug: str
    node: str
    plugin_url: str
    interlink_url: str
    kubelet_port: int
    pod_cidr: str
    vk_argv: list[str]
    vk_env: dict[str, str]
    root: str


def pod_cidr_base() -> int:
    """Second octet of this run's first pod CIDR, random so that two testbeds on one machine
    (a demo and a test run) do not hand out the same pod addresses."""
    return random.randrange(16, 200)


def pod_cidr(base: int, index: int) -> str:
    return f"127.{base + index}.0.0/24"


def _yaml(obj: object) -> str:
    # JSON is valid YAML 1.2, and the Go yaml.v2 reader accepts it
    return json.dumps(obj, indent=1)


def start_site(
    sup: Supervisor,
    bins: Binaries,
    cp: ControlPlane,
    site: Site,
    cidr: str,
    queue_seconds: float = 0.0,
    slurm_conf: str | None = None,
) -> SiteStack:
    root = sup.run_dir / "sites" / site.slug
    root.mkdir(parents=True, exist_ok=True)
    node = site.node.name

    plugin_port = free_port()
    plugin_argv = [
        sys.executable,
        "-m",
        "testbed.local_plugin",
        "--host",
        "127.0.0.1",
        "--port",
        str(plugin_port),
        "--root",
        str(root / "jobs"),
        "--site",
        site.name,
    ]
    if slurm_conf:
        # a real Slurm queue decides when pods run and which GPUs they get
        plugin_argv += ["--slurm-conf", slurm_conf]
    elif site.node.gpu:
        plugin_argv += ["--gpus", str(site.node.gpu.count)]
    if queue_seconds and site.offload:
        plugin_argv += ["--queue-seconds", str(queue_seconds)]
    plugin = sup.start(
        f"plugin-{site.slug}",
        plugin_argv,
        cwd=root,
        env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )

    il_port = free_port()
    il_cfg = root / "InterLinkConfig.yaml"
    il_cfg.write_text(
        _yaml(
            {
                "InterlinkAddress": "http://127.0.0.1",
                "InterlinkPort": str(il_port),
                "SidecarURL": "http://127.0.0.1",
                "SidecarPort": str(plugin_port),
                "DataRootFolder": str(root / "interlink") + "/",
                "VerboseLogging": False,
            }
        )
    )
    api = sup.start(
        f"interlink-{site.slug}",
        [str(bins.interlink)],
        env={"INTERLINKCONFIGPATH": str(il_cfg)},
        cwd=root,
    )

    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{plugin_port}/healthz"),
        f"local plugin of {site.slug}",
        30,
        plugin,
    )
    # the API answers /pinglink with the plugin's own answer: both are up
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{il_port}/pinglink"),
        f"interLink API of {site.slug}",
        30,
        api,
    )

    accel = []
    if site.node.gpu:
        accel = [
            {
                "ResourceType": "nvidia.com/gpu",
                "Model": site.node.gpu.model,
                "Available": site.node.gpu.count,
            }
        ]
    vk_cfg = root / "VirtualKubeletConfig.yaml"
    vk_cfg.write_text(
        _yaml(
            {
                "InterlinkURL": "http://127.0.0.1",
                "InterlinkPort": str(il_port),
                "VKTokenFile": "",
                "ServiceAccount": "",
                "Namespace": "",
                "HTTP": {"Insecure": True},
                "KubeletHTTP": {"Insecure": True},
                "Resources": {
                    "CPU": site.node.cpu,
                    "Memory": site.node.memory,
                    "Pods": "1000",
                    "Accelerators": accel,
                },
                "NodeLabels": [f"intertwin.eu/site={site.slug}", f"intertwin.eu/kind={site.kind}"],
                "PodCIDR": {"Subnet": cidr, "MinIP": 2, "MaxIP": 250},
                "VerboseLogging": False,
            }
        )
    )
    if not site.offload:
        register_cloud_node(cp, site, cidr)
    kubelet_port = free_port()
    kcfg = cp.kubeconfig_for(f"vk-{node}", root / "vk.kubeconfig")
    vk_env = {
        "NODENAME": node,
        "CONFIGPATH": str(vk_cfg),
        "KUBECONFIG": str(kcfg),
        "KUBELET_URL": "127.0.0.1",
        "KUBELET_PORT": str(kubelet_port),
        "POD_IP": "127.0.0.1",
    }
    sup.start(f"vk-{site.slug}", [str(bins.virtual_kubelet)], cwd=root, env=vk_env)
    return SiteStack(
        site.slug,
        node,
        f"http://127.0.0.1:{plugin_port}",
        f"http://127.0.0.1:{il_port}",
        kubelet_port,
        cidr,
        [str(bins.virtual_kubelet)],
        vk_env,
        str(root),
    )


# The VK at this interLink version starts its informer factory in a goroutine *before* it
# registers the pod informer (cmd/virtual-kubelet/main.go, setupInformers), so now and then
# the pod informer never starts and the VK waits for its cache forever: the node is Ready
# but no pod is ever created. Its log says "started workers" once the pod controller runs.
VK_WORKERS_STARTED = "started workers"
VK_START_ATTEMPTS = 4


def ensure_pod_controllers(
    sup: Supervisor,
    stacks: list[SiteStack],
    timeout: float = 20.0,
    progress: Callable[[str], None] = lambda m: None,
) -> None:
    """Restart any VK whose pod controller did not start (the upstream race above)."""
    for attempt in range(1, VK_START_ATTEMPTS + 1):
        deadline = time.monotonic() + timeout
        stuck = stacks
        while stuck and time.monotonic() < deadline:
            time.sleep(0.5)
            stuck = [s for s in stacks if VK_WORKERS_STARTED not in _log(sup, s)]
        if not stuck:
            return
        if attempt == VK_START_ATTEMPTS:
            break
        for s in stuck:
            progress(
                f"restarting the virtual kubelet of {s.slug}: its pod controller did not "
                "start (interLink informer race)"
            )
            sup.stop(f"vk-{s.slug}", grace=3)
            sup.start(f"vk-{s.slug}", s.vk_argv, cwd=Path(s.root), env=s.vk_env)
        stacks = stuck
    names = ", ".join(s.slug for s in stuck)
    raise TestbedError(
        f"the virtual kubelet of {names} never started its pod controller "
        f"after {VK_START_ATTEMPTS} attempts; see {sup.log_dir}"
    )


VK_START_MARK = "Loading Virtual Kubelet config"
VK_PING_OK = "Ping succeded"  # sic, the VK's own spelling


def pinged_since_start(sup: Supervisor, stack: SiteStack) -> bool:
    """The VK of this run has had a successful ping: before it, a (re)started VK reports its
    node NotReady, so a Ready node seen earlier may still flip to NotReady."""
    return VK_PING_OK in _log(sup, stack).rsplit(VK_START_MARK, 1)[-1]


def _log(sup: Supervisor, stack: SiteStack) -> str:
    try:
        return (sup.log_dir / f"vk-{stack.slug}.log").read_text(errors="replace")
    except OSError:
        return ""


def register_cloud_node(cp: ControlPlane, site: Site, cidr: str) -> None:
    """The UKRI cloud profile needs a plain, untainted node. The virtual kubelet only ever
    patches the status and metadata of a node that already exists, so registering the Node
    first without interLink's taint turns one more VK into an ordinary worker node."""
    cp.kube().ensure(
        "/api/v1/nodes",
        {
            "metadata": {
                "name": site.node.name,
                "labels": {
                    "kubernetes.io/hostname": site.node.name,
                    "intertwin.eu/site": site.slug,
                    "intertwin.eu/kind": site.kind,
                },
            },
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        },
    )


def stacks_json(stacks: list[SiteStack]) -> list[dict[str, object]]:
    return [asdict(s) for s in stacks]
