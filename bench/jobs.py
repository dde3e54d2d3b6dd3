"""“My jobs” of one user with 10,000 labelled workload pods of 500 users in the cluster vs with
100, through the proxy with the user's JupyterHub token: the intertwin service (one shared watch,
an index by user, the history database) against a naive list-per-request service measured in the
same run, and the intertwin service's resident memory at 10,000 pods.

    .venv/bin/python bench/jobs.py [--pods 10000] [--users 500] [--small 100] [--requests 300]
    .venv/bin/python bench/jobs.py --smoke          # 200 pods, 20 requests: does it still work
    .venv/bin/python bench/jobs.py --in-process     # no cluster: the index and history alone

Starts what it needs in a folder of its own: the testbed's Kubernetes control plane (etcd,
kube-apiserver, kube-scheduler, kube-controller-manager; no site, no node) and a hub behind
configurable-http-proxy, started with the testbed's configuration, so the hub runs the managed
``intertwin`` service with its own Kubernetes identity. The bench's hub also runs a second
managed service, ``naive-jobs`` (``bench/_naive_jobs.py``): the same tornado handler base (the
same HubOAuth authentication and admin check) behind the same proxy, which LISTs the caller's
pods from the Kubernetes API (label selector of the user and the workload kinds) on every
request and tells each one's status. Both answer the same jobs; the bench checks that.

The pods are made as the spawner and the service label them (``intertwin_hub.labels``:
``workload_labels`` plus KubeSpawner's owner label and annotation; the spawner's own pod plan
per site: annotations, tolerations, resources, environment), created concurrently with
kubernetes_asyncio. They cannot run: their node selector matches no node (there is none), and
their ``schedulerName`` names no scheduler, so kube-scheduler leaves them alone instead of
retrying 10,000 unschedulable pods every five minutes in the middle of the measurement; etcd
just holds them.

The small cluster is the first ``--small`` pods (the measured user's 20 among them), measured
before the rest are created: the same service process, the same user with the same 20 jobs, the
only difference being the other pods (a second namespace would need a second service). Then
the 9,900 are deleted and the 100 measured again, which shows how much the machine's load moved
meanwhile (the service's history keeps the deleted jobs, as ended).

Each size gets a warm-up, then ``--requests`` requests to each service, timed in this process
from the request to the whole answer, in blocks of ``--block`` taking turns, each block once
the API server and the services are quiet: interleaved request by request with the baseline's
LISTs of a 10,000-pod namespace, which busy the API server on the same cores, ours was measured
2.3 times slower at 10,000 pods than at 100 on a 2-core machine, and the same in blocks. The
service's own time per request (tornado's access log) is printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubespawner.slugs import is_valid_label, safe_slug  # noqa: E402

from intertwin_hub import labels  # noqa: E402
from intertwin_hub.service import db  # noqa: E402
from intertwin_hub.service.index import Index  # noqa: E402
from intertwin_hub.sites import load_catalogue  # noqa: E402
from intertwin_hub.spawner.options import validate  # noqa: E402
from intertwin_hub.spawner.pod import PodPlan, plan_pod  # noqa: E402
from intertwin_hub.status import FINAL, pod_status  # noqa: E402
from testbed.binaries import ensure_built  # noqa: E402
from testbed.cluster import ControlPlane, start_control_plane  # noqa: E402
from testbed.hub import DEV_VO, Hub, start_hub  # noqa: E402
from testbed.procs import Supervisor, free_port  # noqa: E402

GOAL_P95_MS = 20.0
GOAL_RATIO = 1.5
NAIVE = "naive-jobs"
# no scheduler has this name: the pods stay Pending, untouched (see the docstring)
NO_SCHEDULER = "intertwin-bench-nobody"
NOWHERE = {"intertwin.eu/bench-node": "nowhere"}
PER_USER_SMOKE = 10


def p95(xs: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-95 * len(s) // 100) - 1))]


def user_name(i: int) -> str:
    return f"benchuser{i:03d}"


# --- the pods ----------------------------------------------------------------------------


def site_plans() -> list[PodPlan]:
    """The spawner's own pod plan for each site of the catalogue (a dev VO member's choice)."""
    catalogue = load_catalogue()
    return [plan_pod(validate(catalogue, {DEV_VO}, {"profile": s.slug})) for s in catalogue]


def workload_pod(i: int, user: str, n: int, plans: list[PodPlan]) -> dict[str, Any]:
    """The ``n``-th workload pod of ``user`` (``i``: its number in the whole cluster): a
    notebook server, every fourth a batch cell, labelled as the spawner and the service label
    them, at the sites in turn, unable to run anywhere."""
    plan = plans[i % len(plans)]
    site = plan.labels[labels.LABEL_SITE]
    kind = labels.KIND_BATCH_CELL if (i // len(plans)) % 4 == 3 else labels.KIND_NOTEBOOK
    server = f"s{n}"
    annotations = {
        **plan.annotations,
        labels.ANNOTATION_USER: user,
        labels.ANNOTATION_SERVER: server,
    }
    if kind == labels.KIND_BATCH_CELL:
        annotations[labels.ANNOTATION_NOTEBOOK_PATH] = f"work/analysis-{n}.ipynb"
        annotations[labels.ANNOTATION_CELL_ID] = f"cell-{n:04d}"
    limits = {"cpu": str(plan.cpu), "memory": str(plan.memory)}
    if plan.gpus:
        limits["nvidia.com/gpu"] = str(plan.gpus)
    env = {
        **plan.env,
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVER_NAME": server,
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/{server}/",
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "JUPYTERHUB_ACTIVITY_URL": f"http://hub:8081/hub/api/users/{user}/activity",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{user}/{server}/oauth_callback",
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}-{server}",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_HOST": "",
        "MEM_GUARANTEE": str(plan.memory),
        "CPU_GUARANTEE": str(plan.cpu),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{user}--{server}",
            "labels": {
                **labels.workload_labels(site, kind),
                labels.LABEL_USER: safe_slug(user, is_valid=is_valid_label),
            },
            "annotations": annotations,
        },
        "spec": {
            "schedulerName": NO_SCHEDULER,
            "nodeSelector": NOWHERE,
            "tolerations": plan.tolerations,
            "automountServiceAccountToken": False,
            "restartPolicy": "OnFailure",
            "containers": [
                {
                    "name": "notebook",
                    "image": plan.image,
                    "args": ["jupyterhub-singleuser"],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "resources": {"limits": limits, "requests": dict(limits)},
                }
            ],
        },
    }


async def admin_client(cp: ControlPlane, connections: int) -> Any:
    from kubernetes_asyncio import client, config

    conf = type.__call__(client.Configuration)
    await config.load_kube_config(config_file=cp.admin_kubeconfig, client_configuration=conf)
    conf.connection_pool_maxsize = connections
    return client.ApiClient(conf)


async def delete_pods(cp: ControlPlane, specs: list[dict[str, Any]], concurrency: int) -> float:
    """Delete the pods concurrently (they never ran: gone at once); the seconds it took."""
    from kubernetes_asyncio import client

    api = await admin_client(cp, concurrency)
    core = client.CoreV1Api(api)
    names = [p["metadata"]["name"] for p in specs]
    t0 = time.perf_counter()

    async def worker(mine: list[str]) -> None:
        for name in mine:
            # _preload_content=False: the raw aiohttp response, not the model the stubs name
            resp: Any = await core.delete_namespaced_pod(name, cp.namespace, _preload_content=False)
            resp.release()

    try:
        await asyncio.gather(*(worker(names[i::concurrency]) for i in range(concurrency)))
    finally:
        await api.close()
    return time.perf_counter() - t0


async def create_pods(
    cp: ControlPlane,
    specs: list[dict[str, Any]],
    concurrency: int,
    before: int,
) -> float:
    """Create the pods concurrently (``before`` exist already), printing progress; the
    seconds it took."""
    from kubernetes_asyncio import client

    api = await admin_client(cp, concurrency)
    core = client.CoreV1Api(api)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for s in specs:
        queue.put_nowait(s)
    done = 0
    step = max(1, len(specs) // 10)
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            body = queue.get_nowait()
            for attempt in range(5):
                try:
                    # the client takes API-shaped dicts as bodies as they are; the answer is
                    # the raw aiohttp response (_preload_content=False)
                    resp: Any = await core.create_namespaced_pod(
                        cp.namespace, cast(Any, body), _preload_content=False
                    )
                    resp.release()
                    break
                except client.ApiException as e:
                    # 429: API priority and fairness asks the client to come back
                    if e.status != 429 or attempt == 4:
                        raise
                    await asyncio.sleep(1 + attempt)
            done += 1
            if done % step == 0 or done == len(specs):
                el = time.perf_counter() - t0
                print(
                    f"  {before + done}/{before + len(specs)} pods in the cluster "
                    f"({done / el:.0f} created a second)",
                    flush=True,
                )

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(specs)))))
    finally:
        await api.close()
    return time.perf_counter() - t0


def history_count(db_file: Path, ended: bool = False) -> int:
    """Rows in the intertwin service's history (SQLite in the testbed), read-only; ``ended``:
    only the jobs in a final state."""
    if not db_file.exists():
        return 0
    sql = "SELECT count(*) FROM jobs"
    if ended:
        sql += f" WHERE state IN ({','.join(repr(s) for s in sorted(FINAL))})"
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5)
        ) as c:
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


async def wait_for_history(db_file: Path, n: int, timeout: float, ended: bool = False) -> float:
    """Until the service has recorded ``n`` jobs (``ended``: ``n`` ended jobs), that is, its
    watch saw every pod created (deleted); the seconds it took."""
    t0 = time.perf_counter()
    last_print = t0
    what = "ended jobs" if ended else "jobs"
    while True:
        have = await asyncio.to_thread(history_count, db_file, ended)
        now = time.perf_counter()
        if have >= n:
            return now - t0
        if now - t0 > timeout:
            raise SystemExit(f"the intertwin service recorded {have} of {n} {what} in {timeout} s")
        if now - last_print > 10:
            print(f"  the intertwin service has recorded {have}/{n} {what}", flush=True)
            last_print = now
        await asyncio.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(
    pids: list[int], share: float = 0.05, window: float = 2.0, limit: float = 120.0
) -> float:
    """Until each process used less than ``share`` of a core over ``window`` seconds (the
    watch has digested the last change, the API server is done with it), at most ``limit``
    seconds; the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        before = [cpu_seconds(p) for p in pids]
        await asyncio.sleep(window)
        if all(cpu_seconds(p) - b < share * window for p, b in zip(pids, before, strict=True)):
            break
    return time.perf_counter() - t0


