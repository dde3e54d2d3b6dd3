"""The local interLink plugin (the testbed's FAKE batch system), end to end through its HTTP API
(app.py) and the runner: the plugin runs as a real subprocess on a free port and runs real
processes; nothing is mocked."""

from __future__ import annotations

import base64
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.local_plugin.logs import parse_rfc3339
from testbed.procs import alive

from ...waiting import wait_for
from .plugin import PY, Plugin, create_body, ctr, log_request, make_pod

# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def start_plugin(tmp_path: Path) -> Iterator[Callable[..., Plugin]]:
    started: list[Plugin] = []

    def start(*extra: str, root: Path | None = None) -> Plugin:
        p = Plugin(root or tmp_path / f"site{len(started)}", *extra).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
    for root in {p.root for p in started}:
        Plugin(root).cancel_all()


@pytest.fixture
def plugin(start_plugin: Callable[..., Plugin]) -> Plugin:
    return start_plugin()


# ---------------------------------------------------------------------------------------------
# the API

NOTEBOOK = r"""
import os, subprocess, sys, time
print("PID", os.getpid())
print("ARGS", sys.argv[1:])
for k in ("SECRET_TOKEN", "SERVICE_URL", "CFG_DIR", "POD_IP", "POD_NAME", "INTERLINK_ROOTFS"):
    print("ENV", k, os.environ.get(k))
print("CFG", open(os.path.join(os.environ["CFG_DIR"], "settings.txt")).read().strip())
print("CWD", os.getcwd())
print("PWD", os.environ.get("PWD"))
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("CHILD", child.pid)
print("READY")
time.sleep(120)
"""


def test_notebook_pod_lifecycle(plugin: Plugin) -> None:
    pod = make_pod(
        "jupyter-alice",
        [
            ctr(
                "notebook",
                NOTEBOOK,
                "--ip=0.0.0.0",
                "$(GREETING)",
                workingDir="/home/jovyan",
                env=[
                    {"name": "GREETING", "value": "hello"},
                    {
                        "name": "SECRET_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "tok", "key": "token"}},
                    },
                    {"name": "SERVICE_URL", "value": "http://0.0.0.0:8888/user/alice/"},
                    {"name": "CFG_DIR", "value": "/etc/nbcfg"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                volumeMounts=[
                    {"name": "cfg", "mountPath": "/etc/nbcfg"},
                    {"name": "tokvol", "mountPath": "/var/run/tok", "readOnly": True},
                    {"name": "home", "mountPath": "/home/jovyan"},
                ],
            )
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "nb-config"}},
            {"name": "tokvol", "secret": {"secretName": "tok"}},
            {"name": "home", "emptyDir": {}},
        ],
        annotations={"interlink.eu/pod-ip": "127.0.0.42"},
        grace=3,
    )
    secret = {"metadata": {"name": "tok"}, "data": {"token": base64.b64encode(b"s3cr3t").decode()}}
    cm = {"metadata": {"name": "nb-config"}, "data": {"settings.txt": "theme=dark\n"}}
    body = create_body(pod, configmaps=[cm], secrets=[secret])

    created = plugin.create(body)
    uid = pod["metadata"]["uid"]
    assert created["PodUID"] == uid
    assert created["PodJID"].isdigit() and int(created["PodJID"]) >= 1001
    assert plugin.create(body) == created  # idempotent on the pod UID

    running = plugin.wait_state(pod, "notebook", "running")
    assert running["ready"] is True and running["started"] is True
    assert parse_rfc3339(running["state"]["running"]["startedAt"]) is not None
    st = plugin.status(pod)
    assert st is not None
    assert (st["name"], st["UID"], st["namespace"], st["JID"]) == (
        "jupyter-alice",
        uid,
        "jhub",
        created["PodJID"],
    )

    def ready_output() -> bytes | None:
        code, body = plugin.logs(pod, "notebook")
        return body if code == 200 and b"READY" in body else None

    out = wait_for(ready_output, "the notebook's output").decode()
    pod_dir = plugin.root / f"jhub-{uid}"
    rootfs = pod_dir / "rootfs"
    assert "ARGS ['--ip=127.0.0.42', 'hello']" in out
    assert "ENV SECRET_TOKEN s3cr3t" in out
    assert "ENV SERVICE_URL http://127.0.0.42:8888/user/alice/" in out
    assert f"ENV CFG_DIR {rootfs}/etc/nbcfg" in out
    assert "ENV POD_IP 127.0.0.42" in out
    assert "ENV POD_NAME jupyter-alice" in out
    assert f"ENV INTERLINK_ROOTFS {rootfs}" in out
    assert "CFG theme=dark" in out
    # the working dir is the re-rooted mount: the same folder, reached through the symlink
    assert f"CWD {(rootfs / 'home/jovyan').resolve()}" in out
    assert f"PWD {rootfs}/home/jovyan" in out
    token_file = rootfs / "var/run/tok/token"
    assert token_file.read_bytes() == b"s3cr3t"
    assert token_file.resolve().stat().st_mode & 0o777 == 0o600

    code, tail = plugin.logs(pod, "notebook", Tail=1)
    assert (code, tail) == (200, b"READY\n")
    code, head = plugin.logs(pod, "notebook", Bytes=3)
    assert (code, head) == (200, b"PID")
    code, stamped = plugin.logs(pod, "notebook", Timestamps=True, Tail=2)
    lines = stamped.decode().splitlines()
    assert len(lines) == 2 and lines[1].endswith(" READY")
    assert all(parse_rfc3339(line.split(" ", 1)[0]) for line in lines)

    pids = [int(m) for m in re.findall(r"^(?:PID|CHILD) (\d+)$", out, re.M)]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    code, text = plugin.delete(pod)
    assert code == 200 and "deleted" in text
    wait_for(lambda: not any(alive(p) for p in pids), f"processes {pids} to be killed", timeout=5)
    term = plugin.container(pod, "notebook")["state"]["terminated"]
    assert term["exitCode"] != 0
    code, text = plugin.delete(pod)
    assert code == 200 and "already deleted" in text


