"""The session's site, as the hub's InterTwinSpawner put it into the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SiteContext:
    slug: str
    title: str
    scratch_rse: str | None
    scratch_path: str | None
    # the site's short name (Vega) and its GPU model (A100), for "Vega, 2 x A100"
    name: str
    gpu_model: str | None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


def site_context(env: Mapping[str, str] = os.environ) -> SiteContext | None:
    slug = env.get("INTERTWIN_SITE")
    if not slug:
        return None
    return SiteContext(
        slug=slug,
        title=env.get("INTERTWIN_SITE_TITLE") or slug,
        scratch_rse=env.get("INTERTWIN_SCRATCH_RSE") or None,
        scratch_path=env.get("INTERTWIN_SCRATCH_PATH") or None,
        name=env.get("INTERTWIN_SITE_NAME") or slug,
        gpu_model=env.get("INTERTWIN_GPU_MODEL") or None,
    )
