"""DataLake API: listing the 100,000-file dataset, ours against rucio-jupyterlab's server
extension, on the same real Rucio (the testbed's).

    .venv/bin/python bench/datalake_api.py [--rounds 3]

Starts the testbed's Rucio (testbed/rucio), then two Jupyter servers side by side on it, both
signed in as alice with userpass:

- ours: ``intertwin_lab`` from .venv (``GET intertwin/datalake/dids/{scope}/{name}/content``,
  pages of 100 for the first page, pages of 1000 to list everything; ``.../paths`` first page);
- baseline: ``rucio-jupyterlab==41.0.0`` from PyPI, installed once into its own venv under
  ``~/.cache/intertwin-hub/rucio-jupyterlab/41.0.0`` (never into the project's deps):
  ``GET rucio-jupyterlab/files?did=`` (its collection listing: the whole list in one answer,
  built from ``GET /replicas/{scope}/{name}``), and ``GET rucio-jupyterlab/did?did=`` (its
  per-file status and path, which answers FETCHING first and is then polled, like its UI does).

Each round uses fresh servers (cold caches). Prints medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
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
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.procs import Supervisor, free_port, http_ok, wait_until  # noqa: E402
from testbed.rucio import start_rucio  # noqa: E402

RJL_VERSION = "41.0.0"
RJL_HOME = Path.home() / ".cache" / "intertwin-hub" / "rucio-jupyterlab" / RJL_VERSION
SITE_RSE = "VEGA-DCACHE"
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
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"rucio-jupyterlab=={RJL_VERSION}"],
                   check=True)
    (RJL_HOME / ".complete").touch()
    return py


class Server:
    """A Jupyter server process (started through the testbed's Supervisor, stopped by pid)."""

    def __init__(self, sup: Supervisor, name: str, python: Path, config: dict[str, Any],
                 extra_env: dict[str, str] | None = None) -> None:
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
        argv = [str(python), "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
                f"--port={self.port}", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={home}"]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        env = {"JUPYTER_CONFIG_DIR": str(cfg_dir), "JUPYTER_DATA_DIR": str(home / "data"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "HOME": str(home),
               **(extra_env or {})}
        proc = sup.start(name, argv, env=env, cwd=home)
        wait_until(lambda: http_ok(f"{self.url}api/status?token={self.token}"),
                   f"{name} Jupyter server", 60, proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def call(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None) -> tuple[int, Any]:
        url = self.url + path + ("?" + urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, method=method, data=data, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
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


def ours(sup: Supervisor, rucio: dict[str, Any], big: str) -> dict[str, float]:
    acc = rucio["accounts"]["alice"]
    srv = Server(sup, "ours", ROOT / ".venv" / "bin" / "python", {
        "ServerApp": {"jpserver_extensions": {"intertwin_lab": True}},
        "DataLake": {"rucio_base_url": rucio["url"], "auth_type": "userpass",
                     "account": "alice", "username": acc["username"],
                     "password": acc["password"], "destination_rse": SITE_RSE,
                     "rse_mount_path": rucio["rses"][SITE_RSE]["path"], "site_name": "VEGA"}})
    try:
        scope, name = big.split(":")
        base = f"intertwin/datalake/dids/{quote(scope)}/{quote(name)}"
        t = time.perf_counter()
        code, page = srv.call("GET", f"{base}/content", {"limit": 100})
        first = time.perf_counter() - t
        assert code == 200 and len(page["items"]) == 100, page
        rows = len(page["items"])
        offset = page["next_offset"]
        while offset is not None:
            code, page = srv.call("GET", f"{base}/content", {"offset": offset, "limit": 1000})
            assert code == 200, page
            rows += len(page["items"])
            offset = page["next_offset"]
        full = time.perf_counter() - t
        assert rows == 100_000 and page["complete"], (rows, page["total"])
        t = time.perf_counter()
        code, page = srv.call("GET", f"{base}/content", {"offset": 99_000, "limit": 1000})
        warm = time.perf_counter() - t
        t = time.perf_counter()
        code, paths = srv.call("GET", f"{base}/paths", {"offset": 50_000, "limit": 100})
        paths_page = time.perf_counter() - t
        assert code == 200 and len(paths["items"]) == 100, paths
        return {"first_page": first, "full_list": full, "rows": rows,
                "warm_page": warm, "paths_page": paths_page}
    finally:
        srv.stop()


def baseline(sup: Supervisor, rucio: dict[str, Any], big: str,
             python: Path) -> dict[str, Any]:
    acc = rucio["accounts"]["alice"]
    cache = Path(tempfile.mkdtemp(prefix="rjl-cache-", dir=sup.run_dir))
    cache.chmod(0o700)
    srv = Server(sup, "rucio-jupyterlab", python, {
        "RucioConfig": {
            "instances": [{"name": "bench", "display_name": "bench",
                           "rucio_base_url": rucio["url"], "rucio_auth_url": rucio["url"],
                           "mode": "replica", "destination_rse": SITE_RSE,
                           "rse_mount_path": rucio["rses"][SITE_RSE]["path"],
                           "path_begins_at": 0, "wildcard_enabled": True}],
            "default_instance": "bench", "default_auth_type": "userpass"}},
        extra_env={"RUCIO_CACHE_DIR": str(cache)})
    out: dict[str, Any] = {}
    try:
        base = "rucio-jupyterlab"
        code, body = srv.call("PUT", f"{base}/instances",
                              body={"instance": "bench", "auth": "userpass"})
        assert code == 200, body
        code, body = srv.call("PUT", f"{base}/auth", body={
            "namespace": "bench", "type": "userpass",
            "params": {"username": acc["username"], "password": acc["password"],
                       "account": "alice"}})
        assert code == 200, body
        t = time.perf_counter()
        code, body = srv.call("GET", f"{base}/files", {"namespace": "bench", "did": big})
        out["files"] = time.perf_counter() - t
        out["files_status"] = code
        out["files_rows"] = len(body) if isinstance(body, list) else None
        if not isinstance(body, list):
            out["files_answer"] = str(body)[:200]
        t = time.perf_counter()
        code, body = srv.call("GET", f"{base}/did", {"namespace": "bench", "did": big})
        out["did_first_answer"] = time.perf_counter() - t
        out["did_first_status"] = (body[0].get("status") if isinstance(body, list) and body
                                   else f"{code} {str(body)[:120]}")
        polls = 1
        while (isinstance(body, list) and body and body[0].get("status") == "FETCHING"
               and time.perf_counter() - t < TIMEOUT):
            time.sleep(1.0)  # its UI polls every 10 s; 1 s favours the baseline
            code, body = srv.call("GET", f"{base}/did", {"namespace": "bench", "did": big})
            polls += 1
        out["did_ready"] = time.perf_counter() - t
        out["did_rows"] = len(body) if isinstance(body, list) else None
        out["did_polls"] = polls
        return out
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help="seconds to wait for one answer (the baseline can take minutes)")
    args = ap.parse_args()
    global TIMEOUT
    TIMEOUT = args.timeout
    rjl_python = ensure_rucio_jupyterlab()
    run = Path(tempfile.mkdtemp(prefix="bench-datalake-"))
    sup = Supervisor(run)
    try:
        rucio = start_rucio(sup, run, pump_interval=None, progress=print)
        big = rucio["big_dataset"]
        print(f"Rucio {rucio['url']}; dataset {big}; {args.rounds} rounds, cold servers",
              flush=True)
        mine: list[dict[str, float]] = []
        theirs: list[dict[str, Any]] = []
        for i in range(args.rounds):
            mine.append(ours(sup, rucio, big))
            print(f"round {i + 1} ours:     " + ", ".join(
                f"{k} {v:.3f}" for k, v in mine[-1].items()), flush=True)
            theirs.append(baseline(sup, rucio, big, rjl_python))
            print(f"round {i + 1} baseline: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in theirs[-1].items()), flush=True)

        def med(rows: list[dict[str, Any]], key: str) -> float:
            return statistics.median(float(r[key]) for r in rows)

        first, full = med(mine, "first_page"), med(mine, "full_list")
        files, did_ready = med(theirs, "files"), med(theirs, "did_ready")
        print("\nmedians (s)")
        print(f"  ours  first page (100 rows) of 100k: {first:.3f}   (goal <= 0.300)")
        print(f"  ours  all 100,000 rows (pages of 1000): {full:.2f}")
        print(f"  ours  a later page, cached: {med(mine, 'warm_page'):.3f}; "
              f"a page of local paths: {med(mine, 'paths_page'):.3f}")
        print(f"  rucio-jupyterlab files?did= (whole list, one answer): {files:.2f} "
              f"({theirs[-1]['files_rows']} rows, HTTP {theirs[-1]['files_status']})")
        print(f"  rucio-jupyterlab did?did= first answer: {med(theirs, 'did_first_answer'):.3f}"
              f" ({theirs[-1]['did_first_status']}), ready after {did_ready:.2f} "
              f"({theirs[-1]['did_rows']} rows, {theirs[-1]['did_polls']} polls)")
        print("ratios (baseline / ours)")
        print(f"  time to first rows: files {files / first:.1f}x, did {did_ready / first:.1f}x")
        print(f"  time to the whole list: files {files / full:.2f}x, did {did_ready / full:.2f}x")
    finally:
        sup.stop_all()
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