def test_exit_code_and_missing_command(plugin: Plugin) -> None:
    failing = make_pod("fails", [ctr("main", "import sys; print('bye'); sys.exit(3)")])
    no_cmd = make_pod("entrypoint", [ctr("main", None)])
    # args only: run by the image's exec entrypoint (tini -g --), as KubeSpawner pods are
    args_only = make_pod(
        "args-only",
        [
            ctr(
                "main",
                None,
                PY,
                "-c",
                "import os; print('via entrypoint', os.getcwd() == os.environ['HOME'], "
                "sorted(os.listdir('..')).count('request.json'))",
            )
        ],
    )
    plugin.create(create_body(failing))
    plugin.create(create_body(no_cmd))
    plugin.create(create_body(args_only))
    # it starts in $HOME, not in the plugin's pod folder with the request's Secrets
    assert wait_for(lambda: plugin.logs(args_only, "main")[1], "logs") == b"via entrypoint True 1\n"
    term = plugin.wait_state(failing, "main", "terminated")["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    assert parse_rfc3339(term["startedAt"]) and parse_rfc3339(term["finishedAt"])
    assert wait_for(lambda: plugin.logs(failing, "main")[1], "logs") == b"bye\n"
    term = plugin.wait_state(no_cmd, "main", "terminated")["state"]["terminated"]
    assert term["reason"] == "ImageEntrypointUnsupported"
    assert term["exitCode"] != 0 and "image" in term["message"]
    assert b"ImageEntrypointUnsupported" in plugin.logs(no_cmd, "main")[1]

    missing = make_pod(
        "no-secret",
        [
            ctr(
                "main",
                "pass",
                env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}],
            )
        ],
    )
    plugin.create(create_body(missing))
    term = plugin.wait_state(missing, "main", "terminated")["state"]["terminated"]
    assert term["reason"] == "CreateContainerConfigError" and "absent" in term["message"]


