"""What InterTwinSpawner adds to a spawn, against plain KubeSpawner building the same Vega pod
on the same testbed, and 100 concurrent Vega spawns against one spawn alone.

    .venv/bin/python bench/spawn.py [--rounds 30] [--concurrent 100]
    .venv/bin/python bench/spawn.py --smoke [--state RUN_DIR]   # does the bench still work

Spawn-to-ready on the testbed is dominated by things neither spawner controls: the virtual
kubelet polls the site's status every 5 s, and the notebook server starts. So the bench times
the two parts of a spawn that are the spawner's own, from a watch on the pods (the admin's
credentials) and the hub's REST API, both read in this process:

- POST -> pod: from the REST POST that starts the server to the pod object's ADDED event in
  the API server (the hub's request handling, options, the pod manifest, the create call);
- Running -> ready: from the first pod event with phase Running, a pod IP and every container
  ready (what KubeSpawner waits for) to the hub's server model saying ``ready`` (the spawner
  noticing, the hub's HTTP check of the notebook, the proxy route).

Both hubs run side by side (same control plane, same Vega virtual kubelet, same local plugin,
no emulated queue), started by the bench with the testbed's hub configuration, and both poll
every 50 ms where KubeSpawner and JupyterHub wait with a jittered backoff of up to 5 s (the
same code in both hubs, whose jitter would otherwise swamp the difference; ``STEADY_POLL``).
The baseline hub runs plain KubeSpawner configured statically to build
InterTwinSpawner's Vega pod (selector, tolerations, limits, GPUs, annotations). Rounds run the
two in random order with a random pause, so neither side always meets the same phase of the
5 s status poll. Prints the median and p95 of each part for both and their ratios (goal <= 1.05).

Then one Vega spawn alone (three, the median) and ``--concurrent`` spawns at once, all by
different users through the REST API: spawn-to-ready p50/p95 against the lone spawn, and the
failures (goal 0). The bench's testbed declares Vega's virtual node with room for all of them
(a virtual node stands for a whole site: 100 "small" sessions need 400 CPUs and 1.6 TiB).

``--state RUN_DIR`` uses a running testbed (``python -m testbed up``, or the test session's)
instead of starting one; the baseline hub then runs in a folder of its own and is stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intertwin_hub.sites import load_catalogue  # noqa: E402
from intertwin_hub.spawner.options import validate  # noqa: E402
from intertwin_hub.spawner.pod import plan_pod  # noqa: E402
from testbed.cluster import ControlPlane, Identity  # noqa: E402
from testbed.hub import start_hub  # noqa: E402
from testbed.lifecycle import down, up  # noqa: E402
from testbed.procs import Supervisor  # noqa: E402
from testbed.state import read_state  # noqa: E402

VO = "dev.intertwin.eu"
VEGA = {"profile": "vega", "gpus": "gpu-1"}
GOAL = 1.05


def p95(xs: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-95 * len(s) // 100) - 1))]


# Both compared hubs get this. KubeSpawner waits for the pod (and JupyterHub for the notebook's
# HTTP answer) with jupyterhub.utils.exponential_backoff: sleeps drawn uniformly from 0 up to
# 5 s, doubling the range each try. That jitter is the same code in both hubs and, at a few
# seconds per spawn, swamps what the spawners differ by; polling every 50 ms instead removes it
# from "Running -> ready" for both alike.
STEADY_POLL = """
import functools as _ft
import jupyterhub.utils as _ju
import kubespawner.spawner as _ks
_steady = _ft.partial(_ju.exponential_backoff, start_wait=0.05, scale_factor=1, max_wait=0.05)
_ju.exponential_backoff = _ks.exponential_backoff = _steady
"""


def baseline_config() -> str:
    """Plain KubeSpawner building InterTwinSpawner's Vega pod from static configuration."""
    sel = validate(load_catalogue(), {VO}, VEGA)
    p = plan_pod(sel, reach="pod-vpn")  # as the testbed's hub (site_reach): its PodCIDRs are local
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
# a one-profile form, as a Zero to JupyterHub deployment has, so both hubs take the same POST
c.KubeSpawner.profile_list = [{{"display_name": "Vega", "slug": "vega", "default": True}}]
"""


def roomy_catalogue(folder: Path, sessions: int) -> Path:
    """The shipped catalogue with Vega's virtual node large enough for ``sessions`` sessions."""
    data = yaml.safe_load((ROOT / "intertwin_hub" / "sites.yaml").read_text())
    for site in data["sites"]:
        if site["slug"] == "vega":
            site["node"]["cpu"] = str(max(int(site["node"]["cpu"]), 8 * sessions))
            site["node"]["memory"] = f"{max(1000, 32 * sessions)}Gi"
            site["node"]["gpu"]["count"] = max(site["node"]["gpu"]["count"], 2 * sessions)
    path = folder / "sites-bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class PodTimes:
    """When this process saw each notebook pod appear and become Running (monotonic clock)."""

    added: dict[tuple[str, str], float] = field(default_factory=dict)
    running: dict[tuple[str, str], float] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def _key(pod: Any) -> tuple[str, str] | None:
    ann = pod.metadata.annotations or {}
    user = ann.get("hub.jupyter.org/username")
    return (user, ann.get("hub.jupyter.org/servername", "")) if user else None


