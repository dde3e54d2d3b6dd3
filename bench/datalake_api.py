"""DataLake API on the 100,000-file dataset of a real Rucio (the testbed's, on PostgreSQL by
default): listing it, and resolving every local path of it (what "Add to notebook" does), ours
against rucio-jupyterlab and against plain rucio-clients.

    .venv/bin/python bench/datalake_api.py [--rounds 3] [--rjl-server-rounds 1]
    .venv/bin/python bench/datalake_api.py --smoke    # a 5-file dataset, 1 round, < 1 min

Starts the testbed's Rucio (testbed/rucio), then per round, in random order:

- ours, listing: a cold Jupyter server with ``intertwin_lab`` signed in as alice
  (``GET intertwin/datalake/dids/{scope}/{name}/content``: a first page of 100, then pages of
  1000 to the end);
- ours, every local path: ``GET .../paths?whole=true`` pages of 1000 to the end, as the panel's
  "Add to notebook" reads them (labextension/src/datalake/injection.ts), at the RSE holding the
  dataset;
- floor: plain rucio-clients in this process, ``Client.list_replicas`` of the dataset at that
  RSE (``file`` scheme, ``lan``, all states), every row mapped to its path: the least any tool
  can do to know the paths;
- rucio-jupyterlab's way: its calls reimplemented here from its source
  (``rucio_jupyterlab/rucio/rucio.py::get_replicas`` and
  ``mode_handlers/replica.py::fetch_file_replicas``/``translate_pfn_to_path``, 41.0.0): one
  ``GET /replicas/{scope}/{name}`` read whole and parsed line by line, the first PFN at the
  destination RSE mapped with ``path_begins_at``; without its per-file SQLite cache writes,
  which favours it.

``--rjl-server-rounds N`` also runs, N times, rucio-jupyterlab 41.0.0's own server extension
(installed once from PyPI into its own venv under ``~/.cache/intertwin-hub/rucio-jupyterlab``,
never into the project's deps): ``GET rucio-jupyterlab/files?did=`` (its collection listing) and
``GET rucio-jupyterlab/did?did=`` (per-file status and path: ``FETCHING`` first, then polled
every second). Prints medians over the rounds, every round, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.procs import Supervisor, free_port, http_ok, wait_until  # noqa: E402
from testbed.rucio import Database, start_rucio  # noqa: E402

RJL_VERSION = "41.0.0"
RJL_HOME = Path.home() / ".cache" / "intertwin-hub" / "rucio-jupyterlab" / RJL_VERSION
SITE_RSE = "VEGA-DCACHE"
TESTBED_RUCIO = ROOT / ".run" / "testbed" / "rucio" / "rucio.json"
# --smoke: a small dataset of the seed with its files at one RSE
SMOKE_DATASET = "intertwin:physics.virgo.o3"
TIMEOUT = 600.0


def ensure_rucio_jupyterlab() -> Path:
    """rucio-jupyterlab's own venv (installed once, marker written last)."""
    py = RJL_HOME / "venv" / "bin" / "python"
    if (RJL_HOME / ".complete").exists():
        return py
    print(f"installing rucio-jupyterlab=={RJL_VERSION} into {RJL_HOME} (once)", flush=True)
    shutil.rmtree(RJL_HOME / "venv", ignore_errors=True)
    RJL_HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(RJL_HOME / "venv")], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", f"rucio-jupyterlab=={RJL_VERSION}"], check=True
    )
    (RJL_HOME / ".complete").touch()
    return py


