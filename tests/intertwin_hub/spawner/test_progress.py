"""Spawn progress in the site's words, from the pod as interLink reports it."""

from __future__ import annotations

from typing import Any

from intertwin_hub.spawner.spawner import _event_message, _pod_message


def pod(phase: str, state: dict[str, Any] | None, job: str | None = None,
        node: str = "vega-vk") -> dict[str, Any]:
    return {"metadata": {"annotations": {"JobID": job} if job else {}},
            "spec": {"nodeName": node},
            "status": {"phase": phase,
                       "containerStatuses": [{"name": "notebook", "state": state}] if state
                       else []}}


def test_queued_while_the_vk_already_says_running() -> None:
    queued = pod("Running", {"waiting": {"reason": "Queued",
                                         "message": "queued at Vega (job 1001)"}})
    assert _pod_message("Vega", queued) == "queued at Vega (batch job 1001)"


def test_a_job_id_without_running_containers_is_queued() -> None:
    assert _pod_message("PSNC", pod("Pending", None, job="77")) == \
        "queued at PSNC (batch job 77)"


def test_running_only_when_every_container_runs() -> None:
    assert _pod_message("Vega", pod("Running", {"running": {}}, job="1")) == \
        "running on vega-vk"


def test_the_vks_optimistic_running_while_pending_is_not_running() -> None:
    # CreatePod marks the containers running before the site answers (phase still Pending)
    assert _pod_message("Vega", pod("Pending", {"running": {}})) is None
    assert _pod_message("Vega", pod("Pending", {"running": {}}, job="1003")) == \
        "queued at Vega (batch job 1003)"
    # the VK waits for the env Secret (created right after the pod) in its phase Initializing
    assert _pod_message("Vega", pod("Initializing", {"running": {}})) is None


def test_ended_and_refused() -> None:
    ended = pod("Running", {"terminated": {"reason": "Error", "exitCode": 3}})
    assert _pod_message("KBFI", ended) == "KBFI ended the session: Error (exit code 3)."
    failed = {"status": {"phase": "Failed", "reason": "ProviderFailed",
                         "message": "sbatch: invalid account"}}
    assert _pod_message("Vega", failed) == \
        "Vega refused the session: ProviderFailed sbatch: invalid account"


def test_nothing_to_say_before_the_site_answers() -> None:
    assert _pod_message("Vega", pod("Pending", None)) is None
    assert _pod_message("Vega", None) is None


def test_scheduler_events() -> None:
    assert _event_message("Vega", {"reason": "Scheduled", "message":
                                   "Successfully assigned intertwin/jupyter-a to vega-vk"}) \
        == "submitted to Vega (node vega-vk)"
    assert _event_message("Vega", {"reason": "Pulled", "message": "x"}) is None