def test_an_images_entrypoint_runs_as_a_container_runtime_runs_it(plugin: Plugin) -> None:
    """Docker-stacks images declare ENTRYPOINT (tini + start.sh) and CMD: args replace the CMD
    only, a command replaces the ENTRYPOINT, neither runs ENTRYPOINT + CMD."""
    image = {"image": "quay.io/jupyter/minimal-notebook:2026-10-20"}
    script = "import os; print('session', os.environ.get('JUPYTER_DOCKER_STACKS_ENTRYPOINT'))"
    args_only = make_pod("ds-args", [ctr("main", None, PY, "-c", script, **image)])
    command = make_pod("ds-command", [ctr("main", script, **image)])
    neither = make_pod("ds-neither", [ctr("main", None, **image)])
    for pod in (args_only, command, neither):
        plugin.create(create_body(pod))
    # start.sh ran first, then exec'd the args: the session sees what it set
    assert wait_for(lambda: plugin.logs(args_only, "main")[1], "logs") == b"session ran\n"
    home = plugin.root / f"jhub-{args_only['metadata']['uid']}" / "home"
    trace = (home / "docker-stacks-start.txt").read_text()
    assert trace.startswith("start.sh ran for NB_USER=jovyan\nthen exec: ")
    assert f"then exec: {PY} -c" in trace
    # a command replaces the entrypoint
    assert wait_for(lambda: plugin.logs(command, "main")[1], "logs") == b"session None\n"
    # ENTRYPOINT + CMD: start.sh execs the image's CMD, which is not a program of this machine
    term = plugin.wait_state(neither, "main", "terminated")["state"]["terminated"]
    assert term["exitCode"] == 127
    assert b"start-notebook.py" in plugin.logs(neither, "main")[1]


