"""A workload's status in the site's words: the states the hub service records, the same
sentences as the spawn progress (tests/intertwin_hub/spawner/test_progress.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intertwin_hub import status as st
from intertwin_hub.labels import KIND_BATCH_CELL, KIND_NOTEBOOK, workload_labels


def pod(
    phase: str,
    state: dict[str, Any] | None,
    job: str | None = None,
    node: str | None = "vega-vk",
    kind: str | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {"JobID": job} if job else {},
            "labels": workload_labels("vega", kind) if kind else {},
        },
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "notebook", "state": state}] if state else [],
        },
    }


def test_pending_then_submitted_before_the_site_answers() -> None:
    s = st.pod_status("Vega", pod("Pending", None, node=None))
    assert s is not None and (s.state, s.sentence) == ("pending", "waiting for room at Vega")
    s = st.pod_status("Vega", pod("Pending", None))
    assert s is not None and (s.state, s.sentence, s.node) == (
        "submitted",
        "submitted to Vega (node vega-vk)",
        "vega-vk",
    )
    # progress tells these from the scheduler's event, which names the node
    assert st.progress_sentence("Vega", pod("Pending", None)) is None
    assert st.pod_status("Vega", None) is None


def test_queued_with_the_batch_job_id_and_slurms_reason() -> None:
    s = st.pod_status(
        "Vega",
        pod(
            "Running",
            {"waiting": {"reason": "Queued", "message": "queued at Vega (job 1001): Priority"}},
        ),
    )
    assert s is not None
    assert (s.state, s.batch_job, s.sentence) == (
        "queued",
        "1001",
        "queued at Vega (batch job 1001)",
    )
    assert s.reason == "Queued queued at Vega (job 1001): Priority"


def test_running_keeps_the_batch_job_id() -> None:
    s = st.pod_status("PSNC", pod("Running", {"running": {}}, job="77", node="psnc-vk"))
    assert s is not None
    assert (s.state, s.sentence, s.node, s.batch_job) == (
        "running",
        "running on psnc-vk",
        "psnc-vk",
        "77",
    )
    assert not s.final


def test_exit_code_decides_succeeded_or_failed() -> None:
    ok = st.pod_status(
        "KBFI", pod("Running", {"terminated": {"reason": "Completed", "exitCode": 0}})
    )
    assert ok is not None and (ok.state, ok.exit_code, ok.final) == ("succeeded", 0, True)
    bad = st.pod_status(
        "KBFI", pod("Failed", {"terminated": {"reason": "Error", "exitCode": 3, "message": "oom"}})
    )
    assert bad is not None
    assert (bad.state, bad.exit_code, bad.reason) == ("failed", 3, "Error")
    assert bad.sentence == "KBFI ended the session: Error (exit code 3). oom"
    assert bad.to_json()["exit_code"] == 3


def test_refused_by_the_site() -> None:
    s = st.pod_status(
        "Vega",
        {
            "status": {
                "phase": "Failed",
                "reason": "ProviderFailed",
                "message": "sbatch: invalid account",
            }
        },
    )
    assert s is not None and s.state == "failed" and s.reason == "ProviderFailed"
    assert s.sentence == "Vega refused the session: ProviderFailed sbatch: invalid account"


def test_a_batch_cell_is_a_job_and_a_notebook_server_a_session() -> None:
    def sentence(p: dict[str, Any]) -> str:
        s = st.pod_status("Vega", p)
        assert s is not None
        return s.sentence

    exited = {"terminated": {"reason": "Error", "exitCode": 3, "message": "oom"}}
    waiting = {"waiting": {"reason": "ContainerCreating", "message": "pulling"}}
    for kind, ended, refused, preparing in (
        (
            KIND_BATCH_CELL,
            "the job ended at Vega: Error (exit code 3). oom",
            "Vega refused the job: ProviderFailed sbatch: invalid account",
            "preparing the job at Vega: ContainerCreating pulling",
        ),
        (
            KIND_NOTEBOOK,
            "Vega ended the session: Error (exit code 3). oom",
            "Vega refused the session: ProviderFailed sbatch: invalid account",
            "preparing the session at Vega: ContainerCreating pulling",
        ),
    ):
        assert sentence(pod("Running", exited, kind=kind)) == ended
        done = pod("Succeeded", None, kind=kind)
        assert sentence(done) == ended.split(":")[0] + ": Completed (exit code 0)."
        refusal = pod("Failed", None, kind=kind)
        refusal["status"].update(reason="ProviderFailed", message="sbatch: invalid account")
        assert sentence(refusal) == refused
        assert sentence(pod("Pending", waiting, kind=kind)) == preparing


def test_phase_succeeded_without_container_statuses() -> None:
    s = st.pod_status("UKRI", pod("Succeeded", None, node="ukri-1"))
    assert s is not None and (s.state, s.exit_code) == ("succeeded", 0)


def test_a_deleted_pod_keeps_its_end_or_is_cancelled_or_lost() -> None:
    running = st.pod_status("Vega", pod("Running", {"running": {}}, job="5"))
    c = st.deleted_status("Vega", running, cancelled=True)
    assert (c.state, c.batch_job, c.sentence) == ("cancelled", "5", "cancelled at Vega")
    lost = st.deleted_status("Vega", running, cancelled=False)
    assert lost.state == "lost" and lost.final
    ended = st.pod_status("Vega", pod("Running", {"terminated": {"exitCode": 1}}))
    assert st.deleted_status("Vega", ended, cancelled=True) is ended
    assert st.deleted_status("Vega", None, cancelled=False).state == "lost"


def test_node_trouble_on_the_jobs_of_that_site() -> None:
    since = datetime(2026, 12, 4, 12, 3)
    assert (
        st.node_note("Vega", False, since, 3600)
        == "Vega's interLink node is not ready since 12:03; "
        "your session keeps running for up to 1 h"
    )
    assert (
        st.node_note("Vega", False, None, 90)
        == "Vega's interLink node is not ready; your session keeps running for up to 90 s"
    )
    assert st.node_note("Vega", True, since, 3600) is None
    # shown on a batch cell, the note speaks of the job
    assert st.node_note("Vega", False, since, 3600, "batch-cell") == (
        "Vega's interLink node is not ready since 12:03; your job keeps running for up to 1 h"
    )


def test_every_state_is_named() -> None:
    assert set(st.FINAL) < set(st.STATES)
    assert len(set(st.STATES)) == len(st.STATES)


def test_a_container_ended_by_the_pods_deletion_is_cancelled() -> None:
    # interLink's VK marks the container terminated with exit code 0 when the pod is deleted
    deleted = pod(
        "Running",
        {"terminated": {"reason": "VKProviderPodContainerDeleted", "exitCode": 0}},
        job="1001",
    )
    deleted["metadata"]["deletionTimestamp"] = "2026-12-04T13:13:43Z"
    s = st.pod_status("Vega", deleted)
    assert s is not None and (s.state, s.sentence, s.batch_job) == (
        "cancelled",
        "cancelled at Vega",
        "1001",
    )
    # being deleted but still running: still running until it is gone
    going = pod("Running", {"running": {}})
    going["metadata"]["deletionTimestamp"] = "2026-12-04T13:13:43Z"
    s = st.pod_status("Vega", going)
    assert s is not None and s.state == "running"
