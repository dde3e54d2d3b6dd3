"""The site catalogue: shipped defaults, validation errors that name the key, adding a site."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from intertwin_hub.sites import CatalogueError, load_catalogue, parse_catalogue, quantity_bytes
from testbed.slurm import slurm_partitions

SHIPPED = yaml.safe_load((Path(__file__).parents[2] / "intertwin_hub" / "sites.yaml").read_text())


def test_shipped_catalogue_is_the_interTwin_hub_form() -> None:
    c = load_catalogue()
    assert [(s.title, s.description) for s in c] == [
        ("UKRI Cloud", "itwinai environment on UKRI Cloud"),
        (
            "Offload to Vega HPC - dev VO",
            "Offload Jupyterlab session on a GPU node at Vega supercomputer",
        ),
        (
            "Offload to PSNC HPC - dev VO",
            "Offload Jupyterlab session on a node at PSNC supercomputer",
        ),
        ("Offload to KBFI", "Offload Jupyterlab session on a KBFI"),
    ]
    vega, psnc, kbfi = c.get("vega"), c.get("psnc"), c.get("kbfi")
    assert vega and vega.node.gpu and vega.node.gpu.model == "A100"
    assert max(p.max_gpus for p in vega.partitions) == 4
    assert psnc and psnc.node.gpu and psnc.node.gpu.model == "H100"
    assert kbfi and kbfi.node.gpu is None and not kbfi.partitions and kbfi.batch
    assert kbfi.batch.system == "arc"
    assert c.get("ukri") and not c.get("ukri").offload  # type: ignore[union-attr]


def test_visibility_follows_vo_membership() -> None:
    c = load_catalogue()
    assert [s.slug for s in c.visible_to(set())] == ["ukri", "kbfi"]
    assert [s.slug for s in c.visible_to({"dev.intertwin.eu"})] == ["ukri", "vega", "psnc", "kbfi"]


def broken(edit: Any) -> str:
    data = copy.deepcopy(SHIPPED)
    edit(data)
    with pytest.raises(CatalogueError) as e:
        parse_catalogue(data)
    return str(e.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["sites"][1]["node"].pop("name"), "sites[1].node.name: required"),
        (
            lambda d: d["sites"][0].update(kind="grid"),
            "sites[0].kind: must be 'cloud' or 'offload'",
        ),
        (lambda d: d["sites"][2].update(colour="red"), "sites[2].colour: unknown key"),
        (
            lambda d: d["sites"][1]["partitions"][0].update(gpu_choices=[1, 8]),
            "sites[1].partitions[0].gpu_choices: a choice exceeds max_gpus",
        ),
        (
            lambda d: d["sites"][3]["resources"][0].update(memory="lots"),
            "sites[3].resources[0].memory: 'lots' is not a Kubernetes quantity",
        ),
        (
            lambda d: d["sites"][1]["other_image"]["allowed_patterns"].append("(["),
            "sites[1].other_image.allowed_patterns[3]: bad pattern",
        ),
        (
            lambda d: d["sites"][3]["scratch"].update(mount_path="relative/path"),
            "sites[3].scratch.mount_path: must be an absolute path",
        ),
        (
            lambda d: d["sites"][2]["scratch"].update(path_begins_at=-1),
            "sites[2].scratch.path_begins_at: must be an integer >= 0",
        ),
        (
            lambda d: d["sites"][2]["scratch"].update(pfn_prefix="/pnfs/psnc.pl/"),
            "sites[2].scratch.pfn_prefix: '/pnfs/psnc.pl/' does not match",
        ),
        (
            lambda d: d["sites"][2]["scratch"].update(pfn_prefix="davs://door:2880/pnfs/"),
            "sites[2].scratch.pfn_prefix: give pfn_prefix or path_begins_at, not both",
        ),
        (lambda d: d["sites"][2].update(slug="vega"), "sites[2].slug: duplicate 'vega'"),
        (lambda d: d["sites"][1].pop("batch"), "sites[1].batch: required"),
        (
            lambda d: d["sites"][2].pop("reach"),
            "sites[2].reach: an offload site must say how the hub reaches its notebooks: 'pod-vpn' "
            "(the site routes the virtual node's PodCIDR) or 'wstunnel' (interLink's tunnel)",
        ),
        (lambda d: d["sites"][3].update(reach="vpn"), "(interLink's tunnel), got 'vpn'"),
        (
            lambda d: d["sites"][0].update(reach="wstunnel"),
            "sites[0].reach: only for offload sites",
        ),
        (
            lambda d: d["sites"][3].update(
                partitions=[{"slug": "gpu", "label": "gpu", "gpu_choices": [1], "max_gpus": 1}]
            ),
            "sites[3].node.gpu: GPUs are offered but the node has none",
        ),
        (
            lambda d: d["sites"][2]["budgets"][0].update(period="year"),
            "sites[2].budgets[0].period: must be one of day, week, month, got 'year'",
        ),
        (
            lambda d: d["sites"][2]["budgets"][0].update(gpu_hours=0),
            "sites[2].budgets[0].gpu_hours: must be a number of hours > 0",
        ),
        (
            lambda d: d["sites"][2]["budgets"][0].pop("gpu_hours"),
            "sites[2].budgets[0].gpu_hours: give gpu_hours, cpu_hours or both",
        ),
        (
            lambda d: d["sites"][2]["budgets"].append(dict(d["sites"][2]["budgets"][0])),
            "sites[2].budgets: one budget per VO",
        ),
        (
            lambda d: d["sites"][1]["partitions"][0].update(max_time="forever"),
            "sites[1].partitions[0].max_time: 'forever' is not a time such as 30m, 2h or 04:00:00",
        ),
        (
            lambda d: d["sites"][3]["batch"].update(max_cells_per_user=0),
            "sites[3].batch.max_cells_per_user: must be an integer >= 1",
        ),
        (
            lambda d: d["sites"][1]["batch"].update(max_gpus_per_user=0),
            "sites[1].batch.max_gpus_per_user: must be an integer >= 1",
        ),
        (
            lambda d: d["sites"][2]["batch"].update(time="soon"),
            "sites[2].batch.time: 'soon' is not a time",
        ),
    ],
)
def test_malformed_catalogue_names_the_key(edit: Any, message: str) -> None:
    assert message in broken(edit)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read site catalogue"):
        load_catalogue(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [\n")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(bad)


def test_adding_a_site_is_a_yaml_edit(tmp_path: Path) -> None:
    data = copy.deepcopy(SHIPPED)
    data["sites"].append(
        {
            "slug": "leonardo",
            "name": "Leonardo",
            "title": "Offload to Leonardo - dev VO",
            "description": "Offload Jupyterlab session on a Booster node at Leonardo",
            "kind": "offload",
            "node": {
                "name": "leonardo-vk",
                "cpu": "128",
                "memory": "512Gi",
                "gpu": {"model": "A100", "count": 16},
            },
            "batch": {"system": "slurm", "account": "icsc", "time": "02:00:00"},
            "allowed_vos": ["dev.intertwin.eu"],
            "resources": [{"slug": "small", "label": "8 CPU, 32 GiB", "cpu": 8, "memory": "32Gi"}],
            "partitions": [
                {
                    "slug": "boost-usr-prod",
                    "label": "boost_usr_prod (A100)",
                    "gpu_choices": [1, 4],
                    "max_gpus": 4,
                }
            ],
            "images": [{"slug": "itwinai", "label": "itwinai", "image": "ghcr.io/x/itwinai:1"}],
            "scratch": {"rse": "CINECA-LEONARDO", "mount_path": "/leonardo_scratch/intertwin"},
            "start_timeout": 1200,
            "reach": "pod-vpn",
        }
    )
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data))
    c = load_catalogue(path)
    leo = c.get("leonardo")
    assert leo is not None and leo.offload and c.by_node("leonardo-vk") is leo
    assert leo.reach == "pod-vpn" and c.get("vega").reach == "wstunnel"  # type: ignore[union-attr]


def test_scratch_pfn_mapping_rules() -> None:
    """How a PFN maps onto the mount is a per-site fact: PSNC's dCache is davs-only."""
    psnc = parse_catalogue(SHIPPED).get("psnc")
    assert psnc is not None
    assert (psnc.scratch.path_begins_at, psnc.scratch.pfn_prefix) == (4, None)
    data = copy.deepcopy(SHIPPED)
    data["sites"][2]["scratch"].pop("path_begins_at")
    data["sites"][2]["scratch"]["pfn_prefix"] = "davs://door.psnc.pl:2880/pnfs/psnc.pl/data/"
    psnc = parse_catalogue(data).get("psnc")
    assert (
        psnc is not None
        and psnc.scratch.pfn_prefix == data["sites"][2]["scratch"]["pfn_prefix"]
        and psnc.scratch.path_begins_at is None
    )


