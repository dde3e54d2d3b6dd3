"""Compare ``intertwin-hub usage apel`` with the interTwin Kubernetes usage probe, record by
record, for the same pods on the testbed: a manual check, not part of the test command (the
probe is not on PyPI and needs GitHub; see docs/apel-probe-comparison.md).

    .venv/bin/python tools/compare_with_probe.py --probe PIP_SPEC [--json FILE]

``PIP_SPEC`` is what ``pip install`` takes for the probe (egi_notebooks_accounting,
https://github.com/interTwin-eu/kubernetes-usage-accounting): a checkout's folder or
``git+file:///path/to/repo``. It is installed into a venv of its own outside the repository
(``--probe-venv``, default a temporary folder), never imported here.

What it does, in a testbed of its own (a temporary run folder, stopped at the end):

1. kube-state-metrics (built by testbed/build/build-probe-tools.sh) watches the testbed's pods,
   with the annotations the probe reads allow-listed; Prometheus scrapes it every
   ``--scrape-interval`` seconds.
2. Real workloads: alice's notebook at Vega (an A100), bob's at UKRI (no VO), alice's batch
   cell at Vega; the notebooks are stopped after ``--hold`` seconds, the cell ends by itself.
   The pods' own timestamps are read from the API server all along (the reference).
3. Once every pod is gone or ended, it waits until the probe would call them completed (its
   rule: the last ``Running`` sample more than 90 s old), then runs the probe
   (``egi-notebooks-accounting-dump``) against that Prometheus and ``intertwin-hub usage apel``
   against the hub service's database for the same period, and compares the cloud records
   field by field, printing one table per pod and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# the annotations the probe turns into GlobalUserName, FQAN (its default fqan_key) and flavor
# (egi_notebooks_accounting/pods.py), plus ours (the VO the workload is accounted to)
PROBE_ANNOTATIONS = (
    "hub.jupyter.org/username",
    "egi.eu/primary_group",
    "egi.eu/flavor",
    "intertwin.eu/vo",
)
# the probe's "completed" rule: its pods.py calls a pod completed once its last Running sample
# is more than 1.5 minutes old
PROBE_COMPLETED_AFTER = 90.0
# the probe's default filter (pods.py DEFAULT_FILTER)
PROBE_DEFAULT_FILTER = "pod=~'jupyter-.*'"
SITE_NAME = "INTERTWIN-TESTBED"
ENDED = ("Succeeded", "Failed")
CLOUD_TYPE = "intertwin-hub"
# fields whose values are numbers (compared numerically; the rest as text)
NUMERIC = {
    "StartTime",
    "EndTime",
    "SuspendDuration",
    "WallDuration",
    "CpuDuration",
    "CpuCount",
    "NetworkInbound",
    "NetworkOutbound",
    "Memory",
    "Disk",
    "PublicIPCount",
}


# --- the comparison (pure) -------------------------------------------------------------------


def parse_cloud_message(text: str) -> list[dict[str, str]]:
    """The records of an ``APEL-cloud-message: v0.4``: a header line, then records separated
    by ``%%`` lines, one ``Key: value`` per line."""
    header, _, body = text.partition("\n")
    if not header.startswith("APEL-cloud-message:"):
        raise ValueError(f"not an APEL cloud message: {header[:60]!r}")
    records = []
    for chunk in body.split("\n%%\n"):
        rec = dict(ln.split(": ", 1) for ln in chunk.splitlines() if ": " in ln)
        if rec:
            records.append(rec)
    return records


def _number(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def compare_records(
    ours: Mapping[str, Mapping[str, str]], theirs: Mapping[str, Mapping[str, str]]
) -> list[dict[str, Any]]:
    """One row per (VMUUID, field) of either side: both values, whether they agree and, for
    numbers, ours minus theirs."""
    rows = []
    for uid in sorted(set(ours) | set(theirs)):
        a, b = ours.get(uid), theirs.get(uid)
        fields = list(dict.fromkeys([*(a or {}), *(b or {})]))
        for f in fields:
            va = a.get(f) if a is not None else None
            vb = b.get(f) if b is not None else None
            delta = None
            if f in NUMERIC:
                na, nb = _number(va), _number(vb)
                if na is not None and nb is not None:
                    delta = na - nb
                    same = math.isclose(na, nb, abs_tol=1e-9)
                else:
                    same = va == vb
            else:
                same = va == vb
            rows.append(
                {"uid": uid, "field": f, "ours": va, "probe": vb, "same": same, "delta": delta}
            )
    return rows


def summary(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per field: records where both sides agree, differ, and the range of ours minus theirs."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(
            r["field"], {"same": 0, "differ": 0, "min_delta": None, "max_delta": None}
        )
        s["same" if r["same"] else "differ"] += 1
        if r["delta"] is not None:
            d = r["delta"]
            s["min_delta"] = d if s["min_delta"] is None else min(s["min_delta"], d)
            s["max_delta"] = d if s["max_delta"] is None else max(s["max_delta"], d)
    return out


def read_spool(path: Path) -> list[dict[str, str]]:
    """Every cloud record in a dirq queue folder (the accelerator message is JSON: skipped)."""
    from dirq.QueueSimple import QueueSimple

    q = QueueSimple(str(path))
    records = []
    for name in q:
        if not q.lock(name):
            continue
        raw = q.get(name)
        q.unlock(name)
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text.startswith("APEL-cloud-message:"):
            records.extend(parse_cloud_message(text))
    return records


# --- the run ---------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[compare] {time.strftime('%H:%M:%S')} {msg}", flush=True)


def tools() -> dict[str, str]:
    """Prometheus and kube-state-metrics, built once and cached by the repo's script."""
    out = subprocess.run(
        [str(REPO / "testbed/build/build-probe-tools.sh")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    log(out.strip().splitlines()[-1])
    folder = Path(out.strip().rsplit(" in ", 1)[-1])
    return {n: str(folder / n) for n in ("prometheus", "kube-state-metrics")}


def probe_venv(spec: str, venv: Path | None) -> Path:
    """A venv holding the probe, outside the repository; its dump command."""
    venv = venv or Path(tempfile.mkdtemp(prefix="probe-venv-"))
    dump = venv / "bin" / "egi-notebooks-accounting-dump"
    if not dump.exists():
        log(f"installing the probe ({spec}) into {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", spec], check=True)
    return dump


def prom_query(url: str, query: str) -> list[dict[str, Any]]:
    import requests

    r = requests.post(f"{url}/api/v1/query", data={"query": query}, timeout=30)
    r.raise_for_status()
    return list(r.json()["data"]["result"])


def start_metrics(sup: Any, bins: dict[str, str], state: dict[str, Any], interval: float) -> str:
    """kube-state-metrics on the testbed's API server and Prometheus scraping it; the
    Prometheus URL."""
    from testbed.procs import free_port, http_ok, wait_until

    cp = state["control_plane"]
    ksm_port, ksm_tel, prom_port = free_port(), free_port(), free_port()
    allow = ",".join(PROBE_ANNOTATIONS)
    ksm = sup.start(
        "kube-state-metrics",
        [
            bins["kube-state-metrics"],
            f"--kubeconfig={cp['admin_kubeconfig']}",
            "--host=127.0.0.1",
            f"--port={ksm_port}",
            "--telemetry-host=127.0.0.1",
            f"--telemetry-port={ksm_tel}",
            "--resources=pods",
            f"--namespaces={cp['namespace']}",
            f"--metric-annotations-allowlist=pods=[{allow}]",
        ],
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{ksm_port}/metrics"), "kube-state-metrics", 60, ksm
    )
    run = Path(state["run_dir"])
    conf = run / "prometheus.yml"
    conf.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": f"{interval:g}s", "scrape_timeout": "4s"},
                "scrape_configs": [
                    {
                        "job_name": "kube-state-metrics",
                        "static_configs": [{"targets": [f"127.0.0.1:{ksm_port}"]}],
                    }
                ],
            }
        )
    )
    prom = sup.start(
        "prometheus",
        [
            bins["prometheus"],
            f"--config.file={conf}",
            f"--storage.tsdb.path={run / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
    )
    url = f"http://127.0.0.1:{prom_port}"

    def scraped() -> bool:
        try:
            up = prom_query(url, 'up{job="kube-state-metrics"}')
        except Exception:
            return False
        return bool(up) and up[0]["value"][1] == "1"

    wait_until(scraped, "Prometheus scraping kube-state-metrics", 120, prom)
    return url


async def workloads(state: dict[str, Any], hold: float) -> dict[str, dict[str, Any]]:
    """Start the workloads, stop the notebooks after ``hold`` s, wait until every pod is gone;
    each pod's own timestamps as the API server told them (polled every second)."""
    import aiohttp

    from intertwin_hub.offload.runner import pack_inputs

    hub = state["hub"]
    api = hub["api_url"]
    service = f"{hub['url']}/services/intertwin/api"
    ns = state["control_plane"]["namespace"]
    admin = {"Authorization": f"token {hub['service_token']}"}
    seen: dict[str, dict[str, Any]] = {}
    notebooks = [
        ("alice", "probe-vega", {"profile": "vega"}),
        ("bob", "probe-ukri", {"profile": "ukri"}),
    ]

    async with aiohttp.ClientSession(headers=admin) as s:

        async def token(user: str) -> str:
            async with s.post(f"{api}/users/{user}/tokens", json={"note": "probe"}) as r:
                r.raise_for_status()
                return str((await r.json())["token"])

        async def kube_pods() -> list[dict[str, Any]]:
            cp = state["control_plane"]
            async with s.get(
                f"{cp['api_url']}/api/v1/namespaces/{ns}/pods",
                headers={"Authorization": f"Bearer {cp['identities']['admin']['token']}"},
                ssl=False,
            ) as r:
                r.raise_for_status()
                return list((await r.json())["items"])

        async def watch_pods(stop: asyncio.Event) -> None:
            while not stop.is_set():
                now = datetime.now(UTC)
                for p in await kube_pods():
                    meta = p["metadata"]
                    rec = seen.setdefault(
                        meta["uid"],
                        {"pod": meta["name"], "created": meta["creationTimestamp"]},
                    )
                    rec["last_seen"] = now.isoformat()
                    phase = (p.get("status") or {}).get("phase")
                    rec["phase"] = phase
                    if phase == "Running":
                        rec.setdefault("first_seen_running", now.isoformat())
                        rec["last_seen_running"] = now.isoformat()
                    for cs in (p.get("status") or {}).get("containerStatuses") or []:
                        st = cs.get("state") or {}
                        if "running" in st:
                            rec["container_started"] = st["running"].get("startedAt")
                        if "terminated" in st:
                            rec["container_started"] = st["terminated"].get("startedAt")
                            rec["container_finished"] = st["terminated"].get("finishedAt")
                    rec["deleting"] = meta.get("deletionTimestamp")
                live = {p["metadata"]["uid"] for p in await kube_pods()}
                for uid, rec in seen.items():
                    if uid not in live:
                        rec.setdefault("gone_by", datetime.now(UTC).isoformat())
                await asyncio.sleep(1)

        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_pods(stop))
        try:
            for user, server, options in notebooks:
                async with s.post(f"{api}/users/{user}") as r:
                    assert r.status in (201, 409), await r.text()
                async with s.post(f"{api}/users/{user}/servers/{server}", json=options) as r:
                    assert r.status in (201, 202), await r.text()
                log(f"{user}'s notebook {server} asked for")
            alice = await token("alice")
            cell = base64.b64encode(
                pack_inputs("import time\ntime.sleep(45)\nprint('done')", {}, [])
            ).decode()
            async with s.post(
                f"{service}/jobs",
                json={"site": "vega", "partition": "cpu", "gpus": 0, "inputs": cell},
                headers={"Authorization": f"token {alice}"},
            ) as r:
                body = await r.json()
                assert r.status in (201, 202), body
            log(f"alice's batch cell at Vega submitted: job {body.get('id')}")

            async def ready(user: str, server: str) -> bool:
                async with s.get(f"{api}/users/{user}") as r:
                    model = await r.json()
                return bool((model.get("servers") or {}).get(server, {}).get("ready"))

            deadline = time.monotonic() + 600
            for user, server, _ in notebooks:
                while not await ready(user, server):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{user}'s {server} not ready in 600 s")
                    await asyncio.sleep(1)
                log(f"{user}'s {server} ready")
            log(f"holding the notebooks for {hold:g} s")
            await asyncio.sleep(hold)
            for user, server, _ in notebooks:
                async with s.delete(
                    f"{api}/users/{user}/servers/{server}", json={"remove": True}
                ) as r:
                    assert r.status in (202, 204), await r.text()
                log(f"{user}'s {server} stopped")
            # a finished batch cell's pod stays (its log holds the result) until it is
            # deleted: every pod gone or ended
            deadline = time.monotonic() + 600
            while [p for p in await kube_pods() if p["status"].get("phase") not in ENDED]:
                if time.monotonic() > deadline:
                    raise TimeoutError("pods still running after 600 s")
                await asyncio.sleep(1)
            await asyncio.sleep(2)  # one more look so every pod has its last times
        finally:
            stop.set()
            await watcher
    log(f"every pod gone or ended: {len(seen)} pods seen")
    return seen


