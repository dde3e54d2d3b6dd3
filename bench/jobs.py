"""“My jobs” of one user with 10,000 labelled pods of 500 users known to the service vs with 100,
the service's way (its index and history: ``Store.page`` + the answer's JSON, what
``GET api/jobs`` does after authentication) against a naive list-per-request baseline measured in
the same run (parse the whole pod list as an API answer, keep the caller's pods, tell each one's
status), and the resident memory of the index at 10,000 pods.

    .venv/bin/python bench/jobs.py [--pods 10000] [--users 500] [--requests 100]
    .venv/bin/python bench/jobs.py --smoke     # 200 pods, 30 requests, seconds

In process, without a cluster: the pods are API-shaped dicts fed to the service's ``Index`` as
its watch would feed them, and the history is SQLite in a temporary folder. What this leaves out
(the issue's full benchmark: the pods created unschedulable in the testbed's etcd, the requests
through the proxy and HubAuth) is not measured here; the baseline is flattered (its pod list comes
from memory, not from the API server).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intertwin_hub.labels import owner_of
from intertwin_hub.service import db
from intertwin_hub.service.index import Index
from intertwin_hub.sites import load_catalogue
from intertwin_hub.status import pod_status

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
SITES = (("vega", "vega-vk"), ("psnc", "psnc-vk"), ("kbfi", "kbfi-vk"), ("ukri", "ukri-cloud"))


def pod(i: int, user: str) -> dict[str, Any]:
    site, node = SITES[i % len(SITES)]
    return {
        "metadata": {
            "uid": f"uid-{i:06d}",
            "name": f"jupyter-{user}-{i}",
            "creationTimestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "labels": {
                "intertwin.eu/site": site,
                "intertwin.eu/workload": "notebook",
                "hub.jupyter.org/username": user,
            },
            "annotations": {"hub.jupyter.org/username": user, "JobID": str(1000 + i)},
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


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 20 else max(xs)


def measure(n_pods: int, n_users: int, requests: int, folder: Path) -> dict[str, float]:
    catalogue = load_catalogue()
    store = db.open_store(f"sqlite:///{folder / f'jobs-{n_pods}.sqlite'}")
    index = Index(catalogue, store)
    pods = [pod(i, f"user{i % n_users}") for i in range(n_pods)]
    t = time.perf_counter()
    index.reconcile(pods)
    load_s = time.perf_counter() - t
    raw = json.dumps({"items": pods})
    me = "user0"

    ours, naive = [], []
    for _ in range(requests):
        t = time.perf_counter()
        rows, _next = store.page(me, db.Filters(), 100, None)
        body = json.dumps(
            {
                "jobs": [
                    db.job_json(j, index.site_name(j.site), index.note_for(j.site)) for j in rows
                ],
                "next": _next,
            }
        )
        ours.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        listed = json.loads(raw)["items"]
        mine = [p for p in listed if owner_of(p) == me]
        body2 = json.dumps(
            [
                {
                    "pod": p["metadata"]["name"],
                    **(
                        pod_status(p["metadata"]["labels"]["intertwin.eu/site"], p)
                        or db.JobStatus("pending", "")
                    ).to_json(),
                }
                for p in mine
            ]
        )
        naive.append((time.perf_counter() - t) * 1000)
        assert body and body2
    store.engine.dispose()
    return {
        "ours_p95": p95(ours),
        "naive_p95": p95(naive),
        "load_s": load_s,
        "mine": float(len(rows)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--small", type=int, default=100, help="pods in the small cluster")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="200 pods, 30 requests: checks the bench works, not what it measures",
    )
    a = ap.parse_args()
    if a.smoke:
        a.pods, a.users, a.small, a.requests = 200, 20, 40, 30
    with tempfile.TemporaryDirectory() as d:
        # the same number of jobs per user in both: the answer is the same size
        small = measure(a.small, max(1, a.small * a.users // a.pods), a.requests, Path(d))
        big = measure(a.pods, a.users, a.requests, Path(d))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"my jobs, p95 over {a.requests} requests (one user's {int(big['mine'])} jobs among "
        f"{a.pods} pods of {a.users} users vs {int(small['mine'])} among {a.small} pods):"
    )
    print(
        f"  ours : {big['ours_p95']:.2f} ms at {a.pods} pods, {small['ours_p95']:.2f} ms at "
        f"{a.small}; ratio {big['ours_p95'] / small['ours_p95']:.2f}"
    )
    print(
        f"  naive: {big['naive_p95']:.2f} ms at {a.pods} pods, {small['naive_p95']:.2f} ms at "
        f"{a.small}; ratio {big['naive_p95'] / small['naive_p95']:.2f}"
    )
    print(f"  first list of {a.pods} pods into the index and history: {big['load_s']:.1f} s")
    print(f"  peak resident memory of this process: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
