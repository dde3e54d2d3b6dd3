"""Bring the whole testbed up, and down again leaving no process behind."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from intertwin_hub.sites import load_catalogue

from .binaries import ensure_built
from .cluster import ControlPlane, Identity, start_control_plane
from .hub import DEMO_PASSWORD, DEMO_USERS, start_hub
from .interlink import (
    ensure_pod_controllers,
    pinged_since_start,
    pod_cidr,
    pod_cidr_base,
    stacks_json,
    start_site,
)
from .keycloak import RUCIO_CLIENT, Keycloak, start_keycloak
from .kube import Kube
from .procs import Supervisor, TestbedError, alive, free_port, wait_until
from .rucio import Database, start_rucio
from .rucio.client import add_oidc_identity
from .slurm import STOP_ORDER as SLURM_STOP_ORDER
from .slurm import SlurmCluster, require_slurm, slurm_sites, start_slurm
from .slurm import cancel_all as cancel_slurm_jobs
from .state import REPO, read_state, write_state

# stop order: the hub first (it must not see its servers vanish), then Slurm's daemons in their
# own order (its jobs are cancelled before), control plane last
STOP_ORDER = ("jupyterhub", "proxy", *SLURM_STOP_ORDER)


def node_ready(kube: Kube, name: str) -> bool:
    try:
        node = kube.get(f"/api/v1/nodes/{name}")
    except Exception:
        return False
    conds = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def up(
    run_dir: Path,
    hub: bool = True,
    queue_seconds: float = 0.0,
    progress: Callable[[str], None] = lambda m: None,
    catalogue_path: str | None = None,
    rucio: bool | dict[str, Any] = True,
    rucio_db: Database = "sqlite",
    slurm: bool = False,
    keycloak: bool = False,
    access_token_lifespan: int = 3600,
    auth_refresh_age: int | None = None,
) -> dict[str, Any]:
    """``keycloak``: start the testbed's Keycloak (realm ``egi``, :mod:`testbed.keycloak`) with
    access tokens living ``access_token_lifespan`` seconds, and run the hub with helm-values'
    whole ``hub.config`` against it (refreshing tokens on requests ``auth_refresh_age`` seconds
    after the last refresh, when given, instead of the values').
    ``rucio``: True starts a Rucio server for this run (pumping transfers every 2 s) on
    ``rucio_db``, a dict is a Rucio someone else started and stops (the test session's),
    False: none. ``slurm``: queue the Slurm sites' pods in a real Slurm cluster of this run
    (:mod:`testbed.slurm`) instead of the plugins' emulated queue."""
    old = read_state(run_dir)
    if old is not None and any(alive(p) for p in Supervisor(run_dir).pids().values()):
        raise TestbedError(
            f"a testbed is already running from {run_dir}; "
            "stop it with `python -m testbed down` first"
        )
    if slurm:
        require_slurm()  # before minutes of start-up, not after
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    progress("checking the Go-built binaries (a cold build takes about 11 minutes on 2 cores)")
    bins = ensure_built()
    catalogue = load_catalogue(catalogue_path)
    sup = Supervisor(run_dir)
    try:
        kc: Keycloak | None = None
        hub_port = free_port()
        if keycloak:
            # first: this run's Rucio accepts its tokens (Rucio reads its OIDC settings when
            # it starts)
            kc = start_keycloak(
                sup,
                [f"http://127.0.0.1:{hub_port}/hub/oauth_callback"],
                access_token_lifespan=access_token_lifespan,
                progress=progress,
            )
        rucio_state: dict[str, Any] | None = None
        if isinstance(rucio, dict):
            rucio_state = rucio
        elif rucio:
            progress("starting Rucio (server, conveyor sidecar)")
            rucio_state = start_rucio(
                sup,
                run_dir,
                pump_interval=2.0,
                progress=progress,
                database=rucio_db,
                oidc=None
                if kc is None
                else {
                    "issuer": kc.issuer,
                    "client_id": RUCIO_CLIENT,
                    "client_secret": kc.rucio_client_secret,
                },
            )
            if kc is not None:
                # the demo users' Check-in identities are their Rucio accounts
                for user in rucio_state["accounts"]:
                    add_oidc_identity(rucio_state, user, kc.user_id(user), f"{user}@example.org")
        queued_in_slurm = slurm_sites(catalogue) if slurm else []
        cluster: SlurmCluster | None = None
        if queued_in_slurm:
            progress("starting Slurm (MariaDB, slurmdbd, slurmctld, slurmd)")
            cluster = start_slurm(sup, queued_in_slurm, progress=progress)
        progress("starting etcd and the Kubernetes control plane")
        cp = start_control_plane(sup, bins, [s.node.name for s in catalogue])
        progress(f"kube-apiserver ready at {cp.api_url} ({time.monotonic() - t0:.1f} s)")
        stacks = []
        base = pod_cidr_base()
        for i, site in enumerate(catalogue):
            progress(f"starting interLink for {site.slug} (node {site.node.name})")
            conf = cluster.conf if cluster and site in queued_in_slurm else None
            stacks.append(
                start_site(sup, bins, cp, site, pod_cidr(base, i), queue_seconds, slurm_conf=conf)
            )
        ensure_pod_controllers(sup, stacks, progress=progress)
        kube = cp.kube()
        progress("waiting for the nodes to become Ready (interLink pings every 30 s)")
        names = [site.node.name for site in catalogue]
        wait_until(
            lambda: (
                all(pinged_since_start(sup, s) for s in stacks)
                and all(node_ready(kube, n) for n in names)
            ),
            f"nodes {', '.join(names)} Ready",
            150,
        )
        progress(f"all {len(catalogue)} nodes Ready ({time.monotonic() - t0:.1f} s)")
        state: dict[str, Any] = {
            "run_dir": str(run_dir),
            "control_plane": cp.to_json(),
            "sites": stacks_json(stacks),
            "catalogue": catalogue_path,
        }
        if rucio_state is not None:
            state["rucio"] = rucio_state
        if cluster is not None:
            state["slurm"] = cluster.to_json()
        if kc is not None:
            state["keycloak"] = kc.to_json()
        if hub:
            progress("starting configurable-http-proxy and JupyterHub")
            h = start_hub(
                sup,
                cp,
                rucio=rucio_state,
                keycloak=kc,
                port=hub_port,
                auth_refresh_age=auth_refresh_age,
            )
            state["hub"] = asdict(h)
            state["demo_users"] = {"password": DEMO_PASSWORD, "users": DEMO_USERS}
        state["startup_seconds"] = round(time.monotonic() - t0, 1)
        write_state(run_dir, state)
        return state
    except BaseException:
        down(run_dir)
        raise


def down(run_dir: Path) -> int:
    sup = Supervisor(run_dir)
    n = len(sup.pids())
    slurm_conf = run_dir / "slurm" / "slurm.conf"
    if "slurmctld" in sup.pids() and slurm_conf.exists():
        # the notebooks are Slurm job steps: end them through Slurm while it still answers
        cancel_slurm_jobs(str(slurm_conf))
    sup.stop_all(STOP_ORDER)
    # notebooks and jobs run in sessions of their own: the plugins keep them across plugin
    # restarts on purpose, so the testbed cancels them explicitly
    for jobs in sorted(run_dir.glob("sites/*/jobs")):
        subprocess.run(
            [sys.executable, "-m", "testbed.local_plugin", "--root", str(jobs), "--cancel-all"],
            cwd=REPO,
            check=False,
            capture_output=True,
        )
    (run_dir / "testbed.json").unlink(missing_ok=True)
    return n


def restart_hub(run_dir: Path) -> None:
    """Restart the running testbed's JupyterHub process alone (proxy and notebooks stay)."""
    from .hub import Hub
    from .hub import restart_hub as restart

    state = read_state(run_dir)
    if state is None or "hub" not in state:
        raise TestbedError(f"no testbed hub is running from {run_dir}")
    restart(Supervisor(run_dir), control_plane_of(state), Hub(**state["hub"]))


def control_plane_of(state: dict[str, Any]) -> ControlPlane:
    """The running testbed's control plane, from its state file."""
    cp_state = dict(state["control_plane"])
    cp_state["identities"] = {k: Identity(**v) for k, v in cp_state["identities"].items()}
    return ControlPlane(**cp_state)
