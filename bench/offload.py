"""``%%offload`` through the intertwin service on the testbed: submit to pod, a trivial cell end
to end against the floor of the same run, and results of 1, 10 and 50 MB.

    .venv/bin/python bench/offload.py [--rounds 20] [--e2e-rounds 5] [--sizes 1,10,50]
    .venv/bin/python bench/offload.py --smoke [--state RUN_DIR]   # does the bench still work

Every request is the kernel's: ``POST /services/intertwin/api/jobs`` with alice's JupyterHub
token and a cell packed by ``%%offload``'s own code (``pack_inputs``), at Vega (no GPU).

- **submit → pod**: from sending the POST to the pod's ADDED event on a pod watch (the admin's
  credentials, in this process); each job is cancelled once its pod exists. Median of
  ``--rounds`` (goal ≤ 0.5 s).
- **trivial cell end to end / floor**: from the POST to the result answered (``GET
  /jobs/{id}/result``, the job polled every 100 ms as the magic does every second). The floor
  is what no code of ours can beat: the virtual kubelet's status period (5 s, interLink's
  ``PodStatusUpdate`` poll) plus the site's own create and status time for an empty pod
  (``/bin/true``), measured directly against Vega's plugin (``POST /create``, then ``GET
  /status`` every 50 ms until the container has terminated). Ratio of the medians (goal ≤ 1.3).
- **results of N MB** (random bytes, so nothing compresses): the cell's end to end (to the
  result downloaded, ``?max_bytes=0``), that first answer alone (it waits for the service to
  read the log if the watch has not kept the result yet), a second answer (from the kept file
  alone), and the service's resident memory (VmRSS sampled every 50 ms, its peak during the
  size against its level before). Then one result just over
  the service's limit: it must be refused (409 ``result_too_large``) with its size.
  ``--smoke`` asks with a caller's ``max_bytes`` below its 1 MB result instead.

``--state RUN_DIR`` uses a running testbed (``python -m testbed up``, or the test session's)
instead of starting one (its emulated queue, if any, is then in the end-to-end times).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intertwin_hub.offload import frame  # noqa: E402
from intertwin_hub.offload.runner import pack_inputs  # noqa: E402
from testbed.hub import service_pid  # noqa: E402
from testbed.lifecycle import down, up  # noqa: E402
from testbed.procs import Supervisor  # noqa: E402
from testbed.state import read_state  # noqa: E402

SITE = "vega"
# the interLink virtual kubelet asks the API for every pod's status this often
# (interLink's PodStatusUpdate loop; 5 s in the VK at the testbed's version)
VK_STATUS_SECONDS = 5.0
SUBMIT_GOAL, E2E_GOAL = 0.5, 1.3
MB = 1_000_000


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, -(-95 * len(s) // 100) - 1))]


def cell(source: str, outputs: list[str]) -> dict[str, Any]:
    packed = pack_inputs(source, {}, outputs)
    return {"site": SITE, "gpus": 0, "inputs": base64.b64encode(packed).decode()}


class PodAdded:
    """ADDED times of pods by name, from one watch of the namespace."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Condition()
        self.ready = asyncio.Event()

    async def run(self, kubeconfig: str, namespace: str) -> None:
        from kubernetes_asyncio import client, config, watch

        api = await config.new_client_from_config(config_file=kubeconfig)
        core = client.CoreV1Api(api)
        try:
            while True:
                listed = await core.list_namespaced_pod(namespace)
                self.ready.set()
                w = watch.Watch()
                async with w.stream(
                    core.list_namespaced_pod,
                    namespace,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=300,
                ) as stream:
                    async for ev in stream:
                        if ev["type"] == "ADDED":
                            name = ev["raw_object"]["metadata"]["name"]
                            self.at.setdefault(name, time.monotonic())
                            async with self.changed:
                                self.changed.notify_all()
        finally:
            await api.close()

    async def wait(self, name: str, timeout: float = 60) -> float:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: name in self.at), timeout)
        return self.at[name]


class Service:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base}/{path}", **kw) as r:
            body = await r.read()
            try:
                return r.status, json.loads(body)
            except ValueError:
                return r.status, body

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        while True:
            st, job = await self.call("POST", "jobs", json=body)
            if st == 201:
                return dict(job)
            if st == 429:  # the user's cells at Vega: the cancelled ones are still going
                await asyncio.sleep(0.5)
                continue
            raise SystemExit(f"POST jobs: {st} {job}")

    async def until_ended(self, job_id: str, timeout: float = 600) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st, job = await self.call("GET", f"jobs/{job_id}")
            if st == 200 and job["state"] in ("succeeded", "failed", "cancelled", "lost"):
                return dict(job)
            await asyncio.sleep(0.1)
        raise SystemExit(f"job {job_id} did not end within {timeout} s")


