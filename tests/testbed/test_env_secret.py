"""The notebook's credentials on the testbed: the env Secret is owned by the pod and named per
spawn, so a leftover one is never mounted, the image's entrypoint still runs, and the hub does
all of it with exactly the Zero to JupyterHub hub Role."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..waiting import wait_for_async
from .hubapi import spawn, stop

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio]

# jupyterhub/templates/hub/rbac.yaml of the Zero to JupyterHub chart 4.4.0, as written there
CHART_HUB_ROLE = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
]


def api_session(hub: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})


async def read_secret(kube: Any, ns: str, name: str) -> Any | None:
    try:
        return await kube.read_namespaced_secret(name, ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


async def wait_gone(kube: Any, ns: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await read_secret(kube, ns, name) is not None:
        assert time.monotonic() < deadline, f"Secret {name} still there after {timeout} s"
        await asyncio.sleep(0.5)


async def test_the_hub_has_exactly_the_charts_role(testbed: dict[str, Any], kube: Any) -> None:
    ns = testbed["control_plane"]["namespace"]
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    role = await rbac.read_namespaced_role("hub", ns)
    rules = [
        {"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs} for r in role.rules
    ]
    assert rules == CHART_HUB_ROLE
    hub_user = testbed["control_plane"]["identities"]["hub"]["user"]
    bindings = (await rbac.list_cluster_role_binding()).items
    assert not [
        b.metadata.name for b in bindings if any(s.name == hub_user for s in b.subjects or [])
    ]


def mounted_secret(pod: Any) -> str:
    """The env Secret the pod mounts (a name of its spawn's own)."""
    return str(next(v for v in pod.spec.volumes if v.name == "intertwin-env").secret.secret_name)


async def test_a_leftover_env_secret_is_never_mounted_and_the_new_one_goes_with_the_pod(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub, ns = testbed["hub"], testbed["control_plane"]["namespace"]
    pod_name = "jupyter-alice--leftover"
    # what an older hub that died mid-spawn could leave behind: a Secret named after the pod
    # (the name every spawn of this server used before names became per spawn), owned by
    # nobody, with a stale token
    leftover = f"{pod_name}-env"
    await kube.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=leftover),
            string_data={"JUPYTERHUB_API_TOKEN": "stale-token"},
        ),
    )
    try:
        async with api_session(hub) as s:
            events = await spawn(s, hub["api_url"], "alice", "leftover", {"profile": "vega"})
            assert events[-1].get("ready"), events
            pod = await kube.read_namespaced_pod(pod_name, ns)
            name = mounted_secret(pod)
            assert name.startswith(f"{pod_name}-env-") and name != leftover
            secret = await read_secret(kube, ns, name)
            assert secret is not None
            assert base64.b64decode(secret.data["JUPYTERHUB_API_TOKEN"]) != b"stale-token"
            [owner] = secret.metadata.owner_references
            assert (owner.kind, owner.name, owner.uid) == ("Pod", pod_name, pod.metadata.uid)
            # the session authenticates this request with the hub using the new token
            async with s.get(f"{hub['url']}/user/alice/leftover/api/status") as r:
                assert r.status == 200, await r.text()

            # the pod vanishes without the hub (a node drain, an admin): Kubernetes' garbage
            # collector removes its Secret. The hub polls its servers only every 30 s, so
            # within this time no stop() of the hub has deleted it.
            await kube.delete_namespaced_pod(pod_name, ns, grace_period_seconds=0)
            await wait_gone(kube, ns, name, 20)
            await stop(s, hub["api_url"], "alice", "leftover")
    finally:
        with contextlib.suppress(ApiException):
            await kube.delete_namespaced_secret(leftover, ns)


async def test_each_spawn_has_its_own_secret_and_stopping_removes_it(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub, ns = testbed["hub"], testbed["control_plane"]["namespace"]
    names = []
    api = hub["api_url"]
    async with api_session(hub) as s:

        async def stopped() -> bool:
            async with s.get(f"{api}/users/alice") as r:
                return "stopped" not in (await r.json()).get("servers", {})

        # the same server (the hub keeps its spawner) twice: a new Secret name each time
        for _ in range(2):
            events = await spawn(s, api, "alice", "stopped", {"profile": "ukri"})
            assert events[-1].get("ready"), events
            pod = await kube.read_namespaced_pod("jupyter-alice--stopped", ns)
            names.append(mounted_secret(pod))
            assert await read_secret(kube, ns, names[-1]) is not None
            async with s.delete(f"{api}/users/alice/servers/stopped") as r:
                assert r.status in (202, 204), await r.text()
            await wait_gone(kube, ns, names[-1], 60)
            await wait_for_async(stopped, "alice's server 'stopped' stopped", 120)
        await stop(s, api, "alice", "stopped")
    assert names[0] != names[1]


async def test_the_images_entrypoint_runs_and_the_credentials_still_arrive(
    testbed: dict[str, Any],
) -> None:
    """A docker-stacks image (its ENTRYPOINT is tini + start.sh, played on the testbed by the
    local plugin's image map) starts with its entrypoint, which then runs the notebook."""
    hub = testbed["hub"]
    async with api_session(hub) as s:
        events = await spawn(
            s, hub["api_url"], "alice", "stacks", {"profile": "ukri", "image": "minimal"}
        )
        # ready: jupyterhub-singleuser had its JUPYTERHUB_API_TOKEN
        assert events[-1].get("ready"), events
        url = f"{hub['url']}/user/alice/stacks/api/contents/docker-stacks-start.txt"
        async with s.get(url) as r:
            assert r.status == 200, await r.text()
            trace = (await r.json())["content"]
        assert trace.startswith("start.sh ran for NB_USER=jovyan\n"), trace
        # then start.sh exec'd the container's args: the credentials prelude, then the notebook
        assert "then exec: /bin/sh -c " in trace and "jupyterhub-singleuser" in trace, trace
        await stop(s, hub["api_url"], "alice", "stacks")
