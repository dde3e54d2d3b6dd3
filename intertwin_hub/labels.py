"""The labels and annotations that mark a workload pod (a notebook server or a batch cell) and
tell whose it is, where it runs and what it is: set by the spawner (and, for batch cells, by the
hub service), read by the service's watch. The site itself is described only in the catalogue
(``sites.yaml``); a pod carries just its slug.

KubeSpawner already sets the owner on every pod it builds
(https://github.com/jupyterhub/kubespawner/blob/main/kubespawner/spawner.py,
``_build_common_labels`` / ``_build_common_annotations``): the label
``hub.jupyter.org/username`` is a label-safe slug of the name (for selectors; not reversible),
the annotation of the same key the JupyterHub user name itself, and
``hub.jupyter.org/servername`` the named server's name. Those are used here, not copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_SITE = "intertwin.eu/site"
# the kind of workload: KIND_NOTEBOOK or KIND_BATCH_CELL
LABEL_WORKLOAD = "intertwin.eu/workload"
KIND_NOTEBOOK = "notebook"
KIND_BATCH_CELL = "batch-cell"
KINDS = (KIND_NOTEBOOK, KIND_BATCH_CELL)
# KubeSpawner's: the slug label (selectors) and the exact name (annotation)
LABEL_USER = "hub.jupyter.org/username"
ANNOTATION_USER = "hub.jupyter.org/username"
ANNOTATION_SERVER = "hub.jupyter.org/servername"
# a batch cell's origin, as annotations (a path is no label value)
ANNOTATION_NOTEBOOK_PATH = "intertwin.eu/notebook-path"
ANNOTATION_CELL_ID = "intertwin.eu/cell-id"

# the VO the workload's usage is accounted to (a VO name such as dev.intertwin.eu)
ANNOTATION_VO = "intertwin.eu/vo"

# every workload pod, whoever's: what the hub service watches
WORKLOAD_SELECTOR = f"{LABEL_WORKLOAD} in ({','.join(KINDS)})"


def workload_labels(site_slug: str, kind: str) -> dict[str, str]:
    """The labels a workload pod gets on top of KubeSpawner's own."""
    if kind not in KINDS:
        raise ValueError(f"unknown workload kind {kind!r}")
    return {LABEL_SITE: site_slug, LABEL_WORKLOAD: kind}


def _meta(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("metadata") or {}


def owner_of(pod: Mapping[str, Any]) -> str | None:
    """The JupyterHub user a workload pod belongs to (the exact name, from the annotation;
    the label's slug only when the annotation is missing), None if it names none."""
    meta = _meta(pod)
    name = (meta.get("annotations") or {}).get(ANNOTATION_USER)
    return name or (meta.get("labels") or {}).get(LABEL_USER) or None


def kind_of(pod: Mapping[str, Any]) -> str | None:
    kind = (_meta(pod).get("labels") or {}).get(LABEL_WORKLOAD)
    return kind if kind in KINDS else None


def site_of(pod: Mapping[str, Any]) -> str | None:
    return (_meta(pod).get("labels") or {}).get(LABEL_SITE) or None


def server_of(pod: Mapping[str, Any]) -> str:
    """The named server's name ("" for the default server)."""
    return (_meta(pod).get("annotations") or {}).get(ANNOTATION_SERVER) or ""