ACCESS_LINE = re.compile(rb"GET /services/(intertwin|naive-jobs)/api/jobs \(.*?\) ([\d.]+)ms")


def server_times(log: Path, offset: int, last: int) -> dict[str, list[float]]:
    """Each service's own time for its last ``last`` requests of "my jobs" since ``offset`` of
    the hub's log (tornado's access log lines of the managed services, which log to the
    hub's output): the request as the service's tornado saw it, without the proxy and the
    client."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read()
    out: dict[str, list[float]] = {"ours": [], "naive": []}
    for m in ACCESS_LINE.finditer(text):
        out["ours" if m.group(1) == b"intertwin" else "naive"].append(float(m.group(2)))
    return {k: v[-last:] for k, v in out.items()}


# --- the hub and its two services --------------------------------------------------------


def naive_service_config(cp: ControlPlane, run: Path) -> str:
    """Hub configuration for the naive service: managed like intertwin, the same Kubernetes
    identity and namespace, reachable with the same kind of user token."""
    kubeconfig = cp.kubeconfig_for("service", run / "naive-service.kubeconfig")
    env = {"KUBECONFIG": str(kubeconfig), "INTERTWIN_NAMESPACE": cp.namespace}
    cmd = [sys.executable, str(ROOT / "bench" / "_naive_jobs.py")]
    return f"""
