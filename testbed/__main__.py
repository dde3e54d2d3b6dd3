"""``python -m testbed up|down|status``: the local testbed on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
import time

from .lifecycle import down, up
from .procs import TestbedError
from .rucio import database_from_env
from .state import default_run_dir, read_state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    p.add_argument(
        "--run-dir",
        type=default_run_dir().__class__,
        default=default_run_dir(),
        help="folder for logs, pids, configs (default: .run/testbed)",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="build what is missing and start the testbed")
    u.add_argument("--no-hub", action="store_true", help="only Kubernetes + interLink")
    u.add_argument(
        "--no-rucio",
        action="store_true",
        help="no Rucio server (DataLake); INTERTWIN_RUCIO_DB=postgresql runs it on "
        "PostgreSQL instead of SQLite",
    )
    u.add_argument(
        "--queue-seconds",
        type=float,
        default=0.0,
        help="hold each offloaded job this long in the emulated batch queue",
    )
    u.add_argument(
        "--slurm",
        action="store_true",
        help="queue the Slurm sites' (Vega, PSNC) pods in a real Slurm cluster "
        "(Debian's slurm-wlm, run as root) instead of the emulated queue",
    )
    u.add_argument(
        "--keycloak",
        action="store_true",
        help="log in through a Keycloak of this run (realm egi, mirroring EGI Check-in) "
        "instead of the demo password",
    )
    u.add_argument(
        "--access-token-lifespan",
        type=int,
        default=3600,
        help="with --keycloak: seconds an access token lives (EGI Check-in: 3600)",
    )
    sub.add_parser("down", help="stop every process of the testbed")
    sub.add_parser("status", help="print the running testbed's endpoints")
    a = p.parse_args(argv)
    try:
        if a.cmd == "up":
            t0 = time.monotonic()
            state = up(
                a.run_dir,
                hub=not a.no_hub,
                queue_seconds=a.queue_seconds,
                progress=lambda m: print(f"[testbed] {m}", flush=True),
                rucio=not a.no_rucio,
                rucio_db=database_from_env(),
                slurm=a.slurm,
                keycloak=a.keycloak,
                access_token_lifespan=a.access_token_lifespan,
            )
            print(
                f"[testbed] up in {time.monotonic() - t0:.1f} s; state in "
                f"{a.run_dir / 'testbed.json'}"
            )
            if state.get("hub"):
                print(f"[testbed] JupyterHub: {state['hub']['url']}")
            if state.get("keycloak"):
                kc = state["keycloak"]
                print(
                    f"[testbed] Keycloak: {kc['url']}/realms/egi (admin console "
                    f"{kc['url']}/admin/ as {kc['admin_user']} / {kc['admin_password']})"
                )
            if state.get("rucio"):
                print(
                    f"[testbed] Rucio: {state['rucio']['url']} "
                    f"(conveyor {state['rucio']['conveyor_url']}, "
                    f"{state['rucio']['database']['kind']})"
                )
        elif a.cmd == "down":
            n = down(a.run_dir)
            print(f"[testbed] stopped {n} processes")
        else:
            st = read_state(a.run_dir)
            if st is None:
                print("testbed is not running", file=sys.stderr)
                return 1
            import json

            print(json.dumps(st, indent=1))
    except TestbedError as e:
        print(f"[testbed] error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
