"""The pure part of the local plugin: what a pod spec becomes (env, argv rewriting, GPU
needs, the ConfigMaps/Secrets sent with it), with no file or process touched, like
KubeSpawner's ``kubespawner/objects.py``. :mod:`testbed.local_plugin.runner` explains the
stand-ins (re-rooted mounts, the wildcard address) these functions implement.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("testbed.local_plugin")

JSON = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_POD_IP = "127.0.0.1"


class ConfigError(Exception):
    """The pod's configuration cannot be honoured (a missing Secret key, bad base64...)."""


# 0.0.0.0 as an address on its own: not part of 10.0.0.0, not a CIDR such as 0.0.0.0/0
_WILDCARD = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d./])")


def rewrite_wildcard(value: str, pod_ip: str) -> str:
    """Replace the wildcard bind address by the pod's own address (the stand-in for the pod's
    network namespace, see :mod:`testbed.local_plugin.runner`)."""
    return _WILDCARD.sub(pod_ip, value)


_K8S_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_k8s_vars(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion of command/args: unknown references stay as they
    are, ``$$`` escapes a dollar."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _K8S_VAR.sub(repl, value)


def reroot(value: str, mount_paths: Iterable[str], rootfs: Path) -> str:
    """``/etc/x/y`` -> ``<rootfs>/etc/x/y`` when ``/etc/x`` is one of the mount paths."""
    for mp in sorted(mount_paths, key=len, reverse=True):
        mp = "/" + mp.strip("/")
        if mp == "/":
            continue
        if value == mp or value.startswith(mp + "/"):
            return str(rootfs) + value
    return value


def safe_relpath(path: str) -> str | None:
    """A file path from a ConfigMap/Secret key or item, if it stays inside its volume."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or path.startswith("/"):
        return None
    return "/".join(parts)


def quantity_int(value: Any) -> int:
    """An integer resource quantity such as a GPU count ("2" or 2)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def gpu_limit(container: JSON) -> int:
    res = container.get("resources") or {}
    limits = res.get("limits") or {}
    return quantity_int(limits.get(GPU_RESOURCE, 0))


def pod_gpu_need(pod: JSON) -> int:
    """GPUs a pod holds: its main containers together, or its largest init container."""
    spec = pod.get("spec") or {}
    mains = sum(gpu_limit(c) for c in spec.get("containers") or [])
    inits = max((gpu_limit(c) for c in spec.get("initContainers") or []), default=0)
    return max(mains, inits)


def decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"{what} is not valid base64: {e}") from None


def secret_items(secret: JSON) -> dict[str, bytes]:
    out = {
        k: decode_b64(v, f"key {k!r} of Secret {name_of(secret)!r}")
        for k, v in (secret.get("data") or {}).items()
    }
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


def configmap_items(cm: JSON) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update(
        {
            k: decode_b64(v, f"key {k!r} of ConfigMap {name_of(cm)!r}")
            for k, v in (cm.get("binaryData") or {}).items()
        }
    )
    return out


def name_of(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


@dataclass
class PodObjects:
    """The ConfigMaps, Secrets and projected volume maps sent along with the pod, by name."""

    configmaps: dict[str, JSON] = field(default_factory=dict)
    secrets: dict[str, JSON] = field(default_factory=dict)
    projected: dict[str, JSON] = field(default_factory=dict)

    @classmethod
    def from_request(cls, req: JSON) -> PodObjects:
        objs = cls()
        for ctr in req.get("container") or []:
            for cm in ctr.get("configMaps") or []:
                objs.configmaps[name_of(cm)] = cm
            for s in ctr.get("secrets") or []:
                objs.secrets[name_of(s)] = s
            for pm in ctr.get("projectedvolumemaps") or []:
                objs.projected[name_of(pm)] = pm
        # the VK→API body shape, in case someone talks to the plugin with it directly
        for cm in req.get("configmaps") or []:
            objs.configmaps.setdefault(name_of(cm), cm)
        for s in req.get("secrets") or []:
            objs.secrets.setdefault(name_of(s), s)
        for pm in req.get("projectedvolumesmaps") or []:
            objs.projected.setdefault(name_of(pm), pm)
        return objs


def field_ref(path: str, pod: JSON, pod_ip: str) -> str | None:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": DEFAULT_POD_IP,
    }
    if path in simple:
        v = simple[path]
        return None if v is None else str(v)
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2))
    return None


def _key_ref(kind: str, ref: JSON, objs: PodObjects) -> str | None:
    """Value of a secretKeyRef/configMapKeyRef; None when optional and missing."""
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    store = objs.secrets if kind == "Secret" else objs.configmaps
    obj = store.get(name)
    items = (secret_items(obj) if kind == "Secret" else configmap_items(obj)) if obj else None
    if items is None or key not in items:
        if ref.get("optional"):
            return None
        what = f"key {key!r} of {kind} {name!r}" if items is not None else f"{kind} {name!r}"
        raise ConfigError(f"{what} not found (it was not sent with the pod)")
    return items[key].decode(errors="replace")


def container_env(
    pod: JSON,
    ctr: JSON,
    objs: PodObjects,
    pod_ip: str,
    base: Mapping[str, str],
) -> dict[str, str]:
    """The environment of one container: ``base``, then envFrom, then env (K8s order; later
    wins). Values are not yet rewritten for mounts and addresses."""
    env = dict(base)
    for src in ctr.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            name = str(ref.get("name", ""))
            obj = (objs.configmaps if kind == "ConfigMap" else objs.secrets).get(name)
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"{kind} {name!r} of envFrom not found (not sent with the pod)")
            items = configmap_items(obj) if kind == "ConfigMap" else secret_items(obj)
            for k, v in items.items():
                env[prefix + k] = v.decode(errors="replace")
    for var in ctr.get("env") or []:
        name = str(var.get("name", ""))
        if not name:
            continue
        vf = var.get("valueFrom")
        if not vf:
            env[name] = expand_k8s_vars(str(var.get("value") or ""), env)
            continue
        value: str | None = None
        if vf.get("secretKeyRef"):
            value = _key_ref("Secret", vf["secretKeyRef"], objs)
        elif vf.get("configMapKeyRef"):
            value = _key_ref("ConfigMap", vf["configMapKeyRef"], objs)
        elif vf.get("fieldRef"):
            path = str(vf["fieldRef"].get("fieldPath", ""))
            value = field_ref(path, pod, pod_ip)
            if value is None:
                log.warning(
                    "pod %s: unsupported fieldRef %s for env %s, left unset",
                    name_of(pod),
                    path,
                    name,
                )
        else:
            log.warning("pod %s: unsupported valueFrom for env %s, left unset", name_of(pod), name)
        if value is not None:
            env[name] = value
    return env