# bench/jobs.py: the naive list-per-request baseline, a managed service like intertwin
c.JupyterHub.services.append(
    {{"name": {NAIVE!r}, "command": {cmd!r}, "url": "http://127.0.0.1:{free_port()}",
      "oauth_no_confirm": True, "cwd": {str(run)!r}, "environment": {env!r}}}
)
# as the intertwin service, it asks the hub who is an admin
c.JupyterHub.load_roles.append(
    {{"name": "naive-jobs-service", "services": [{NAIVE!r}], "scopes": ["read:users"]}}
)
for _role in c.JupyterHub.load_roles:
    if _role["name"] == "user":
        _role["scopes"].append("access:services!service={NAIVE}")
"""


def service_pid(hub_pid: int, marker: str) -> int | None:
    """The hub's child process whose command line contains ``marker``."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        if ppid == hub_pid and marker.encode() in cmdline:
            return int(entry.name)
    return None


def memory_mib(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM of /proc/PID/status), MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


async def user_token(hub: Hub, user: str) -> str:
    """The user, created in the hub, and a token of theirs (the user's own permissions)."""
    headers = {"Authorization": f"token {hub.service_token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{hub.api_url}/users", json={"usernames": [user]}) as r:
            assert r.status in (201, 409), await r.text()
        async with s.post(f"{hub.api_url}/users/{user}/tokens", json={"note": "bench"}) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["token"])


