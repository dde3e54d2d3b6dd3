"""The Kubernetes control plane of the testbed: etcd, kube-apiserver, kube-scheduler and
kube-controller-manager, built from the Go module proxy (build/build-k8s.sh).

Token authentication and RBAC are on, as on the UKRI cluster: the hub and every virtual kubelet
get their own token bound to the roles they have in production, and only the tests' admin
kubeconfig is in ``system:masters``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .binaries import Binaries
from .kube import Kube
from .procs import Supervisor, free_port, http_ok, wait_until

HUB_NAMESPACE = "intertwin"
SERVICE_CIDR = "10.96.0.0/24"


@dataclass
class Identity:
    user: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    api_url: str
    admin_kubeconfig: str
    hub_kubeconfig: str
    namespace: str
    identities: dict[str, Identity]

    def kube(self, who: str = "admin") -> Kube:
        return Kube(self.api_url, self.identities[who].token)

    def kubeconfig_for(self, who: str, path: Path) -> Path:
        write_kubeconfig(path, self.api_url, self.identities[who].token, who)
        return path

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def write_kubeconfig(
    path: Path, server: str, token: str, name: str, namespace: str = "default"
) -> None:
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        # the apiserver's serving certificate is self-signed by the testbed run
        "clusters": [
            {"name": "testbed", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": "testbed", "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }
    path.write_text(json.dumps(cfg, indent=1))
    path.chmod(0o600)


def start_control_plane(sup: Supervisor, bins: Binaries, node_names: list[str]) -> ControlPlane:
    run = sup.run_dir / "k8s"
    run.mkdir(parents=True, exist_ok=True)

    ids = {
        "admin": Identity("testbed-admin", secrets.token_hex(16), ("system:masters",)),
        "scheduler": Identity("system:kube-scheduler", secrets.token_hex(16)),
        "controller-manager": Identity("system:kube-controller-manager", secrets.token_hex(16)),
        "hub": Identity("system:serviceaccount:intertwin:hub", secrets.token_hex(16)),
        # the intertwin hub service: the only holder of credentials beyond the hub's own
        "service": Identity(
            "system:serviceaccount:intertwin:intertwin-service", secrets.token_hex(16)
        ),
    }
    for n in node_names:
        ids[f"vk-{n}"] = Identity(f"interlink-vk:{n}", secrets.token_hex(16))
    (run / "tokens.csv").write_text(
        "".join(f'{i.token},{i.user},{i.user},"{",".join(i.groups)}"\n' for i in ids.values())
    )
    (run / "tokens.csv").chmod(0o600)
    if not (run / "sa.key").exists():
        subprocess.run(
            ["openssl", "genrsa", "-out", str(run / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(run / "sa.key"), "-pubout", "-out", str(run / "sa.pub")],
            check=True,
            capture_output=True,
        )

    # etcd
    ec, ep = free_port(), free_port()
    etcd = sup.start(
        "etcd",
        [
            str(bins.etcd),
            "--name",
            "testbed",
            "--data-dir",
            str(run / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{ec}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{ec}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{ep}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{ep}",
            "--initial-cluster",
            f"testbed=http://127.0.0.1:{ep}",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
        ],
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{ec}/health"), "etcd", 60, etcd)

    # kube-apiserver
    api = free_port()
    api_url = f"https://127.0.0.1:{api}"
    apiserver = sup.start(
        "kube-apiserver",
        [
            str(bins.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{ec}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api}",
            f"--cert-dir={run / 'certs'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            f"--service-account-issuer={api_url}",
            f"--service-account-key-file={run / 'sa.pub'}",
            f"--service-account-signing-key-file={run / 'sa.key'}",
            f"--token-auth-file={run / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            # the VKs serve self-signed kubelet certificates (no kubelet CA in the testbed)
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            "--v=1",
        ],
    )
    admin = ids["admin"]
    wait_until(
        lambda: http_ok(f"{api_url}/readyz", admin.token, insecure_tls=True),
        "kube-apiserver",
        180,
        apiserver,
    )

    kcfg = run / "kubeconfigs"
    kcfg.mkdir(exist_ok=True)
    for who, ident in ids.items():
        write_kubeconfig(
            kcfg / f"{who}.kubeconfig",
            api_url,
            ident.token,
            who,
            HUB_NAMESPACE if who == "hub" else "default",
        )

    kube = Kube(api_url, admin.token)
    apply_rbac(kube, ids, node_names)

    common = ["--bind-address=127.0.0.1", "--leader-elect=false", "--v=1", "--profiling=false"]
    sched_cfg = str(kcfg / "scheduler.kubeconfig")
    sup.start(
        "kube-scheduler",
        [
            str(bins.kube_scheduler),
            f"--kubeconfig={sched_cfg}",
            f"--authentication-kubeconfig={sched_cfg}",
            f"--authorization-kubeconfig={sched_cfg}",
            f"--secure-port={free_port()}",
            *common,
        ],
    )
    cm_cfg = str(kcfg / "controller-manager.kubeconfig")
    sup.start(
        "kube-controller-manager",
        [
            str(bins.kube_controller_manager),
            f"--kubeconfig={cm_cfg}",
            f"--authentication-kubeconfig={cm_cfg}",
            f"--authorization-kubeconfig={cm_cfg}",
            f"--secure-port={free_port()}",
            f"--service-account-private-key-file={run / 'sa.key'}",
            "--use-service-account-credentials=true",
            f"--root-ca-file={run / 'certs' / 'apiserver.crt'}",
            # no cloud, no node IPAM: the virtual kubelets bring their own pod CIDRs
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route",
            *common,
        ],
    )
    return ControlPlane(
        api_url=api_url,
        admin_kubeconfig=str(kcfg / "admin.kubeconfig"),
        hub_kubeconfig=str(kcfg / "hub.kubeconfig"),
        namespace=HUB_NAMESPACE,
        identities=ids,
    )


# The hub Role of the Zero to JupyterHub chart 4.4.0, rule for rule
# (jupyterhub/templates/hub/rbac.yaml): the hub gets exactly what it gets in production, so a
# verb the spawner needs and the chart does not grant (update, patch) fails here too.
Z2JH_HUB_ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
]


# The intertwin hub service's Role in the hub's namespace and its ClusterRole for the nodes
# (helm-values/ grants the same): it watches the workload pods and their events, reads their
# logs, deletes them (cancel) and creates batch cells with their ConfigMaps and Secrets.
SERVICE_ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "configmaps", "secrets"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]
SERVICE_CLUSTER_ROLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
]


def _grant(
    kube: Kube,
    name: str,
    rules: list[dict[str, Any]],
    users: list[str],
    namespace: str | None = None,
) -> None:
    """A Role in ``namespace`` (a ClusterRole without one) and its binding to ``users``."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    where = f"{rbac}/namespaces/{namespace}/" if namespace else f"{rbac}/cluster"
    kind = "Role" if namespace else "ClusterRole"
    kube.ensure(f"{where}roles", {"metadata": {"name": name}, "rules": rules})
    kube.ensure(
        f"{where}rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"kind": "User", "name": u} for u in users],
        },
    )


