"""Where the Go-built binaries live, and building them on demand (scripts in build/)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUILD_DIR = Path(__file__).parent / "build"
K8S_VERSION = os.environ.get("K8S_VERSION", "1.34.4")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "v3.5.21")
INTERLINK_VERSION = os.environ.get("INTERLINK_VERSION", "v0.0.0-20250722085031-9ed14a4e89d5")


def cache_dir() -> Path:
    return Path(os.environ.get("INTERTWIN_CACHE", Path.home() / ".cache" / "intertwin-hub"))


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_scheduler: Path
    kube_controller_manager: Path
    virtual_kubelet: Path
    interlink: Path

    def missing(self) -> list[Path]:
        return [p for p in vars(self).values() if not os.access(p, os.X_OK)]


def binaries() -> Binaries:
    k8s = cache_dir() / "k8s" / f"{K8S_VERSION}-{ETCD_VERSION}"
    il = cache_dir() / "interlink" / INTERLINK_VERSION
    return Binaries(
        etcd=k8s / "etcd",
        kube_apiserver=k8s / "kube-apiserver",
        kube_scheduler=k8s / "kube-scheduler",
        kube_controller_manager=k8s / "kube-controller-manager",
        virtual_kubelet=il / "virtual-kubelet",
        interlink=il / "interlink",
    )


def ensure_built() -> Binaries:
    """Build whatever is missing (cold: about 11 minutes on 2 cores; cached afterwards)."""
    b = binaries()
    if b.missing():
        for script in ("build-k8s.sh", "build-interlink.sh"):
            subprocess.run([str(BUILD_DIR / script)], check=True)
    b = binaries()
    if b.missing():
        raise RuntimeError(f"build finished but binaries are missing: {b.missing()}")
    return b
