"""The service's live index and its history, fed pods and nodes as the Kubernetes API lists and
watches them (dicts in the API's camelCase)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intertwin_hub.service import db
from intertwin_hub.service.index import (
    LAST_LINES_BYTES,
    Index,
    ended_container,
    kept_tail,
    resources_of,
    workload_of,
)
from intertwin_hub.sites import load_catalogue

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(load_catalogue(), db.open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}"))


def pod(
    uid: str,
    user: str = "alice",
    site: str = "vega",
    node: str | None = "vega-vk",
    phase: str = "Running",
    state: dict[str, Any] | None = None,
    job: str | None = "1001",
    gpus: int = 2,
    kind: str = "notebook",
) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": uid,
            "name": f"jupyter-{user}-{uid}",
            "creationTimestamp": "2026-12-04T12:00:00Z",
            "labels": {
                "intertwin.eu/site": site,
                "intertwin.eu/workload": kind,
                "hub.jupyter.org/username": user,
            },
            "annotations": {"hub.jupyter.org/username": user, **({"JobID": job} if job else {})},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "notebook",
                    "image": "itwinai",
                    "resources": {
                        "limits": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": str(gpus)},
                        "requests": {"cpu": "16", "memory": "64Gi"},
                    },
                }
            ],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "notebook", "state": state or {"running": {}}}],
        },
    }


def node(name: str, ready: bool, gpus: int = 8, since: str = "2026-12-04T12:03:00Z") -> dict:
    return {
        "metadata": {"name": name},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": since,
                }
            ],
        },
    }


def test_what_a_pod_says_about_its_workload() -> None:
    w = workload_of(pod("u1"))
    assert w is not None
    assert (w.user, w.kind, w.site, w.cpu, w.memory, w.gpus, w.submitted) == (
        "alice",
        "notebook",
        "vega",
        16.0,
        64 * 2**30,
        2,
        T0,
    )
    assert workload_of({"metadata": {"uid": "x", "labels": {}}}) is None
    assert w.vo is None  # a pod from before the VO annotation
    p = pod("u2")
    p["metadata"]["annotations"]["intertwin.eu/vo"] = "dev.intertwin.eu"
    assert (workload_of(p) or w).vo == "dev.intertwin.eu"
    assert resources_of(
        {"spec": {"containers": [{"resources": {"requests": {"cpu": "500m"}}}]}}
    ) == (0.5, None, 0)


def test_events_feed_the_user_index_and_the_history(index: Index) -> None:
    index.pod_event("ADDED", pod("a1", state={"waiting": {"reason": "Queued"}}), T0)
    index.pod_event("MODIFIED", pod("a1"), T0 + timedelta(minutes=1))
    index.pod_event("ADDED", pod("b1", user="bob", site="psnc", node="psnc-vk"), T0)
    assert [p["metadata"]["uid"] for p in index.mine("alice")] == ["a1"]
    assert index.mine("carol") == []
    job = index.store.get("a1")
    assert job is not None and [h.state for h in job.history] == ["queued", "running"]
    index.pod_event("DELETED", pod("a1"), T0 + timedelta(minutes=5))
    job = index.store.get("a1")
    assert job is not None and job.state == "cancelled"
    assert index.mine("alice") == [] and "alice" not in index.by_user


def test_an_evicted_pod_is_lost_not_cancelled(index: Index) -> None:
    index.pod_event("ADDED", pod("e"), T0)
    gone = pod("e")
    gone["status"]["reason"] = "Evicted"
    assert (index.pod_event("DELETED", gone, T0) or None).state == "lost"  # type: ignore[union-attr]


def test_a_pod_that_ended_before_its_deletion_keeps_its_end(index: Index) -> None:
    index.pod_event("ADDED", pod("f"), T0)
    ended = pod("f", state={"terminated": {"reason": "Error", "exitCode": 3}})
    status = index.pod_event("DELETED", ended, T0 + timedelta(minutes=1))
    assert status is not None and (status.state, status.exit_code) == ("failed", 3)


def test_reconcile_after_a_restart_nothing_lost_nothing_duplicated(index: Index) -> None:
    for uid in ("r1", "r2", "r3"):
        index.pod_event("ADDED", pod(uid), T0)
    index.cancelling.add("r3")
    # the service restarts: a new index on the same history; r2 vanished, r3 was cancelled
    again = Index(index.catalogue, index.store)
    again.cancelling = set(index.cancelling)
    again.reconcile([pod("r1")], T0 + timedelta(hours=1))
    again.reconcile([pod("r1")], T0 + timedelta(hours=2))  # a relist changes nothing
    states = {u: (index.store.get(u) or db.Job()).state for u in ("r1", "r2", "r3")}
    assert states == {"r1": "running", "r2": "lost", "r3": "cancelled"}
    assert index.store.count() == 3
    r1 = index.store.get("r1")
    assert r1 is not None and [h.state for h in r1.history] == ["running"]
    assert [p["metadata"]["uid"] for p in again.mine("alice")] == ["r1"]


def test_node_trouble_and_gpus_per_site(index: Index) -> None:
    index.reset_nodes([node("vega-vk", ready=False), node("psnc-vk", ready=True, gpus=4)])
    index.pod_event("ADDED", pod("g1", gpus=2), T0)
    index.pod_event("ADDED", pod("g2", gpus=1, user="bob"), T0)
    assert index.note_for("vega") == (
        "Vega's interLink node is not ready since 12:03; your session keeps running for up to 1 h"
    )
    assert index.note_for("psnc") is None
    vega = next(s for s in index.catalogue if s.slug == "vega")
    out = index.site_json(vega)
    assert (out["ready"], out["gpus"]) == (False, {"allocatable": 8, "requested": 3})
    index.node_event("MODIFIED", node("vega-vk", ready=True))
    assert index.note_for("vega") is None
    index.node_event("DELETED", node("vega-vk", ready=True))
    assert index.site_json(vega)["ready"] is None


def test_which_container_s_last_lines_are_kept() -> None:
    assert ended_container(pod("r")) is None  # running: nothing to keep yet
    assert ended_container(pod("q", state={"waiting": {"reason": "Queued"}})) is None
    failed = pod("f", state={"terminated": {"reason": "Error", "exitCode": 3}})
    assert ended_container(failed) == "notebook"
    # the failed one among several, else the first that ended
    two = pod("t")
    two["status"]["containerStatuses"] = [
        {"name": "side", "state": {"terminated": {"exitCode": 0}}},
        {"name": "main", "state": {"terminated": {"exitCode": 2}}},
    ]
    assert ended_container(two) == "main"
    two["status"]["containerStatuses"][1]["state"] = {"running": {}}
    assert ended_container(two) == "side"
    # a deletion under way: its log goes soon
    deleting = pod("d")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-04T12:05:00Z"
    assert ended_container(deleting) == "notebook"


def test_a_not_ready_spell_keeps_its_start(index: Index) -> None:
    """interLink's VK rewrites the Ready condition's lastTransitionTime on every failed ping:
    the note keeps the time the spell began, until the node is ready again."""
    index.reset_nodes([node("vega-vk", ready=True)])
    index.node_event("MODIFIED", node("vega-vk", ready=False, since="2026-12-04T12:03:00Z"))
    index.node_event("MODIFIED", node("vega-vk", ready=False, since="2026-12-04T12:04:00Z"))
    index.reset_nodes([node("vega-vk", ready=False, since="2026-12-04T12:05:00Z")])  # a relist
    assert (index.note_for("vega") or "").startswith(
        "Vega's interLink node is not ready since 12:03"
    )
    vega = next(s for s in index.catalogue if s.slug == "vega")
    assert index.site_json(vega)["since"] == "2026-12-04T12:03:00+00:00"
    index.node_event("MODIFIED", node("vega-vk", ready=True, since="2026-12-04T12:06:00Z"))
    assert index.note_for("vega") is None
    assert index.site_json(vega)["since"] == "2026-12-04T12:06:00+00:00"
    # a new spell begins anew
    index.node_event("MODIFIED", node("vega-vk", ready=False, since="2026-12-04T13:00:00Z"))
    assert (index.note_for("vega") or "").startswith(
        "Vega's interLink node is not ready since 13:00"
    )


def test_the_kept_tail_leaves_out_a_result_frame_and_stays_small() -> None:
    from intertwin_hub.offload import frame

    framed = list(frame.encode("error", b"x" * 5000))
    # the tail begins inside the frame: its base64 goes, the traceback after it stays
    tail = [*framed[-3:], "Traceback (most recent call last):", "ValueError: boom"]
    assert kept_tail("\n".join(tail)) == "Traceback (most recent call last):\nValueError: boom\n"
    whole = ["working", *framed, "done"]
    assert kept_tail("\n".join(whole)) == "working\ndone\n"
    assert kept_tail("one\ntwo") == "one\ntwo\n" and kept_tail("") == ""
    huge = "\n".join(["a" * 1000] * 200)
    kept = kept_tail(huge)
    assert len(kept.encode()) <= LAST_LINES_BYTES and kept.endswith("a" * 1000 + "\n")
