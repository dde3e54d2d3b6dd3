"""The intertwin hub service end to end on the testbed: started by the real hub, reached through
the proxy at /services/intertwin/, fed by its own watch of the real cluster. Every answer is
checked against intertwin_hub/service/openapi.yaml."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from jsonschema import Draft202012Validator
from multidict import CIMultiDict

import intertwin_hub.service
from testbed.lifecycle import restart_hub

from ..waiting import wait_for_async
from .hubapi import start

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]

OPENAPI = yaml.safe_load(
    (Path(intertwin_hub.service.__file__).with_name("openapi.yaml")).read_text()
)


def _schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema (``nullable`` → a null alternative)."""
    if isinstance(node, list):
        return [_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _schema(v) for k, v in node.items() if k != "nullable"}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


def check(method: str, route: str, status: int, body: Any) -> None:
    op = OPENAPI["paths"][route][method.lower()]
    assert str(status) in op["responses"], f"{method} {route} answered {status}, undocumented"
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = OPENAPI["components"]["responses"][resp["$ref"].rsplit("/", 1)[-1]]
    content = resp["content"]
    if "application/json" not in content:
        assert isinstance(body, str)
        return
    schema = _schema(content["application/json"]["schema"])
    Draft202012Validator({**schema, "components": _schema(OPENAPI["components"])}).validate(body)


def route_of(path: str) -> str:
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] == "jobs" and len(parts) >= 2:
        return "/jobs/{id}" + ("/" + parts[2] if len(parts) > 2 else "")
    return "/" + "/".join(parts)


Api = Callable[..., Awaitable[tuple[int, Any]]]


def check_headers(method: str, route: str, status: int, headers: Mapping[str, str]) -> None:
    """The response headers openapi.yaml marks required are there, with a documented value."""
    resp = OPENAPI["paths"][route][method.lower()]["responses"][str(status)]
    for name, spec in (resp.get("headers") or {}).items():
        if spec.get("required"):
            assert name in headers, f"{method} {route} {status} without its {name} header"
        if name in headers and "enum" in spec["schema"]:
            assert headers[name] in spec["schema"]["enum"], (name, headers[name])


def client(base: str, token: str) -> Api:
    """``headers``: receives the answer's headers (case-insensitive: the proxy lowercases
    their names)."""

    async def call(
        method: str, path: str, headers: CIMultiDict[str] | None = None, **params: Any
    ) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as s,
            s.request(method, f"{base}/{path}", params=params) as r,
        ):
            text = await r.text()
            body: Any = text
            if r.content_type == "application/json":
                body = await r.json()
            check(method, route_of(path), r.status, body)
            check_headers(method, route_of(path), r.status, r.headers)
            if headers is not None:
                headers.extend(r.headers)
            return r.status, body

    return call


async def token_for(s: aiohttp.ClientSession, api: str, user: str) -> str:
    async with s.post(f"{api}/users/{user}/tokens", json={"note": "intertwin service test"}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])


async def cancel(api: Api, job_id: str) -> None:
    """Cancel through the API and wait until the job says cancelled."""
    st, body = await api("DELETE", f"jobs/{job_id}")
    assert st == 202, body

    async def cancelled() -> bool:
        _, job = await api("GET", f"jobs/{job_id}")
        return bool(job["state"] == "cancelled")

    await wait_for_async(cancelled, f"job {job_id} cancelled", 120)