class Server:
    """A Jupyter server process (started through the testbed's Supervisor, stopped by pid)."""

    def __init__(
        self,
        sup: Supervisor,
        name: str,
        python: Path,
        config: dict[str, Any],
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.name = name
        self.sup = sup
        home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=sup.run_dir))
        home.chmod(0o700)
        cfg_dir = home / "config"
        cfg_dir.mkdir()
        cfg = cfg_dir / "jupyter_server_config.json"
        cfg.write_text(json.dumps(config))
        cfg.chmod(0o600)  # it holds the benchmark account's password
        argv = [
            str(python),
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={home}",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env = {
            "JUPYTER_CONFIG_DIR": str(cfg_dir),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "HOME": str(home),
            **(extra_env or {}),
        }
        proc = sup.start(name, argv, env=env, cwd=home)
        wait_until(
            lambda: http_ok(f"{self.url}api/status?token={self.token}"),
            f"{name} Jupyter server",
            60,
            proc,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        url = self.url + path + ("?" + urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            url,
            method=method,
            data=data,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except TimeoutError:
            return 0, f"no answer within {TIMEOUT:.0f} s"
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")[:300]

    def stop(self) -> None:
        self.sup.stop(self.name)


def ours_config(rucio: dict[str, Any], rse: str) -> dict[str, Any]:
    acc = rucio["accounts"]["alice"]
    return {
        "ServerApp": {"jpserver_extensions": {"intertwin_lab": True}},
        "DataLake": {
            "rucio_base_url": rucio["url"],
            "auth_type": "userpass",
            "account": "alice",
            "username": acc["username"],
            "password": acc["password"],
            "destination_rse": rse,
            "rse_mount_path": rucio["rses"][rse]["path"],
            "site_name": rucio["rses"][rse]["site"],
        },
    }


def did_route(did: str) -> str:
    scope, name = did.split(":", 1)
    return f"intertwin/datalake/dids/{quote(scope, safe='')}/{quote(name, safe='')}"


def ours_list(sup: Supervisor, rucio: dict[str, Any], did: str, files: int) -> dict[str, float]:
    srv = Server(sup, "ours", ROOT / ".venv" / "bin" / "python", ours_config(rucio, SITE_RSE))
    try:
        base = did_route(did)
        first_limit = min(100, files)
        t = time.perf_counter()
        code, page = srv.call("GET", f"{base}/content", {"limit": first_limit})
        first = time.perf_counter() - t
        assert code == 200 and len(page["items"]) == first_limit, page
        rows = len(page["items"])
        cursor = page["next"]
        while cursor is not None:
            code, page = srv.call("GET", f"{base}/content", {"cursor": cursor, "limit": 1000})
            assert code == 200, page
            rows += len(page["items"])
            cursor = page["next"]
        full = time.perf_counter() - t
        assert rows == files and page["complete"], (rows, page["total"])
        t = time.perf_counter()
        code, page = srv.call(
            "GET", f"{base}/content", {"offset": max(0, files - 1000), "limit": 1000}
        )
        warm = time.perf_counter() - t
        assert code == 200, page
        return {"first_page": first, "full_list": full, "warm_page": warm}
    finally:
        srv.stop()


def ours_paths(sup: Supervisor, rucio: dict[str, Any], did: str, rse: str) -> dict[str, Any]:
    """Every local path through our API, pages of 1000 (a cold server: sign-in included)."""
    srv = Server(sup, "ours-paths", ROOT / ".venv" / "bin" / "python", ours_config(rucio, rse))
    try:
        base = did_route(did)
        paths: list[str] = []
        params: dict[str, Any] = {"limit": 1000, "whole": "true"}
        t = time.perf_counter()
        while True:
            code, page = srv.call("GET", f"{base}/paths", params)
            assert code == 200, page
            paths += [x["path"] for x in page["items"] if x["path"]]
            if page["next"] is None:
                break
            params["cursor"] = page["next"]
        return {"seconds": time.perf_counter() - t, "paths": sorted(paths)}
    finally:
        srv.stop()


def floor(rucio: dict[str, Any], did: str, rse: str) -> dict[str, Any]:
    """Plain rucio-clients: one list_replicas of the dataset at the RSE, mapped to paths."""
    from rucio.client import Client

    acc = rucio["accounts"]["alice"]
    client = Client(
        rucio_host=rucio["url"],
        auth_host=rucio["url"],
        account="alice",
        auth_type="userpass",
        vo="def",
        creds={"username": acc["username"], "password": acc["password"]},
    )
    scope, name = did.split(":", 1)
    prefix = "/" + rucio["rses"][rse]["path"].strip("/") + "/"
    mount = rucio["rses"][rse]["path"]
    t = time.perf_counter()
    paths = []
    for row in client.list_replicas(
        [{"scope": scope, "name": name}],
        schemes=["file"],
        rse_expression=rse,
        domain="lan",
        all_states=True,
        resolve_archives=False,
    ):
        if row["states"].get(rse) == "AVAILABLE":
            path = urlparse(row["rses"][rse][0]).path
            paths.append(os.path.join(mount, path[len(prefix) :]))
    return {"seconds": time.perf_counter() - t, "paths": sorted(paths)}


def path_begins_at(rucio: dict[str, Any], rse: str) -> int:
    """rucio-jupyterlab's ``path_begins_at`` for an RSE whose PFN path starts with its
    directory: how many leading path segments to drop."""
    return len([x for x in rucio["rses"][rse]["path"].split("/") if x])


def rjl_way(rucio: dict[str, Any], did: str, rse: str) -> dict[str, Any]:
    """rucio-jupyterlab 41.0.0's replica mode, its calls reimplemented (see the docstring)."""
    acc = rucio["accounts"]["alice"]
    r = requests.get(
        f"{rucio['url']}/auth/userpass",
        timeout=60,
        headers={
            "X-Rucio-Account": "alice",
            "X-Rucio-Username": acc["username"],
            "X-Rucio-Password": acc["password"],
        },
    )
    token = r.headers["X-Rucio-Auth-Token"]
    scope, name = did.split(":", 1)
    mount = rucio["rses"][rse]["path"]
    nth = path_begins_at(rucio, rse)
    t = time.perf_counter()
    # RucioAPI.get_replicas: _make_rucio_request('GET', 'replicas', scope, name,
    # parse_json=True, parse_lines=True)
    resp = requests.request(
        "GET",
        f"{rucio['url']}/replicas/{quote(scope)}/{quote(name)}",
        headers={"X-Rucio-Auth-Token": token},
        timeout=TIMEOUT,
    )
    resp.raise_for_status()
    rows = [json.loads(line) for line in resp.text.strip().splitlines()]
    paths = []
    for row in rows:  # ReplicaModeHandler.fetch_file_replicas + translate_pfn_to_path
        pfn = None
        if rse in row["rses"] and rse in row["states"] and row["states"][rse] == "AVAILABLE":
            pfns = row["rses"][rse]
            if len(pfns) > 0:
                pfn = pfns[0]
        if pfn:
            suffix = urlparse(pfn).path.strip("/").split("/", nth)[-1]
            paths.append(os.path.join(mount, suffix))
    return {"seconds": time.perf_counter() - t, "paths": sorted(paths)}


def baseline(
    sup: Supervisor, rucio: dict[str, Any], did: str, rse: str, python: Path
) -> dict[str, Any]:
    """rucio-jupyterlab's own server extension (its PyPI package)."""
    acc = rucio["accounts"]["alice"]
    cache = Path(tempfile.mkdtemp(prefix="rjl-cache-", dir=sup.run_dir))
    cache.chmod(0o700)
    srv = Server(
        sup,
        "rucio-jupyterlab",
        python,
        {
            "RucioConfig": {
                "instances": [
                    {
                        "name": "bench",
                        "display_name": "bench",
                        "rucio_base_url": rucio["url"],
                        "rucio_auth_url": rucio["url"],
                        "mode": "replica",
                        "destination_rse": rse,
                        "rse_mount_path": rucio["rses"][rse]["path"],
                        "path_begins_at": path_begins_at(rucio, rse),
                        "wildcard_enabled": True,
                    }
                ],
                "default_instance": "bench",
                "default_auth_type": "userpass",
            }
        },
        extra_env={"RUCIO_CACHE_DIR": str(cache)},
    )
    out: dict[str, Any] = {}
    try:
        base = "rucio-jupyterlab"
        code, body = srv.call(
            "PUT", f"{base}/instances", body={"instance": "bench", "auth": "userpass"}
        )
        assert code == 200, body
        code, body = srv.call(
            "PUT",
            f"{base}/auth",
            body={
                "namespace": "bench",
                "type": "userpass",
                "params": {
                    "username": acc["username"],
                    "password": acc["password"],
                    "account": "alice",
                },
            },
        )
        assert code == 200, body
        t = time.perf_counter()
        code, body = srv.call("GET", f"{base}/files", {"namespace": "bench", "did": did})
        out["files"] = time.perf_counter() - t
        out["files_status"] = code
        out["files_rows"] = len(body) if isinstance(body, list) else None
        if not isinstance(body, list):
            out["files_answer"] = str(body)[:200]
        t = time.perf_counter()
        code, body = srv.call("GET", f"{base}/did", {"namespace": "bench", "did": did})
        out["did_first_answer"] = time.perf_counter() - t
        out["did_first_status"] = (
            body[0].get("status")
            if isinstance(body, list) and body
            else f"{code} {str(body)[:120]}"
        )
        polls = 1
        while (
            isinstance(body, list)
            and body
            and body[0].get("status") == "FETCHING"
            and time.perf_counter() - t < TIMEOUT
        ):
            time.sleep(1.0)  # its UI polls every 10 s; 1 s favours the baseline
            code, body = srv.call("GET", f"{base}/did", {"namespace": "bench", "did": did})
            polls += 1
        out["did_ready"] = time.perf_counter() - t
        out["did_rows"] = len(body) if isinstance(body, list) else None
        out["did_paths"] = sum(1 for x in body if x.get("path")) if isinstance(body, list) else None
        out["did_polls"] = polls
        return out
    finally:
        srv.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    global TIMEOUT
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--rjl-server-rounds",
        type=int,
        default=1,
        help="rounds of rucio-jupyterlab's own server (minutes each on 100k files)",
    )
    ap.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default=None,
        help="Rucio's database (default: postgresql; sqlite with --smoke)",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="a 5-file dataset, 1 round, no rucio-jupyterlab server: checks that "
        "the benchmark runs (under a minute)",
    )
    ap.add_argument(
        "--rucio",
        type=Path,
        default=None,
        help="use a running Rucio: its state file (rucio.json, e.g. the testbed's "
        f"{TESTBED_RUCIO.relative_to(ROOT)}; --smoke uses that one when it "
        "answers) instead of starting one",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        help="seconds to wait for one answer (the baseline can take minutes)",
    )
    args = ap.parse_args()
    TIMEOUT = args.timeout
    if args.smoke:
        args.rounds, args.rjl_server_rounds = 1, 0
    database: Database = args.database or ("sqlite" if args.smoke else "postgresql")
    rjl_python = ensure_rucio_jupyterlab() if args.rjl_server_rounds > 0 else None
    run = Path(tempfile.mkdtemp(prefix="bench-datalake-"))
    sup = Supervisor(run)
    state = args.rucio
    if state is None and args.smoke and TESTBED_RUCIO.exists():
        state = TESTBED_RUCIO
    try:
        rucio: dict[str, Any] | None = None
        if state is not None:
            rucio = json.loads(state.read_text())
            if not http_ok(f"{rucio['url']}/ping"):
                assert args.rucio is None, f"the Rucio of {state} does not answer"
                rucio = None
            else:
                database = rucio.get("database", {}).get("kind", "?")
        if rucio is None:
            rucio = start_rucio(sup, run, pump_interval=None, progress=print, database=database)
        did = SMOKE_DATASET if args.smoke else rucio["big_dataset"]
        info = rucio["datasets"][did]
        files = int(info.get("length") or len(info["files"]))
        rse = info["rse"]
        print(
            f"Rucio {rucio['url']} on {database}; dataset {did} ({files} files at {rse}); "
            f"{args.rounds} rounds, cold servers",
            flush=True,
        )
        lists: list[dict[str, float]] = []
        resolve: dict[str, list[float]] = {"ours": [], "floor": [], "rjl_way": []}
        for i in range(args.rounds):
            lists.append(ours_list(sup, rucio, did, files))
            print(
                f"round {i + 1} ours listing: "
                + ", ".join(f"{k} {v:.3f}" for k, v in lists[-1].items()),
                flush=True,
            )
            got: dict[str, list[str]] = {}
            order = ["ours", "floor", "rjl_way"]
            random.shuffle(order)  # no tool always runs on a warmer Rucio than another
            for who in order:
                res = (
                    ours_paths(sup, rucio, did, rse)
                    if who == "ours"
                    else floor(rucio, did, rse)
                    if who == "floor"
                    else rjl_way(rucio, did, rse)
                )
                resolve[who].append(res["seconds"])
                got[who] = res["paths"]
            assert len(got["floor"]) == files, (len(got["floor"]), files)
            assert got["ours"] == got["floor"] == got["rjl_way"], "the tools disagree on paths"
            print(
                f"round {i + 1} every local path ({len(got['ours'])}): "
                + ", ".join(f"{k} {resolve[k][-1]:.2f} s" for k in order),
                flush=True,
            )
        theirs: list[dict[str, Any]] = []
        for i in range(args.rjl_server_rounds):
            assert rjl_python is not None
            theirs.append(baseline(sup, rucio, did, rse, rjl_python))
            print(
                f"rucio-jupyterlab server round {i + 1}: "
                + ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in theirs[-1].items()
                ),
                flush=True,
            )

        first = median([r["first_page"] for r in lists])
        full = median([r["full_list"] for r in lists])
        ours_s, floor_s, rjl_s = (median(resolve[k]) for k in ("ours", "floor", "rjl_way"))
        print(f"\nmedians over {args.rounds} rounds (s), Rucio on {database}")
        print(f"  ours  first page ({min(100, files)} rows): {first:.3f}   (goal <= 0.300)")
        print(
            f"  ours  all {files:,} rows (pages of 1000): {full:.2f}; a later page, cached: "
            f"{median([r['warm_page'] for r in lists]):.3f}"
        )
        print(
            f"  every local path of {files:,} files: ours {ours_s:.2f}, rucio-clients "
            f"list_replicas (floor) {floor_s:.2f}, rucio-jupyterlab's way {rjl_s:.2f}"
        )
        print(
            f"  ratios to the floor: ours {ours_s / floor_s:.2f}x (goal <= 1.2), "
            f"rucio-jupyterlab's way {rjl_s / floor_s:.2f}x"
        )
        for k in ("ours", "floor", "rjl_way"):
            print(f"  rounds {k}: " + ", ".join(f"{v:.2f}" for v in resolve[k]))
        if theirs:
            files_s = median([float(r["files"]) for r in theirs])
            did_s = median([float(r["did_ready"]) for r in theirs])
            print(
                f"  rucio-jupyterlab server ({len(theirs)} rounds): files?did= {files_s:.2f} "
                f"({theirs[-1]['files_rows']} rows); did?did= paths ready after {did_s:.2f} "
                f"({theirs[-1]['did_paths']} paths, {theirs[-1]['did_polls']} polls)"
            )
            print(
                f"  ratios to ours: first rows {files_s / first:.0f}x (files) / "
                f"{did_s / first:.0f}x (did); whole list {files_s / full:.1f}x; "
                f"every local path {did_s / ours_s:.1f}x (did)"
            )
    finally:
        sup.stop_all()
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