def _running(pod: Any) -> bool:
    st = pod.status
    return bool(
        st
        and st.phase == "Running"
        and st.pod_ip
        and st.container_statuses
        and all(c.ready for c in st.container_statuses)
        and not pod.metadata.deletion_timestamp
    )


async def watch_pods(kubeconfig: str, namespace: str, times: PodTimes) -> None:
    from kubernetes_asyncio import client, config, watch

    api = await config.new_client_from_config(config_file=kubeconfig)
    v1 = client.CoreV1Api(api)
    try:
        rv = (await v1.list_namespaced_pod(namespace)).metadata.resource_version
        times.ready.set()
        while True:  # a watch ends after the server's timeout: resume where it stopped
            async with watch.Watch().stream(
                v1.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=240
            ) as s:
                async for ev in s:
                    now = time.perf_counter()
                    pod = ev["object"]
                    rv = pod.metadata.resource_version
                    key = _key(pod)
                    if key is None:
                        continue
                    if ev["type"] == "ADDED":
                        times.added.setdefault(key, now)
                    if ev["type"] in ("ADDED", "MODIFIED") and _running(pod):
                        times.running.setdefault(key, now)
    finally:
        await api.close()


class HubAPI:
    def __init__(self, session: aiohttp.ClientSession, api: str) -> None:
        self.s, self.api = session, api

    async def users(self, names: Iterable[str], group: str | None = None) -> None:
        async with self.s.post(f"{self.api}/users", json={"usernames": list(names)}) as r:
            assert r.status in (201, 409), await r.text()
        if group:
            async with self.s.post(
                f"{self.api}/groups/{group}/users", json={"users": list(names)}
            ) as r:
                assert r.status == 200, await r.text()

    async def start(self, user: str, server: str, options: dict[str, Any] | None) -> float:
        body = {"user_options": options} if options is not None else {}
        t0 = time.perf_counter()
        async with self.s.post(f"{self.api}/users/{user}/servers/{server}", json=body) as r:
            if r.status not in (201, 202):
                raise RuntimeError(f"{user}/{server}: {r.status} {await r.text()}")
        return t0

    async def servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every server of every active user, in one request a page."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        offset = 0
        while True:
            async with self.s.get(
                f"{self.api}/users",
                params={"state": "active", "limit": "200", "offset": str(offset)},
            ) as r:
                page = await r.json()
            for u in page:
                for name, srv in u.get("servers", {}).items():
                    out[(u["name"], name)] = srv
            if len(page) < 200:
                return out
            offset += 200

    async def servers_of(self, user: str) -> dict[tuple[str, str], dict[str, Any]]:
        async with self.s.get(f"{self.api}/users/{user}") as r:
            model = await r.json()
        return {(user, name): srv for name, srv in model.get("servers", {}).items()}

    async def wait_ready(
        self, keys: list[tuple[str, str]], timeout: float, poll: float
    ) -> dict[tuple[str, str], float | str]:
        """When each server became ready (monotonic clock), or why it did not."""
        done: dict[tuple[str, str], float | str] = {}
        end = time.perf_counter() + timeout
        users = {u for u, _ in keys}
        while len(done) < len(keys):
            # one user's model is far cheaper for the hub than the list of all users, which
            # at a 50 ms poll would load the hub being measured
            srvs = await (self.servers_of(next(iter(users))) if len(users) == 1 else self.servers())
            now = time.perf_counter()
            for k in keys:
                if k in done:
                    continue
                srv = srvs.get(k)
                if srv and srv.get("ready"):
                    done[k] = now
                elif not srv or not srv.get("pending"):
                    done[k] = "stopped before it was ready (failed spawn)"
                elif now > end:
                    done[k] = f"not ready after {timeout:.0f} s"
            await asyncio.sleep(poll)
        return done

    async def stop(self, keys: list[tuple[str, str]], timeout: float = 300) -> None:
        for user, server in keys:
            async with self.s.delete(
                f"{self.api}/users/{user}/servers/{server}", json={"remove": True}
            ) as r:
                assert r.status in (202, 204, 404), await r.text()
        end = time.monotonic() + timeout
        while time.monotonic() < end:  # pods gone, so rounds do not overlap
            if not set(keys) & set(await self.servers()):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"servers still there {timeout:.0f} s after the stop")

    async def delete_users(self, names: Iterable[str]) -> None:
        """Best effort, so a reused testbed is left as found: JupyterHub 6.1 sometimes answers
        500 ("orm_spawner not found") just after a named server was removed."""
        for n in names:
            for _ in range(10):
                async with self.s.delete(f"{self.api}/users/{n}") as r:
                    if r.status in (204, 404):
                        break
                await asyncio.sleep(1)
            else:
                print(f"  (could not delete the bench user {n}: {r.status})")


