"""InterTwinSpawner end to end: a real hub spawns every site profile on the testbed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from testbed.hub import DEMO_PASSWORD
from testbed.lifecycle import restart_hub

from .hubapi import follow, form_action, login, spawn, start, stop

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio]

PROFILES = [
    ("alice", "ukri", {"profile": "ukri", "resources": "small"}, "ukri-cloud"),
    ("alice", "vega", {"profile": "vega", "gpus": "gpu-2"}, "vega-vk"),
    ("alice", "psnc", {"profile": "psnc", "gpus": "proxima-1"}, "psnc-vk"),
    ("bob", "kbfi", {"profile": "kbfi"}, "kbfi-vk"),
]


def api_session(hub: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})


async def notebook_pod(kube: Any, testbed: dict[str, Any], user: str, server: str) -> Any:
    pods = await kube.list_namespaced_pod(
        testbed["control_plane"]["namespace"], label_selector=f"hub.jupyter.org/username={user}"
    )
    return next(
        p for p in pods.items if p.metadata.annotations.get("hub.jupyter.org/servername") == server
    )


async def test_every_profile_spawns_on_its_site(testbed: dict[str, Any], kube: Any) -> None:
    hub = testbed["hub"]
    async with api_session(hub) as s:
        runs = await asyncio.gather(
            *(spawn(s, hub["api_url"], u, name, opts) for u, name, opts, _ in PROFILES)
        )
        for (user, name, _, node), events in zip(PROFILES, runs, strict=True):
            assert events[-1].get("ready"), (name, events)
            pod = await notebook_pod(kube, testbed, user, name)
            # the real scheduler placed it; a wrong toleration would have left it Pending
            assert pod.spec.node_name == node
            messages = [e.get("message", "") for e in events]
            if node != "ukri-cloud":
                # offloaded jobs wait in the site queue, so the whole story is told; the cloud
                # pod is often ready before the progress stream is even opened
                site = {"vega-vk": "Vega", "psnc-vk": "PSNC", "kbfi-vk": "KBFI"}[node]
                assert f"submitted to {site} (node {node})" in messages, messages
                assert any(m.startswith(f"queued at {site} (batch job 1") for m in messages), (
                    messages
                )
                assert f"running on {node}" in messages, messages
            async with s.get(f"{hub['url']}/user/{user}/{name}/api/status") as r:
                assert r.status == 200, await r.text()
        vega = await notebook_pod(kube, testbed, "alice", "vega")
        assert vega.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
        assert "--gres=gpu:2" in vega.metadata.annotations["slurm-job.vk.io/flags"]
        # the hub token reached the notebook (it answered through the hub's auth) without
        # ever being in the pod spec: it is in a Secret that lives as long as the server
        ns = testbed["control_plane"]["namespace"]
        assert "JUPYTERHUB_API_TOKEN" not in {e.name for e in vega.spec.containers[0].env}
        [env] = [v.secret.secret_name for v in vega.spec.volumes if v.name == "intertwin-env"]
        secret = await kube.read_namespaced_secret(env, ns)
        assert "JUPYTERHUB_API_TOKEN" in secret.data
        await asyncio.gather(*(stop(s, hub["api_url"], u, n) for u, n, _, _ in PROFILES))
        with pytest.raises(ApiException) as gone:
            await kube.read_namespaced_secret(env, ns)
        assert gone.value.status == 404


async def test_non_member_is_refused_vega_through_the_api(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub = testbed["hub"]
    async with api_session(hub) as s:
        status, text = await start(s, hub["api_url"], "bob", "sneaky", {"profile": "vega"})
        assert status == 400, text
        assert "open only to members of the dev.intertwin.eu VO" in text
        status, text = await start(
            s, hub["api_url"], "alice", "greedy", {"profile": "vega", "gpus": "gpu-16"}
        )
        assert status == 400 and "at most 4 GPUs" in text, text
    pods = await kube.list_namespaced_pod(testbed["control_plane"]["namespace"])
    assert not [p for p in pods.items if p.metadata.name.endswith(("sneaky", "greedy"))]


async def test_form_shows_only_allowed_sites_and_spawns(testbed: dict[str, Any], kube: Any) -> None:
    url = testbed["hub"]["url"]
    bob = await login(url, "bob", DEMO_PASSWORD)
    async with bob, bob.get(f"{url}/hub/spawn/bob/formtest") as r:
        page = await r.text()
    assert "UKRI Cloud" in page and "Offload to KBFI" in page
    assert "Vega" not in page and "PSNC" not in page

    alice = await login(url, "alice", DEMO_PASSWORD)
    async with alice:
        async with alice.get(f"{url}/hub/spawn/alice/formtest") as r:
            page = await r.text()
        for text in (
            "Offload to Vega HPC - dev VO",
            "Offload Jupyterlab session on a GPU node at Vega supercomputer",
            "CPU and Memory",
            "Partition and GPUs",
            "Image",
            "Other image",
        ):
            assert text in page, text
        form = {
            "profile": "vega",
            "profile-option-vega--resources": "small",
            "profile-option-vega--gpus": "gpu-2",
            "profile-option-vega--image": "itwinai",
        }
        async with alice.post(f"{url}{form_action(page)}", data=form) as r:
            assert r.status == 200, await r.text()
    async with api_session(testbed["hub"]) as s:
        events = await follow(s, testbed["hub"]["api_url"], "alice", "formtest")
        assert events[-1].get("ready"), events
        pod = await notebook_pod(kube, testbed, "alice", "formtest")
        assert pod.spec.node_name == "vega-vk"
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
        await stop(s, testbed["hub"]["api_url"], "alice", "formtest")


async def test_server_survives_a_hub_restart(testbed: dict[str, Any], kube: Any) -> None:
    hub = testbed["hub"]
    async with api_session(hub) as s:
        events = await spawn(s, hub["api_url"], "alice", "durable", {"profile": "psnc"})
        assert events[-1].get("ready"), events
        before = await notebook_pod(kube, testbed, "alice", "durable")

        await asyncio.to_thread(restart_hub, Path(testbed["run_dir"]))

        async with s.get(f"{hub['api_url']}/users/alice") as r:
            server = (await r.json())["servers"]["durable"]
        assert server["ready"], server
        async with s.get(f"{hub['url']}/user/alice/durable/api/status") as r:
            assert r.status == 200, await r.text()
        after = await notebook_pod(kube, testbed, "alice", "durable")
        assert after.metadata.uid == before.metadata.uid
        await stop(s, hub["api_url"], "alice", "durable")


async def test_a_corrected_choice_starts_after_a_refusal_on_a_fresh_hub(
    testbed: dict[str, Any],
) -> None:
    """A user who picks a wrong option and tries again must get a server. On a freshly started
    hub the first (refused) spawn is the one that would start KubeSpawner's reflectors."""
    hub = testbed["hub"]
    await asyncio.to_thread(restart_hub, Path(testbed["run_dir"]))
    async with api_session(hub) as s:
        status, text = await start(
            s, hub["api_url"], "alice", "retry", {"profile": "vega", "gpus": "gpu:1"}
        )
        assert status == 400 and "Choose one of" in text, text
        async with s.delete(
            f"{hub['api_url']}/users/alice/servers/retry", json={"remove": True}
        ) as r:
            assert r.status in (204, 404), await r.text()
        events = await asyncio.wait_for(
            spawn(s, hub["api_url"], "alice", "retry", {"profile": "vega", "gpus": "gpu-1"}),
            timeout=120,
        )
        assert events[-1].get("ready"), events
        messages = [e.get("message", "") for e in events]
        # told in the order it happened: the VK's optimistic "running" at creation is not used
        queued = [m for m in messages if m.startswith("queued at Vega")]
        assert queued and "running on vega-vk" in messages, messages
        assert messages.index("running on vega-vk") > max(
            i for i, m in enumerate(messages) if m.startswith("queued at Vega")
        ), messages
        await stop(s, hub["api_url"], "alice", "retry")