async def submit_to_pod(svc: Service, pods: PodAdded, rounds: int) -> list[float]:
    body = cell("import time\ntime.sleep(300)\n", [])
    times = []
    for _ in range(rounds):
        t0 = time.monotonic()
        job = await svc.submit(body)
        added = await pods.wait(job["pod"])
        times.append(added - t0)
        await svc.call("DELETE", f"jobs/{job['id']}")
    return times


async def floor_round(http: aiohttp.ClientSession, plugin: str) -> float:
    """The site's own create and status time for an empty pod, plus the VK's status period."""
    uid = str(uuid.uuid4())
    pod = {
        "metadata": {"name": f"bench-empty-{uid[:8]}", "namespace": "bench", "uid": uid},
        "spec": {"containers": [{"name": "c", "image": "none", "command": ["/bin/true"]}]},
    }
    t0 = time.monotonic()
    async with http.post(f"{plugin}/create", json={"pod": pod, "container": [{"name": "c"}]}) as r:
        assert r.status == 200, await r.text()
    try:
        while True:
            async with http.request("GET", f"{plugin}/status", json=[pod]) as r:
                statuses = await r.json()
            states = [c.get("state") or {} for s in statuses for c in s.get("containers") or []]
            if states and all("terminated" in s for s in states):
                return time.monotonic() - t0 + VK_STATUS_SECONDS
            await asyncio.sleep(0.05)
    finally:
        async with http.post(f"{plugin}/delete", json=pod) as r:
            await r.read()


async def trivial_e2e(svc: Service) -> float:
    t0 = time.monotonic()
    job = await svc.submit(cell("y = 1 + 1\n", ["y"]))
    await svc.until_ended(job["id"])
    st, result = await svc.call("GET", f"jobs/{job['id']}/result")
    assert st == 200 and result["status"] == "ok", result
    return time.monotonic() - t0