async def wait_answering(s: aiohttp.ClientSession, url: str, timeout: float = 120) -> None:
    """Until the service answers 200 through the proxy (a managed service starts with the
    hub, and the proxy learns its route then)."""
    end = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < end:
        try:
            async with s.get(url) as r:
                if r.status == 200:
                    return
                last = f"{r.status} {(await r.text())[:200]}"
        except aiohttp.ClientError as e:
            last = e
        await asyncio.sleep(0.5)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f} s; last: {last}")


async def timed_get(s: aiohttp.ClientSession, url: str) -> tuple[float, list[str]]:
    t = time.perf_counter()
    async with s.get(url) as r:
        body = await r.read()
        status = r.status
    ms = (time.perf_counter() - t) * 1000
    if status != 200:
        raise SystemExit(f"{url}: {status} {body[:300]!r}")
    return ms, sorted(j["pod"] for j in json.loads(body)["jobs"])


async def measure(
    s: aiohttp.ClientSession,
    urls: dict[str, str],
    expected: list[str],
    requests: int,
    warmup: int,
    rng: random.Random,
    block: int,
    quiet: list[int],
) -> dict[str, list[float]]:
    """A warm-up of each service, then ``requests`` timed requests to each, in blocks of
    ``block`` taking turns (the first block's service drawn at random), each block once the
    ``quiet`` processes are quiet: the baseline's LISTs load the API server, which on a small
    machine would otherwise slow the requests of ours in between too. ``block`` 1: requests
    alternate one by one in random order, with no waiting. Every answer must name exactly the
    user's pods."""

    async def one(k: str) -> float:
        ms, pods = await timed_get(s, urls[k])
        if pods != expected:
            raise SystemExit(
                f"{k} answered {len(pods)} jobs, not the user's {len(expected)}: {pods[:5]}"
            )
        return ms

    for k in urls:
        for _ in range(warmup):
            await one(k)
    times: dict[str, list[float]] = {k: [] for k in urls}
    order = list(urls)
    rng.shuffle(order)
    while any(len(v) < requests for v in times.values()):
        if block == 1:
            rng.shuffle(order)
            for k in order:
                times[k].append(await one(k))
            continue
        for k in order:
            if len(times[k]) >= requests:
                continue
            await settle(quiet, window=0.5, limit=10)
            for _ in range(min(block, requests - len(times[k]))):
                times[k].append(await one(k))
    return times


