"""Validation of user_options: nothing outside the catalogue is ever accepted."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from intertwin_hub.sites import load_catalogue
from intertwin_hub.spawner.options import (
    OptionsError,
    Selection,
    gpu_choices,
    validate,
    vos_of,
)

CATALOGUE = load_catalogue()
DEV = "urn:mace:egi.eu:group:dev.intertwin.eu:role=member#aai.egi.eu"

# near misses of real values: the interesting attacks are the almost-right ones
REAL = sorted({s.slug for s in CATALOGUE} | {r.slug for s in CATALOGUE for r in s.resources}
              | {k for s in CATALOGUE for k, _, _ in gpu_choices(s)}
              | {i.slug for s in CATALOGUE for i in s.images} | {"gpu-8", "gpu-0", "5", "-1"})
texts = st.one_of(
    st.sampled_from(REAL),
    st.sampled_from(REAL).map(lambda v: v.upper()),
    st.sampled_from(REAL).map(lambda v: f" {v}\n"),
    st.text(max_size=40),
    st.integers(-5, 50),
    st.none(), st.booleans(), st.lists(st.sampled_from(REAL), max_size=2),
)
images = st.one_of(
    st.sampled_from([i.image for s in CATALOGUE for i in s.images]),
    st.sampled_from(["/cvmfs/a.b/c", "quay.io/x/y:1", "evil.io/x:1", "/ceph/hpc/data/a.sif",
                     "/ceph/hpc/data/../../etc/passwd", "/ceph/hpc/data/../../x.sif",
                     "quay.io/x/y:1; rm -rf /",
                     "/cvmfs/a\n/b", "a" * 400]),
    st.text(max_size=60),
)
options = st.dictionaries(
    st.sampled_from(["profile", "resources", "gpus", "image", "image--unlisted-choice",
                     "cpu_limit", "node_selector", "Profile"]),
    st.one_of(texts, images), max_size=6)
groups = st.lists(st.sampled_from([DEV, "dev.intertwin.eu", "virgo.intertwin.eu",
                                   "urn:mace:egi.eu:group:virgo.intertwin.eu#aai.egi.eu",
                                   "dev.intertwin.eu.evil", "urn:mace:egi.eu:group:dev"]),
                  max_size=3)


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


def test_vo_from_entitlements() -> None:
    assert vos_of([DEV]) == {"dev.intertwin.eu"}
    assert vos_of(["urn:mace:egi.eu:group:dev.intertwin.eu:itwinai:role=member#aai.egi.eu"]) \
        == {"dev.intertwin.eu"}
    assert vos_of(["dev.intertwin.eu.evil"]) == {"dev.intertwin.eu.evil"}


def test_defaults_are_the_first_choices() -> None:
    sel = validate(CATALOGUE, {"dev.intertwin.eu"}, {"profile": "vega"})
    assert (sel.resource.slug, sel.partition and sel.partition.slug, sel.gpus) == (
        "small", "gpu", 1)
    assert validate(CATALOGUE, set(), {}).site.slug == "ukri"
