"""The pure parts of ``POST /jobs``: the request body, the inputs, the pod and its Secret; the
budget check against a history database."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from intertwin_hub.errors import ApiError
from intertwin_hub.labels import (
    ANNOTATION_CELL_ID,
    ANNOTATION_NOTEBOOK_PATH,
    ANNOTATION_USER,
    KIND_BATCH_CELL,
    LABEL_SITE,
    LABEL_USER,
    LABEL_WORKLOAD,
)
from intertwin_hub.offload.frame import MAX_INPUT_BYTES
from intertwin_hub.service import db, submit
from intertwin_hub.service.index import workload_of
from intertwin_hub.service.tokens import RucioTokens, Token
from intertwin_hub.sites import Budget, load_catalogue
from intertwin_hub.spawner.options import validate_batch
from intertwin_hub.spawner.pod import INTERLINK_TAINT, plan_pod
from intertwin_hub.status import JobStatus
from intertwin_hub.usage.budgets import period_bounds

CATALOGUE = load_catalogue()


def vega_pod(body: dict[str, object]) -> dict[str, object]:
    b = validate_batch(CATALOGUE, ["dev.intertwin.eu"], {"site": "vega", "gpus": 2})
    plan = plan_pod(b.selection, kind=KIND_BATCH_CELL, time=b.time)
    return submit.cell_pod("cell-alice-1234abcd", "Alice.Smith@egi.eu", plan, "python3", body)


def test_the_pod_is_a_batch_cell_at_the_sites_node_with_nothing_to_reach_it() -> None:
    path = "projects/a very/long/" + "x" * 300 + ".ipynb"
    pod = vega_pod({"notebook_path": path, "cell_id": "c-1", "name": "train"})
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["labels"][LABEL_WORKLOAD] == KIND_BATCH_CELL  # type: ignore[index]
    assert meta["labels"][LABEL_SITE] == "vega"  # type: ignore[index]
    assert meta["labels"][LABEL_USER] == "alice-smith-egi-eu"  # type: ignore[index]
    ann = meta["annotations"]  # type: ignore[index]
    assert (ann[ANNOTATION_USER], ann[ANNOTATION_NOTEBOOK_PATH], ann[ANNOTATION_CELL_ID]) == (
        "Alice.Smith@egi.eu",
        path,
        "c-1",
    )
    assert "--gres=gpu:2" in ann["slurm-job.vk.io/flags"]
    assert spec["restartPolicy"] == "Never"  # type: ignore[index]
    assert spec["automountServiceAccountToken"] is False  # type: ignore[index]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "vega-vk"}  # type: ignore[index]
    assert any(t["key"] == INTERLINK_TAINT for t in spec["tolerations"])  # type: ignore[index]
    (ctr,) = spec["containers"]  # type: ignore[index]
    assert ctr["command"] == ["python3", "-m", "intertwin_hub.offload.runner"]
    assert ctr["args"] == ["/var/run/intertwin/cell/inputs"]
    assert ctr["resources"]["limits"] == ctr["resources"]["requests"]
    assert ctr["resources"]["limits"]["nvidia.com/gpu"] == "2"
    (vol,) = spec["volumes"]  # type: ignore[index]
    assert vol["secret"]["secretName"] == "cell-alice-1234abcd-inputs"
    assert not any("persistentVolumeClaim" in v for v in spec["volumes"])  # type: ignore[index]
    # the hub service's watch reads it back as the user's batch cell
    pod["metadata"]["uid"] = "u-1"  # type: ignore[index]
    pod["metadata"]["creationTimestamp"] = "2026-12-04T12:00:00Z"  # type: ignore[index]
    w = workload_of(pod)
    assert w is not None
    assert (w.user, w.kind, w.site, w.notebook_path, w.cell_id, w.gpus) == (
        "Alice.Smith@egi.eu",
        KIND_BATCH_CELL,
        "vega",
        path,
        "c-1",
        2,
    )


def test_the_inputs_secret_is_owned_by_the_pod() -> None:
    pod = vega_pod({})
    pod["metadata"]["uid"] = "u-1"  # type: ignore[index]
    secret = submit.inputs_secret(pod, b"packed")
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", "cell-alice-1234abcd", "u-1")
    assert base64.b64decode(secret["data"]["inputs"]) == b"packed"


def test_the_body_is_checked() -> None:
    with pytest.raises(ApiError) as e:
        submit.parse_body(b"[1]")
    assert e.value.status == 400
    with pytest.raises(ApiError) as e:
        submit.parse_body(json.dumps({"site": "vega", "colour": "red"}).encode())
    assert e.value.extra["param"] == "colour"
    with pytest.raises(ApiError) as e:
        submit.decode_inputs({"inputs": "not base64!"})
    assert (e.value.status, e.value.extra["param"]) == (400, "inputs")


def test_inputs_over_the_limit_are_a_413_that_suggests_the_datalake() -> None:
    ok = base64.b64encode(b"x" * MAX_INPUT_BYTES).decode()
    assert len(submit.decode_inputs({"inputs": ok})) == MAX_INPUT_BYTES
    big = base64.b64encode(b"x" * (MAX_INPUT_BYTES + 1)).decode()
    with pytest.raises(ApiError) as e:
        submit.decode_inputs({"inputs": big})
    assert (e.value.status, e.value.code) == (413, "too_large")
    assert "DataLake" in e.value.message and "900.0 KiB" in e.value.message


def test_the_budget_warns_from_90_percent_and_refuses_once_used_up(tmp_path: Path) -> None:
    store = db.open_store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    svc: Any = SimpleNamespace(store=store, catalogue=CATALOGUE)
    now = datetime.now(UTC)
    start, _ = period_bounds("month", now)
    # a batch cell of the dev VO at PSNC with one GPU, running since the month began
    cell = db.Workload(
        uid="u1",
        user="alice",
        kind=KIND_BATCH_CELL,
        site="psnc",
        pod="cell-alice-1",
        submitted=start,
        cpu=4.0,
        memory=16 * 2**30,
        gpus=1,
        vo="dev.intertwin.eu",
    )
    store.record(cell, JobStatus("running", "running on psnc-vk", node="psnc-vk"), start)
    used = (now - start).total_seconds() / 3600  # its GPU hours so far
    psnc = CATALOGUE.get("psnc")
    assert psnc is not None

    def check(gpu_hours: float, vo: str = "dev.intertwin.eu") -> str | None:
        budget = Budget("dev.intertwin.eu", "month", gpu_hours)
        return submit.check_budget(svc, dataclasses.replace(psnc, budgets=(budget,)), vo)

    assert check(used * 2) is None  # half used: nothing to say
    warning = check(used / 0.95)
    assert warning is not None
    assert warning.startswith("The dev.intertwin.eu VO has used 9"), warning
    assert " GPU hours at PSNC for " in warning and warning.endswith(f"{start:%B %Y}.")
    with pytest.raises(ApiError) as refused:
        check(used / 1.5)
    assert (refused.value.status, refused.value.code) == (403, "budget_exhausted")
    assert refused.value.message.endswith("; ask your VO manager.")
    assert check(used / 1.5, vo="other.example.org") is None  # no budget for that VO
    store.engine.dispose()


def test_the_per_user_limits_say_what_is_in_use() -> None:
    vega = CATALOGUE.get("vega")
    assert vega is not None and vega.batch is not None
    submit.check_limits(vega, cells=3, gpus=6, asked_gpus=2)  # at the GPU limit, not over
    submit.check_limits(vega, cells=3, gpus=8, asked_gpus=0)  # a CPU-only cell holds no GPU
    with pytest.raises(ApiError) as over:
        submit.check_limits(vega, cells=0, gpus=7, asked_gpus=2)
    assert (over.value.status, over.value.code) == (429, "limit_reached")
    assert over.value.message.startswith(
        "Your sessions and batch cells at Vega hold 7 GPUs; this cell asks for 2 more, over "
        "the 8 one user may hold there at once."
    )
    with pytest.raises(ApiError) as cells:
        submit.check_limits(vega, cells=4, gpus=0, asked_gpus=0)
    assert "You have 4 batch cells queued or running at Vega" in cells.value.message
    kbfi = CATALOGUE.get("kbfi")
    assert kbfi is not None
    submit.check_limits(kbfi, cells=0, gpus=100, asked_gpus=1)  # no GPU limit there


def test_gpus_in_use_count_every_live_workload_of_the_user_at_the_site() -> None:
    def pod(uid: str, site: str, gpus: int, kind: str = KIND_BATCH_CELL, phase: str = "Running"):
        limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
        return {
            "metadata": {"uid": uid, "labels": {LABEL_WORKLOAD: kind, LABEL_SITE: site}},
            "spec": {"containers": [{"resources": {"limits": limits}}]},
            "status": {"phase": phase},
        }

    pods = [
        pod("a", "vega", 2),
        pod("b", "vega", 1, kind="notebook"),
        pod("c", "vega", 4, phase="Succeeded"),  # ended: holds nothing
        pod("d", "psnc", 2),  # another site
    ]
    svc = SimpleNamespace(
        index=SimpleNamespace(mine=lambda user: pods, site_name=lambda slug: slug.upper())
    )
    assert submit.in_use(svc, "alice", "vega") == (1, 3)  # type: ignore[arg-type]


def test_the_datalake_token_travels_in_the_secret_with_its_expiry_and_host() -> None:
    pod = vega_pod({})
    pod["metadata"]["uid"] = "u-1"  # type: ignore[index]
    grant = submit.RucioGrant(Token("jwt", 1_800_000_000.0), "https://rucio.example.org")
    secret = submit.inputs_secret(pod, b"packed", grant)
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["inputs"] == b"packed" and data["rucio-token"] == b"jwt"
    assert json.loads(data["rucio.json"]) == {
        "expires_at": 1_800_000_000.0,
        "rucio_host": "https://rucio.example.org",
        "auth_host": "https://rucio.example.org",
    }


@pytest.mark.asyncio
async def test_without_an_identity_provider_a_required_token_is_a_400_and_else_none() -> None:
    # the hub of the dummy login: its service has no token endpoint to renew tokens at
    svc: Any = SimpleNamespace(rucio_tokens=RucioTokens(None, "http://hub.invalid", ""))
    with pytest.raises(ApiError) as e:
        await submit.rucio_grant(svc, "alice", {"rucio": "required"})
    assert (e.value.status, e.value.code) == (400, "no_rucio_token")
    assert "no DataLake (Rucio) token" in e.value.message and "--rucio" in e.value.message
    for body in ({"rucio": "if-available"}, {"rucio": "none"}, {}):
        assert await submit.rucio_grant(svc, "alice", body) is None
    for body, param in (
        ({"rucio": True}, "rucio"),
        ({"rucio": "if-available", "rucio_host": "rucio.example.org"}, "rucio_host"),
        ({"rucio": "required", "rucio_auth_host": "ftp://x"}, "rucio_auth_host"),
        ({"rucio": "required", "rucio_host": "http://r.org/\n[client]"}, "rucio_host"),
    ):
        with pytest.raises(ApiError) as e:
            await submit.rucio_grant(svc, "alice", body)
        assert (e.value.status, e.value.extra["param"]) == (400, param)
