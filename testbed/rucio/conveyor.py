"""The conveyor sidecar: Rucio's own daemons, one cycle at a time, with the mock transfer tool;
runs INSIDE the Rucio venv. The mock reports every transfer DONE without moving a byte, so each
cycle copies the bytes itself (this is the part that stands in for FTS).

HTTP on 127.0.0.1:
  POST /step                       run one cycle now, answer its counts (JSON)
  PUT  /interval {"seconds": 2.0}  pump automatically every 2 s; {"seconds": null}: manual only
  GET  /healthz                    {"ok": true, "interval": ..., "cycles": ...}
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import shutil
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("conveyor-sidecar")


class Pump:
    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        self.cycles = 0
        self.last: dict[str, Any] = {}
        self.lock = threading.Lock()  # one cycle at a time, automatic or /step
        self.wake = threading.Event()

    def set_interval(self, seconds: float | None) -> None:
        self.interval = seconds
        self.wake.set()

    def loop(self) -> None:
        while True:
            self.wake.wait(self.interval)  # None: sleep until /interval changes it
            self.wake.clear()
            if self.interval is None:
                continue
            try:
                if has_work():
                    self.step()
            except Exception:
                log.exception("pump cycle failed")

    def step(self) -> dict[str, Any]:
        with self.lock:
            t = time.monotonic()
            out = cycle()
            out["seconds"] = round(time.monotonic() - t, 3)
            self.cycles += 1
            self.last = out
            return out


def _judge(module: Any, **kwargs: Any) -> None:
    """A judge/abacus daemon's run_once through Rucio's own work-queue wrapper, without the
    one-second partition wait its ``once`` mode adds."""
    from rucio.daemons.common import run_daemon

    run_daemon(
        once=True,
        graceful_stop=module.graceful_stop,
        executable=module.DAEMON_NAME,
        partition_wait_time=0,
        sleep_time=1,
        run_once_fnc=functools.partial(module.run_once, **kwargs),
    )


def has_work() -> bool:
    """Whether a cycle would do anything (the automatic pump skips idle cycles: a full one costs
    ~0.2 s of CPU, every 2 s, on a shared machine)."""
    from datetime import datetime

    from rucio.db.sqla import models
    from rucio.db.sqla.constants import DatabaseOperationType, RuleState
    from rucio.db.sqla.session import db_session
    from sqlalchemy import exists, select

    checks = [
        exists().where(models.Request.id.isnot(None)),
        exists().where(models.UpdatedDID.id.isnot(None)),
        exists().where(models.UpdatedAccountCounter.id.isnot(None)),
        exists().where(models.UpdatedRSECounter.id.isnot(None)),
        exists().where(models.UpdatedCollectionReplica.id.isnot(None)),
        exists().where(models.ReplicationRule.state == RuleState.INJECT),
        exists().where(models.ReplicationRule.expires_at < datetime.utcnow()),
    ]
    with db_session(DatabaseOperationType.READ) as s:
        return any(s.execute(select(c)).scalar() for c in checks)


def request_states() -> Counter[str]:
    from rucio.db.sqla import models
    from rucio.db.sqla.constants import DatabaseOperationType
    from rucio.db.sqla.session import db_session
    from sqlalchemy import func, select

    with db_session(DatabaseOperationType.READ) as s:
        rows = s.execute(
            select(models.Request.state, func.count()).group_by(models.Request.state)
        ).all()
    return Counter({str(state.name): int(n) for state, n in rows})


def generated(scope: str, name: str, size: int, adler32: str | None) -> bytes | None:
    """The bytes of a seeded file that has none on disk (most of the 100k-file dataset): the
    seed's deterministic content, if it matches the checksum Rucio has for the file."""
    from seed import content  # testbed/rucio/seed.py, next to this script

    data = content(scope, name, size)
    return data if adler32 == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}" else None


def folder_roots(s: Any) -> list[tuple[str, str, str]]:
    """(scheme, PFN path prefix, folder) of every protocol of every RSE: where the bytes of a
    PFN are on this machine. A davs-only RSE's PFNs name a dCache namespace, not its folder
    (the RSE attribute ``testbed_dir`` that the seed sets)."""
    from rucio.db.sqla import models
    from sqlalchemy import select

    dirs = dict(
        s.execute(
            select(models.RSEAttrAssociation.rse_id, models.RSEAttrAssociation.value).where(
                models.RSEAttrAssociation.key == "testbed_dir"
            )
        ).all()
    )
    rows = s.execute(
        select(models.RSEProtocol.rse_id, models.RSEProtocol.scheme, models.RSEProtocol.prefix)
    ).all()
    return [
        (scheme, "/" + (prefix or "").strip("/"), str(dirs[rse_id]))
        for rse_id, scheme, prefix in rows
        if rse_id in dirs
    ]


