"""Validation of user_options: nothing outside the catalogue is ever accepted."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes_asyncio.client import ApiClient

from intertwin_hub.sites import load_catalogue, quantity_bytes
from intertwin_hub.spawner import InterTwinSpawner
from intertwin_hub.spawner.compat import SpawnException
from intertwin_hub.spawner.options import (
    OptionsError,
    Selection,
    gpu_choices,
    validate,
    vos_of,
)
from intertwin_hub.spawner.pod import SECRET_ENV_VOLUME

from .helpers import hub_path, spawner

CATALOGUE = load_catalogue()
DEV = "urn:mace:egi.eu:group:dev.intertwin.eu:role=member#aai.egi.eu"

# near misses of real values: the interesting attacks are the almost-right ones
REAL = sorted(
    {s.slug for s in CATALOGUE}
    | {r.slug for s in CATALOGUE for r in s.resources}
    | {k for s in CATALOGUE for k, _, _ in gpu_choices(s)}
    | {i.slug for s in CATALOGUE for i in s.images}
    | {"gpu-8", "gpu-0", "5", "-1"}
)
texts = st.one_of(
    st.sampled_from(REAL),
    # what crashed KubeSpawner after validation, and digits int() refuses
    st.sampled_from(
        [
            1,
            0,
            2,
            " large ",
            "minimal\n",
            "²",
            "gpu-²",
            "\u0661",
            "gpu-\u0661",
            " gpu-1",
            "\tsmall",
            "itwinai ",
            "0 ",
        ]
    ),
    st.sampled_from(REAL).map(lambda v: v.upper()),
    st.sampled_from(REAL).map(lambda v: f" {v}\n"),
    st.text(max_size=40),
    st.integers(-5, 50),
    st.none(),
    st.booleans(),
    st.lists(st.sampled_from(REAL), max_size=2),
)
images = st.one_of(
    st.sampled_from([i.image for s in CATALOGUE for i in s.images]),
    st.sampled_from(
        [
            "/cvmfs/a.b/c",
            "quay.io/x/y:1",
            "evil.io/x:1",
            "/ceph/hpc/data/a.sif",
            "/ceph/hpc/data/../../etc/passwd",
            "/ceph/hpc/data/../../x.sif",
            "quay.io/x/y:1; rm -rf /",
            "/cvmfs/a\n/b",
            "a" * 400,
        ]
    ),
    st.text(max_size=60),
)
options = st.dictionaries(
    st.sampled_from(
        [
            "profile",
            "resources",
            "gpus",
            "image",
            "image--unlisted-choice",
            "cpu_limit",
            "node_selector",
            "Profile",
        ]
    ),
    st.one_of(texts, images),
    max_size=6,
)
groups = st.lists(
    st.sampled_from(
        [
            DEV,
            "dev.intertwin.eu",
            "virgo.intertwin.eu",
            "urn:mace:egi.eu:group:virgo.intertwin.eu#aai.egi.eu",
            "dev.intertwin.eu.evil",
            "urn:mace:egi.eu:group:dev",
        ]
    ),
    max_size=3,
)


def assert_within_catalogue(sel: Selection, vos: frozenset[str]) -> None:
    site = CATALOGUE.get(sel.site.slug)
    assert site is sel.site and site.allows(vos)
    assert sel.resource in site.resources
    offered = {(p, n) for _, p, n in gpu_choices(site)} or {(None, 0)}
    assert (sel.partition, sel.gpus) in offered
    if site.partitions:
        assert sel.partition is not None and sel.gpus <= sel.partition.max_gpus
    if sel.other_image:
        assert site.other_image is not None and site.other_image.allows(sel.image)
        assert "\n" not in sel.image and len(sel.image) <= 300
        assert ".." not in sel.image.split("/")
    else:
        assert sel.image in {i.image for i in site.images}


@settings(max_examples=3000, deadline=None)
@given(options, groups)
def test_no_crafted_options_escape_the_catalogue(opts: dict[str, Any], grps: list[str]) -> None:
    vos = vos_of(grps)
    try:
        sel = validate(CATALOGUE, vos, opts)
    except OptionsError as e:
        msg = str(e)
        assert len(msg) > 20 and msg.endswith("."), msg
        return
    assert_within_catalogue(sel, vos)


LOOP = asyncio.new_event_loop()


async def _api_client() -> ApiClient:
    return ApiClient()  # its HTTP connector wants a running loop; only its serializer is used


API = LOOP.run_until_complete(_api_client())


async def hub_spawn(s: InterTwinSpawner, opts: Any) -> dict[str, Any] | SpawnException:
    """The pod the hub would create for ``opts``, or the refusal the user would read."""
    try:
        pod = await hub_path(s, opts)
    except SpawnException as e:
        return e
    return API.sanitize_for_serialization(pod)  # type: ignore[no-any-return]


def but_the_secret_name(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with its env Secret's name left out: every spawner names its own."""
    out = copy.deepcopy(pod)
    for v in out["spec"].get("volumes") or []:
        if v["name"] == SECRET_ENV_VOLUME:
            v["secret"]["secretName"] = "<this spawn's>"
    return out


