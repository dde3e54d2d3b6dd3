"""The intertwin hub service through what goes wrong, on the real testbed (nothing mocked): a
batch cell that fails, the service restarting alone under a running notebook, the Vega site's
interLink plugin down for a while, a log followed until the job is cancelled, and a pod that
vanishes while the service is down. One Vega notebook serves the tests that need a session."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import ValidationError
from kubernetes_asyncio.client.exceptions import ApiException
from multidict import CIMultiDict

from intertwin_hub.labels import (
    ANNOTATION_CELL_ID,
    ANNOTATION_NOTEBOOK_PATH,
    ANNOTATION_USER,
    KIND_BATCH_CELL,
    LABEL_USER,
    workload_labels,
)
from intertwin_hub.service.index import LAST_LINES
from intertwin_hub.spawner.pod import offload_tolerations
from testbed.hub import service_pid
from testbed.lifecycle import restart_hub
from testbed.procs import Supervisor, alive
from testbed.state import REPO

from ..waiting import wait_for_async
from .hubapi import start
from .podtimes import watching
from .test_service import Api, cancel, client, token_for

pytestmark = [pytest.mark.testbed, pytest.mark.asyncio, pytest.mark.timeout(900)]

SERVER = "svc-ops"
LOG_SOURCE = "Intertwin-Log-Source"
# how long Vega's plugin stays down
OUTAGE_SECONDS = 60


def base_of(testbed: dict[str, Any]) -> str:
    return f"{testbed['hub']['url']}/services/intertwin/api"


def admin(testbed: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"token {testbed['hub']['service_token']}"}
    )


async def alice_api(testbed: dict[str, Any]) -> tuple[Api, str]:
    """alice's client, once the service answers (a hub just started routes it a moment after
    it answers itself; until then the proxy's 404 page is no API answer)."""
    async with admin(testbed) as s:
        token = await token_for(s, testbed["hub"]["api_url"], "alice")
    alice = client(base_of(testbed), token)

    async def answers() -> bool:
        try:
            st, _ = await alice("GET", "sites")
        except (AssertionError, ValidationError, aiohttp.ClientError):
            return False
        return st == 200

    await wait_for_async(answers, "the intertwin service to answer", 120)
    return alice, token