async def test_a_full_site_is_explained_to_the_user(testbed: dict[str, Any], kube: Any) -> None:
    """PSNC's node has 16 H100s: with four 4-GPU sessions running, the real scheduler holds a
    fifth, and the user reads why in the progress stream instead of a silent wait."""
    hub = testbed["hub"]
    names = [f"h100-{i}" for i in range(5)]
    opts = {"profile": "psnc", "gpus": "proxima-4"}
    async with api_session(hub) as s:
        try:
            runs = await asyncio.gather(
                *(spawn(s, hub["api_url"], "alice", n, opts) for n in names[:4])
            )
            assert all(r[-1].get("ready") for r in runs), runs
            status, text = await start(s, hub["api_url"], "alice", names[4], opts)
            assert status == 202, text
            said: list[str] = []
            async with s.get(
                f"{hub['api_url']}/users/alice/servers/{names[4]}/progress",
                timeout=aiohttp.ClientTimeout(total=120),
            ) as r:
                async for raw in r.content:
                    line = raw.decode().strip()
                    if line.startswith("data:"):
                        said.append(json.loads(line[5:]).get("message", ""))
                        if "Insufficient nvidia.com/gpu" in said[-1]:
                            break
            assert said[-1].startswith("waiting for room at PSNC: "), said
            pod = await notebook_pod(kube, testbed, "alice", names[4])
            assert pod.status.phase == "Pending" and not pod.spec.node_name
        finally:
            await asyncio.gather(
                *(stop(s, hub["api_url"], "alice", n) for n in names), return_exceptions=True
            )