def assert_pod_is_the_selection(pod: dict[str, Any], sel: Selection) -> None:
    c = pod["spec"]["containers"][0]
    assert c["image"] == sel.image
    limits = c["resources"]["limits"]
    assert float(limits["cpu"]) == sel.resource.cpu
    assert int(limits["memory"]) == quantity_bytes(sel.resource.memory)
    assert int(limits.get("nvidia.com/gpu", 0)) == sel.gpus
    assert c["resources"]["requests"] == limits
    site = sel.site
    if site.offload:
        assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": site.node.name}
    flags = pod["metadata"]["annotations"].get("slurm-job.vk.io/flags", "")
    if sel.partition:
        assert f"--partition={sel.partition.batch_name}" in flags.split()
    assert pod["metadata"]["labels"]["intertwin.eu/site"] == site.slug


# what the hub tells a user who sent bad options (`message`: JupyterHub 6 answers it, and
# compat.SpawnException keeps it for JupyterHub 5); anything else (JupyterHub's generic
# "Invalid user options", a 500) means a crash the user cannot act on
def assert_refusal_is_a_sentence(e: SpawnException) -> None:
    assert e.status_code == 400, e
    msg = e.message
    assert len(msg) > 20 and msg.endswith("."), msg


@settings(max_examples=10_000, deadline=None)
@given(options, groups, options)
def test_the_hub_spawns_exactly_what_was_validated_or_refuses_with_a_sentence(
    opts: dict[str, Any], grps: list[str], later: dict[str, Any]
) -> None:
    """The whole path the hub runs with user_options (JupyterHub's apply_user_options runner,
    KubeSpawner's load_user_options with its profile lookups, get_pod_manifest): every
    crafted input is a 400 with a sentence, or a pod of exactly the validated selection.
    JupyterHub keeps one spawner per server across starts, so a second start on the same
    spawner must build what a fresh one would."""
    LOOP.run_until_complete(two_starts(opts, grps, later))


async def two_starts(opts: dict[str, Any], grps: list[str], later: dict[str, Any]) -> None:
    vos = vos_of(grps)
    s = spawner(tuple(grps))
    for attempt in (opts, later):
        try:
            sel = validate(CATALOGUE, vos, attempt)
        except OptionsError as e:
            refused = await hub_spawn(s, attempt)
            assert isinstance(refused, SpawnException), refused
            assert_refusal_is_a_sentence(refused)
            assert refused.message == str(e)
            continue
        pod = await hub_spawn(s, attempt)
        assert not isinstance(pod, SpawnException), (attempt, pod)
        assert_within_catalogue(sel, vos)
        assert s.user_options == sel.user_options()
        assert_pod_is_the_selection(pod, sel)
        assert s.start_timeout == sel.site.start_timeout
        if attempt is later:
            fresh = await hub_spawn(spawner(tuple(grps)), attempt)
            assert not isinstance(fresh, SpawnException)
            assert but_the_secret_name(pod) == but_the_secret_name(fresh)


def test_vo_from_entitlements() -> None:
    assert vos_of([DEV]) == {"dev.intertwin.eu"}
    assert vos_of(["urn:mace:egi.eu:group:dev.intertwin.eu:itwinai:role=member#aai.egi.eu"]) == {
        "dev.intertwin.eu"
    }
    assert vos_of(["dev.intertwin.eu.evil"]) == {"dev.intertwin.eu.evil"}


def test_defaults_are_the_first_choices() -> None:
    sel = validate(CATALOGUE, {"dev.intertwin.eu"}, {"profile": "vega"})
    assert (sel.resource.slug, sel.partition and sel.partition.slug, sel.gpus) == (
        "small",
        "gpu",
        1,
    )
    assert validate(CATALOGUE, set(), {}).site.slug == "ukri"


def test_usage_is_accounted_to_a_vo_that_admits_the_user() -> None:
    vos = {"dev.intertwin.eu", "zz.other.eu"}
    assert validate(CATALOGUE, vos, {"profile": "vega"}).vo == "dev.intertwin.eu"
    # an open site: the user's first VO by name; no VO at all: none
    assert validate(CATALOGUE, {"zz.other.eu", "b.eu"}, {"profile": "ukri"}).vo == "b.eu"
    assert validate(CATALOGUE, set(), {"profile": "ukri"}).vo is None