async def isolation_matrix(
    alice: Api, a: dict[str, Any], bob: Api, b: dict[str, Any], oper: Api
) -> None:
    """Every endpoint with the other user's job: a 404 that says nothing more, and nothing of
    theirs in any list (whatever the filter), page or site count; the admin sees both."""
    since = "2000-01-01T00:00:00Z"
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for api, own, other in ((alice, a, b), (bob, b, a)):
        oid = other["id"]
        for method, path, params in (
            ("GET", f"jobs/{oid}", {}),
            ("GET", f"jobs/{oid}/logs", {}),
            ("GET", f"jobs/{oid}/logs", {"tail": "1"}),
            ("GET", f"jobs/{oid}/logs", {"follow": "true"}),
            ("DELETE", f"jobs/{oid}", {}),
        ):
            st, body = await api(method, path, **params)
            assert (st, body["error"]) == (404, "not_found"), (method, path, params, body)
            assert oid not in body["message"] and other["user"] not in body["message"]
        # an id that exists nowhere answers exactly the same
        st, nowhere = await api("GET", "jobs/00000000-0000-0000-0000-000000000000")
        st2, theirs = await api("GET", f"jobs/{oid}")
        assert (st, nowhere) == (st2, theirs)
        for params in (
            {},
            {"site": other["site"]},
            {"site": own["site"]},
            {"state": other["state"]},
            {"state": "active"},
            {"state": "running,cancelled,failed,succeeded,lost"},
            {"kind": "notebook"},
            {"since": since},
            {"until": until},
            {"since": since, "until": until, "site": other["site"], "kind": "notebook"},
            {"user": other["user"]},  # not an admin: ignored, own jobs only
        ):
            ids, users, cursor = [], set(), None
            while True:  # every page, one job a page: no page leaks either
                st, page = await api(
                    "GET", "jobs", limit="1", **params, **({"cursor": cursor} if cursor else {})
                )
                assert st == 200, page
                ids += [j["id"] for j in page["jobs"]]
                users |= {j["user"] for j in page["jobs"]}
                cursor = page["next"]
                if cursor is None:
                    break
            assert oid not in ids and users <= {own["user"]}, params
            if params.get("site", own["site"]) == own["site"] and "state" not in params:
                assert own["id"] in ids, params
        st, sites = await api("GET", "sites")
        assert st == 200
        text = json.dumps(sites)
        assert oid not in text and other["pod"] not in text and other["user"] not in text
        # the other's job is untouched by the refused cancel
        st, job = await oper("GET", f"jobs/{oid}")
        assert (st, job["state"]) == (200, "running")
    # the admin sees both, each one's on asking, and both logs
    st, page = await oper("GET", "jobs", limit="1000")
    assert {a["id"], b["id"]} <= {j["id"] for j in page["jobs"]}
    for job in (a, b):
        st, page = await oper("GET", "jobs", user=job["user"], limit="1000")
        assert job["id"] in {j["id"] for j in page["jobs"]}
        assert {j["user"] for j in page["jobs"]} == {job["user"]}
        st, _ = await oper("GET", f"jobs/{job['id']}/logs", tail="5")
        assert st == 200


async def test_two_users_at_two_sites_see_only_their_own(testbed: dict[str, Any]) -> None:
    hub = testbed["hub"]
    base = f"{hub['url']}/services/intertwin/api"
    admin_headers = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin_headers) as s:
        alice = client(base, await token_for(s, hub["api_url"], "alice"))
        bob = client(base, await token_for(s, hub["api_url"], "bob"))
        oper = client(base, await token_for(s, hub["api_url"], "oper"))
        for user, server, options in (
            ("alice", "svc-vega", {"profile": "vega"}),
            ("bob", "svc-kbfi", {"profile": "kbfi"}),
        ):
            status, text = await start(s, hub["api_url"], user, server, options)
            assert status in (201, 202), text
        try:

            async def running(api: Api, site: str) -> dict[str, Any] | None:
                st, page = await api("GET", "jobs", site=site, state="running")
                assert st == 200
                return next((j for j in page["jobs"] if j["server_name"].startswith("svc-")), None)

            a = await wait_for_async(lambda: running(alice, "vega"), "alice's Vega job", 300)
            b = await wait_for_async(lambda: running(bob, "kbfi"), "bob's KBFI job running", 300)
            assert (a["user"], a["kind"], a["site_name"], a["node"]) == (
                "alice",
                "notebook",
                "Vega",
                "vega-vk",
            )
            assert a["sentence"] == "running on vega-vk" and a["batch_job"]
            assert [h["state"] for h in a["history"]][-1] == "running"
            assert b["user"] == "bob" and b["site"] == "kbfi"

            await isolation_matrix(alice, a, bob, b, oper)

            # paging: one job a page, in order, until next is null
            ids, cursor = [], None
            while True:
                st, page = await alice(
                    "GET", "jobs", limit=1, **({"cursor": cursor} if cursor else {})
                )
                ids += [j["id"] for j in page["jobs"]]
                cursor = page["next"]
                if cursor is None:
                    break
            assert a["id"] in ids and len(ids) == len(set(ids))
            st, body = await alice("GET", "jobs", cursor="garbage")
            assert (st, body["param"]) == (400, "cursor")
            st, body = await alice("GET", "jobs", site="mars")
            assert (st, body["param"]) == (400, "site")

            # logs of the running notebook through the Kubernetes API
            async def logs() -> str | None:
                st, text = await alice("GET", f"jobs/{a['id']}/logs", tail=1000)
                assert st == 200, text
                # the site's log grows as the batch job writes it
                return str(text) if "is running at" in text else None

            text = await wait_for_async(logs, "the server's start in alice's notebook log", 120)
            assert "ServerApp" in text
            st, tail = await alice("GET", f"jobs/{a['id']}/logs", tail=1)
            assert st == 200 and len(tail.strip().splitlines()) == 1

            # sites: the virtual nodes are ready, Vega's GPUs counted
            st, body = await alice("GET", "sites")
            vega = next(x for x in body["sites"] if x["site"] == "vega")
            assert vega["ready"] is True and vega["note"] is None

            # cancel through the hub: the hub knows the server is gone, the job is cancelled
            await cancel(alice, a["id"])
            async with s.get(f"{hub['api_url']}/users/alice") as r:
                servers = (await r.json())["servers"]
                assert "svc-vega" not in servers or not servers["svc-vega"].get("ready")
            st, body = await alice("DELETE", f"jobs/{a['id']}")
            assert (st, body["error"]) == (409, "already_ended")
            st, body = await alice("GET", "jobs", state="cancelled", site="vega")
            assert [j["id"] for j in body["jobs"]].count(a["id"]) == 1
        finally:
            for user, server in (("alice", "svc-vega"), ("bob", "svc-kbfi")):
                async with s.delete(
                    f"{hub['api_url']}/users/{user}/servers/{server}", json={"remove": True}
                ) as r:
                    assert r.status in (202, 204, 404), await r.text()