def test_init_containers_run_first(plugin: Plugin) -> None:
    mount = [{"name": "work", "mountPath": "/scratch"}]
    env = [{"name": "WORK", "value": "/scratch"}]
    pod = make_pod(
        "with-init",
        [
            ctr(
                "main",
                "import os; print(open(os.environ['WORK'] + '/f').read())",
                env=env,
                volumeMounts=mount,
            )
        ],
        init=[
            ctr(
                "prepare",
                "import os; open(os.environ['WORK'] + '/f', 'w').write('ok')",
                env=env,
                volumeMounts=mount,
            )
        ],
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    plugin.create(create_body(pod))
    term = plugin.wait_state(pod, "main", "terminated")["state"]["terminated"]
    assert term["exitCode"] == 0, plugin.logs(pod, "main")
    init = plugin.container(pod, "prepare", init=True)["state"]["terminated"]
    assert init["exitCode"] == 0
    assert parse_rfc3339(init["finishedAt"]) <= parse_rfc3339(term["startedAt"])  # type: ignore[operator]
    assert plugin.logs(pod, "main")[1] == b"ok\n"

    bad = make_pod(
        "bad-init", [ctr("main", "print('never')")], init=[ctr("prepare", "raise SystemExit(2)")]
    )
    plugin.create(create_body(bad))
    term = plugin.wait_state(bad, "main", "terminated")["state"]["terminated"]
    assert term["exitCode"] != 0 and "prepare" in term["message"]
    assert plugin.container(bad, "prepare", init=True)["state"]["terminated"]["exitCode"] == 2


def test_follow_streams_until_exit(plugin: Plugin) -> None:
    pod = make_pod(
        "counter",
        [ctr("main", "import time\nfor i in range(5):\n    print(i, flush=True); time.sleep(0.1)")],
    )
    plugin.create(create_body(pod))
    start = time.monotonic()
    code, body = plugin.logs(pod, "main", Follow=True, timeout=15)
    assert code == 200
    assert body == b"0\n1\n2\n3\n4\n"
    assert time.monotonic() - start < 10


def test_errors_and_ping(plugin: Plugin) -> None:
    code, ctype, body = plugin.call("GET", "/status", [])
    assert code == 200 and ctype.startswith("application/json")
    assert json.loads(body)["status"] == "ok"

    unknown = make_pod("ghost", [ctr("main", "pass")])
    code, ctype, body = plugin.call("GET", "/getLogs", log_request(unknown, "main"))
    assert code == 404 and ctype.startswith("application/json")
    err = json.loads(body)
    assert err["error"] == "PodNotFound" and "ghost" in err["message"]
    assert plugin.status(unknown) is None
    code, text = plugin.delete(unknown)
    assert code == 200 and "nothing to delete" in text

    for path in ("/create", "/status", "/delete", "/getLogs"):
        method = "GET" if path in ("/status", "/getLogs") else "POST"
        code, ctype, body = plugin.call(method, path, raw=b'{"pod": ')
        assert code == 400 and ctype.startswith("application/json"), (path, body)
        assert json.loads(body)["error"] == "MalformedJSON"
    code, _, body = plugin.call("POST", "/create", {"pod": {"metadata": {"name": "x"}}})
    assert code == 400 and "uid" in json.loads(body)["message"]

    pod = make_pod("one", [ctr("main", "import time; time.sleep(30)")], grace=0)
    plugin.create(create_body(pod))
    code, _, body = plugin.call("GET", "/getLogs", log_request(pod, "nope"))
    assert code == 404 and json.loads(body)["error"] == "ContainerNotFound"
    assert plugin.call("DELETE", "/delete", pod)[0] == 200


def test_queue_and_gpus(start_plugin: Callable[..., Plugin]) -> None:
    site = start_plugin("--queue-seconds", "1", "--gpus", "1")
    ping = json.loads(site.call("GET", "/status", [])[2])
    assert ping["resources"]["accelerators"] == [
        {"resourceType": "nvidia.com/gpu", "available": "1"}
    ]
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    one = make_pod(
        "gpu1",
        [
            ctr(
                "main",
                "import os, time; print("
                "os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True); "
                "time.sleep(30)",
                resources=gpu,
            )
        ],
    )
    two = make_pod("gpu2", [ctr("main", "pass", resources={"limits": {"nvidia.com/gpu": 2}})])
    jid = site.create(create_body(one))["PodJID"]
    site.create(create_body(two))
    waiting = site.container(one, "main")["state"]["waiting"]
    assert waiting["reason"] == "Queued"
    assert waiting["message"] == f"queued at TestSite (job {jid})"
    site.wait_state(one, "main", "running", timeout=5)
    assert wait_for(lambda: site.logs(one, "main")[1], "logs") == b"0\n"
    term = site.wait_state(two, "main", "terminated", timeout=5)["state"]["terminated"]
    assert term["reason"] == "InsufficientGPU" and "2" in term["message"]


def test_restart_reattaches(start_plugin: Callable[..., Plugin], tmp_path: Path) -> None:
    first = start_plugin()
    flag = tmp_path / "flag"
    sleeper = make_pod(
        "sleeper", [ctr("main", "import os, time; print(os.getpid()); time.sleep(60)")]
    )
    waiter = make_pod(
        "waiter",
        [
            ctr(
                "main",
                f"import os, sys, time\nwhile not os.path.exists({str(flag)!r}): "
                "time.sleep(0.05)\nprint('done'); sys.exit(7)",
            )
        ],
    )
    jid = first.create(create_body(sleeper))["PodJID"]
    first.create(create_body(waiter))
    first.wait_state(sleeper, "main", "running")
    first.wait_state(waiter, "main", "running")
    first.stop(signal.SIGKILL)

    flag.touch()
    status_file = first.root / f"jhub-{waiter['metadata']['uid']}" / "main.status"
    wait_for(status_file.exists, "the waiter to finish while the plugin is down")

    second = start_plugin(root=first.root)
    st = second.status(sleeper)
    assert st is not None and st["JID"] == jid
    assert "running" in st["containers"][0]["state"]
    term = second.container(waiter, "main")["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (7, "Error")
    assert second.logs(waiter, "main")[1] == b"done\n"
    pid = int(second.logs(sleeper, "main")[1])
    assert alive(pid)
    # a new job gets the next id from the persisted counter
    assert (
        int(second.create(create_body(make_pod("next", [ctr("main", "pass")])))["PodJID"])
        == int(jid) + 2
    )

    second.stop()
    assert "sleeper" in second.cancel_all()
    assert not alive(pid)


def test_delete_escalates_to_sigkill(plugin: Plugin) -> None:
    stubborn = make_pod(
        "stubborn",
        [
            ctr(
                "main",
                "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print(os.getpid(), flush=True)\ntime.sleep(60)",
            )
        ],
        grace=1,
    )
    plugin.create(create_body(stubborn))
    pid = int(wait_for(lambda: plugin.logs(stubborn, "main")[1], "the pid"))
    start = time.monotonic()
    assert plugin.delete(stubborn)[0] == 200
    assert 0.9 < time.monotonic() - start < 5
    assert not alive(pid)
    term = plugin.container(stubborn, "main")["state"]["terminated"]
    assert term["exitCode"] == 137 and term["message"] == "killed when the pod was deleted"

    queued_site = Plugin(plugin.root.with_name("queued"), "--queue-seconds", "30").start()
    try:
        pod = make_pod("never-runs", [ctr("main", "pass")])
        queued_site.create(create_body(pod))
        assert queued_site.container(pod, "main")["state"]["waiting"]["reason"] == "Queued"
        assert queued_site.delete(pod)[0] == 200
        term = queued_site.container(pod, "main")["state"]["terminated"]
        assert term["reason"] == "Cancelled"
    finally:
        queued_site.stop()
