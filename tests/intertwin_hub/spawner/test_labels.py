"""Whose a workload pod is, where and what: read back from the pod the spawner builds."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiClient

from intertwin_hub import labels

from .helpers import DEV, FakeUser, Group, OfflineSpawner, hub_path


@pytest.mark.asyncio
async def test_a_notebook_pod_names_its_owner_site_and_kind_even_for_odd_user_names() -> None:
    user = FakeUser(name="Ana.Smith@uni-lj.si", groups=[Group(DEV)])
    s = OfflineSpawner(_mock=True, user=user)
    pod = ApiClient().sanitize_for_serialization(
        await hub_path(s, {"profile": "vega", "resources": "medium", "gpus": "gpu-1"})
    )
    # the label is KubeSpawner's label-safe slug; the exact name comes from the annotation
    assert pod["metadata"]["labels"][labels.LABEL_USER] != user.name
    assert labels.owner_of(pod) == "Ana.Smith@uni-lj.si"
    assert (labels.site_of(pod), labels.kind_of(pod)) == ("vega", "notebook")


def test_workload_labels_and_the_watch_selector() -> None:
    assert labels.workload_labels("kbfi", "batch-cell") == {
        "intertwin.eu/site": "kbfi",
        "intertwin.eu/workload": "batch-cell",
    }
    with pytest.raises(ValueError):
        labels.workload_labels("kbfi", "daemon")
    assert labels.WORKLOAD_SELECTOR == "intertwin.eu/workload in (notebook,batch-cell)"


def test_readers_of_pods_without_our_marks() -> None:
    bare: dict[str, object] = {"metadata": {"labels": {"intertwin.eu/workload": "other"}}}
    assert labels.kind_of(bare) is None
    assert labels.owner_of(bare) is None and labels.site_of({}) is None
    assert labels.server_of({}) == ""
    named = {"metadata": {"annotations": {"hub.jupyter.org/servername": "gpu run"}}}
    assert labels.server_of(named) == "gpu run"
    slug_only = {"metadata": {"labels": {"hub.jupyter.org/username": "bob"}}}
    assert labels.owner_of(slug_only) == "bob"
