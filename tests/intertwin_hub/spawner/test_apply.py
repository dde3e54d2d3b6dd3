"""Options are validated and applied in apply_user_options, which JupyterHub runs before start():
refusals are 400s before anything is created, and the site's timeouts are the ones the hub uses."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import pytest
import yaml

from intertwin_hub.spawner.compat import SpawnException

from .helpers import DEV, hub_path, manifest, spawner

pytestmark = pytest.mark.asyncio


async def test_the_sites_start_timeout_is_in_force_before_start() -> None:
    # JupyterHub 6.1: User.spawn awaits _run_apply_user_options, then reads start_timeout
    # right after start() returns its future, so the value must be set by then
    s = spawner(start_timeout=180, http_timeout=90)
    s.user_options = {"profile": "kbfi"}
    await s._run_apply_user_options(s.user_options)
    assert (s.start_timeout, s.http_timeout) == (1800, 1800)
    s.user_options = {"profile": "vega"}
    await s._run_apply_user_options(s.user_options)
    assert (s.start_timeout, s.http_timeout) == (900, 900)


async def test_the_same_spawner_forgets_the_previous_sites_timeouts() -> None:
    # JupyterHub keeps one spawner per server across starts
    s = spawner(start_timeout=180, http_timeout=90)
    for opts, timeouts in [({"profile": "kbfi"}, (1800, 1800)), ({"profile": "ukri"}, (300, 90))]:
        s.user_options = opts
        await s._run_apply_user_options(s.user_options)
        assert (s.start_timeout, s.http_timeout) == timeouts


@pytest.mark.parametrize(
    "opts",
    [
        {"profile": "ukri", "gpus": 1},
        {"profile": "ukri", "resources": " large "},
        {"profile": "ukri", "image": "minimal\n"},
    ],
)
async def test_options_that_crashed_kubespawner_spawn_what_was_validated(
    opts: dict[str, object],
) -> None:
    s = spawner()
    pod = await hub_path(s, opts)
    assert s.user_options["resources"] in ("small", "large")
    want = {
        "gpus": ("gpus", "1"),
        "resources": ("resources", "large"),
        "image": ("image", "minimal"),
    }
    key = next(k for k in opts if k != "profile")
    assert s.user_options[want[key][0]] == want[key][1]
    c = pod.spec.containers[0]
    if key == "image":
        assert c.image == "quay.io/jupyter/minimal-notebook:2026-10-20"
    if key == "gpus":
        assert c.resources.limits["nvidia.com/gpu"] == "1"
    if key == "resources":
        assert c.resources.limits["cpu"] == 8.0


@pytest.mark.parametrize(
    ("opts", "words"),
    [
        ({"profile": "ukri", "gpus": "²"}, "'²' is not a GPU choice at UKRI Cloud"),
        ({"profile": "vega", "gpus": "gpu-²"}, "'gpu-²' is not a Partition and GPUs choice"),
        ({"profile": "vega", "gpus": "gpu-8"}, "offers at most 4 GPUs per session"),
    ],
)
async def test_bad_options_are_a_400_with_a_sentence_from_the_hubs_runner(
    opts: dict[str, object], words: str
) -> None:
    s = spawner((DEV,))
    s.user_options = opts
    with pytest.raises(SpawnException) as e:
        await s._run_apply_user_options(s.user_options)
    assert e.value.status_code == 400
    assert words in e.value.message and e.value.message.endswith(".")


async def test_leonardos_partition_name_reaches_slurm(tmp_path: Path) -> None:
    """Slugs forbid "_"; the partition's ``name`` is what Slurm is asked for."""
    data = yaml.safe_load(resources.files("intertwin_hub").joinpath("sites.yaml").read_text())
    leonardo = copy.deepcopy(next(s for s in data["sites"] if s["slug"] == "vega"))
    leonardo.update(slug="leonardo", name="Leonardo", title="Offload to Leonardo")
    leonardo["node"]["name"] = "leonardo-vk"
    leonardo["partitions"] = [
        {
            "slug": "boost",
            "name": "boost_usr_prod",
            "label": "boost_usr_prod (A100)",
            "gpu_choices": [1, 4],
            "max_gpus": 4,
        }
    ]
    data["sites"].append(leonardo)
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data))
    pod = await manifest({"profile": "leonardo", "gpus": "boost-4"}, site_catalogue_path=str(path))
    assert pod["metadata"]["annotations"]["slurm-job.vk.io/flags"].split()[:2] == [
        "--partition=boost_usr_prod",
        "--gres=gpu:4",
    ]


async def test_a_validation_never_outlives_its_spawn() -> None:
    """Options are validated once per spawn; the next spawn of the same server (JupyterHub
    keeps the spawner) validates again, even under a hub whose own apply_user_options skips
    ours: a user who left the VO cannot reuse last time's Vega selection."""
    s = spawner(apply_user_options=lambda spawner, options: None)
    await hub_path(s, {"profile": "vega"})
    assert s.selection is not None and s.selection.site.slug == "vega"
    s.user.groups = []  # left dev.intertwin.eu since
    s.clear_state()  # what JupyterHub's User.spawn does before each start
    with pytest.raises(SpawnException, match="open only to members"):
        await hub_path(s, {"profile": "vega"})
