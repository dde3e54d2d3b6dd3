"""The images' pinned versions agree with the package: every ``name==version`` the Dockerfiles
and constraints files pin is one pyproject.toml allows, and the hub image is the chart release
whose JupyterHub the constraints name. (No container engine runs here: the images are not
built by the tests.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("*/Dockerfile"))
CONSTRAINTS = sorted((ROOT / "constraints").glob("*.txt"))
PIN = re.compile(r'"([A-Za-z0-9_.\-]+)==([0-9][^"\s]*)"')


def requirements() -> dict[str, list[Requirement]]:
    """Every requirement pyproject.toml states, by package, over the base and every extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    reqs = [*project["dependencies"], *(r for extra in extras for r in extra)]
    found: dict[str, list[Requirement]] = {}
    for r in map(Requirement, reqs):
        found.setdefault(canonicalize_name(r.name), []).append(r)
    return found


def pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    if path.suffix == ".txt":
        lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
        return dict(ln.split("==", 1) for ln in lines if ln)
    return dict(PIN.findall(text))


@pytest.mark.parametrize(
    "path", [*DOCKERFILES, *CONSTRAINTS], ids=lambda p: p.parent.name + "/" + p.name
)
def test_every_pin_is_allowed_by_pyproject(path: Path) -> None:
    reqs = requirements()
    found = pins(path)
    # the hub image pins through its constraints file (checked as such), not in its own text
    assert found or "COPY constraints/" in path.read_text(), f"{path} pins nothing"
    for name, version in found.items():
        for req in reqs.get(canonicalize_name(name), []):
            assert req.specifier.contains(version, prereleases=True), (
                f"{path.relative_to(ROOT)} pins {name}=={version}, "
                f"but pyproject.toml requires {req}"
            )


def test_the_hub_image_is_the_chart_release_of_its_constraints() -> None:
    hub = (ROOT / "docker" / "hub" / "Dockerfile").read_text()
    base = re.search(r"^FROM quay\.io/jupyterhub/k8s-hub:(\S+)$", hub, re.M)
    assert base, "the hub image must build on the chart's own hub image"
    copied = re.search(r"^COPY constraints/(chart-[\d.]+)\.txt ", hub, re.M)
    assert copied, "the hub image must install under the chart's constraints"
    # chart-4.4.txt belongs to the chart's 4.4.x releases
    assert base.group(1).startswith(copied.group(1).removeprefix("chart-") + ".")


def test_the_notebooks_run_the_hubs_jupyterhub() -> None:
    """jupyterhub-singleuser speaks to the hub: the single-user image pins the JupyterHub
    the chart's hub image runs."""
    hub_line = pins(ROOT / "constraints" / "chart-4.4.txt")["jupyterhub"]
    single = pins(ROOT / "docker" / "singleuser" / "Dockerfile")
    assert single.get("jupyterhub") == hub_line
