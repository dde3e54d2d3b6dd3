"""The local plugin's image map: what a container runtime would read from an image's config
(ENTRYPOINT and CMD), for the few images the testbed plays with this machine's programs.

A container's argv follows the runtime's rules (as in Kubernetes): ``command`` replaces the
ENTRYPOINT (and then CMD is ignored), ``args`` replace CMD; with neither, ENTRYPOINT + CMD.
Images not in the map have no known ENTRYPOINT: the plugin then runs ``args`` as the exec-style
entrypoint of Jupyter images (``tini -g --``) would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


# Jupyter docker-stacks images: ENTRYPOINT ["tini", "-g", "--", "start.sh"],
# CMD ["start-notebook.py"]. tini's job (reaping, signal forwarding) is the plugin wrapper's
# here; start.sh is played by a stand-in that leaves a trace the session can see.
DOCKER_STACKS = ImageConfig(
    entrypoint=(str(HERE / "docker-stacks-start.sh"),), cmd=("start-notebook.py",)
)

IMAGES: tuple[tuple[re.Pattern[str], ImageConfig], ...] = (
    (
        re.compile(r"^(quay\.io/|docker\.io/)?jupyter/[a-z0-9-]+-notebook(:[A-Za-z0-9._-]+)?$"),
        DOCKER_STACKS,
    ),
)


def image_config(image: str) -> ImageConfig | None:
    return next((cfg for pattern, cfg in IMAGES if pattern.fullmatch(image)), None)


def container_argv(image: str, command: list[str], args: list[str]) -> list[str]:
    """What a container runtime runs for this container; [] when nothing is known to run."""
    cfg = image_config(image)
    if command:
        return [*command, *args]
    if cfg is None:
        return list(args)
    return [*cfg.entrypoint, *(args or cfg.cmd)]