async def test_no_token_no_service(testbed: dict[str, Any]) -> None:
    base = f"{testbed['hub']['url']}/services/intertwin/api"
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{base}/jobs", headers={"Authorization": "token nope"}) as r,
    ):
        body = await r.json()
        assert r.status == 403 and body["error"] == "forbidden"
        check("GET", "/jobs", 403, body)


async def test_hub_and_service_restart_mid_job_history_intact(testbed: dict[str, Any]) -> None:
    """The hub restarts (and with it the service it manages) while a job runs: the job is
    still there, once, with its history; still tracked, still cancellable."""
    hub = testbed["hub"]
    base = f"{hub['url']}/services/intertwin/api"
    async with aiohttp.ClientSession(
        headers={"Authorization": f"token {hub['service_token']}"}
    ) as s:
        token = await token_for(s, hub["api_url"], "alice")
        alice = client(base, token)
        status, text = await start(s, hub["api_url"], "alice", "svc-restart", {"profile": "psnc"})
        assert status in (201, 202), text

        async def running() -> dict[str, Any] | None:
            _, page = await alice("GET", "jobs", site="psnc", state="running")
            return next((j for j in page["jobs"] if j["server_name"] == "svc-restart"), None)

        try:
            before = await wait_for_async(running, "alice's PSNC job running", 300)

            async def hub_says_ready() -> bool:
                # the pod runs before the notebook answers; a hub restarted while the spawn is
                # still pending stops that half-started server (JupyterHub's own clean-up)
                async with s.get(f"{hub['api_url']}/users/alice") as r:
                    model = await r.json()
                return bool(model["servers"].get("svc-restart", {}).get("ready"))

            await wait_for_async(hub_says_ready, "the hub to say alice's server is ready", 300)
            # the history as it stands right before the restart: the site's virtual kubelet
            # may still move the job (queued, running again) while the notebook starts
            before = await wait_for_async(running, "alice's PSNC job running", 300)
            await asyncio.to_thread(restart_hub, Path(testbed["run_dir"]))

            async def answers() -> bool:
                # the proxy answers 503 until the new hub has started the service again
                async with (
                    aiohttp.ClientSession() as c,
                    c.get(f"{base}/jobs", headers={"Authorization": f"token {token}"}) as r,
                ):
                    return r.status == 200

            await wait_for_async(answers, "the service after the hub's restart", 120)
            st, after = await alice("GET", f"jobs/{before['id']}")
            assert st == 200 and after["state"] == "running"
            assert after["history"] == before["history"]
            st, page = await alice("GET", "jobs", site="psnc", limit=1000)
            assert [j["id"] for j in page["jobs"]].count(before["id"]) == 1
            await cancel(alice, before["id"])
        finally:
            async with s.delete(
                f"{hub['api_url']}/users/alice/servers/svc-restart", json={"remove": True}
            ) as r:
                assert r.status in (202, 204, 404), await r.text()
