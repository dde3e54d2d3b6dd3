"""A PostgreSQL server of one testbed run, for Rucio: Debian's ``postgresql`` package, data and
unix socket under the run folder, TCP on 127.0.0.1 only, stopped by pid through the Supervisor.

The server runs as the ``postgres`` system user (initdb and postgres refuse root). Rucio logs in
over TCP as a per-run role with a random password (scram-sha-256) that may only reach its own
database; the superuser is reachable only through the run's socket, as ``postgres`` (peer).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..procs import Proc, Supervisor, TestbedError, free_port, wait_until

NAME = "rucio-postgres"
ROLE = DATABASE = "rucio"
# the pytest base folder (and so a test's run folder) is root's and mode 0700: with this
# capability alone the postgres user can reach its data dir there (no permission is widened)
AS_POSTGRES = [
    "setpriv",
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
    "--",
]
# postgres reads SIGTERM as a "smart" shutdown (wait until every client has left), and its
# backends leave its process group: the Supervisor's SIGTERM becomes SIGINT, the "fast" one
# (disconnect the clients, checkpoint, exit). Async jobs of sh ignore SIGINT; postgres installs
# its own handler, so it still gets it
FAST_STOP = 'trap \'kill -INT "$pg"\' TERM; "$@" & pg=$!; wait "$pg"; wait "$pg"'
# a throwaway database of one run: durability is not worth the fsyncs
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str
    data_dir: str
    socket_dir: str
    bin_dir: str

    @property
    def dsn(self) -> str:
        """libpq's URL (psql, psycopg)."""
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def sqlalchemy_url(self) -> str:
        """What Rucio 41 needs: the psycopg (3) driver of its ``postgresql`` extra."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg://", 1)

    @property
    def major(self) -> str:
        """The server's major version (``/usr/lib/postgresql/15/bin``: 15)."""
        return Path(self.bin_dir).parent.name

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": "postgresql", "dsn": self.dsn, "url": self.sqlalchemy_url}


def bin_dir() -> Path:
    """The newest PostgreSQL's server binaries (Debian keeps them out of PATH)."""
    found = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")
        if p.parts[-3].isdigit()
    ]
    if not found:
        raise TestbedError(
            "PostgreSQL is not installed (apt-get install postgresql; scripts/setup.sh does)"
        )
    return max(found, key=lambda b: int(b.parts[-2]))


def _run(argv: list[str], what: str, stdin: str | None = None) -> None:
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise TestbedError(f"{what} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _initdb(bins: Path, data: Path, sock: Path) -> None:
    for d in (data, sock):
        d.mkdir(parents=True, mode=0o700)
        shutil.chown(d, "postgres", "postgres")
    _run(
        [
            *AS_POSTGRES,
            str(bins / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=peer",
            "--auth-host=reject",
            "--no-sync",
            "--no-instructions",
        ],
        "initdb",
    )
    # replaces initdb's: nothing but these two ways in
    (data / "pg_hba.conf").write_text(
        f"local all postgres peer\nhost {DATABASE} {ROLE} 127.0.0.1/32 scram-sha-256\n"
    )


def _launch(sup: Supervisor, pg: Postgres) -> Proc:
    settings = {
        **SETTINGS,
        "listen_addresses": "127.0.0.1",
        "port": str(pg.port),
        "unix_socket_directories": pg.socket_dir,
    }
    postgres = [str(Path(pg.bin_dir) / "postgres"), "-D", pg.data_dir]
    for k, v in settings.items():
        postgres += ["-c", f"{k}={v}"]
    return sup.start(NAME, [*AS_POSTGRES, "sh", "-c", FAST_STOP, "postgres", *postgres])


def psql_superuser(pg: Postgres, sql: str) -> None:
    """SQL as the superuser, over the run's unix socket (peer authentication)."""
    _run(
        [
            *AS_POSTGRES,
            str(Path(pg.bin_dir) / "psql"),
            "-h",
            pg.socket_dir,
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
        ],
        "psql (superuser)",
        stdin=sql,
    )


def start_postgres(sup: Supervisor, pdir: Path, timeout: float = 30) -> Postgres:
    """initdb under ``pdir``, start the server, create Rucio's role and database."""
    bins = bin_dir()
    pg = Postgres(
        port=free_port(),
        password=secrets.token_hex(16),
        data_dir=str(pdir / "data"),
        socket_dir=str(pdir / "socket"),
        bin_dir=str(bins),
    )
    _initdb(bins, Path(pg.data_dir), Path(pg.socket_dir))
    proc = _launch(sup, pg)
    ready = [str(bins / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(pg.port)]
    wait_until(
        lambda: subprocess.run(ready, check=False).returncode == 0,
        f"PostgreSQL on 127.0.0.1:{pg.port}",
        timeout,
        proc,
        interval=0.05,
    )
    psql_superuser(
        pg,
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{pg.password}';\n"
        f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n",
    )
    return pg


def _tcp_url(port: int) -> str:
    """Rucio's database as its role, the password left to $PGPASSWORD (not in any argv)."""
    return f"postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}"


def _client(pg: Postgres, tool: str, *args: str) -> None:
    """A libpq client tool (pg_dump, pg_restore) as Rucio's role, over TCP."""
    r = subprocess.run(
        [str(Path(pg.bin_dir) / tool), "-d", _tcp_url(pg.port), *args],
        env={**os.environ, "PGPASSWORD": pg.password},
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise TestbedError(f"{tool} failed:\n{r.stderr[-3000:]}")


def dump(pg: Postgres, path: Path) -> None:
    """The whole database into ``path`` (pg_dump's custom format), without owners and grants:
    restore() runs as Rucio's role, which then owns everything."""
    tmp = path.with_suffix(".tmp")
    _client(
        pg, "pg_dump", "--format=custom", "--compress=1", "--no-owner", "--no-acl", "-f", str(tmp)
    )
    tmp.rename(path)


def restore(pg: Postgres, path: Path) -> None:
    """A dump() into this (empty) database, owned by Rucio's role."""
    _client(
        pg,
        "pg_restore",
        "--no-owner",
        "--no-acl",
        "--exit-on-error",
        "--single-transaction",
        str(path),
    )
    # pg_restore leaves the planner without statistics until autovacuum's first pass (up to a
    # minute later); a production database has them, so the first queries should too
    _client(pg, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "ANALYZE")


def query(db: dict[str, Any], sql: str) -> list[list[str]]:
    """Rows of ``sql`` run as Rucio's role through psql, over TCP as Rucio connects."""
    r = subprocess.run(
        [
            str(Path(db["bin_dir"]) / "psql"),
            _tcp_url(db["port"]),
            "-X",
            "-q",
            "-t",
            "-A",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        env={**os.environ, "PGPASSWORD": db["password"]},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if r.returncode != 0:
        raise TestbedError(f"psql: {r.stderr.strip()}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]