def batch_cell(name: str, site_node: str, script: str) -> dict[str, Any]:
    """A pod as a batch cell of alice's is labelled (the spawner's labels, kind batch-cell,
    the cell's origin), offloaded to the site's node as the spawner offloads."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {**workload_labels("vega", KIND_BATCH_CELL), LABEL_USER: "alice"},
            "annotations": {
                ANNOTATION_USER: "alice",
                ANNOTATION_NOTEBOOK_PATH: "work/era5.ipynb",
                ANNOTATION_CELL_ID: "cell-7",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": site_node},
            "tolerations": offload_tolerations(),
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "cell",
                    "image": "python:3.12-slim",
                    "command": ["/bin/sh", "-c", script],
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "1", "memory": "1Gi"},
                    },
                }
            ],
        },
    }


async def delete_pod(kube: Any, name: str, ns: str) -> None:
    try:
        await kube.delete_namespaced_pod(name, ns, grace_period_seconds=0)
    except ApiException as e:
        if e.status != 404:
            raise


async def pod_gone(kube: Any, name: str, ns: str) -> bool:
    try:
        await kube.read_namespaced_pod(name, ns)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


async def test_a_failed_batch_cell_shows_its_exit_code_and_last_lines(
    testbed: dict[str, Any], kube: Any
) -> None:
    """The cell's container exits 3 after 80 lines: the job is failed with exit code 3, its
    reason and its last 50 lines; once the pod is deleted its log answers those lines."""
    ns = testbed["control_plane"]["namespace"]
    alice, _ = await alice_api(testbed)
    name = f"cell-alice-{uuid.uuid4().hex[:6]}"
    script = "for i in $(seq 1 80); do echo cell line $i; done; echo the end >&2; exit 3"
    pod = await kube.create_namespaced_pod(ns, batch_cell(name, "vega-vk", script))
    uid = pod.metadata.uid
    try:

        async def kept() -> dict[str, Any] | None:
            st, job = await alice("GET", f"jobs/{uid}")
            if st != 200 or job["state"] != "failed" or job["last_lines"] is None:
                return None
            return dict(job)

        job = await wait_for_async(kept, "the failed cell with its last lines", 180)
        assert (job["kind"], job["site"], job["user"]) == (KIND_BATCH_CELL, "vega", "alice")
        assert (job["notebook_path"], job["cell_id"]) == ("work/era5.ipynb", "cell-7")
        # the reason as the site's virtual kubelet words it ("Error: 3")
        assert job["exit_code"] == 3 and job["reason"].startswith("Error")
        assert "exit code 3" in job["sentence"] and job["batch_job"]
        lines = job["last_lines"]
        assert len(lines) == LAST_LINES and lines[-1] == "the end", lines
        assert lines[0] == f"cell line {80 - LAST_LINES + 2}"
        # the list tells the same end, without the lines
        st, page = await alice("GET", "jobs", state="failed", kind=KIND_BATCH_CELL)
        listed = next(j for j in page["jobs"] if j["id"] == uid)
        assert listed["exit_code"] == 3 and "last_lines" not in listed

        # while the pod is there, the log is the site's own
        headers: CIMultiDict[str] = CIMultiDict()
        st, text = await alice("GET", f"jobs/{uid}/logs", headers=headers, tail="3")
        assert (st, headers[LOG_SOURCE]) == (200, "live")
        assert text.splitlines() == ["cell line 79", "cell line 80", "the end"]

        await delete_pod(kube, name, ns)

        async def stored() -> tuple[str, CIMultiDict[str]] | None:
            h: CIMultiDict[str] = CIMultiDict()
            st, text = await alice("GET", f"jobs/{uid}/logs", headers=h, tail="5")
            return (text, h) if st == 200 and h[LOG_SOURCE] == "stored-tail" else None

        text, headers = await wait_for_async(stored, "the stored tail once the pod is gone", 60)
        assert text.splitlines() == [f"cell line {i}" for i in range(77, 81)] + ["the end"]
        # follow of an ended job: the stored lines, and the answer ends
        st, text = await alice("GET", f"jobs/{uid}/logs", follow="true")
        assert st == 200 and len(text.splitlines()) == LAST_LINES
        st, after = await alice("GET", f"jobs/{uid}")
        assert (after["state"], after["exit_code"], after["last_lines"]) == ("failed", 3, lines)
    finally:
        await delete_pod(kube, name, ns)


def _hub_ready(model: dict[str, Any]) -> bool:
    return bool((model.get("servers") or {}).get(SERVER, {}).get("ready"))


@pytest.fixture(scope="module")
def vega_session(testbed: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """alice's notebook at Vega, running and ready, shared by the tests below (the last one
    cancels it); removed at the end whatever happened."""
    api_url = testbed["hub"]["api_url"]

    async def up() -> dict[str, Any]:
        alice, token = await alice_api(testbed)
        async with admin(testbed) as s:
            status, text = await start(s, api_url, "alice", SERVER, {"profile": "vega"})
            assert status in (201, 202), text

            async def running() -> dict[str, Any] | None:
                _, page = await alice("GET", "jobs", site="vega", state="running")
                return next((j for j in page["jobs"] if j["server_name"] == SERVER), None)

            job = await wait_for_async(running, "alice's Vega notebook running", 300)

            async def ready() -> bool:
                async with s.get(f"{api_url}/users/alice") as r:
                    return _hub_ready(await r.json())

            await wait_for_async(ready, "the hub to say alice's Vega server is ready", 300)
        return {"token": token, "job": job}

    async def remove() -> None:
        async with (
            admin(testbed) as s,
            s.delete(f"{api_url}/users/alice/servers/{SERVER}", json={"remove": True}) as r,
        ):
            assert r.status in (202, 204, 404), await r.text()

    def run(coro: Any) -> Any:
        # a loop of its own, in a thread of its own: pytest-asyncio owns this thread's loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    try:
        yield run(up())
    finally:
        run(remove())


async def notebook_answers(testbed: dict[str, Any], token: str) -> bool:
    """The notebook server itself answers through the proxy."""
    url = f"{testbed['hub']['url']}/user/alice/{SERVER}/api/status"
    async with (
        aiohttp.ClientSession() as s,
        s.get(url, headers={"Authorization": f"token {token}"}) as r,
    ):
        return r.status == 200


async def kill_the_service(sup: Supervisor, api: Api) -> None:
    """SIGKILL the hub's intertwin service; return once the hub has started it again and it
    answers (a managed service that exits is restarted by the hub)."""
    old = service_pid(sup)
    assert old is not None
    os.kill(old, signal.SIGKILL)

    def restarted() -> int | None:
        pid = service_pid(sup)
        return pid if pid is not None and pid != old else None

    async def answers() -> bool:
        try:
            st, _ = await api("GET", "sites")
        except (AssertionError, aiohttp.ClientError):
            return False  # the proxy's 503 page while the service is down is no API answer
        return st == 200

    await wait_for_async(lambda: asyncio.to_thread(restarted), "the hub to restart it", 120)
    await wait_for_async(answers, "the restarted service to answer", 120)


async def test_the_service_restarting_alone_disturbs_nothing(
    testbed: dict[str, Any], vega_session: dict[str, Any]
) -> None:
    """The service process dies mid-job and the hub starts it again (a managed service that
    exits is restarted by the hub): the job is there once with the same history, still
    running; the hub and the notebook never noticed."""
    alice = client(base_of(testbed), vega_session["token"])
    sup = Supervisor(Path(testbed["run_dir"]))
    job = vega_session["job"]
    st, before = await alice("GET", f"jobs/{job['id']}")
    assert st == 200 and before["state"] == "running"
    hub_pid = sup.pids()["jupyterhub"]
    await kill_the_service(sup, alice)
    assert sup.pids()["jupyterhub"] == hub_pid and alive(hub_pid)

    async def listed_once() -> dict[str, Any] | None:
        st, page = await alice("GET", "jobs", limit="1000")
        assert st == 200, page
        mine = [j for j in page["jobs"] if j["id"] == job["id"]]
        assert len(mine) <= 1, mine
        return mine[0] if mine else None

    after = await wait_for_async(listed_once, "the job in the list after the restart", 60)
    assert after["state"] == "running" and after["history"] == before["history"]
    assert after["submitted"] == before["submitted"] and after["started"] == before["started"]
    async with admin(testbed) as s, s.get(f"{testbed['hub']['api_url']}/users/alice") as r:
        assert _hub_ready(await r.json())
    assert await notebook_answers(testbed, vega_session["token"])


async def test_vega_plugin_down_the_node_note_comes_and_goes(
    testbed: dict[str, Any], vega_session: dict[str, Any]
) -> None:
    """Vega's interLink plugin stops: its node goes NotReady, /sites and the Vega job say so
    (the job keeps its state); once the plugin is back the note goes away."""
    alice = client(base_of(testbed), vega_session["token"])
    job_id = vega_session["job"]["id"]
    sup = Supervisor(Path(testbed["run_dir"]))
    name = "plugin-vega"
    recorded = json.loads((sup.pid_dir / f"{name}.pid").read_text())
    root = next(s["root"] for s in testbed["sites"] if s["slug"] == "vega")

    async def vega() -> dict[str, Any]:
        st, body = await alice("GET", "sites")
        assert st == 200
        return dict(next(x for x in body["sites"] if x["site"] == "vega"))

    sup.stop(name)
    stopped = time.monotonic()
    try:

        async def troubled() -> tuple[dict[str, Any], dict[str, Any]] | None:
            site = await vega()
            _, job = await alice("GET", f"jobs/{job_id}")
            if site["ready"] is False and site["note"] and job["note"]:
                return site, job
            return None

        # the virtual kubelet pings interLink every 30 s; a failed ping makes the node NotReady
        site, job = await wait_for_async(troubled, "Vega's node not ready in the service", 180)
        assert site["note"].startswith("Vega's interLink node is not ready since ")
        assert site["note"].endswith("your session keeps running for up to 1 h")
        assert job["note"] == site["note"] and job["state"] == "running"
        # down for about a minute in all: the job keeps its state and its note throughout
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            _, job = await alice("GET", f"jobs/{job_id}")
            assert (job["state"], job["note"]) == ("running", site["note"]), job
            await asyncio.sleep(2)
    finally:
        sup.start(name, recorded["argv"], cwd=Path(root), env={"PYTHONPATH": str(REPO)})

    async def well() -> dict[str, Any] | None:
        # the VK's ping EOF flap can make the node NotReady for ~30 s on its own: wait
        site = await vega()
        _, job = await alice("GET", f"jobs/{job_id}")
        ok = site["ready"] is True and site["note"] is None and job["note"] is None
        return dict(job) if ok else None

    job = await wait_for_async(well, "Vega's node ready again, the note gone", 240)
    assert job["state"] == "running"
    assert await notebook_answers(testbed, vega_session["token"])


async def test_follow_streams_until_the_job_is_cancelled(
    testbed: dict[str, Any], vega_session: dict[str, Any]
) -> None:
    """``follow=true`` on the running notebook: a line the notebook writes while the answer is
    open arrives on it; the cancel ends the answer; the cancelled job keeps its last lines."""
    token = vega_session["token"]
    alice = client(base_of(testbed), token)
    job_id = vega_session["job"]["id"]
    marker = f"followed-{uuid.uuid4().hex[:8]}"
    received: list[str] = []
    opened = asyncio.Event()

    async def follow() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as s,
            s.get(
                f"{base_of(testbed)}/jobs/{job_id}/logs",
                params={"follow": "true", "tail": "1"},
                timeout=aiohttp.ClientTimeout(total=600),
            ) as r,
        ):
            opened.set()
            async for chunk in r.content.iter_any():
                received.append(chunk.decode(errors="replace"))
            return r.status, r.headers.get(LOG_SOURCE, "")

    async def vega_ready() -> bool:
        # a follow opened while the site's plugin is only just back was seen to get no lines
        _, body = await alice("GET", "sites")
        return bool(next(x for x in body["sites"] if x["site"] == "vega")["ready"])

    await wait_for_async(vega_ready, "Vega's node ready", 240)
    reader = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(opened.wait(), 60)

        async def arrived() -> bool:
            # a 404 is one warning line in the notebook's log, naming the path asked for
            url = f"{testbed['hub']['url']}/user/alice/{SERVER}/api/contents/{marker}"
            async with (
                aiohttp.ClientSession() as s,
                s.get(url, headers={"Authorization": f"token {token}"}) as r,
            ):
                assert r.status == 404
            return marker in "".join(received)

        await wait_for_async(arrived, "the notebook's new line on the open answer", 120, 3)
        assert not reader.done()

        await cancel(alice, job_id)
        status, source = await asyncio.wait_for(reader, 120)
        assert (status, source) == (200, "live")
    finally:
        reader.cancel()
    # the cancel kept the lines the notebook wrote before it
    st, job = await alice("GET", f"jobs/{job_id}")
    assert st == 200 and job["state"] == "cancelled" and job["last_lines"]
    assert any(marker in line for line in job["last_lines"])

    async def stored() -> str | None:
        h: CIMultiDict[str] = CIMultiDict()
        st, text = await alice("GET", f"jobs/{job_id}/logs", headers=h)
        return str(text) if st == 200 and h[LOG_SOURCE] == "stored-tail" else None

    assert marker in await wait_for_async(stored, "the stored tail of the cancelled job", 120)


async def test_a_pod_gone_while_the_service_was_down_is_lost(
    testbed: dict[str, Any], kube: Any
) -> None:
    """The hub (and with it the service it manages) is down while a running cell's pod is
    deleted for good: on its return the service finds the job active in its history and gone
    from the cluster, and says lost."""
    ns = testbed["control_plane"]["namespace"]
    run_dir = Path(testbed["run_dir"])
    sup = Supervisor(run_dir)
    alice, _ = await alice_api(testbed)
    name = f"cell-alice-{uuid.uuid4().hex[:6]}"
    pod = await kube.create_namespaced_pod(
        ns, batch_cell(name, "vega-vk", "echo working; sleep 600")
    )
    uid = pod.metadata.uid
    try:

        async def running() -> bool:
            st, job = await alice("GET", f"jobs/{uid}")
            return st == 200 and job["state"] == "running"

        await wait_for_async(running, "the cell running", 180)
        old = service_pid(sup)
        assert old is not None
        sup.stop("jupyterhub")
        # the service does not outlive its hub
        await wait_for_async(lambda: asyncio.to_thread(lambda: not alive(old)), "service", 30)
        await delete_pod(kube, name, ns)
        await wait_for_async(lambda: pod_gone(kube, name, ns), "the pod gone", 60)
    finally:
        if "jupyterhub" not in sup.pids():
            await asyncio.to_thread(restart_hub, run_dir)
        await delete_pod(kube, name, ns)

    async def lost() -> dict[str, Any] | None:
        try:
            st, job = await alice("GET", f"jobs/{uid}")
        except (AssertionError, aiohttp.ClientError):
            return None  # the proxy's 503 page until the hub has started the service
        return dict(job) if st == 200 and job["state"] == "lost" else None

    job = await wait_for_async(lost, "the job lost after the service's return", 120)
    assert job["sentence"] == "lost at Vega: the job vanished while nobody watched"
    assert [h["state"] for h in job["history"]][-1] == "lost" and job["finished"]
    st, body = await alice("GET", f"jobs/{uid}/logs")
    assert (st, body["error"]) == (409, "already_ended")


LEDGER_SERVER = "ledger-restart"


async def test_a_restart_mid_run_counts_the_notebook_once_to_the_second(
    testbed: dict[str, Any], kube: Any
) -> None:
    """alice's Vega notebook runs; the service is killed and restarted by the hub; then the
    notebook is stopped. The usage ledger has one row for it, and its start, end and figures
    are the pod's own (its container's startedAt and finishedAt, its limits) to the second."""
    ns = testbed["control_plane"]["namespace"]
    api_url = testbed["hub"]["api_url"]
    alice, _ = await alice_api(testbed)
    sup = Supervisor(Path(testbed["run_dir"]))
    try:
        async with admin(testbed) as s:
            status, text = await start(s, api_url, "alice", LEDGER_SERVER, {"profile": "vega"})
            assert status in (201, 202), text

        async def running() -> dict[str, Any] | None:
            _, page = await alice("GET", "jobs", site="vega", state="running")
            return next((j for j in page["jobs"] if j["server_name"] == LEDGER_SERVER), None)

        job = await wait_for_async(running, "alice's Vega notebook running", 300)
        async with watching(kube, ns, job["pod"]) as pod:
            await asyncio.wait_for(pod.running.wait(), 60)
            assert pod.started is not None
            await kill_the_service(sup, alice)

            async def row() -> dict[str, Any] | None:
                period = {"from": (pod.started - timedelta(minutes=1)).isoformat()}
                _, top = await alice("GET", "usage/jobs", limit=1000, **period)
                mine = [j for j in top["jobs"] if j["id"] == job["id"]]
                assert len(mine) <= 1, mine
                return mine[0] if mine else None

            live = await wait_for_async(row, "the running notebook in the ledger", 60)
            assert live["end"] is None
            assert abs((datetime.fromisoformat(live["start"]) - pod.started).total_seconds()) <= 1
            await cancel(alice, job["id"])
            await asyncio.wait_for(pod.gone.wait(), 120)
    finally:
        async with (
            admin(testbed) as s,
            s.delete(f"{api_url}/users/alice/servers/{LEDGER_SERVER}", json={"remove": True}) as r,
        ):
            assert r.status in (202, 204, 404), await r.text()

    assert pod.finished is not None, "the virtual kubelet told no end of the deleted pod"
    wall = (pod.finished - pod.started).total_seconds()
    cpu, gpus = float(pod.limits["cpu"]), int(pod.limits["nvidia.com/gpu"])
    period = {
        "from": (pod.started - timedelta(minutes=1)).isoformat(),
        "to": (pod.finished + timedelta(minutes=1)).isoformat(),
    }

    async def closed() -> dict[str, Any] | None:
        _, top = await alice("GET", "usage/jobs", limit=1000, **period)
        mine = [j for j in top["jobs"] if j["id"] == job["id"]]
        assert len(mine) == 1, mine
        return mine[0] if mine[0]["end"] else None

    got = await wait_for_async(closed, "the notebook's ledger row closed", 60)
    assert abs((datetime.fromisoformat(got["start"]) - pod.started).total_seconds()) <= 1
    assert abs((datetime.fromisoformat(got["end"]) - pod.finished).total_seconds()) <= 1
    assert abs(got["wall_seconds"] - wall) <= 1 and not got["estimated"]
    assert got["cpu"] == cpu and got["gpus"] == gpus
    assert abs(got["cpu_core_hours"] - cpu * wall / 3600) < 0.001
    assert abs(got["gpu_hours"]["A100"] - gpus * wall / 3600) < 0.001
    st, text = await alice("GET", "usage.csv", **period)
    assert st == 200 and [r["id"] for r in csv.DictReader(io.StringIO(text))].count(job["id"]) == 1
    # one row in the service's own database, whatever the restart re-read
    db = Path(testbed["run_dir"]) / "hub" / "intertwin-service.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM usage_ledger WHERE uid = ?", (job["id"],)
        ).fetchone()
    assert n == 1
