"""The Jobs routes of the lab extension on the testbed: a real JupyterLab session at Vega reaches
the real intertwin service through the proxy (INTERTWIN_SERVICE_URL, set by the spawner) with its
own hub token. Answers, the service's errors and a followed log come through as the service
sends them. On the hub of helm-values' hub.config: alice logs in through Keycloak and asks the
requests' token of the hub on its Token page, as a user scripting the routes would."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from testbed.keycloak import USERS_PASSWORD

from ..waiting import wait_for_async
from .hubapi import checkin_login, spawn, stop, token_from_token_page

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]

SERVER = "jobs-api"


async def test_a_session_reaches_the_service_through_its_jobs_routes(
    checkin_hub: dict[str, Any],
) -> None:
    hub = checkin_hub
    session, status, page, url = await checkin_login(
        hub["url"], hub["idp_url"], "alice", USERS_PASSWORD
    )
    async with session:
        assert status == 200 and url.endswith("/hub/home"), f"{status} {url}: {page[:500]}"
        token = await token_from_token_page(session, hub["url"], "alice", "test_jobs_lab")
    admin = {"Authorization": f"token {hub['service_token']}"}
    async with aiohttp.ClientSession(headers=admin) as s:
        events = await spawn(
            s, hub["api_url"], "alice", SERVER, {"profile": "vega", "gpus": "gpu-2"}
        )
        assert events[-1].get("ready"), events
    lab = f"{hub['url']}/user/alice/{SERVER}/intertwin"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as u:

            async def get(path: str, **params: Any) -> tuple[int, Any]:
                async with u.get(f"{lab}/{path}", params=params) as r:
                    body = await (r.json() if r.content_type == "application/json" else r.text())
                    return r.status, body

            # the session knows where it runs, for the status bar
            st, site = await get("site")
            assert st == 200, site
            assert (site["name"], site["gpu_model"]) == ("Vega", "A100")

            # the list: this very session, as the service sees it
            async def mine() -> dict[str, Any] | None:
                st, page = await get("jobs", state="active", kind="notebook")
                assert st == 200, page
                return next((j for j in page["jobs"] if j["server_name"] == SERVER), None)

            job = await wait_for_async(mine, "the session's own job", 120)
            assert (job["user"], job["site_name"], job["resources"]["gpus"]) == ("alice", "Vega", 2)
            assert job["state"] == "running" and job["batch_job"], job
            st, one = await get(f"jobs/{job['id']}")
            assert st == 200 and one["id"] == job["id"]
            st, sites = await get("sites")
            assert st == 200 and "vega" in [x["site"] for x in sites["sites"]]

            # the service's errors, with its status and its words
            st, body = await get(f"jobs/{uuid.uuid4()}")
            assert (st, body["error"]) == (404, "not_found"), body
            st, body = await get(f"jobs/{uuid.uuid4()}/logs", follow="true")
            assert (st, body["error"]) == (404, "not_found"), body
            st, body = await get("jobs", kind="spaceship")
            assert (st, body["error"], body["param"]) == (400, "bad_request", "kind"), body

            # the last lines: what the server printed when it started
            st, text = await get(f"jobs/{job['id']}/logs", tail="1000")
            assert st == 200, text
            assert "intertwin_lab: Jobs API forwarding to the intertwin service at" in text

            # a followed log streams through: a line the server prints while the answer is open
            # arrives while it stays open
            marker = f"itw-marker-{uuid.uuid4().hex[:8]}"

            async def poke(path: str, delay: float = 0.0) -> None:
                # a 404 the server logs with its path (jupyter_server logs 4xx as warnings)
                await asyncio.sleep(delay)
                async with u.get(f"{hub['url']}/user/alice/{SERVER}/api/contents/{path}"):
                    pass

            async with u.get(
                f"{lab}/jobs/{job['id']}/logs",
                params={"follow": "true", "tail": "5"},
                timeout=aiohttp.ClientTimeout(total=120),
            ) as r:
                assert r.status == 200, await r.text()
                assert r.headers["Content-Type"].startswith("text/plain")
                seen = ""
                poking = asyncio.create_task(poke(marker, delay=1.0))
                async with asyncio.timeout(90):
                    async for chunk in r.content.iter_any():
                        seen += chunk.decode(errors="replace")
                        if marker in seen:
                            break
                await poking
                assert marker in seen, seen[-2000:]

            # the reader left: the next line ends the forwarding quietly (no error in the log)
            after = f"itw-after-{uuid.uuid4().hex[:8]}"
            await poke(after)

            async def logged_after() -> str | None:
                st, text = await get(f"jobs/{job['id']}/logs", tail="200")
                assert st == 200, text
                return text if after in text else None

            text = await wait_for_async(logged_after, "the line printed after the reader left")
            tail = text[text.index(after) :]
            assert "Traceback" not in tail and "Uncaught exception" not in tail, tail
    finally:
        async with aiohttp.ClientSession(headers=admin) as s:
            await stop(s, hub["api_url"], "alice", SERVER)
