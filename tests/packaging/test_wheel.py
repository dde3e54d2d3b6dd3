"""The package users install is what is tested: a wheel built from this working tree (with the
lab extension scripts/setup.sh built), installed with its ``hub`` and ``lab`` extras into a
fresh venv, registers the JupyterLab extension, the jupyter-server extension and the hub's
``intertwin`` spawner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABEXT = "share/jupyter/labextensions/@intertwin/hub"


def sh(*argv: str | Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("JUPYTER")
    }
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{argv}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def working_tree_copy(dest: Path) -> Path:
    """The working tree's files (tracked and new, not ignored) plus the built lab extension."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    built = ROOT / "intertwin_hub" / "labextension"
    assert (built / "static" / "style.js").exists(), (
        "the lab extension is not built: run scripts/setup.sh"
    )
    shutil.copytree(built, dest / "intertwin_hub" / "labextension", symlinks=False)
    # a second scripts/setup.sh leaves an install.json in the build output (its editable
    # install writes through `jupyter labextension develop`'s link): the wheel must not mind
    stray = dest / "intertwin_hub" / "labextension" / "install.json"
    if not stray.exists():
        shutil.copy2(ROOT / "install.json", stray)
    return dest


def test_wheel_from_the_working_tree_installs_and_registers(tmp_path: Path) -> None:
    src = working_tree_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    # the build tools come from the project's venv (scripts/setup.sh installs them)
    sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        src,
        cwd=tmp_path,
    )
    wheels = list(dist.glob("intertwin_hub-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert not [n for n, c in Counter(names).items() if c > 1]
    data = next(
        n.split("/")[0] for n in names if n.endswith(".data/data/" + LABEXT + "/package.json")
    )
    for part in ("install.json", "package.json", "static/style.js"):
        assert f"{data}/data/{LABEXT}/{part}" in names, part
    assert any(n.startswith(f"{data}/data/etc/jupyter/jupyter_server_config.d/") for n in names)
    overrides = "share/jupyter/lab/settings/overrides.d/intertwin-hub.json"
    assert f"{data}/data/{overrides}" in names
    assert f"{data}/data/etc/ipython/ipython_kernel_config.json" in names

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_ = venv / "bin"
    sh(bin_ / "python", "-m", "pip", "install", "-q", f"{wheels[0]}[hub,lab]", cwd=tmp_path)

    lab = sh(bin_ / "jupyter", "labextension", "list", cwd=tmp_path)
    out = lab.stdout + lab.stderr
    line = next((ln for ln in out.splitlines() if "@intertwin/hub" in ln), "")
    assert "enabled" in line and "OK" in line and "intertwin-hub" in line, out
    server = sh(bin_ / "jupyter", "server", "extension", "list", cwd=tmp_path)
    out = server.stdout + server.stderr
    assert any("intertwin_lab" in ln and "enabled" in ln for ln in out.splitlines()), out
    assert any("intertwin_lab" in ln and "OK" in ln for ln in out.splitlines()), out
    # what JupyterHub does with `spawner_class = "intertwin"`
    probe = (
        "from importlib.metadata import entry_points; "
        "from kubespawner import KubeSpawner; "
        "cls = entry_points(group='jupyterhub.spawners')['intertwin'].load(); "
        "assert issubclass(cls, KubeSpawner), cls; print(cls.__module__, cls.__name__); "
        "import intertwin_hub; print(intertwin_hub.__file__)"
    )
    ep = sh(bin_ / "python", "-c", probe, cwd=tmp_path)
    assert "InterTwinSpawner" in ep.stdout
    assert str(venv) in ep.stdout.splitlines()[-1], "imported from outside the fresh venv"
    # every IPython kernel of the environment loads %%offload: the config is where IPython
    # reads it ({sys.prefix}/etc/ipython), and the magics import with the lab extra alone
    kernel_probe = (
        "import os, sys; from IPython.core.application import ENV_CONFIG_DIRS; "
        "from traitlets.config.loader import JSONFileConfigLoader; "
        "d = os.path.join(sys.prefix, 'etc', 'ipython'); assert d in ENV_CONFIG_DIRS; "
        "cfg = JSONFileConfigLoader('ipython_kernel_config.json', d).load_config(); "
        "print(cfg.InteractiveShellApp.extra_extensions); "
        "from intertwin_lab.offload.magic import OffloadMagics"
    )
    k = sh(bin_ / "python", "-c", kernel_probe, cwd=tmp_path)
    assert "intertwin_lab.offload" in k.stdout