class Rss:
    """The service process's VmRSS, sampled every 50 ms while ``sampling``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0

    def now(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    async def sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            await asyncio.sleep(0.05)


async def result_of_size(svc: Service, rss: Rss, size: int) -> dict[str, float]:
    before = rss.now()
    rss.peak = before
    sampler = asyncio.create_task(rss.sample())
    try:
        t0 = time.monotonic()
        job = await svc.submit(cell(f"import os\nblob = os.urandom({size})\n", ["blob"]))
        await svc.until_ended(job["id"])
        t1 = time.monotonic()
        st, body = await svc.call("GET", f"jobs/{job['id']}/result", params={"max_bytes": 0})
        t2 = time.monotonic()
        assert st == 200 and body["status"] == "ok", (st, str(body)[:300])
        assert len(base64.b64decode(body["payload"])) == body["bytes"] >= size
        # again: from the kept file alone
        st, again = await svc.call("GET", f"jobs/{job['id']}/result", params={"max_bytes": 0})
        t3 = time.monotonic()
        assert st == 200 and again["sha256"] == body["sha256"]
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    return {
        "e2e_s": t2 - t0,
        "first_answer_s": t2 - t1,
        "kept_answer_s": t3 - t2,
        "payload_bytes": body["bytes"],
        "rss_before": before,
        "rss_peak": rss.peak,
    }


async def refusal(svc: Service, size: int, max_bytes: int | None) -> dict[str, Any]:
    job = await svc.submit(cell(f"import os\nblob = os.urandom({size})\n", ["blob"]))
    await svc.until_ended(job["id"])
    params = {} if max_bytes is None else {"max_bytes": max_bytes}
    t0 = time.monotonic()
    st, body = await svc.call("GET", f"jobs/{job['id']}/result", params=params)
    took = time.monotonic() - t0
    assert (st, body.get("error")) == (409, "result_too_large"), (st, str(body)[:300])
    return {"status": st, "took_s": took, **body}


def whole_log_way(log: bytes) -> int:
    """How the service answered a result before it kept them (its ``read_result`` then): the
    whole log read and decoded, its frame's base64 joined and decoded, the answer's JSON
    written at once."""
    text = log.decode(errors="replace")
    lines = text.splitlines()
    begin = max(i for i, line in enumerate(lines) if frame.BEGIN in line)
    end = lines.index(frame.END, begin)
    payload = base64.b64decode("".join(lines[begin + 1 : end]), validate=True)
    answer = json.dumps({"status": "ok", "payload": base64.b64encode(payload).decode()})
    return len(answer)


def streamed_way(log: bytes, folder: str) -> int:
    """The service's way now (``results.py``): the log a chunk at a time through
    ``frame.StreamDecoder`` into a file, then the answer a chunk at a time from the file."""
    from intertwin_hub.service.results import ANSWER_CHUNK, READ_CHUNK

    # imported by memory_of before it measures
    path = Path(folder) / "result"
    dec = frame.StreamDecoder(lambda: open(path, "wb"), lambda sink: sink.close())
    rest = b""
    for i in range(0, len(log), READ_CHUNK):
        rest += log[i : i + READ_CHUNK]
        lines = rest.split(b"\n")
        rest = lines.pop()
        for raw in lines:
            dec.feed(raw.decode(errors="replace"))
    dec.close().sink.close()
    n = 0
    with open(path, "rb") as f:
        while data := f.read(ANSWER_CHUNK):
            n += len(base64.b64encode(data))
    return n


def memory_of(way: str, size: int) -> None:
    """One way's peak memory above the log it is handed (VmRSS sampled every 2 ms), in a
    process of its own: printed as JSON."""
    import os
    import threading

    import intertwin_hub.service.results  # noqa: F401 (the service's modules, before measuring)

    payload = os.urandom(size)
    log = ("\n".join(["cell output"] * 100 + list(frame.encode("ok", payload))) + "\n").encode()
    del payload
    rss = Rss(os.getpid())
    before = rss.now()
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss.now())
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        whole_log_way(log) if way == "whole" else streamed_way(log, folder)
    took = time.monotonic() - t0
    done.set()
    t.join()
    print(json.dumps({"way": way, "seconds": took, "extra_bytes": peak[0] - before}))


def compare_memory(size: int) -> dict[str, Any]:
    import subprocess

    out = {}
    for way in ("whole", "streamed"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-of", way, str(size)],
            capture_output=True,
            text=True,
            check=True,
        )
        out[way] = json.loads(proc.stdout.strip().splitlines()[-1])
    w, st = out["whole"], out["streamed"]
    print(
        f"the service's memory for a {size / MB:g} MB result, in process: the whole log read "
        f"at once (its way before results were kept) +{w['extra_bytes'] / 2**20:.0f} MiB in "
        f"{w['seconds']:.2f} s; streamed to a file and answered from it "
        f"+{st['extra_bytes'] / 2**20:.0f} MiB in {st['seconds']:.2f} s",
        flush=True,
    )
    return out


async def main(args: argparse.Namespace) -> int:
    if args.smoke:
        args.rounds, args.e2e_rounds, args.sizes = 2, 1, "1"
    sizes = [int(float(s) * MB) for s in args.sizes.split(",") if s]
    own = args.state is None
    run = Path(args.state) if not own else Path(tempfile.mkdtemp(prefix="intertwin-bench-"))
    if own:
        print(f"bringing the testbed up in {run} ...", flush=True)
        state = up(run, hub=True, progress=lambda m: print(f"  {m}", flush=True))
    else:
        found = read_state(run)
        if not found or "hub" not in found:
            raise SystemExit(f"no testbed with a hub is running from {run}")
        state = found
    pods = PodAdded()
    watcher: asyncio.Task[None] | None = None
    try:
        hub, cp = state["hub"], state["control_plane"]
        plugin = next(s["plugin_url"] for s in state["sites"] if s["slug"] == SITE)
        async with aiohttp.ClientSession() as admin:
            async with admin.post(
                f"{hub['api_url']}/users/alice/tokens",
                json={"note": "bench/offload.py"},
                headers={"Authorization": f"token {hub['service_token']}"},
            ) as r:
                token = (await r.json())["token"]
        watcher = asyncio.create_task(pods.run(cp["admin_kubeconfig"], cp["namespace"]))
        await asyncio.wait_for(pods.ready.wait(), 60)
        timeout = aiohttp.ClientTimeout(total=900)
        async with (
            aiohttp.ClientSession(
                headers={"Authorization": f"token {token}"}, timeout=timeout
            ) as http,
            aiohttp.ClientSession(timeout=timeout) as plain,
        ):
            svc = Service(http, f"{hub['url']}/services/intertwin/api")
            end = time.monotonic() + 120
            while (await svc.call("GET", "jobs"))[0] != 200:
                if time.monotonic() > end:
                    raise SystemExit("the intertwin service did not answer behind the proxy")
                await asyncio.sleep(0.5)
            out: dict[str, Any] = {}

            sub = await submit_to_pod(svc, pods, args.rounds)
            out["submit_to_pod"] = sub
            med = statistics.median(sub)
            print(
                f"submit -> pod created ({len(sub)} rounds): median {med * 1000:.0f} ms, "
                f"p95 {p95(sub) * 1000:.0f} ms (goal <= {SUBMIT_GOAL * 1000:.0f} ms: "
                f"{'met' if med <= SUBMIT_GOAL else 'missed'})",
                flush=True,
            )

            floors, e2es = [], []
            for _ in range(args.e2e_rounds):
                floors.append(await floor_round(plain, plugin))
                e2es.append(await trivial_e2e(svc))
            out["floor"], out["trivial_e2e"] = floors, e2es
            ratio = statistics.median(e2es) / statistics.median(floors)
            print(
                f"trivial cell end to end ({len(e2es)} rounds): median "
                f"{statistics.median(e2es):.2f} s; floor (VK status period "
                f"{VK_STATUS_SECONDS:.0f} s + the plugin's create and status of an empty pod) "
                f"median {statistics.median(floors):.2f} s; ratio {ratio:.2f} "
                f"(goal <= {E2E_GOAL}: {'met' if ratio <= E2E_GOAL else 'missed'})",
                flush=True,
            )

            pid = service_pid(Supervisor(run))
            if pid is None:
                raise SystemExit("the intertwin service's process was not found")
            rss = Rss(pid)
            out["sizes"] = {}
            for size in sizes:
                m = await result_of_size(svc, rss, size)
                out["sizes"][size] = m
                print(
                    f"result of {size / MB:g} MB (payload {m['payload_bytes'] / MB:.1f} MB): "
                    f"end to end {m['e2e_s']:.2f} s (its first answer {m['first_answer_s']:.2f} s, "
                    f"reading the log if the watch had not kept it yet; again from the kept "
                    f"file {m['kept_answer_s']:.2f} s); "
                    f"service RSS {m['rss_before'] / 2**20:.0f} MiB before, peak "
                    f"{m['rss_peak'] / 2**20:.0f} MiB "
                    f"(+{(m['rss_peak'] - m['rss_before']) / 2**20:.0f} MiB)",
                    flush=True,
                )
            if args.smoke:
                refused = await refusal(svc, MB, MB // 2)
            else:
                # just over the service's limit (its default, 64 MiB)
                refused = await refusal(svc, int(args.over * MB), None)
            out["refusal"] = refused
            print(
                f"result over the limit: {refused['status']} {refused['error']} in "
                f"{refused['took_s'] * 1000:.0f} ms ({refused['bytes'] / 2**20:.1f} MiB, limit "
                f"{refused['limit'] / 2**20:.1f} MiB)",
                flush=True,
            )
            out["memory"] = compare_memory(max(sizes))
        if args.json:
            await asyncio.to_thread(Path(args.json).write_text, json.dumps(out))
        return 0
    finally:
        if watcher:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        if own:
            down(run)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20, help="submit -> pod rounds (default 20)")
    ap.add_argument(
        "--e2e-rounds", type=int, default=5, help="trivial cell and floor rounds (default 5)"
    )
    ap.add_argument("--sizes", default="1,10,50", help="result sizes in MB (default 1,10,50)")
    ap.add_argument(
        "--over", type=float, default=70, help="MB of the result over the limit (default 70)"
    )
    ap.add_argument("--state", help="use the testbed running from this run folder")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="2 submits, 1 trivial cell, a 1 MB result, a caller's limit below it",
    )
    ap.add_argument("--memory-of", nargs=2, metavar=("WAY", "BYTES"), help=argparse.SUPPRESS)
    parsed = ap.parse_args()
    if parsed.memory_of:
        memory_of(parsed.memory_of[0], int(parsed.memory_of[1]))
        sys.exit(0)
    sys.exit(asyncio.run(main(parsed)))