@dataclass
class Parts:
    to_pod: list[float] = field(default_factory=list)
    to_ready: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)


async def one_spawn(
    hub: HubAPI,
    times: PodTimes,
    user: str,
    server: str,
    options: dict[str, Any] | None,
    parts: Parts,
    timeout: float,
) -> None:
    key = (user, server)
    t0 = await hub.start(user, server, options)
    t_ready = (await hub.wait_ready([key], timeout, poll=0.05))[key]
    if isinstance(t_ready, str):
        raise RuntimeError(f"{user}/{server}: {t_ready}")
    # the watch may deliver Running a moment after the hub says ready: wait for it
    for _ in range(100):
        if key in times.running:
            break
        await asyncio.sleep(0.05)
    parts.to_pod.append(times.added[key] - t0)
    parts.to_ready.append(t_ready - times.running[key])
    parts.total.append(t_ready - t0)
    await hub.stop([key])


def line(name: str, xs: list[float], ref: list[float] | None = None) -> str:
    s = f"{name:<40} median {statistics.median(xs) * 1000:8.1f} ms  p95 {p95(xs) * 1000:8.1f} ms"
    if ref:
        s += (
            f"  ratio {statistics.median(xs) / statistics.median(ref):.3f} / "
            f"{p95(xs) / p95(ref):.3f}"
        )
    return s


async def compare(
    it: HubAPI, ks: HubAPI, times: PodTimes, rounds: int, timeout: float, pause: float = 5.0
) -> dict[str, Any]:
    await it.users(["bench"], group=VO)
    await ks.users(["basebench"])
    p_it, p_ks = Parts(), Parts()
    rng = random.Random(7)
    for i in range(rounds):
        # the same body to both: JupyterHub stores the options a POST carries (a database
        # commit before the spawner runs), whichever spawner reads them
        order = [(it, "bench", VEGA, p_it), (ks, "basebench", VEGA, p_ks)]
        rng.shuffle(order)
        for hub, user, opts, parts in order:
            await asyncio.sleep(rng.uniform(0, pause))
            await one_spawn(hub, times, user, f"r{i}", opts, parts, timeout)
        print(
            f"  round {i + 1}: POST->pod {p_it.to_pod[-1] * 1000:.0f} / "
            f"{p_ks.to_pod[-1] * 1000:.0f} ms, Running->ready {p_it.to_ready[-1] * 1000:.0f} / "
            f"{p_ks.to_ready[-1] * 1000:.0f} ms, total {p_it.total[-1]:.2f} / "
            f"{p_ks.total[-1]:.2f} s (InterTwinSpawner / KubeSpawner)",
            flush=True,
        )
    print(
        f"\n{rounds} rounds, InterTwinSpawner against KubeSpawner (ratios: median / p95, "
        f"goal <= {GOAL}):"
    )
    for label, a, b in (
        ("POST -> pod created", p_it.to_pod, p_ks.to_pod),
        ("pod Running -> server ready", p_it.to_ready, p_ks.to_ready),
        ("spawn-to-ready (VK poll included)", p_it.total, p_ks.total),
    ):
        print("  " + line(f"{label}, KubeSpawner", b))
        print("  " + line(f"{label}, InterTwinSpawner", a, b))
    await it.delete_users(["bench"])
    await ks.delete_users(["basebench"])
    return {"intertwin": vars(p_it), "kubespawner": vars(p_ks)}


