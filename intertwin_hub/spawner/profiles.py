"""The spawn form: the catalogue as KubeSpawner ``profile_list`` entries (display only).

The choices carry no ``kubespawner_override``: what a choice means for the pod is decided in
one place, :mod:`.pod`, from the validated :class:`~.options.Selection`.
"""

from __future__ import annotations

from typing import Any

from ..sites import Site
from .options import GPUS, IMAGE, RESOURCES, gpu_choices


def _gpu_label(site: Site, partition_label: str | None, n: int) -> str:
    gpus = "no GPU" if n == 0 else f"{n} x {site.node.gpu.model if site.node.gpu else 'GPU'}"
    return f"{partition_label} — {gpus}" if partition_label else gpus


def profile(site: Site, default: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {
        RESOURCES: {
            "display_name": "CPU and Memory",
            "choices": {
                r.slug: {"display_name": r.label, "default": i == 0}
                for i, r in enumerate(site.resources)
            },
        },
    }
    gchoices = gpu_choices(site)
    if gchoices:
        options[GPUS] = {
            "display_name": "Partition and GPUs" if site.partitions else site.gpu_label,
            "choices": {
                key: {
                    "display_name": _gpu_label(site, p.label if p else None, n),
                    "default": i == 0,
                }
                for i, (key, p, n) in enumerate(gchoices)
            },
        }
    options[IMAGE] = {
        "display_name": "Image",
        "choices": {
            img.slug: {"display_name": img.label, "default": i == 0}
            for i, img in enumerate(site.images)
        },
    }
    if site.other_image:
        options[IMAGE]["unlisted_choice"] = {
            "enabled": True,
            "display_name": "Other image",
            "display_name_in_choices": "Other image…",
            "validation_regex": "|".join(f"(?:{p})" for p in site.other_image.allowed_patterns),
            "validation_message": site.other_image.message,
        }
    return {
        "display_name": site.title,
        "description": site.description,
        "slug": site.slug,
        "default": default,
        "profile_options": options,
    }


def profile_list(sites: list[Site]) -> list[dict[str, Any]]:
    return [profile(s, default=(i == 0)) for i, s in enumerate(sites)]
