"""Spawn progress in the site's words, from the pod as interLink reports it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.utils import iterate_until
from kubespawner import KubeSpawner

from intertwin_hub.spawner import spawner as spawner_module
from intertwin_hub.status import event_sentence, progress_sentence

from .helpers import spawner


def pod(
    phase: str, state: dict[str, Any] | None, job: str | None = None, node: str = "vega-vk"
) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {"JobID": job} if job else {}},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "notebook", "state": state}] if state else [],
        },
    }


def test_queued_while_the_vk_already_says_running() -> None:
    queued = pod(
        "Running", {"waiting": {"reason": "Queued", "message": "queued at Vega (job 1001)"}}
    )
    assert progress_sentence("Vega", queued) == "queued at Vega (batch job 1001)"


def test_a_job_id_without_running_containers_is_queued() -> None:
    assert (
        progress_sentence("PSNC", pod("Pending", None, job="77")) == "queued at PSNC (batch job 77)"
    )


def test_running_only_when_every_container_runs() -> None:
    assert (
        progress_sentence("Vega", pod("Running", {"running": {}}, job="1")) == "running on vega-vk"
    )


def test_the_vks_optimistic_running_while_pending_is_not_running() -> None:
    # CreatePod marks the containers running before the site answers (phase still Pending)
    assert progress_sentence("Vega", pod("Pending", {"running": {}})) is None
    assert (
        progress_sentence("Vega", pod("Pending", {"running": {}}, job="1003"))
        == "queued at Vega (batch job 1003)"
    )
    # the VK waits for the env Secret (created right after the pod) in its phase Initializing
    assert progress_sentence("Vega", pod("Initializing", {"running": {}})) is None


def test_ended_and_refused() -> None:
    ended = pod("Running", {"terminated": {"reason": "Error", "exitCode": 3}})
    assert progress_sentence("KBFI", ended) == "KBFI ended the session: Error (exit code 3)."
    failed = {
        "status": {
            "phase": "Failed",
            "reason": "ProviderFailed",
            "message": "sbatch: invalid account",
        }
    }
    assert (
        progress_sentence("Vega", failed)
        == "Vega refused the session: ProviderFailed sbatch: invalid account"
    )


def test_nothing_to_say_before_the_site_answers() -> None:
    assert progress_sentence("Vega", pod("Pending", None)) is None
    assert progress_sentence("Vega", None) is None


def test_scheduler_events() -> None:
    assert (
        event_sentence(
            "Vega",
            {
                "reason": "Scheduled",
                "message": "Successfully assigned intertwin/jupyter-a to vega-vk",
            },
        )
        == "submitted to Vega (node vega-vk)"
    )
    assert event_sentence("Vega", {"reason": "Pulled", "message": "x"}) is None


# --- progress lines as a progress page reads them, through JupyterHub's progress plumbing ------


def site_pod(
    node: str, statuses: list[dict[str, Any]], phase: str = "Running", job: str = "7"
) -> dict[str, Any]:
    return {
        "metadata": {"annotations": {"JobID": job}, "uid": "u"},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "podIP": "127.0.0.9", "containerStatuses": statuses},
    }


QUEUED = [
    {
        "name": "notebook",
        "ready": False,
        "state": {"waiting": {"reason": "Queued", "message": "queued at Vega (job 7)"}},
    }
]
RUNNING = [{"name": "notebook", "ready": True, "state": {"running": {}}}]


@pytest.mark.asyncio
@pytest.mark.parametrize("final", [RUNNING, []], ids=["containers-running", "no-statuses"])
@pytest.mark.parametrize("page_delay", [0.0, 0.05], ids=["fast-page", "slow-page"])
async def test_the_running_step_reaches_the_page_when_ready_follows_queued_at_once(
    monkeypatch: pytest.MonkeyPatch, final: list[dict[str, Any]], page_delay: float
) -> None:
    """The pod goes from queued to ready between two looks, and the server answers at once:
    the page still reads "running on vega-vk" before JupyterHub stops reading progress, also
    when the page takes its time to receive each line (``page_delay``, a slow connection).
    KubeSpawner's pod start and reflector are stood in for (no cluster in unit tests; the
    testbed tests run the real ones); the hub side is JupyterHub's own iterate_until and
    _generate_progress, as its progress API handler drives them."""
    s = spawner(progress_poll_interval=0.05, events_enabled=False)
    s.user_options = {"profile": "vega"}
    s.apply_catalogue_options()
    reflector = SimpleNamespace(pods={})
    monkeypatch.setitem(KubeSpawner.reflectors, s._get_reflector_key("pods"), reflector)
    key = f"{s.namespace}/{s.pod_name}"
    messages: list[str] = []
    page_read_queued = asyncio.Event()

    async def kubespawner_start(self: KubeSpawner) -> str:
        reflector.pods[key] = site_pod("vega-vk", QUEUED)
        # the site keeps it queued until the page has shown that
        await page_read_queued.wait()
        # ready as KubeSpawner judges it (phase Running, pod IP, every container ready)
        reflector.pods[key] = site_pod("vega-vk", final)
        assert self.is_pod_running(reflector.pods[key])
        return "http://127.0.0.9:8888"

    monkeypatch.setattr(KubeSpawner, "_start", kubespawner_start)
    s._spawn_pending = True

    async def hub_spawn() -> None:
        # JupyterHub: wait for start(), then the server answers at once
        await s.start()

    spawn_future = asyncio.ensure_future(hub_spawn())
    async for event in iterate_until(spawn_future, s._generate_progress()):
        messages.append(event.get("message"))
        if messages[-1].startswith("queued at Vega"):
            page_read_queued.set()
        await asyncio.sleep(page_delay)  # the progress handler's write and flush
    await spawn_future
    queued = messages.index("queued at Vega (batch job 7)")
    assert "running on vega-vk" in messages[queued + 1 :], messages


@pytest.mark.asyncio
async def test_the_patience_note_gives_the_sites_limit_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub's own start_timeout is 180 s; KBFI allows 1800 s, and that is what the hub waits
    for (applied before start()) and what the user reads."""
    monkeypatch.setattr(spawner_module, "PATIENCE_SECONDS", 0.2)
    s = spawner(progress_poll_interval=0.05, events_enabled=False, start_timeout=180)
    s.user_options = {"profile": "kbfi"}
    await s._run_apply_user_options(s.user_options)
    assert s.start_timeout == 1800
    reflector = SimpleNamespace(pods={})
    monkeypatch.setitem(KubeSpawner.reflectors, s._get_reflector_key("pods"), reflector)
    messages: list[str] = []
    page_read_note = asyncio.Event()

    async def kubespawner_start(self: KubeSpawner) -> str:
        reflector.pods[f"{s.namespace}/{s.pod_name}"] = site_pod("kbfi-vk", QUEUED)
        await page_read_note.wait()
        reflector.pods[f"{s.namespace}/{s.pod_name}"] = site_pod("kbfi-vk", RUNNING)
        return "http://127.0.0.9:8888"

    monkeypatch.setattr(KubeSpawner, "_start", kubespawner_start)
    s._spawn_pending = True
    spawn_future = asyncio.ensure_future(s.start())
    async for event in iterate_until(spawn_future, s._generate_progress()):
        messages.append(event.get("message"))
        if messages[-1].startswith("still waiting for KBFI"):
            page_read_note.set()
    await spawn_future
    note = next(m for m in messages if m.startswith("still waiting for KBFI"))
    assert note.endswith("(the limit is 1800 s)"), note
    assert messages[-1] == "running on kbfi-vk", messages