def run_probe(
    dump: Path, prom_url: str, flt: str, since: datetime, spool: Path, db: Path | None
) -> subprocess.CompletedProcess[str]:
    rng = math.ceil((datetime.now(UTC) - since).total_seconds()) + 60
    env = {
        **os.environ,
        "PROMETHEUS_URL": prom_url,
        "FILTER": flt,
        "RANGE": f"{rng}s",
        "APEL_SPOOL": str(spool),
        "SITENAME": SITE_NAME,
        "CLOUD_TYPE": CLOUD_TYPE,
        "VERBOSE": "1",
    }
    if db is not None:
        env["NOTEBOOKS_DB"] = str(db)
    # no config file: every setting comes from the environment
    return subprocess.run(
        [str(dump), "-c", str(spool.parent / "no-config.ini")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_ours(state: dict[str, Any], since: datetime, until: datetime, out: Path) -> str:
    # the hub's folder holds the service's database (testbed/hub.py)
    db = Path(state["hub"]["config"]).parent / "intertwin-service.sqlite"
    p = subprocess.run(
        [
            str(REPO / ".venv/bin/intertwin-hub"),
            "usage",
            "apel",
            "--db",
            f"sqlite:///{db}",
            "--site-name",
            SITE_NAME,
            "--from",
            since.isoformat(),
            "--to",
            until.isoformat(),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return p.stdout.strip()


def epoch(text: str | None) -> int | None:
    if not text:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def print_report(
    rows: list[dict[str, Any]], pods: Mapping[str, Mapping[str, Any]], flt: str
) -> None:
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_uid.setdefault(r["uid"], []).append(r)
    for uid, rs in by_uid.items():
        ref = pods.get(uid, {})
        print(f"\n## {ref.get('pod', '?')}  VMUUID {uid}")
        print(
            "   pod's own times (epoch): created {} container started {} finished {} "
            "last seen Running {} gone by {}".format(
                epoch(ref.get("created")),
                epoch(ref.get("container_started")),
                epoch(ref.get("container_finished")),
                epoch(ref.get("last_seen_running")),
                epoch(ref.get("gone_by")),
            )
        )
        print(f"   {'field':<20} {'ours':<48} {'probe':<48} {'ours-probe'}")
        for r in rs:
            mark = " " if r["same"] else "≠"
            d = "" if r["delta"] is None else f"{r['delta']:+g}"
            print(f" {mark} {r['field']:<20} {r['ours']!s:<48.48} {r['probe']!s:<48.48} {d}")
    print(f"\n## summary (probe FILTER {flt})")
    print(f"   {'field':<20} {'same':>5} {'differ':>7} {'ours-probe (min..max)'}")
    for f, s in summary(rows).items():
        rng = "" if s["min_delta"] is None else f"{s['min_delta']:+g} .. {s['max_delta']:+g}"
        print(f"   {f:<20} {s['same']:>5} {s['differ']:>7} {rng}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--probe", required=True, help="pip install spec of the probe")
    p.add_argument("--probe-venv", type=Path, help="venv for the probe (made if missing)")
    p.add_argument("--hold", type=float, default=60, help="seconds the notebooks run once ready")
    p.add_argument("--scrape-interval", type=float, default=5, help="Prometheus' (s)")
    p.add_argument(
        "--queue-seconds", type=float, default=20, help="the sites' emulated batch queue (s)"
    )
    p.add_argument("--filter", help="the probe's FILTER (default: every pod of the namespace)")
    p.add_argument("--run-dir", type=Path, help="the testbed's run folder (default: temporary)")
    p.add_argument("--keep", action="store_true", help="leave the testbed running")
    p.add_argument("--json", type=Path, help="write the rows and reference times here")
    a = p.parse_args(argv)

    from testbed.lifecycle import down, up
    from testbed.procs import Supervisor

    dump = probe_venv(a.probe, a.probe_venv)
    bins = tools()
    run_dir = a.run_dir or Path(tempfile.mkdtemp(prefix="probe-testbed-"))
    log(f"testbed in {run_dir}")
    state = up(
        run_dir,
        rucio=False,
        queue_seconds=a.queue_seconds,
        progress=lambda m: log(f"testbed: {m}"),
    )
    try:
        sup = Supervisor(run_dir)
        prom = start_metrics(sup, bins, state, a.scrape_interval)
        log(f"Prometheus at {prom}, scraping kube-state-metrics every {a.scrape_interval:g} s")
        since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
        pods = asyncio.run(workloads(state, a.hold))
        last = max(
            (datetime.fromisoformat(r["last_seen_running"]) for r in pods.values()
             if r.get("last_seen_running")),
            default=datetime.now(UTC),
        )  # fmt: skip
        # the probe's own rule decides when it calls a pod completed: wait past it
        wait = (last - datetime.now(UTC)).total_seconds() + PROBE_COMPLETED_AFTER + 15
        if wait > 0:
            log(f"waiting {wait:.0f} s: the probe calls a pod completed 90 s after it last ran")
            time.sleep(wait)
        out = run_dir / "apel"
        out.mkdir(exist_ok=True)
        flt = a.filter or f"namespace='{state['control_plane']['namespace']}'"
        probe = run_probe(dump, prom, flt, since, out / "probe-spool", out / "probe.db")
        (out / "probe.log").write_text(probe.stdout + probe.stderr)
        if probe.returncode != 0:
            log(f"the probe failed ({probe.returncode}):\n{probe.stderr[-3000:]}")
            return 1
        # the probe as shipped (its default FILTER): which of the pods it would account
        default = run_probe(
            dump, prom, PROBE_DEFAULT_FILTER, since, out / "probe-default-spool", None
        )
        (out / "probe-default.log").write_text(default.stdout + default.stderr)
        found = [r["MachineName"] for r in read_spool(out / "probe-default-spool")]
        log(f"the probe with its default FILTER {PROBE_DEFAULT_FILTER}: {sorted(found)}")
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        log(run_ours(state, since, until, out / "ours-spool"))
        theirs = {r["VMUUID"]: r for r in read_spool(out / "probe-spool")}
        ours = {r["VMUUID"]: r for r in read_spool(out / "ours-spool")}
        log(f"records: ours {len(ours)}, the probe's {len(theirs)}; spools in {out}")
        rows = compare_records(ours, theirs)
        print_report(rows, pods, flt)
        if a.json:
            a.json.write_text(
                json.dumps({"filter": flt, "pods": pods, "rows": rows}, indent=1, default=str)
            )
    finally:
        if a.keep:
            log(f"testbed left running: .venv/bin/python -m testbed --run-dir {run_dir} down")
        else:
            down(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
