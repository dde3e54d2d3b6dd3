"""A batch cell's request checked with the spawner's rules, and its pod from the same planner."""

from __future__ import annotations

from typing import Any

import pytest

from intertwin_hub.labels import KIND_BATCH_CELL, LABEL_WORKLOAD
from intertwin_hub.sites import duration_seconds, load_catalogue, slurm_time
from intertwin_hub.spawner.options import OptionsError, max_cells_per_user, validate_batch
from intertwin_hub.spawner.pod import ANNOTATION_POD_VPN, INTERLINK_TAINT, plan_pod

CATALOGUE = load_catalogue()
DEV = ["dev.intertwin.eu"]


def batch(request: dict[str, Any], vos: list[str] = DEV) -> Any:
    return validate_batch(CATALOGUE, vos, request)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30m", 1800),
        ("90s", 90),
        ("1.5h", 5400),
        ("2d", 172800),
        ("45", 2700),  # Slurm: a bare number is minutes
        ("1:30", 90),  # M:S
        ("04:00:00", 14400),
        ("2-0", 172800),
        ("1-12:30", 131400),
        ("1-12:00:00", 129600),
    ],
)
def test_time_limits_in_slurms_forms(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds
    assert duration_seconds(slurm_time(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1:2:3:4", "-5m", "3 weeks"])
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


@pytest.mark.parametrize(
    "request_, partition, gpus, resource, time",
    [
        ({"site": "vega", "gpus": 0}, "cpu", 0, "small", None),
        ({"site": "vega", "gpus": 2, "time": "30m"}, "gpu", 2, "small", 1800),
        ({"site": "vega", "partition": "gpu"}, "gpu", 1, "small", None),
        ({"site": "vega", "gpus": 1, "cpus": 8, "memory": "32G"}, "gpu", 1, "medium", None),
        ({"site": "psnc", "gpus": "1", "memory": "64Gi"}, "proxima", 1, "medium", None),
        ({"site": "kbfi", "time": "2d"}, None, 0, "small", 172800),
        ({"site": "kbfi", "cpus": 3}, None, 0, "medium", None),
    ],
)
def test_accepted_requests(
    request_: dict[str, Any], partition: str | None, gpus: int, resource: str, time: int | None
) -> None:
    b = batch(request_)
    sel = b.selection
    assert (sel.partition.slug if sel.partition else None, sel.gpus) == (partition, gpus)
    assert (sel.resource.slug, b.time) == (resource, time)


@pytest.mark.parametrize(
    "request_, vos, message",
    [
        ({"site": "vega", "gpus": 8}, [], "open only to members of the dev.intertwin.eu VO"),
        ({"site": "kbfi", "gpus": 1}, [], "Offload to KBFI has no GPUs; remove the GPU option."),
        ({"site": "vega", "gpus": 8}, DEV, "offers at most 4 GPUs per job; you asked for 8"),
        ({"site": "vega", "gpus": 3}, DEV, "offers 0, 1, 2, 4 GPUs per job; you asked for 3"),
        (
            {"site": "vega", "partition": "cpu", "gpus": 1},
            DEV,
            "the cpu partition of Offload to Vega HPC - dev VO offers at most 0 GPUs",
        ),
        ({"site": "vega", "partition": "boost"}, DEV, "'boost' is not a partition of"),
        (
            {"site": "vega", "time": "3d"},
            DEV,
            "the gpu partition of Offload to Vega HPC - dev VO "
            "runs jobs for at most 2-00:00:00; you asked for 3-00:00:00",
        ),
        ({"site": "psnc", "time": "2d"}, DEV, "at most 1-00:00:00"),
        ({"site": "kbfi", "time": "4d"}, [], "Offload to KBFI runs jobs for at most 3-00:00:00"),
        ({"site": "kbfi", "time": "whenever"}, [], "'whenever' is not a time"),
        (
            {"site": "psnc", "cpus": 64},
            DEV,
            "runs jobs of at most 16 CPU, 64 GiB; you asked for 64 CPU.",
        ),
        ({"site": "kbfi", "memory": "lots"}, [], "memory must be a size such as 16G"),
        ({"site": "kbfi", "gpus": "two"}, [], "gpus must be a whole number"),
        ({"site": "kbfi", "image": "evil.example/x"}, [], "cannot run at Offload to KBFI"),
        ({"site": "mars"}, DEV, "There is no site 'mars'"),
    ],
)
def test_refusals_are_the_spawners_sentences(
    request_: dict[str, Any], vos: list[str], message: str
) -> None:
    with pytest.raises(OptionsError) as e:
        batch(request_, vos)
    assert message in str(e.value)


def test_a_batch_cell_is_planned_like_a_notebook_but_reached_by_nobody() -> None:
    b = batch({"site": "vega", "gpus": 2, "time": "45m"})
    plan = plan_pod(b.selection, reach="pod-vpn", kind=KIND_BATCH_CELL, time=b.time)
    assert plan.labels[LABEL_WORKLOAD] == KIND_BATCH_CELL
    assert ANNOTATION_POD_VPN not in plan.annotations
    assert plan.annotations["slurm-job.vk.io/flags"] == (
        "--partition=gpu --gres=gpu:2 --time=00:45:00 --account=intertwin"
    )
    assert plan.node_selector == {"kubernetes.io/hostname": "vega-vk"}
    assert any(t["key"] == INTERLINK_TAINT for t in plan.tolerations)
    assert (plan.gpus, plan.cpu) == (2, 4.0)


def test_the_per_user_limit_comes_from_the_catalogue() -> None:
    assert max_cells_per_user(CATALOGUE.get("vega")) == 4  # type: ignore[arg-type]
    assert max_cells_per_user(CATALOGUE.get("kbfi")) == 8  # type: ignore[arg-type]
    vega, kbfi = CATALOGUE.get("vega"), CATALOGUE.get("kbfi")
    assert vega and vega.batch and vega.batch.max_gpus_per_user == 8
    assert kbfi and kbfi.batch and kbfi.batch.max_gpus_per_user is None
