"""Spawn-to-ready: InterTwinSpawner against plain KubeSpawner on the same testbed, and 50
concurrent spawns on Vega.

    .venv/bin/python bench/spawn.py [--rounds 5] [--concurrent 50]

Both hubs run side by side on one testbed (same control plane, same Vega virtual kubelet,
same local plugin, no emulated queue). The baseline hub uses plain KubeSpawner configured
statically to build the same Vega pod (selector, tolerations, limits, GPUs, annotations), so
the ratio isolates what InterTwinSpawner adds: catalogue validation, the pod plan and the
progress story. Prints the ratio of medians (goal <= 1.05) and the failures of the concurrent
run (goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intertwin_hub.sites import load_catalogue
from intertwin_hub.spawner.options import validate
from intertwin_hub.spawner.pod import plan
from testbed.cluster import ControlPlane, Identity
from testbed.hub import start_hub
from testbed.procs import Supervisor
from testbed.testbed import down, up

VO = "dev.intertwin.eu"


def baseline_config() -> str:
    """Plain KubeSpawner building InterTwinSpawner's Vega pod from static configuration."""
    sel = validate(load_catalogue(), {VO}, {"profile": "vega", "gpus": "gpu-1"})
    p = plan(sel)
    return f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.image = {p.image!r}
c.KubeSpawner.cpu_limit = c.KubeSpawner.cpu_guarantee = {p.cpu!r}
c.KubeSpawner.mem_limit = c.KubeSpawner.mem_guarantee = {p.memory!r}
c.KubeSpawner.extra_resource_limits = {{"nvidia.com/gpu": "1"}}
c.KubeSpawner.extra_resource_guarantees = {{"nvidia.com/gpu": "1"}}
c.KubeSpawner.node_selector = {p.node_selector!r}
c.KubeSpawner.tolerations = {p.tolerations!r}
c.KubeSpawner.extra_annotations = {p.annotations!r}
c.KubeSpawner.extra_labels = {p.labels!r}
c.KubeSpawner.environment = {p.env!r}
c.KubeSpawner.start_timeout = {sel.site.start_timeout}
"""


async def spawn_time(s: aiohttp.ClientSession, api: str, user: str, server: str,
                     options: dict[str, Any] | None, poll: float = 0.1) -> float:
    async with s.post(f"{api}/users/{user}") as r:
        assert r.status in (201, 409), await r.text()
    t0 = time.perf_counter()
    body = {"user_options": options} if options is not None else {}
    async with s.post(f"{api}/users/{user}/servers/{server}", json=body) as r:
        if r.status not in (201, 202):
            raise RuntimeError(f"{user}/{server}: {r.status} {await r.text()}")
    while True:
        async with s.get(f"{api}/users/{user}") as r:
            srv = (await r.json())["servers"].get(server)
        if srv and srv["ready"]:
            return time.perf_counter() - t0
        if not srv or not srv.get("pending"):
            raise RuntimeError(f"{user}/{server} failed to start")
        await asyncio.sleep(poll)


async def stop(s: aiohttp.ClientSession, api: str, user: str, server: str) -> None:
    async with s.delete(f"{api}/users/{user}/servers/{server}", json={"remove": True}) as r:
        assert r.status in (202, 204), await r.text()
    while True:  # wait until the pod is gone so rounds do not overlap
        async with s.get(f"{api}/users/{user}") as r:
            if server not in (await r.json())["servers"]:
                return
        await asyncio.sleep(0.2)


async def add_to_vo(s: aiohttp.ClientSession, api: str, users: list[str]) -> None:
    async with s.post(f"{api}/users", json={"usernames": users}) as r:
        assert r.status in (201, 409), await r.text()
    async with s.post(f"{api}/groups/{VO}/users", json={"users": users}) as r:
        assert r.status == 200, await r.text()


async def main(rounds: int, concurrent: int) -> None:
    run = Path(tempfile.mkdtemp(prefix="intertwin-bench-"))
    print(f"bringing the testbed up in {run} ...", flush=True)
    state = up(run, hub=True, progress=lambda m: print(f"  {m}", flush=True))
    try:
        cps = dict(state["control_plane"])
        cps["identities"] = {k: Identity(**v) for k, v in cps["identities"].items()}
        base = start_hub(Supervisor(run), ControlPlane(**cps), name="baseline",
                         extra_config=baseline_config())
        hub = state["hub"]
        a = aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})
        b = aiohttp.ClientSession(headers={"Authorization": f"token {base.service_token}"})
        async with a, b:
            await add_to_vo(a, hub["api_url"], ["bench"])
            async with b.post(f"{base.api_url}/users/basebench") as r:
                assert r.status in (201, 409)
            t_it: list[float] = []
            t_ks: list[float] = []
            rng = random.Random(7)
            for i in range(rounds):
                # random order and a random pause: the VK polls status every 5 s, and a spawn
                # that always starts at the same phase of that poll would bias one side
                order = [("it", a, hub["api_url"], "bench", {"profile": "vega", "gpus": "gpu-1"}),
                         ("ks", b, base.api_url, "basebench", None)]
                rng.shuffle(order)
                for kind, sess, api, user, opts in order:
                    await asyncio.sleep(rng.uniform(0, 5))
                    t = await spawn_time(sess, api, user, f"r{i}", opts)
                    (t_it if kind == "it" else t_ks).append(t)
                    await stop(sess, api, user, f"r{i}")
                print(f"  round {i + 1}: InterTwinSpawner {t_it[-1]:.2f} s, "
                      f"KubeSpawner {t_ks[-1]:.2f} s", flush=True)
            m_it, m_ks = statistics.median(t_it), statistics.median(t_ks)
            print(f"spawn-to-ready over {rounds} rounds: median InterTwinSpawner {m_it:.2f} s, "
                  f"KubeSpawner {m_ks:.2f} s, ratio {m_it / m_ks:.3f} (goal <= 1.05); mean "
                  f"{statistics.mean(t_it):.2f} s vs {statistics.mean(t_ks):.2f} s, ratio "
                  f"{statistics.mean(t_it) / statistics.mean(t_ks):.3f}")

            users = [f"crowd{i:02d}" for i in range(concurrent)]
            await add_to_vo(a, hub["api_url"], users)
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(spawn_time(a, hub["api_url"], u, "c", {"profile": "vega", "gpus": "gpu-1"},
                             poll=2.0) for u in users), return_exceptions=True)
            wall = time.perf_counter() - t0
            failures = [r for r in results if isinstance(r, BaseException)]
            ok = sorted(r for r in results if isinstance(r, float))
            print(f"{concurrent} concurrent Vega spawns: {len(ok)} ready, {len(failures)} "
                  f"failed (goal 0), wall {wall:.1f} s, median {statistics.median(ok):.1f} s, "
                  f"max {ok[-1]:.1f} s" if ok else f"all {concurrent} failed")
            for f in failures[:5]:
                print(f"  failure: {f}")
            await asyncio.gather(*(stop(a, hub["api_url"], u, "c") for u in users),
                                 return_exceptions=True)
    finally:
        down(run)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--concurrent", type=int, default=50)
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.concurrent))
