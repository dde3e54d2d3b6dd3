"""Login load: simulated users log in through Keycloak (EGI Check-in's software, realm ``egi``)
and open the spawn page, over and over, for a while; every login and page is timed.

    .venv/bin/python bench/login.py --state RUN_DIR [--users 200] [--duration 60]
    .venv/bin/python bench/login.py --smoke --state RUN_DIR   # does the bench still work

Each simulated user does what a browser does: the hub's ``/hub/oauth_login`` redirects to
Keycloak's login form, the form is posted, Keycloak redirects to the hub's ``oauth_callback``,
which lands on ``/hub/spawn`` (the site form). Then the spawn page is opened once more with the
hub's cookie ("page"). The baseline is the same loop run by one user alone, in the same run: the
ratio says how much the crowd slows each login down. It also reports the errors (any answer
that is not the spawn form), and the hub process's CPU time and peak resident memory.

``--state RUN_DIR`` uses a running testbed (``python -m testbed up``, or the test session's) for
its control plane; the bench starts its own Keycloak and hub (the Helm values' login) and
stops them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.hub import start_hub
from testbed.keycloak import (
    DEV_VO_ENTITLEMENT,
    USERS_PASSWORD,
    Keycloak,
    start_keycloak,
)
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor, free_port
from testbed.state import read_state
from tests.testbed.hubapi import checkin_login

# what only the spawn page shows: the site form of the catalogue
SPAWN_FORM_MARK = "Offload to Vega"


@dataclass
class Times:
    login: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hub_cpu_cores: float = 0.0  # the hub's CPU time over the wall time
    hub_peak_rss_mib: float = 0.0


def load_users(kc: Keycloak, n: int) -> list[str]:
    """``n`` dev-VO users in one partial import (one admin call, not n)."""
    names = [f"load{i:04d}" for i in range(n)]
    users = [
        {
            "username": name,
            "enabled": True,
            "email": f"{name}@example.org",
            "emailVerified": True,
            "firstName": "Load",
            "lastName": name,
            "attributes": {"eduperson_entitlement": [DEV_VO_ENTITLEMENT]},
            "credentials": [{"type": "password", "value": USERS_PASSWORD, "temporary": False}],
            # the realm's default roles hold offline_access, which the hub's scope asks for
            "realmRoles": ["default-roles-egi"],
        }
        for name in names
    ]
    kc.admin("POST", "/partialImport", {"ifResourceExists": "SKIP", "users": users})
    return names


async def one_user(hub_url: str, kc_url: str, user: str, until: float, times: Times) -> None:
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            s, status, text, url = await checkin_login(
                hub_url, kc_url, user, USERS_PASSWORD, next_url="/hub/spawn"
            )
        except Exception as e:  # a refused or broken login is an error to count, not a crash
            times.errors.append(f"{user} login: {type(e).__name__}: {str(e)[:200]}")
            continue
        async with s:
            if status != 200 or SPAWN_FORM_MARK not in text:
                times.errors.append(f"{user} login landed on {status} {url}")
                continue
            times.login.append(time.monotonic() - t0)
            t1 = time.monotonic()
            async with s.get(f"{hub_url}/hub/spawn") as r:
                page = await r.text()
            if r.status != 200 or SPAWN_FORM_MARK not in page:
                times.errors.append(f"{user} spawn page: {r.status}")
                continue
            times.page.append(time.monotonic() - t1)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(hub_url: str, kc_url: str, users: list[str], duration: float, pid: int) -> Times:
    times = Times(hub_peak_rss_mib=rss_mib(pid))

    async def sample() -> None:
        while True:
            times.hub_peak_rss_mib = max(times.hub_peak_rss_mib, rss_mib(pid))
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample())
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    until = t0 + duration
    await asyncio.gather(*(one_user(hub_url, kc_url, u, until, times) for u in users))
    wall = time.monotonic() - t0
    sampler.cancel()
    times.hub_cpu_cores = (cpu_seconds(pid) - cpu0) / wall
    return times


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def report(label: str, t: Times, duration: float) -> dict[str, Any]:
    out = {
        "logins": len(t.login),
        "errors": len(t.errors),
        "login_p50": statistics.median(t.login) if t.login else float("nan"),
        "login_p95": pct(t.login, 0.95),
        "page_p50": statistics.median(t.page) if t.page else float("nan"),
        "page_p95": pct(t.page, 0.95),
        "hub_cpu_cores": t.hub_cpu_cores,
        "hub_peak_rss_mib": t.hub_peak_rss_mib,
    }
    print(
        f"{label}: {out['logins']} logins in {duration:.0f} s, {out['errors']} errors; "
        f"login p50 {out['login_p50']:.3f} s p95 {out['login_p95']:.3f} s; "
        f"spawn page p50 {out['page_p50']:.3f} s p95 {out['page_p95']:.3f} s; "
        f"hub CPU {out['hub_cpu_cores']:.2f} cores, peak RSS {out['hub_peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    for e in t.errors[:5]:
        print(f"  error: {e}", flush=True)
    return out


async def main(args: argparse.Namespace) -> int:
    if args.smoke:
        args.users, args.duration, alone = 3, 5.0, 3.0
    else:
        alone = min(args.duration, 30.0)
    state = read_state(Path(args.state))
    if not state or "control_plane" not in state:
        raise SystemExit(f"no testbed is running from {args.state}")
    run_dir = Path(tempfile.mkdtemp(prefix="intertwin-bench-login-"))
    sup = Supervisor(run_dir)
    port = free_port()
    try:
        print("starting Keycloak and a hub that logs in through it ...", flush=True)
        kc = await asyncio.to_thread(
            start_keycloak, sup, [f"http://127.0.0.1:{port}/hub/oauth_callback"]
        )
        hub = await asyncio.to_thread(
            start_hub, sup, control_plane_of(state), "login-bench", "", None, kc, port
        )
        pid = sup.pids()["jupyterhub-login-bench"]
        users = await asyncio.to_thread(load_users, kc, args.users)
        print(f"{len(users)} users in Keycloak; one user alone for {alone:.0f} s ...", flush=True)
        base = report("1 user alone", await run(hub.url, kc.url, users[:1], alone, pid), alone)
        print(f"{len(users)} users at once for {args.duration:.0f} s ...", flush=True)
        crowd = report(
            f"{len(users)} concurrent users",
            await run(hub.url, kc.url, users, args.duration, pid),
            args.duration,
        )
        ratio = crowd["login_p95"] / base["login_p95"]
        print(
            f"login p95, {len(users)} concurrent / 1 alone: {ratio:.1f}x; "
            f"goal: 0 errors (got {crowd['errors']})",
            flush=True,
        )
        if args.json:
            text = json.dumps({"alone": base, "crowd": crowd})
            await asyncio.to_thread(Path(args.json).write_text, text)
        return 1 if crowd["errors"] or base["errors"] or not crowd["logins"] else 0
    finally:
        sup.stop_all(("jupyterhub-login-bench", "proxy-login-bench"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="3 users for 5 s: does it still work")
    ap.add_argument("--users", type=int, default=200, help="simulated users at once")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--state", required=True, help="the run folder of a running testbed")
    ap.add_argument("--json", help="also write the figures to this file")
    raise SystemExit(asyncio.run(main(ap.parse_args())))