def summary(xs: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(xs), "p95": p95(xs), "max": max(xs)}


async def cluster_bench(a: argparse.Namespace) -> dict[str, Any]:
    per_user = a.pods // a.users
    if a.pods % a.users or a.small % per_user or not 0 < a.small < a.pods:
        raise SystemExit("--pods must be a multiple of --users, --small of the pods per user")
    run = Path(tempfile.mkdtemp(prefix="intertwin-bench-jobs-"))
    sup = Supervisor(run)
    ok = False
    try:
        print(f"starting the control plane and a hub in {run} ...", flush=True)
        t0 = time.perf_counter()
        bins = ensure_built()
        cp = start_control_plane(sup, bins, [])
        hub_run = run / "hub"
        hub_run.mkdir(parents=True)
        hub = start_hub(sup, cp, name="hub", extra_config=naive_service_config(cp, hub_run))
        print(f"  up in {time.perf_counter() - t0:.1f} s", flush=True)

        me = user_name(0)
        token = await user_token(hub, me)
        urls = {
            "ours": f"{hub.url}/services/intertwin/api/jobs",
            "naive": f"{hub.url}/services/{NAIVE}/api/jobs",
        }
        plans = site_plans()
        specs: list[dict[str, Any]] = []
        for u in range(a.users):
            for n in range(per_user):
                specs.append(workload_pod(len(specs), user_name(u), n, plans))
        mine = sorted(p["metadata"]["name"] for p in specs[:per_user])
        db_file = hub_run / "intertwin-service.sqlite"
        rng = random.Random(10)
        results: dict[str, Any] = {"pods": a.pods, "users": a.users, "small": a.small}
        connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection, as a browser tab
        async with aiohttp.ClientSession(
            headers={"Authorization": f"token {token}"}, connector=connector
        ) as s:
            for k, url in urls.items():
                await wait_answering(s, url)
                print(f"  {k}: {url} answers", flush=True)
            hub_pid = sup.pids()["jupyterhub"]
            pids = {
                "ours": service_pid(hub_pid, "intertwin_hub.service"),
                "naive": service_pid(hub_pid, "_naive_jobs.py"),
            }
            quiet = [p for p in (pids["ours"], sup.pids().get("kube-apiserver")) if p]
            others = [p for p in (pids["naive"], sup.pids().get("etcd")) if p]
            hub_log = run / "logs" / "jupyterhub.log"
            created = 0
            for phase, size in (
                (str(a.small), a.small),
                (str(a.pods), a.pods),
                (f"{a.small} again", a.small),
            ):
                if size > created:
                    el = await create_pods(cp, specs[created:size], a.concurrency, created)
                    print(
                        f"  {size - created} pods created in {el:.1f} s "
                        f"({(size - created) / el:.0f} pods/s)",
                        flush=True,
                    )
                    results[f"create_s_{phase}"] = el
                    lag = await wait_for_history(db_file, size, timeout=max(300.0, size / 10))
                else:
                    el = await delete_pods(cp, specs[size:created], a.concurrency)
                    print(f"  {created - size} pods deleted in {el:.1f} s", flush=True)
                    lag = await wait_for_history(
                        db_file, created - size, timeout=max(300.0, created / 10), ended=True
                    )
                print(f"  the intertwin service saw all of it {lag:.1f} s later", flush=True)
                created = size
                settled = await settle(quiet)
                print(f"  quiet after {settled:.1f} s (service and API server)", flush=True)
                log_from = hub_log.stat().st_size
                times = await measure(
                    s, urls, mine, a.requests, a.warmup, rng, a.block, quiet + others
                )
                served = server_times(hub_log, log_from, a.requests)
                results[phase] = {k: summary(v) for k, v in times.items()}
                results[f"{phase} server"] = {k: summary(v) for k, v in served.items() if v}
                for k, v in times.items():
                    sm = summary(v)
                    sv = summary(served[k]) if served[k] else None
                    print(
                        f"  {phase}: {k}, p50 {sm['p50']:.2f} ms, p95 {sm['p95']:.2f} ms, "
                        f"max {sm['max']:.2f} ms"
                        + (
                            f" (in the service: p50 {sv['p50']:.2f}, p95 {sv['p95']:.2f})"
                            if sv
                            else ""
                        ),
                        flush=True,
                    )
                if phase == str(a.pods):
                    for k, pid in pids.items():
                        if pid is None:
                            raise SystemExit(f"no {k} service process under the hub ({hub_pid})")
                        results[f"rss_mib_{k}"], results[f"peak_rss_mib_{k}"] = memory_mib(pid)
        report(results, a.requests, per_user)
        ok = True
        return results
    finally:
        sup.stop_all(("jupyterhub", "proxy"))
        if ok and not a.keep:
            shutil.rmtree(run, ignore_errors=True)
        else:
            print(f"logs kept in {run / 'logs'}", flush=True)