def local_file(url: str, roots: list[tuple[str, str, str]]) -> Path:
    """The file behind a PFN (a file:// PFN is its path already)."""
    u = urlparse(url)
    for scheme, prefix, folder in roots:
        if u.scheme == scheme and (u.path == prefix or u.path.startswith(prefix + "/")):
            return Path(folder) / u.path[len(prefix) :].lstrip("/")
    return Path(u.path)


def copy_bytes() -> tuple[int, int]:
    """For each SUBMITTED request, copy an existing source file to the destination path.
    Returns (copied, without a readable source)."""
    from rucio.db.sqla import models
    from rucio.db.sqla.constants import DatabaseOperationType, RequestState
    from rucio.db.sqla.session import db_session
    from sqlalchemy import select

    copied = missing = 0
    with db_session(DatabaseOperationType.READ) as s:
        roots = folder_roots(s)
        reqs = s.execute(
            select(
                models.Request.id,
                models.Request.dest_url,
                models.Request.scope,
                models.Request.name,
                models.Request.bytes,
                models.Request.adler32,
            ).where(models.Request.state == RequestState.SUBMITTED)
        ).all()
        for req_id, dest_url, scope, name, size, adler32 in reqs:
            urls = (
                s.execute(select(models.Source.url).where(models.Source.request_id == req_id))
                .scalars()
                .all()
            )
            # the submitter may rank a source that has no bytes: take one that exists
            src = next((local_file(u, roots) for u in urls if local_file(u, roots).is_file()), None)
            data = None if src else generated(scope.external, name, int(size or 0), adler32)
            if not dest_url or (src is None and data is None):
                missing += 1
                log.warning("request %s: no readable source among %s", req_id, urls)
                continue
            dest = local_file(dest_url, roots)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src is not None:
                shutil.copyfile(src, dest)
            else:
                dest.write_bytes(data or b"")
            copied += 1
    return copied, missing


def cycle() -> dict[str, Any]:
    from rucio.daemons.abacus import account as abacus_account
    from rucio.daemons.abacus import collection_replica as abacus_collection
    from rucio.daemons.abacus import rse as abacus_rse
    from rucio.daemons.conveyor.finisher import finisher
    from rucio.daemons.conveyor.poller import poller
    from rucio.daemons.conveyor.submitter import submitter
    from rucio.daemons.judge import cleaner, evaluator, injector

    before = request_states()
    # files attached to a DID after a rule exists, asynchronous rules, expired rules
    _judge(injector, paused_rules={})
    _judge(evaluator, paused_dids={}, did_limit=1000)
    _judge(cleaner, paused_rules={})
    submitter(once=True, partition_wait_time=0, transfertools=["mock"], transfertype="single")
    copied, missing = copy_bytes()
    poller(once=True, older_than=0, partition_wait_time=0, transfertool="mock")
    finisher(once=True, partition_wait_time=0)
    # usage counters: quotas count what is already stored; per-RSE dataset availability
    _judge(abacus_account)
    _judge(abacus_rse)
    _judge(abacus_collection, limit=1000)
    after = request_states()
    return {
        "copied": copied,
        "no_source": missing,
        "requests_before": dict(before),
        "requests_after": dict(after),
    }


def serve(pump: Pump, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def _json(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._json(
                    200,
                    {
                        "ok": True,
                        "interval": pump.interval,
                        "cycles": pump.cycles,
                        "last": pump.last,
                    },
                )
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path != "/step":
                return self._json(404, {"error": "not found"})
            try:
                self._json(200, pump.step())
            except Exception as e:
                log.exception("step failed")
                self._json(500, {"error": f"{type(e).__name__}: {e}"})

        def do_PUT(self) -> None:
            if self.path != "/interval":
                return self._json(404, {"error": "not found"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                seconds = body["seconds"]
                if seconds is not None and float(seconds) <= 0:
                    raise ValueError("seconds must be > 0 or null")
            except (ValueError, KeyError, TypeError) as e:
                return self._json(400, {"error": str(e)})
            pump.set_interval(None if seconds is None else float(seconds))
            self._json(200, {"interval": pump.interval})

        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s " + fmt, self.address_string(), *args)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=None)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("rucio", "sqlalchemy", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # FTS copies davs to davs; the mock tool stands in for it, so it takes davs transfers too
    # (it moves no bytes for any scheme: copy_bytes does)
    from rucio.transfertool.mock import MockTransfertool

    MockTransfertool.supported_schemes = {"mock", "file", "davs"}
    pump = Pump(a.interval)
    pump.step()  # import the daemons and warm up before reporting healthy
    threading.Thread(target=pump.loop, daemon=True).start()
    serve(pump, a.port)


if __name__ == "__main__":
    main()
