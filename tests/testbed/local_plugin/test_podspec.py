"""The local plugin's pod-spec translation, tested directly on pod JSON (no files, no
processes), as kubespawner's tests/test_objects.py tests its builders."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from testbed.local_plugin.podspec import (
    ConfigError,
    PodObjects,
    configmap_items,
    container_env,
    expand_k8s_vars,
    field_ref,
    pod_gpu_need,
    reroot,
    rewrite_wildcard,
    safe_relpath,
    secret_items,
)

JSON = dict[str, Any]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pod(**spec: Any) -> JSON:
    return {
        "metadata": {
            "name": "jupyter-ana",
            "namespace": "jhub",
            "uid": "u-1",
            "labels": {"app": "jupyterhub"},
            "annotations": {"intertwin.eu/site": "vega"},
        },
        "spec": {"nodeName": "vega-vk", "serviceAccountName": "default", **spec},
    }


def test_rewrite_wildcard_only_touches_the_wildcard_address() -> None:
    assert (
        rewrite_wildcard("http://0.0.0.0:8888/user/a/", "127.10.1.5")
        == "http://127.10.1.5:8888/user/a/"
    )
    assert rewrite_wildcard("--ip=0.0.0.0", "127.0.0.1") == "--ip=127.0.0.1"
    assert rewrite_wildcard("10.0.0.0", "1.2.3.4") == "10.0.0.0"
    assert rewrite_wildcard("0.0.0.0/0", "1.2.3.4") == "0.0.0.0/0"


def test_k8s_expansion_and_reroot() -> None:
    assert expand_k8s_vars("$(A)-$(B)-$$(A)", {"A": "x"}) == "x-$(B)-$(A)"
    root = Path("/r")
    assert reroot("/etc/cfg/a.txt", ["/etc/cfg"], root) == "/r/etc/cfg/a.txt"
    assert reroot("/etc/cfgx", ["/etc/cfg"], root) == "/etc/cfgx"
    assert reroot("/etc/cfg", ["/etc/cfg/"], root) == "/r/etc/cfg"
    # the longest mount path wins; "/" is never re-rooted
    assert reroot("/a/b/c", ["/a", "/a/b"], root) == "/r/a/b/c"
    assert reroot("/x", ["/"], root) == "/x"


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("a.txt", "a.txt"),
        ("./dir//b", "dir/b"),
        ("../up", None),
        ("/abs", None),
        ("a/../../b", None),
        ("", None),
    ],
)
def test_safe_relpath_keeps_files_inside_their_volume(path: str, safe: str | None) -> None:
    assert safe_relpath(path) == safe


def test_gpu_need_is_the_mains_together_or_the_largest_init() -> None:
    def c(n: Any) -> JSON:
        return {"resources": {"limits": {"nvidia.com/gpu": n}}}

    assert pod_gpu_need(pod(containers=[c("1"), c(2)])) == 3
    assert pod_gpu_need(pod(containers=[c(1)], initContainers=[c("4"), c(2)])) == 4
    assert pod_gpu_need(pod(containers=[{"resources": {}}, c("junk")])) == 0


def test_secret_and_configmap_items() -> None:
    secret = {
        "metadata": {"name": "s"},
        "data": {"token": b64("t0k")},
        "stringData": {"plain": "p"},
    }
    assert secret_items(secret) == {"token": b"t0k", "plain": b"p"}
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": b64("\x00")}}
    assert configmap_items(cm) == {"a": b"1", "b": b"\x00"}
    with pytest.raises(ConfigError, match="key 'token' of Secret 's' is not valid base64"):
        secret_items({"metadata": {"name": "s"}, "data": {"token": "not base64!"}})


def test_pod_objects_come_from_the_create_body_per_container_and_top_level() -> None:
    cm = {"metadata": {"name": "cfg"}, "data": {"k": "v"}}
    s1 = {"metadata": {"name": "sec"}, "data": {}}
    s2 = {"metadata": {"name": "sec"}, "data": {"other": b64("x")}}
    objs = PodObjects.from_request(
        {
            "container": [{"configMaps": [cm], "secrets": [s1], "projectedvolumemaps": []}],
            "secrets": [s2],
            "projectedvolumesmaps": [{"metadata": {"name": "proj"}}],
        }
    )
    assert objs.configmaps == {"cfg": cm}
    assert objs.secrets == {"sec": s1}  # the per-container shape wins
    assert set(objs.projected) == {"proj"}


def test_field_refs() -> None:
    p = pod()
    assert field_ref("metadata.name", p, "10.0.0.7") == "jupyter-ana"
    assert field_ref("status.podIP", p, "10.0.0.7") == "10.0.0.7"
    assert field_ref("status.hostIP", p, "10.0.0.7") == "127.0.0.1"
    assert field_ref("spec.nodeName", p, "10.0.0.7") == "vega-vk"
    assert field_ref("metadata.labels['app']", p, "x") == "jupyterhub"
    assert field_ref("metadata.annotations['intertwin.eu/site']", p, "x") == "vega"
    assert field_ref("status.phase", p, "x") is None


def test_container_env_in_kubernetes_order() -> None:
    objs = PodObjects(
        configmaps={"cfg": {"metadata": {"name": "cfg"}, "data": {"A": "from-cm", "B": "b"}}},
        secrets={"sec": {"metadata": {"name": "sec"}, "data": {"TOKEN": b64("s3cret")}}},
    )
    ctr = {
        "envFrom": [
            {"configMapRef": {"name": "cfg"}},
            {"secretRef": {"name": "sec"}, "prefix": "S_"},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "A", "value": "literal-$(B)"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
            {"name": "CM_B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "B"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "sec", "key": "none", "optional": True}},
            },
            {"name": "PHASE", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}},
        ],
    }
    env = container_env(pod(), ctr, objs, "10.0.0.7", {"HOME": "/home/x", "A": "base"})
    assert env == {
        "HOME": "/home/x",
        "A": "literal-b",
        "B": "b",
        "S_TOKEN": "s3cret",
        "TOKEN": "s3cret",
        "CM_B": "b",
        "IP": "10.0.0.7",
    }


@pytest.mark.parametrize(
    ("ctr", "message"),
    [
        ({"envFrom": [{"secretRef": {"name": "gone"}}]}, "Secret 'gone' of envFrom not found"),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]},
            "Secret 'gone' not found",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
            "key 'k' of ConfigMap 'cfg' not found",
        ),
    ],
)
def test_a_missing_required_reference_is_a_config_error(ctr: JSON, message: str) -> None:
    objs = PodObjects(configmaps={"cfg": {"metadata": {"name": "cfg"}, "data": {}}})
    with pytest.raises(ConfigError, match=message):
        container_env(pod(), ctr, objs, "10.0.0.7", {})