def test_a_partition_has_a_batch_system_name_apart_from_its_slug() -> None:
    data = copy.deepcopy(SHIPPED)
    data["sites"][1]["partitions"][0]["name"] = "boost_usr_prod"
    vega = parse_catalogue(data).get("vega")
    assert vega is not None
    assert [(p.slug, p.batch_name) for p in vega.partitions] == [
        ("gpu", "boost_usr_prod"),
        ("cpu", "cpu"),
    ]
    # the testbed's Slurm cluster is made of the batch names
    assert slurm_partitions(list(parse_catalogue(data))) == [
        "boost_usr_prod",
        "cpu",
        "proxima",
        "standard",
    ]
    assert slurm_partitions(list(load_catalogue())) == ["gpu", "cpu", "proxima", "standard"]


@pytest.mark.parametrize("name", ["boost usr", "--output=/etc/passwd", "_x", "a" * 65, 7])
def test_a_partition_name_slurm_cannot_take_is_refused(name: object) -> None:
    message = broken(lambda d: d["sites"][1]["partitions"][0].update(name=name))
    assert message.startswith("sites[1].partitions[0].name: "), message


@pytest.mark.parametrize(
    ("where", "edit"),
    [
        (
            "sites[0].resources[1].memory",
            lambda d: d["sites"][0]["resources"][1].update(memory="512m"),
        ),
        ("sites[2].node.memory", lambda d: d["sites"][2]["node"].update(memory="1000m")),
    ],
)
def test_memory_in_milli_units_is_refused_with_the_key(where: str, edit: Any) -> None:
    # "m" is a valid Kubernetes quantity suffix, but milli-bytes are no memory size
    message = broken(edit)
    assert message.startswith(f"{where}: "), message
    assert "is not a memory size" in message and "Gi" in message


def test_the_quantity_parser_refuses_what_the_schema_refuses() -> None:
    assert quantity_bytes("16Gi") == 16 * 2**30
    assert quantity_bytes("1.5G") == 1_500_000_000
    for bad in ("512m", "lots", "16GiB", ""):
        with pytest.raises(ValueError, match="not a memory size"):
            quantity_bytes(bad)
