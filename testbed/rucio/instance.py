"""A real Rucio server for the testbed: the pip-installed server (Flask app) on SQLite (or on
PostgreSQL: ``start_rucio(database="postgresql")``, INTERTWIN_RUCIO_DB=postgresql), seeded
with the interTwin RSEs, two user accounts and data, plus a conveyor sidecar that finishes
replication rules with Rucio's mock transfer tool while WE copy the bytes (standing in for FTS).

The server, the daemons and the seeding scripts run in a separate venv (build/build-rucio.sh);
this module only writes configs and starts processes through the testbed's Supervisor.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from intertwin_hub.sites import load_catalogue

from ..binaries import cache_dir
from ..procs import Proc, Supervisor, TestbedError, free_port, http_ok, log_tail, wait_until
from . import postgres

RUCIO_VERSION = "41.5.1"
HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE.parent / "build" / "build-rucio.sh"
# data origins (not a site's scratch): DESY's dCache and EODC's object store
ORIGIN_RSES = {"DESY-DCACHE": "DESY", "EODC": "EODC"}
# the scratch RSE where each user has a small quota, so "quota exceeded" can be tested
QUOTA = {"rse": "KBFI-TEAPOT", "bytes": 10_000}
# scratch RSEs exposed over WebDAV only, as many dCache scratch areas are: their PFNs are
# davs://<door>:2880/<dCache namespace>/..., a namespace that is not the folder behind them, so
# a local path needs the catalogue's mapping rule (PSNC's `path_begins_at: 4`)
DAVS_ONLY = {
    "PSNC-DCACHE": {
        "hostname": "dcache.psnc.testbed.invalid",
        "port": 2880,
        "prefix": "/pnfs/psnc.pl/data/intertwin/",
    }
}
SERVER, CONVEYOR = "rucio-server", "rucio-conveyor"
# a cached seed of other seeding code is removed once unused for this long
STALE_SEED_SECONDS = 2 * 86400
# who may extend and delete a rule: "intertwin" (testbed/rucio/policy: owners may, as on the
# interTwin DataLake) or Rucio's stock "generic" policy (only root and admin accounts may)
Policy = Literal["intertwin", "generic"]
POLICIES: tuple[Policy, ...] = ("intertwin", "generic")
Progress = Callable[[str], None]
Database = Literal["sqlite", "postgresql"]
DATABASES: tuple[Database, ...] = ("sqlite", "postgresql")
DATABASE_ENV = "INTERTWIN_RUCIO_DB"


def database_from_env() -> Database:
    """The database the testbed CLI (and so the demo) gives Rucio: $INTERTWIN_RUCIO_DB."""
    value = os.environ.get(DATABASE_ENV, "sqlite").strip().lower() or "sqlite"
    if value not in DATABASES:
        raise TestbedError(f"{DATABASE_ENV}={value!r}: expected one of {', '.join(DATABASES)}")
    return cast(Database, value)


def rucio_home() -> Path:
    return cache_dir() / "rucio" / RUCIO_VERSION


def venv_python() -> Path:
    return rucio_home() / "venv" / "bin" / "python"


def ensure_venv(progress: Progress) -> None:
    # .postgresql: the driver, added by the build script to venvs built before it
    if all((rucio_home() / m).exists() for m in (".complete", ".postgresql")):
        return
    progress(f"installing Rucio {RUCIO_VERSION} into {rucio_home()} (1-2 min, once)")
    r = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise TestbedError(f"{BUILD_SCRIPT} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def rse_sites() -> dict[str, str]:
    """RSE name -> value of its ``site`` attribute: the origins plus every site's scratch RSE
    from the catalogue (the site name, upper case, as in Rucio's ``site=VEGA`` expressions)."""
    out = dict(ORIGIN_RSES)
    for site in load_catalogue():
        if site.scratch.rse:
            out[site.scratch.rse] = site.name.upper()
    return out


def sqlite_url(rdir: Path) -> str:
    return f"sqlite:///{rdir}/rucio.db"


def rucio_cfg(rdir: Path, port: int, root: dict[str, str], db_url: str, oidc: bool = False) -> str:
    venv = rucio_home() / "venv"
    url = f"http://127.0.0.1:{port}"
    head = "# written by testbed/rucio for one testbed run: server, daemons and clients share it\n"
    return (
        head
        + (oidc_cfg(rdir) if oidc else "")
        + f"""[common]
logdir = {rdir}/logs
loglevel = WARNING
mailtemplatedir = {venv}/rucio/etc/mail_templates

[client]
rucio_host = {url}
auth_host = {url}
auth_type = userpass
username = {root["username"]}
password = {root["password"]}
account = {root["account"]}
request_retries = 1

[database]
default = {db_url}

[bootstrap]
userpass_identity = {root["username"]}
userpass_pwd = {root["password"]}
userpass_email = root@testbed.invalid

[alembic]
cfg = {rdir}/etc/alembic.ini

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash

[conveyor]
transfertool = mock
# davs: the sidecar lets the mock tool take WebDAV transfers too (FTS does), for davs-only RSEs
scheme = file,mock,davs

[trace]
tracedir = {rdir}/logs/trace
"""
    )


# Rucio's OIDC settings (rucio/core/oidc.py reads them when it is imported): the identity
# providers in idpsecrets.json, tokens accepted only for the audience `rucio` with the scopes
# `openid profile` (Rucio's defaults, written out)
IDP_ID = "egi"


def oidc_cfg(rdir: Path) -> str:
    return f"""[oidc]
idpsecrets = {rdir}/etc/idpsecrets.json
admin_issuer = {IDP_ID}
expected_audience = rucio
expected_scope = openid profile

"""


def idpsecrets(oidc: dict[str, str], rucio_url: str) -> dict[str, Any]:
    """Rucio's idpsecrets.json for one issuer. ``issuer`` must be exactly the tokens' ``iss``;
    an entry without ``SCIM`` makes rucio/core/oidc.py load no client at all, and then every
    token is refused."""
    client = {"client_id": oidc["client_id"], "client_secret": oidc["client_secret"]}
    return {
        IDP_ID: {
            "issuer": oidc["issuer"],
            **client,
            "redirect_uris": [f"{rucio_url}/auth/oidc_code", f"{rucio_url}/auth/oidc_token"],
            "SCIM": client,
        }
    }


def alembic_ini(db_url: str) -> str:
    site = next((rucio_home() / "venv" / "lib").glob("python3*/site-packages"))
    # the logging sections are required: without them bootstrap dies after creating tables
    template = (rucio_home() / "venv" / "rucio" / "etc" / "alembic.ini.template").read_text()
    logging_part = template[template.index("[loggers]") :]
    return (
        f"[alembic]\nsqlalchemy.url = {db_url}\n"
        f"script_location = {site}/rucio/db/sqla/migrate_repo/\n\n{logging_part}"
    )


def venv_env(rdir: Path, policy: Policy = "intertwin") -> dict[str, str]:
    env = {"RUCIO_CONFIG": str(rdir / "etc" / "rucio.cfg"), "RUCIO_HOME": str(rdir)}
    if policy == "intertwin":
        # server and daemons only: clients reading the same rucio.cfg must not need it
        env.update(RUCIO_POLICY_PACKAGE="intertwin_rucio_policy", PYTHONPATH=str(HERE / "policy"))
    return env


def run_seed(cmd: str, spec: dict[str, Any], rdir: Path) -> dict[str, Any]:
    spec_path = rdir / f"seed-{cmd}.json"
    spec_path.write_text(json.dumps(spec))
    spec_path.chmod(0o600)
    env = dict(os.environ, **venv_env(rdir))
    r = subprocess.run(
        [str(venv_python()), str(HERE / "seed.py"), cmd, str(spec_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=rdir,
    )
    spec_path.unlink(missing_ok=True)
    (rdir / "logs" / f"seed-{cmd}.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise TestbedError(f"Rucio seed {cmd} failed:\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def seed_key(rses: dict[str, str]) -> str:
    """The cache key of a seeded DB: the seeding code, the Rucio version and the RSE list."""
    h = hashlib.sha256()
    h.update((HERE / "seed.py").read_bytes())
    h.update(json.dumps([RUCIO_VERSION, sorted(rses.items()), QUOTA, DAVS_ONLY]).encode())
    return h.hexdigest()[:16]


def cached_seed(base: Path, build: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The seed cached in ``base`` (its seed.json), or ``build()`` it now (then True)."""
    done = base / "seed.json"
    if not done.exists():
        # test sessions and testbeds start concurrently: one seeds, the others wait and reuse
        with open(rucio_home() / "seed.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                out = build()
                done.write_text(json.dumps(out))  # written last: a half-seeded base is rebuilt
                return out, True
    os.utime(base)  # in use: not stale for other seeding code's clean-up
    return dict(json.loads(done.read_text())), False


def seeded_base(rses: dict[str, str], progress: Progress) -> tuple[Path, dict[str, Any]]:
    """A seeded SQLite DB + origin files for this seed code, built once and cached (the
    100k-file dataset makes a fresh seed take a minute)."""
    base = rucio_home() / f"seed-{seed_key(rses)}"

    def build() -> dict[str, Any]:
        progress("seeding the Rucio database (RSEs, accounts, 100k-file dataset; cached after)")
        return _seed(base, rses, sqlite_url(base))

    return base, cached_seed(base, build)[0]


def _seed(base: Path, rses: dict[str, str], db_url: str) -> dict[str, Any]:
    """Seed the database at ``db_url``, origin files and configs under ``base``."""
    key = seed_key(rses)
    for old in base.parent.glob("seed-*"):
        # a half-built seed of this code; seeds of other seeding code once unused for a while
        # (worktrees and branches with other seed code share this cache and run concurrently)
        if old == base or (
            not old.name.startswith(f"seed-{key}")
            and time.time() - old.stat().st_mtime > STALE_SEED_SECONDS
        ):
            shutil.rmtree(old, ignore_errors=True)
    for d in ("etc", "logs/trace", "rses"):
        (base / d).mkdir(parents=True)
    # a throwaway root password: finalize() replaces every identity per run
    root = {"account": "root", "username": "root", "password": secrets.token_urlsafe(16)}
    for name, text in (
        ("rucio.cfg", rucio_cfg(base, 0, root, db_url)),
        ("alembic.ini", alembic_ini(db_url)),
    ):
        (base / "etc" / name).write_text(text)
        (base / "etc" / name).chmod(0o600)
    spec = {
        "base": str(base),
        "config": str(base / "etc" / "rucio.cfg"),
        "quota": QUOTA,
        "rses": {
            name: {
                "site": site,
                "kind": "origin" if name in ORIGIN_RSES else "scratch",
                "davs": DAVS_ONLY.get(name),
            }
            for name, site in rses.items()
        },
    }
    t = time.monotonic()
    out = run_seed("build", spec, base)
    out["timings"]["total"] = round(time.monotonic() - t, 2)
    return out


def seed_postgres(
    pg: postgres.Postgres, rses: dict[str, str], rdir: Path, progress: Progress
) -> dict[str, Any]:
    """Seed the run's (empty) PostgreSQL database: restore the dump cached for this seed code
    and PostgreSQL version, or, the first time, seed it with seed.py (as on SQLite) and dump it
    for the runs after (pg_restore takes seconds, seeding 100k files a minute)."""
    base = rucio_home() / f"seed-{seed_key(rses)}-pg{pg.major}"
    dump = base / "rucio.pgdump"

    def build() -> dict[str, Any]:
        progress(
            "seeding Rucio's PostgreSQL database (RSEs, accounts, 100k-file dataset; "
            "a dump of it is cached)"
        )
        out = _seed(base, rses, pg.sqlalchemy_url)
        t = time.monotonic()
        postgres.dump(pg, dump)
        out["timings"]["dump"] = round(time.monotonic() - t, 2)
        return out

    seeded, fresh = cached_seed(base, build)
    if not fresh:  # seeded by an earlier run: the database comes from its dump
        t = time.monotonic()
        postgres.restore(pg, dump)
        seeded["timings"]["restore"] = round(time.monotonic() - t, 2)
    link_files(base, rdir)
    return seeded


def copy_base(base: Path, rdir: Path) -> None:
    shutil.copy2(base / "rucio.db", rdir / "rucio.db")
    link_files(base, rdir)


def link_files(base: Path, rdir: Path) -> None:
    # hard links: the origin files are never written in place (replicas are new files), and
    # linking 100k files is much faster than copying them
    r = subprocess.run(
        ["cp", "-al", str(base / "rses"), str(rdir / "rses")],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        shutil.copytree(base / "rses", rdir / "rses", dirs_exist_ok=True)


def start_rucio(
    sup: Supervisor,
    run_dir: Path,
    *,
    pump_interval: float | None = 2.0,
    progress: Progress | None = None,
    database: Database = "sqlite",
    policy: Policy = "intertwin",
    oidc: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start Rucio for a run under ``run_dir/rucio``; returns what clients need (also written
    to ``run_dir/rucio/rucio.json``, mode 0600). ``database="postgresql"``: a PostgreSQL
    server of this run (tracked by ``sup``) instead of an SQLite file. ``policy="generic"``:
    Rucio's stock permission policy, under which only root may extend or delete rules.
    ``oidc``: also accept the access tokens of this identity provider (``issuer``, and the
    ``client_id``/``client_secret`` of Rucio's client there, the audience tokens must name);
    a user's token maps to their account through an OIDC identity
    (:func:`testbed.rucio.client.add_oidc_identity`)."""
    if database not in DATABASES:
        raise TestbedError(f"unknown Rucio database {database!r}")
    if policy not in POLICIES:
        raise TestbedError(
            f"unknown Rucio policy {policy!r}: expected one of {', '.join(POLICIES)}"
        )
    say = progress or (lambda m: None)
    t0 = time.monotonic()
    ensure_venv(say)
    rses = rse_sites()
    rdir = run_dir / "rucio"
    if rdir.exists():
        shutil.rmtree(rdir)
    for d in ("etc", "logs/trace"):
        (rdir / d).mkdir(parents=True)
    timings: dict[str, float] = {}
    port, conveyor_port = free_port(), free_port()
    root = {"account": "root", "username": "root", "password": secrets.token_urlsafe(16)}
    accounts = {
        u: {"account": u, "username": u, "password": secrets.token_urlsafe(16)}
        for u in ("alice", "bob")
    }
    cfg = rdir / "etc" / "rucio.cfg"

    def write_config(db_url: str) -> None:
        cfg.write_text(rucio_cfg(rdir, port, root, db_url, oidc=oidc is not None))
        cfg.chmod(0o600)
        if oidc is not None:
            secrets_file = rdir / "etc" / "idpsecrets.json"
            secrets_file.write_text(json.dumps(idpsecrets(oidc, f"http://127.0.0.1:{port}")))
            secrets_file.chmod(0o600)
        (rdir / "etc" / "alembic.ini").write_text(alembic_ini(db_url))
        (rdir / "etc" / "alembic.ini").chmod(0o600)

    t = time.monotonic()
    if database == "postgresql":
        say("starting PostgreSQL for Rucio")
        pg = postgres.start_postgres(sup, rdir / "postgres")
        timings["postgres_start"] = time.monotonic() - t
        db: dict[str, Any] = pg.to_json()
        write_config(pg.sqlalchemy_url)
        t = time.monotonic()
        seeded = seed_postgres(pg, rses, rdir, say)
        timings["seed"] = time.monotonic() - t
    else:
        base, seeded = seeded_base(rses, say)
        t = time.monotonic()
        copy_base(base, rdir)
        timings["copy_seed"] = time.monotonic() - t
        db = {"kind": "sqlite", "url": sqlite_url(rdir), "path": str(rdir / "rucio.db")}
        write_config(db["url"])

    rse_info = {
        name: {
            "path": f"{rdir / 'rses' / name}/",
            "site": site,
            "kind": "origin" if name in ORIGIN_RSES else "scratch",
            "davs": DAVS_ONLY.get(name),
            "schemes": ["davs"]
            if name in DAVS_ONLY
            else (["file", "davs"] if name in ORIGIN_RSES else ["file"]),
        }
        for name, site in rses.items()
    }
    t = time.monotonic()
    run_seed(
        "finalize",
        {
            "config": str(cfg),
            "sqlite_db": db.get("path"),
            "rses": rse_info,
            "accounts": {"root": root, **accounts},
        },
        rdir,
    )
    timings["finalize"] = time.monotonic() - t

    state: dict[str, Any] = {
        "version": RUCIO_VERSION,
        "url": f"http://127.0.0.1:{port}",
        "conveyor_url": f"http://127.0.0.1:{conveyor_port}",
        "port": port,
        "conveyor_port": conveyor_port,
        "root": root,
        "accounts": accounts,
        "rses": rse_info,
        "origin_rses": sorted(ORIGIN_RSES),
        "quota": dict(QUOTA),
        "scopes": ["intertwin", "user.alice", "user.bob"],
        "datasets": seeded["datasets"],
        "big_dataset": "intertwin:big.100k",
        "config": str(cfg),
        "dir": str(rdir),
        "run_dir": str(run_dir),
        "python": str(venv_python()),
        "pump_interval": pump_interval,
        "database": db,
        "policy": policy,
        "oidc_issuer": oidc["issuer"] if oidc else None,
        "seed_timings": seeded["timings"],
    }
    # both import Rucio for seconds: start them side by side
    t = time.monotonic()
    server, conveyor = _launch_server(sup, state), _launch_conveyor(sup, state)
    _wait_server(state, server)
    timings["server_start"] = time.monotonic() - t
    _wait_conveyor(state, conveyor)
    timings["conveyor_start"] = time.monotonic() - t
    timings["total"] = time.monotonic() - t0
    state["timings"] = {k: round(v, 2) for k, v in timings.items()}
    path = rdir / "rucio.json"
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)
    say(f"Rucio {RUCIO_VERSION} ready at {state['url']} ({timings['total']:.1f} s)")
    return state


def _launch_server(sup: Supervisor, state: dict[str, Any]) -> Proc:
    rdir = Path(state["dir"])
    return sup.start(
        SERVER,
        [state["python"], str(HERE / "serve.py"), str(state["port"])],
        env=venv_env(rdir, state.get("policy", "intertwin")),
        cwd=rdir,
    )


def _wait_server(state: dict[str, Any], proc: Proc, timeout: float = 60) -> None:
    wait_until(
        lambda: http_ok(f"{state['url']}/ping"), f"Rucio server at {state['url']}", timeout, proc
    )


def _launch_conveyor(sup: Supervisor, state: dict[str, Any]) -> Proc:
    rdir = Path(state["dir"])
    argv = [state["python"], str(HERE / "conveyor.py"), "--port", str(state["conveyor_port"])]
    if state["pump_interval"] is not None:
        argv += ["--interval", str(state["pump_interval"])]
    return sup.start(CONVEYOR, argv, env=venv_env(rdir, state.get("policy", "intertwin")), cwd=rdir)


def _wait_conveyor(state: dict[str, Any], proc: Proc, timeout: float = 60) -> None:
    wait_until(
        lambda: http_ok(f"{state['conveyor_url']}/healthz"), "Rucio conveyor sidecar", timeout, proc
    )


def stop_rucio_server(state: dict[str, Any]) -> None:
    """Stop the REST server alone (DB, files and conveyor stay): "Rucio is down" for tests."""
    Supervisor(Path(state["run_dir"])).stop(SERVER)


def start_rucio_server(state: dict[str, Any]) -> None:
    """Start the server again after stop_rucio_server(): same port, same DB, same accounts."""
    _wait_server(state, _launch_server(Supervisor(Path(state["run_dir"])), state))


def rucio_server_running(state: dict[str, Any]) -> bool:
    return http_ok(f"{state['url']}/ping")


def stop_rucio(state: dict[str, Any]) -> None:
    """Stop the conveyor, the server and its PostgreSQL if any (by pid, through the run's
    Supervisor), clients of the database first."""
    sup = Supervisor(Path(state["run_dir"]))
    for name in (CONVEYOR, SERVER, postgres.NAME):
        sup.stop(name)


def conveyor_step(state: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """One pump cycle (judge, submitter, byte copy, poller, finisher); returns its counts."""
    req = urllib.request.Request(f"{state['conveyor_url']}/step", method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return dict(json.loads(r.read()))
    except OSError as e:
        log = Path(state["dir"]).parent / "logs" / f"{CONVEYOR}.log"
        raise TestbedError(f"conveyor step failed: {e}\n{log_tail(log)}") from e


def set_pump_interval(state: dict[str, Any], seconds: float | None) -> None:
    body = json.dumps({"seconds": seconds}).encode()
    req = urllib.request.Request(
        f"{state['conveyor_url']}/interval",
        method="PUT",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
