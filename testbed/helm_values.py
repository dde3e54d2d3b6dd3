"""The deployment's Helm values (``helm-values/``) as helm sees them: the shared ``ukri.yaml``
with one environment's overlay deep-merged over it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parents[1] / "helm-values"
BASE = "ukri.yaml"
ENVIRONMENTS = ("dev", "prod")


def helm_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of values files: maps merge key by key, anything else is replaced, and a
    null removes the key (https://helm.sh/docs/chart_template_guide/values_files/)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = helm_merge(out[k], v)
        else:
            out[k] = v
    return out


def values_for(env: str) -> dict[str, Any]:
    """``-f ukri.yaml -f <env>.yaml``."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"no environment {env!r}; there are {', '.join(ENVIRONMENTS)}")
    base = yaml.safe_load((VALUES / BASE).read_text())
    return helm_merge(base, yaml.safe_load((VALUES / f"{env}.yaml").read_text()))
