"""notebooks/01-datalake.ipynb runs end to end against the real Rucio: found, made available at
the session's site, waited for, and read from the local path, with alice's own token in the
RUCIO_* environment a hub-spawned session gets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from testbed.rucio import set_pump_interval
from testbed.rucio.client import rse_path, token

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "01-datalake.ipynb"
SITE_RSE = "PSNC-DCACHE"  # not the RSE the API tests use, so their rules stay theirs


def test_the_datalake_notebook_reads_a_replica_where_it_runs(
    rucio: dict[str, Any], tmp_path: Path
) -> None:
    alice_token = token(rucio, "alice")
    env = {
        **os.environ,
        # what InterTwinSpawner puts in the session (pod.py::rucio_env), alice's own token
        "RUCIO_BASE_URL": rucio["url"],
        "RUCIO_AUTH_URL": rucio["url"],
        "RUCIO_DEFAULT_AUTH_TYPE": "oidc",
        "RUCIO_OIDC_AUTH": "env",
        "RUCIO_OIDC_ENV_NAME": "RUCIO_ACCESS_TOKEN",
        "RUCIO_ACCESS_TOKEN": alice_token,
        "RUCIO_DESTINATION_RSE": SITE_RSE,
        "RUCIO_RSE_MOUNT_PATH": rucio["rses"][SITE_RSE]["path"],
        # PSNC's scratch is davs-only: the catalogue's PFN rule
        "RUCIO_PATH_BEGINS_AT": "4",
        "RUCIO_SITE_NAME": rucio["rses"][SITE_RSE]["site"],
        "INTERTWIN_SITE_TITLE": "Offload to PSNC - dev VO",
    }
    nb = nbformat.read(NOTEBOOK, as_version=4)
    set_pump_interval(rucio, 1.0)  # transfers finish on their own, as at a real site
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute(env=env)
    finally:
        set_pump_interval(rucio, None)
    out = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "as alice" in out and f"scratch RSE is {SITE_RSE}" in out, out
    assert "intertwin:climate.era5" in out, out
    # the file was read from PSNC's scratch directory on this machine, with the origin's bytes
    assert "AVAILABLE  " + rucio["rses"][SITE_RSE]["path"] in out, out
    read = next(line for line in out.splitlines() if line.startswith("read "))
    fname = read.split()[1].rstrip(":")
    origin = next(
        rse_path(rucio, rse, "intertwin", fname)
        for rse in rucio["rses"]
        if rse != SITE_RSE and rse_path(rucio, rse, "intertwin", fname).is_file()
    )
    assert read.endswith(hashlib.sha256(origin.read_bytes()).hexdigest()), (read, origin)


@pytest.fixture(autouse=True)
def _no_stray_kernel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # a RUCIO_* variable of the machine running the tests must not leak into the kernel
    for k in list(os.environ):
        if k.startswith("RUCIO_"):
            monkeypatch.delenv(k)
