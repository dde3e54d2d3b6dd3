"""User options through the real hub's REST API: refusals are 400s with a sentence and create no
pod, options validation tolerated spawn what was validated, the site's start timeout is the one
the hub waits for, and named servers are capped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from testbed.cluster import ControlPlane, Identity
from testbed.hub import NAMED_SERVER_LIMIT, start_hub
from testbed.procs import Supervisor

from .hubapi import follow, start, stop

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio]

CRAFTED = [
    ("bob", {"profile": "vega"}, "open only to members of the dev.intertwin.eu VO"),
    ("alice", {"profile": "ukri", "gpus": "²"}, "'²' is not a GPU choice at UKRI Cloud"),
    ("alice", {"profile": "vega", "gpus": "gpu-9"}, "offers at most 4 GPUs per session"),
    ("alice", {"profile": "ukri", "resources": "huge"}, "'huge' is not a CPU and Memory choice"),
    ("alice", {"profile": "ukri", "cpu_limit": 64}, "Unknown server option 'cpu_limit'"),
    (
        "alice",
        {"profile": "ukri", "image--unlisted-choice": "evil.example/miner:1"},
        "cannot run at UKRI Cloud",
    ),
    ("alice", {"profile": "ukri", "image": ["minimal"]}, "must be text, not list"),
    ("alice", {"profile": "kbfi", "gpus": "1"}, "has no GPUs"),
]


def api_session(hub: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})


async def pods_of(kube: Any, testbed: dict[str, Any], user: str, server: str) -> list[Any]:
    pods = await kube.list_namespaced_pod(
        testbed["control_plane"]["namespace"], label_selector=f"hub.jupyter.org/username={user}"
    )
    return [
        p for p in pods.items if p.metadata.annotations.get("hub.jupyter.org/servername") == server
    ]


async def remove(s: aiohttp.ClientSession, api: str, user: str, server: str) -> None:
    async with s.delete(f"{api}/users/{user}/servers/{server}", json={"remove": True}) as r:
        assert r.status in (202, 204, 404), await r.text()


async def test_crafted_options_are_400s_with_a_sentence_and_no_pod(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub = testbed["hub"]
    async with api_session(hub) as s:
        for i, (user, opts, says) in enumerate(CRAFTED):
            server = f"crafted-{i}"
            status, text = await start(s, hub["api_url"], user, server, opts)
            try:
                assert status == 400, (opts, status, text)
                message = json.loads(text)["message"]
                assert says in message and message.endswith("."), (opts, message)
                assert await pods_of(kube, testbed, user, server) == [], opts
            finally:
                await remove(s, hub["api_url"], user, server)


async def test_options_that_crashed_the_spawn_start_what_was_validated(
    testbed: dict[str, Any], kube: Any
) -> None:
    """These once passed validation and then made KubeSpawner fail with a 500."""
    hub = testbed["hub"]
    opts = {"profile": "ukri", "gpus": 1, "resources": " large ", "image": "minimal\n"}
    async with api_session(hub) as s:
        status, text = await start(s, hub["api_url"], "alice", "tolerated", opts)
        assert status in (201, 202), text
        try:
            events = await follow(s, hub["api_url"], "alice", "tolerated")
            assert events[-1].get("ready"), events
            [pod] = await pods_of(kube, testbed, "alice", "tolerated")
            c = pod.spec.containers[0]
            assert c.image == "quay.io/jupyter/minimal-notebook:2026-10-20"
            assert c.resources.limits["nvidia.com/gpu"] == "1"
            assert c.resources.limits["memory"] == str(32 * 2**30)
            async with s.get(f"{hub['api_url']}/users/alice") as r:
                saved = (await r.json())["servers"]["tolerated"]["user_options"]
            # the hub reports the canonical choice the spawner ran on
            assert saved == {
                "profile": "ukri",
                "resources": "large",
                "gpus": "1",
                "image": "minimal",
            }
        finally:
            await stop(s, hub["api_url"], "alice", "tolerated")


async def test_named_servers_are_capped(testbed: dict[str, Any]) -> None:
    hub = testbed["hub"]
    async with api_session(hub) as s:
        async with s.post(f"{hub['api_url']}/users/bob") as r:
            assert r.status in (201, 409), await r.text()
        async with s.get(f"{hub['api_url']}/users/bob") as r:
            existing = [n for n in (await r.json())["servers"] if n]
        # refused spawns are quick, and their servers count until deleted
        mine = [f"cap-{i}" for i in range(NAMED_SERVER_LIMIT - len(existing))]
        try:
            for name in mine:
                status, text = await start(s, hub["api_url"], "bob", name, {"profile": "vega"})
                assert status == 400 and "open only to members" in text, text
            status, text = await start(
                s, hub["api_url"], "bob", "one-too-many", {"profile": "ukri"}
            )
            assert status == 400, text
            assert f"already has the maximum of {NAMED_SERVER_LIMIT} named servers" in text
        finally:
            await asyncio.gather(
                *(remove(s, hub["api_url"], "bob", n) for n in [*mine, "one-too-many"])
            )


async def test_the_hub_waits_as_long_as_the_site_allows(testbed: dict[str, Any], kube: Any) -> None:
    """A second hub on the testbed whose own start_timeout (3 s) is shorter than KBFI's batch
    queue (12 s in tests): the spawn is ready only if the hub waits KBFI's 1800 s."""
    run = Path(testbed["run_dir"])
    cps = dict(testbed["control_plane"])
    cps["identities"] = {k: Identity(**v) for k, v in cps["identities"].items()}
    sup = Supervisor(run)
    hub = await asyncio.to_thread(
        start_hub,
        sup,
        ControlPlane(**cps),
        name="short-timeout",
        extra_config="c.KubeSpawner.start_timeout = 3\n",
    )
    try:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"token {hub.service_token}"}
        ) as s:
            status, text = await start(s, hub.api_url, "bob", "patient", {"profile": "kbfi"})
            assert status in (201, 202), text
            events = await follow(s, hub.api_url, "bob", "patient")
            messages = [e.get("message", "") for e in events]
            assert any(m.startswith("queued at KBFI") for m in messages), messages
            assert events[-1].get("ready"), messages
            await stop(s, hub.api_url, "bob", "patient")
    finally:
        for process in ("jupyterhub-short-timeout", "proxy-short-timeout"):
            sup.stop(process)