def hub_namespace(cp: ControlPlane, namespace: str) -> ControlPlane:
    """The control plane for a second hub whose notebooks live in ``namespace``: created, with
    the hub's and the intertwin service's Roles there as in the hub's own namespace. That hub's
    service sees only its own hub's pods."""
    kube = cp.kube()
    kube.ensure("/api/v1/namespaces", {"metadata": {"name": namespace}})
    _grant(kube, "hub", Z2JH_HUB_ROLE_RULES, [cp.identities["hub"].user], namespace)
    _grant(
        kube, "intertwin-service", SERVICE_ROLE_RULES, [cp.identities["service"].user], namespace
    )
    return replace(cp, namespace=namespace)


def apply_rbac(kube: Kube, ids: dict[str, Identity], node_names: list[str]) -> None:
    """The hub gets the Zero to JupyterHub hub Role in its namespace and nothing else; the
    intertwin service its own Role and node reading; each virtual kubelet gets interLink's own
    VK role."""
    kube.ensure("/api/v1/namespaces", {"metadata": {"name": HUB_NAMESPACE}})
    _grant(kube, "hub", Z2JH_HUB_ROLE_RULES, [ids["hub"].user], HUB_NAMESPACE)
    _grant(kube, "intertwin-service", SERVICE_ROLE_RULES, [ids["service"].user], HUB_NAMESPACE)
    _grant(kube, "intertwin-service-nodes", SERVICE_CLUSTER_ROLE_RULES, [ids["service"].user])
    # interLink's virtual-kubelet role as in interLink's e2e set-up
    # (https://github.com/interlink-hq/interLink/tree/main/ci)
    _grant(
        kube,
        "interlink-virtual-kubelet",
        [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
            {
                "apiGroups": [""],
                "resources": ["configmaps", "secrets", "services", "serviceaccounts", "namespaces"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "verbs": ["get", "list", "watch", "delete", "patch", "update"],
            },
            {
                "apiGroups": [""],
                "resources": ["nodes"],
                "verbs": ["create", "get", "list", "watch", "patch", "update"],
            },
            {
                "apiGroups": [""],
                "resources": ["nodes/status", "pods/status"],
                "verbs": ["update", "patch"],
            },
            {
                "apiGroups": ["", "events.k8s.io"],
                "resources": ["events"],
                "verbs": ["create", "patch", "update"],
            },
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["certificatesigningrequests"],
                "verbs": ["*"],
            },
        ],
        [ids[f"vk-{n}"].user for n in node_names],
    )
