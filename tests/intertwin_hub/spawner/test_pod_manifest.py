"""Pod manifests per site: what interLink and the scheduler need to route the notebook."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio.client import ApiClient

from intertwin_hub.spawner import InterTwinSpawner


class FakeUser:
    name = "alice"
    escaped_name = "alice"
    id = 1
    url = "/user/alice/"
    groups: list[Any] = []


async def manifest(profile: str) -> dict[str, Any]:
    s = InterTwinSpawner(_mock=True, user=FakeUser())
    s.user_options = {"profile": profile}
    await s.load_user_options()
    pod = await s.get_pod_manifest()
    return ApiClient().sanitize_for_serialization(pod)  # type: ignore[no-any-return]


async def test_vega_pod_goes_to_the_virtual_node_with_interlink_rules() -> None:
    pod = await manifest("vega")
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "vega-vk"}
    tol = {t["key"]: t for t in spec["tolerations"]}
    assert tol["virtual-node.interlink/no-schedule"] == {
        "key": "virtual-node.interlink/no-schedule", "operator": "Exists", "effect": "NoSchedule"}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        assert tol[key]["operator"] == "Exists" and tol[key]["effect"] == "NoExecute"
        assert tol[key]["tolerationSeconds"] >= 3600
    assert spec["automountServiceAccountToken"] is False
    assert pod["metadata"]["labels"]["intertwin.eu/site"] == "vega"
    assert pod["metadata"]["annotations"]["interlink.eu/pod-vpn"] == "true"
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["INTERTWIN_SITE"] == "vega"
    assert env["INTERTWIN_SCRATCH_RSE"] == "VEGA-DCACHE"


async def test_cloud_pod_stays_an_ordinary_pod() -> None:
    pod = await manifest("ukri")
    spec = pod["spec"]
    assert "virtual-node.interlink/no-schedule" not in {
        t["key"] for t in spec.get("tolerations") or []}
    assert (spec.get("nodeSelector") or {}).get("kubernetes.io/hostname") != "vega-vk"
    assert pod["metadata"]["labels"]["intertwin.eu/site"] == "ukri"
