"""Start, track and stop the testbed's processes: one log file and one pid file each."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class TestbedError(RuntimeError):
    """A testbed component failed to start; the message names it and points at its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Proc:
    name: str
    pid: int
    log: Path


class Supervisor:
    """Processes of one testbed run, recorded under ``<run>/pids`` so any later command
    (``testbed down``, a test finaliser) can stop them by pid."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        log = self.log_dir / f"{name}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log, "ab") as out:
            # own session: stopping the group also stops whatever the component forked
            p = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                # the run folder by default, so every testbed process can be found by its cwd
                cwd=cwd or self.run_dir,
                start_new_session=True,
            )
        (self.pid_dir / f"{name}.pid").write_text(
            json.dumps({"pid": p.pid, "argv": list(argv), "started": time.time()})
        )
        return Proc(name, p.pid, log)

    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted(self.pid_dir.glob("*.pid")):
            try:
                out[f.stem] = int(json.loads(f.read_text())["pid"])
            except (OSError, ValueError, KeyError):
                continue
        return out

    def stop(self, name: str, grace: float = 10.0) -> None:
        pid = self.pids().get(name)
        if pid is not None:
            stop_pid(pid, grace)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)

    def stop_all(self, order: Sequence[str] = (), grace: float = 10.0) -> None:
        """Stop the named processes first (in that order), then every other one."""
        names = list(order) + [n for n in reversed(list(self.pids())) if n not in order]
        for name in names:
            self.stop(name, grace)


def alive(pid: int, start_ticks: int | None = None) -> bool:
    """The process exists and is not a zombie, and (if ``start_ticks`` is known) is the one
    started then, not a later process that reused the pid.

    A zombie child of ours is reaped on the way. Somebody else's zombie counts as gone too:
    after `testbed up` exits its processes belong to init, which may reap them seconds later
    (this sandbox's init does so about every 2 s)."""
    st = proc_stat(pid)
    if st is None:
        return False
    if start_ticks is not None and st[2] != start_ticks:
        return False
    if st[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a process, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return rest[0], int(rest[2]), int(rest[19])
    except (IndexError, ValueError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        st = proc_stat(int(entry.name))
        if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``grace`` seconds; return
    once every process of the group is gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        whole_group = True
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
            whole_group = False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            leader = alive(pid)  # also reaps the leader when it is a child of ours
            if not (group_members(pid) if whole_group else leader):
                return
            time.sleep(0.05)


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    proc: Proc | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``check`` until true; fail with the component's log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and not alive(proc.pid):
            raise TestbedError(
                f"{what}: process exited. Last log lines of {proc.log}:\n{log_tail(proc.log)}"
            )
        time.sleep(interval)
    tail = f" Last log lines of {proc.log}:\n{log_tail(proc.log)}" if proc else ""
    raise TestbedError(f"{what}: not ready after {timeout:.0f} s.{tail}")


def http_ok(url: str, token: str | None = None, insecure_tls: bool = False) -> bool:
    import ssl

    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl._create_unverified_context() if insecure_tls else None
    try:
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