def report(r: dict[str, Any], requests: int, per_user: int) -> None:
    small, big, after = str(r["small"]), str(r["pods"]), f"{r['small']} again"
    print(
        f'\n"my jobs" of one user ({per_user} jobs) through the proxy with the user\'s token, '
        f"{requests} requests each, p50 / p95 in ms (in the service's own tornado: p50 / p95);"
        f" {small} pods, then {big}, then deleted down to {small} again:"
    )
    for k, label in (
        ("ours", "intertwin service (watch, index)"),
        ("naive", "naive (LIST per request)"),
    ):
        print(f"  {label}")
        for phase in (small, big, after):
            c, sv = r[phase][k], r[f"{phase} server"].get(k)
            inside = f"   ({sv['p50']:6.2f} / {sv['p95']:6.2f})" if sv else ""
            name = f"{phase.split()[0]} pods" + (" again" if phase == after else "")
            print(f"    {name:<16} {c['p50']:7.2f} / {c['p95']:7.2f}{inside}")
        ratio = r[big][k]["p95"] / r[small][k]["p95"]
        ratio_after = r[big][k]["p95"] / r[after][k]["p95"]
        r[f"ratio_{k}"], r[f"ratio_after_{k}"] = ratio, ratio_after
        print(
            f"    p95({big}) / p95({small}): {ratio:.2f} (to the {small} again: {ratio_after:.2f})"
        )
    p = r[big]["ours"]["p95"]
    print(
        f"  goals: p95 <= {GOAL_P95_MS:.0f} ms at {big} pods: {p:.2f} ms, "
        f"{'met' if p <= GOAL_P95_MS else 'missed'}; ratio <= {GOAL_RATIO}: {r['ratio_ours']:.2f}, "
        f"{'met' if r['ratio_ours'] <= GOAL_RATIO else 'missed'} (the naive one's: "
        f"{r['ratio_naive']:.2f})"
    )
    print(
        f"  intertwin service resident memory at {big} pods: {r['rss_mib_ours']:.0f} MiB "
        f"(peak {r['peak_rss_mib_ours']:.0f} MiB); the naive service: {r['rss_mib_naive']:.0f} MiB"
    )


# --- in process, without a cluster -------------------------------------------------------

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SITES = (("vega", "vega-vk"), ("psnc", "psnc-vk"), ("kbfi", "kbfi-vk"), ("ukri", "ukri-cloud"))


def api_pod(i: int, user: str) -> dict[str, Any]:
    site, node = SITES[i % len(SITES)]
    return {
        "metadata": {
            "uid": f"uid-{i:06d}",
            "name": f"jupyter-{user}-{i}",
            "creationTimestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "labels": {
                labels.LABEL_SITE: site,
                labels.LABEL_WORKLOAD: labels.KIND_NOTEBOOK,
                labels.LABEL_USER: user,
            },
            "annotations": {labels.ANNOTATION_USER: user, "JobID": str(1000 + i)},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "notebook",
                    "image": "itwinai",
                    "resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "notebook", "state": {"running": {}}}],
        },
    }


