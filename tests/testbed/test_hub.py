"""A real JupyterHub on the testbed spawns JupyterLab on an interLink virtual node."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .hubapi import spawn

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio]


async def test_user_spawns_jupyterlab_on_vega_via_rest_api(
    testbed: dict[str, Any], kube: Any
) -> None:
    hub = testbed["hub"]
    headers = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        events = await spawn(s, hub["api_url"], "alice", "vega1", {"profile": "vega"})
        assert events[-1].get("ready"), events
        pods = await kube.list_namespaced_pod(
            testbed["control_plane"]["namespace"], label_selector="hub.jupyter.org/username=alice"
        )
        pod = next(p for p in pods.items if p.metadata.name.endswith("vega1"))
        assert pod.spec.node_name == "vega-vk"
        assert pod.metadata.labels["intertwin.eu/site"] == "vega"

        # JupyterLab answers through configurable-http-proxy at the user's URL
        async with s.get(f"{hub['url']}/user/alice/vega1/api/status") as r:
            assert r.status == 200, await r.text()
            status = await r.json()
            assert "started" in status

        # the lab extra's single-user defaults: a managed hub asks no news or update question
        notification = "lab/api/settings/@jupyterlab/apputils-extension:notification"
        async with s.get(f"{hub['url']}/user/alice/vega1/{notification}") as r:
            assert r.status == 200, await r.text()
            # overrides are the schema's defaults (a user may still change them)
            props = (await r.json())["schema"]["properties"]
            assert props["fetchNews"]["default"] == "false", props["fetchNews"]
            assert props["checkForUpdates"]["default"] is False

        async with s.delete(
            f"{hub['api_url']}/users/alice/servers/vega1", json={"remove": True}
        ) as r:
            assert r.status in (202, 204), await r.text()