async def crowd(
    it: HubAPI, times: PodTimes, n: int, alone_rounds: int, timeout: float
) -> dict[str, Any]:
    alone = Parts()
    await it.users(["lone"], group=VO)
    for i in range(alone_rounds):
        await one_spawn(it, times, "lone", f"a{i}", VEGA, alone, timeout)
    users = [f"crowd{i:03d}" for i in range(n)]
    await it.users(users, group=VO)
    keys = [(u, "c") for u in users]
    t0 = time.perf_counter()
    starts = await asyncio.gather(
        *(it.start(u, "c", VEGA) for u, _ in keys), return_exceptions=True
    )
    refused = [s for s in starts if isinstance(s, BaseException)]
    started = [k for k, s in zip(keys, starts, strict=True) if not isinstance(s, BaseException)]
    done = await it.wait_ready(started, timeout, poll=0.5)
    wall = time.perf_counter() - t0
    ok = [t - t0 for t in done.values() if isinstance(t, float)]
    failed = [f"{u}: {why}" for (u, _), why in done.items() if isinstance(why, str)]
    failed += [str(e) for e in refused]
    ref = statistics.median(alone.total)
    print(f"\none Vega spawn alone: spawn-to-ready {ref:.2f} s (median of {alone_rounds})")
    print(
        f"{n} concurrent Vega spawns: {len(ok)} ready, {len(failed)} failed (goal 0), "
        f"wall {wall:.1f} s"
    )
    if ok:
        print(
            f"  spawn-to-ready p50 {statistics.median(ok):.2f} s "
            f"({statistics.median(ok) / ref:.2f}x alone), p95 {p95(ok):.2f} s "
            f"({p95(ok) / ref:.2f}x alone), max {max(ok):.2f} s"
        )
    for f in failed[:5]:
        print(f"  failure: {f}")
    await it.stop(started, timeout=600)
    await it.delete_users(["lone", *users])
    return {"alone": alone.total, "concurrent": ok, "failed": failed, "wall": wall}


async def main(args: argparse.Namespace) -> int:
    if args.smoke:
        args.rounds, args.concurrent, alone_rounds = 1, 2, 1
    else:
        alone_rounds = 3
    own = args.state is None
    run = Path(tempfile.mkdtemp(prefix="intertwin-bench-"))
    if own:
        print(f"bringing the testbed up in {run} ...", flush=True)
        state = up(
            run,
            hub=True,
            progress=lambda m: print(f"  {m}", flush=True),
            catalogue_path=str(roomy_catalogue(run, args.concurrent)),
        )
    else:
        found = read_state(Path(args.state))
        if not found or "hub" not in found:
            raise SystemExit(f"no testbed with a hub is running from {args.state}")
        state = found
    base_sup = Supervisor(run / "baseline-run") if not own else Supervisor(run)
    watcher: asyncio.Task[None] | None = None
    try:
        cps = dict(state["control_plane"])
        cps["identities"] = {k: Identity(**v) for k, v in cps["identities"].items()}
        cp = ControlPlane(**cps)
        # the comparison runs two hubs of its own, the same but for the spawner; the crowd
        # uses the testbed's hub
        base = start_hub(
            base_sup, cp, name="baseline", extra_config=baseline_config() + STEADY_POLL
        )
        mine = (
            start_hub(base_sup, cp, name="intertwin", extra_config=STEADY_POLL)
            if "compare" in args.parts
            else base
        )
        times = PodTimes()
        watcher = asyncio.create_task(watch_pods(cp.admin_kubeconfig, cp.namespace, times))
        await asyncio.wait_for(times.ready.wait(), 60)
        hub = state["hub"]
        a = aiohttp.ClientSession(headers={"Authorization": f"token {hub['service_token']}"})
        b = aiohttp.ClientSession(headers={"Authorization": f"token {base.service_token}"})
        m = aiohttp.ClientSession(headers={"Authorization": f"token {mine.service_token}"})
        async with a, b, m:
            it, ks = HubAPI(a, hub["api_url"]), HubAPI(b, base.api_url)
            results: dict[str, Any] = {"crowd": {"failed": []}}
            if "compare" in args.parts:
                results["compare"] = await compare(
                    HubAPI(m, mine.api_url),
                    ks,
                    times,
                    args.rounds,
                    args.timeout,
                    pause=0.0 if args.smoke else 5.0,
                )
            if "crowd" in args.parts:
                results["crowd"] = await crowd(
                    it, times, args.concurrent, alone_rounds, args.timeout
                )
        if args.json:
            await asyncio.to_thread(Path(args.json).write_text, json.dumps(results))
        return 1 if results["crowd"]["failed"] else 0
    finally:
        if watcher:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        if own:
            down(run)
        else:
            base_sup.stop_all()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rounds", type=int, default=30, help="spawns per spawner for the comparison (default 30)"
    )
    ap.add_argument(
        "--concurrent", type=int, default=100, help="concurrent Vega spawns (default 100)"
    )
    ap.add_argument("--timeout", type=float, default=900, help="seconds a spawn may take")
    ap.add_argument("--state", help="use the testbed running from this run folder")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument(
        "--parts",
        default="compare,crowd",
        help="which parts to run: compare, crowd or both (default)",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="1 round and 2 concurrent spawns: check that the bench runs",
    )
    sys.exit(asyncio.run(main(ap.parse_args())))