def in_process(n_pods: int, n_users: int, requests: int, folder: Path) -> dict[str, float]:
    """The service's index and history fed API-shaped dicts as its watch would, ``Store.page``
    and the answer's JSON per request; the naive way parses the whole pod list from memory."""
    catalogue = load_catalogue()
    store = db.open_store(f"sqlite:///{folder / f'jobs-{n_pods}.sqlite'}")
    index = Index(catalogue, store)
    pods = [api_pod(i, f"user{i % n_users}") for i in range(n_pods)]
    t = time.perf_counter()
    index.reconcile(pods)
    load_s = time.perf_counter() - t
    raw = json.dumps({"items": pods})
    me = "user0"
    ours, naive = [], []
    rows: Any = []
    for _ in range(requests):
        t = time.perf_counter()
        rows, nxt = store.page(me, db.Filters(), 100, None)
        body = json.dumps(
            {
                "jobs": [
                    db.job_json(j, index.site_name(j.site), index.note_for(j.site)) for j in rows
                ],
                "next": nxt,
            }
        )
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        listed = json.loads(raw)["items"]
        body2 = json.dumps(
            [
                {
                    "pod": p["metadata"]["name"],
                    **(
                        pod_status(p["metadata"]["labels"][labels.LABEL_SITE], p)
                        or db.JobStatus("pending", "")
                    ).to_json(),
                }
                for p in listed
                if labels.owner_of(p) == me
            ]
        )
        naive.append((time.perf_counter() - t) * 1000)
        assert body and body2
    store.engine.dispose()
    return {"ours_p95": p95(ours), "naive_p95": p95(naive), "load_s": load_s, "mine": len(rows)}


def run_in_process(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        # the same number of jobs per user in both: the answer is the same size
        small = in_process(a.small, max(1, a.small * a.users // a.pods), a.requests, Path(d))
        big = in_process(a.pods, a.users, a.requests, Path(d))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"in process, my jobs, p95 over {a.requests} requests (one user's {int(big['mine'])} "
        f"jobs among {a.pods} pods of {a.users} users vs {int(small['mine'])} among {a.small}):"
    )
    for k, label in (("ours", "ours "), ("naive", "naive")):
        b, s = big[f"{k}_p95"], small[f"{k}_p95"]
        print(f"  {label}: {b:.2f} ms at {a.pods} pods, {s:.2f} ms at {a.small}; ratio {b / s:.2f}")
    print(f"  first list of {a.pods} pods into the index and history: {big['load_s']:.1f} s")
    print(f"  peak resident memory of this process: {rss_mib:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--pods", type=int, default=10000, help="pods in the big cluster")
    ap.add_argument("--users", type=int, default=500, help="users owning them, as many each")
    ap.add_argument("--small", type=int, default=100, help="pods in the small cluster")
    ap.add_argument("--requests", type=int, default=300, help="timed requests per service")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    ap.add_argument("--concurrency", type=int, default=32, help="pod creations at once")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument(
        "--block",
        type=int,
        default=50,
        help="requests to one service in a row, the services taking turns (1: alternate "
        "request by request, without waiting for quiet)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run folder (logs) after")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="no cluster, no HTTP: the service's index and history alone, in this process",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help=f"200 pods of 20 users ({PER_USER_SMOKE} each), 40 in the small cluster, "
        "20 requests in blocks of 10: checks the bench works, not what it measures",
    )
    a = ap.parse_args(argv)
    if a.smoke:
        a.pods, a.users, a.small, a.requests, a.warmup = 200, 200 // PER_USER_SMOKE, 40, 20, 3
        a.block = min(a.block, 10)
    if a.in_process:
        run_in_process(a)
        return 0
    results = asyncio.run(cluster_bench(a))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
