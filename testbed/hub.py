"""A real JupyterHub with the intertwin spawner, behind configurable-http-proxy."""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .binaries import cache_dir
from .cluster import ControlPlane
from .helm_values import values_for
from .keycloak import Keycloak
from .procs import Supervisor, TestbedError, free_port, http_ok, wait_until

DEV_VO = "dev.intertwin.eu"
DEMO_PASSWORD = "intertwin-demo"
# alice is in the dev VO (sees Vega and PSNC), bob is not, oper is the hub operator
DEMO_USERS = {"alice": [DEV_VO], "bob": [], "oper": [DEV_VO]}
ADMINS = ["oper"]
# named servers a user may have at once (stopped ones count until deleted), above what any
# test holds at a time
NAMED_SERVER_LIMIT = 10
# EGI Check-in's Keycloak of each environment (production, development): the testbed's serves
# the same paths below its own URL
CHECKIN_URLS = {"prod": "https://aai.egi.eu/auth", "dev": "https://aai-dev.egi.eu/auth"}


@dataclass
class Hub:
    url: str
    api_url: str
    proxy_api_url: str
    service_token: str
    config: str


def chp_path() -> str:
    local = cache_dir() / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise TestbedError("configurable-http-proxy is not installed; run scripts/setup.sh")
    return found


def hub_config(
    cp: ControlPlane,
    run: Path,
    port: int,
    hub_port: int,
    proxy_api: int,
    service_token: str,
    rucio: dict[str, Any] | None = None,
    service_port: int | None = None,
    keycloak: Keycloak | None = None,
    auth_refresh_age: int | None = None,
    values_env: str = "prod",
) -> str:
    """The testbed hub's jupyterhub_config.py. Without ``keycloak``: the demo's login. With it,
    the deployment's whole ``hub.config`` (``values_env``'s, :func:`values_hub_config`) goes last,
    as the chart applies it: login, spawner, service URL and limits as in production."""
    venv_bin = str(Path(sys.executable).parent)
    service_port = service_port or free_port()
    vo_members = [u for u, groups in DEMO_USERS.items() if DEV_VO in groups]
    as_root = os.geteuid() == 0
    from intertwin_hub.sites import load_catalogue

    reach = {site.slug: "pod-vpn" for site in load_catalogue().sites if site.offload}
    service_kubeconfig = cp.kubeconfig_for("service", run / "intertwin-service.kubeconfig")
    service_env = {
        "KUBECONFIG": str(service_kubeconfig),
        "INTERTWIN_NAMESPACE": cp.namespace,
        "INTERTWIN_SERVICE_DB_URL": f"sqlite:///{run}/intertwin-service.sqlite",
        # batch cells run on this machine through the local plugin: the venv is their image
        "INTERTWIN_OFFLOAD_PYTHON": sys.executable,
    }
    values = ""
    if keycloak is not None:
        # GET /token/rucio: the service renews sessions' DataLake tokens at the Keycloak with
        # the hub's client, which may exchange them for the rucio audience
        service_env.update(
            INTERTWIN_OIDC_TOKEN_URL=keycloak.token_url,
            INTERTWIN_OIDC_CLIENT_ID=keycloak.client_id,
            INTERTWIN_OIDC_CLIENT_SECRET=keycloak.client_secret,
        )
    if keycloak is None:
        login = f"""c.JupyterHub.authenticator_class = "dummy"
# demo only: production uses GenericOAuthenticator against EGI Check-in (helm-values/);
# `testbed up --keycloak` logs in through the testbed's Keycloak instead
c.DummyAuthenticator.password = {DEMO_PASSWORD!r}
c.Authenticator.allowed_users = {set(DEMO_USERS)!r}
c.Authenticator.admin_users = {set(ADMINS)!r}
c.JupyterHub.load_groups = {{{DEV_VO!r}: {{"users": {vo_members!r}}}}}"""
    else:
        login = "# the login: helm-values' hub.config, below"
        config = values_hub_config(
            keycloak, f"http://127.0.0.1:{port}", values_env, auth_refresh_age
        )
        values = "\n" + values_config_lines(config) + "\n"
    return (
        f"""# written by testbed/hub.py for one testbed run
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{run}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{run}/jupyterhub_cookie_secret"
# the proxy runs as its own process (as in Zero to JupyterHub), so servers survive a hub restart
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = {NAMED_SERVER_LIMIT}
{login}
c.JupyterHub.services = [
    {{"name": "testbed", "api_token": {service_token!r}}},
    # the intertwin service, started and stopped by the hub, its own Kubernetes identity
    {{"name": "intertwin", "command": [{sys.executable!r}, "-m", "intertwin_hub.service"],
      "url": "http://127.0.0.1:{service_port}", "oauth_no_confirm": True,
      "cwd": {str(run)!r}, "environment": {service_env!r}}},
]
import os  # noqa: E402
# the service ends with the hub that started it, even one killed without its clean-up
c.JupyterHub.services[-1]["environment"]["INTERTWIN_HUB_PID"] = str(os.getpid())
c.JupyterHub.load_roles = [
    {{"name": "testbed", "services": ["testbed"],
      "scopes": ["admin:users", "admin:servers", "read:servers", "access:servers",
                 "admin:groups", "access:services", "tokens"]}},
    # the service stops notebook servers (cancel), asks who is an admin, and reads the users'
    # tokens to give sessions fresh DataLake tokens (GET /token/rucio)
    {{"name": "intertwin-service", "services": ["intertwin"],
      "scopes": ["admin:servers", "read:users", "admin:auth_state"]}},
    {{"name": "user", "scopes": ["self", "access:services!service=intertwin"]}},
]
# the single-user servers' own tokens reach the service too (the lab extension, kernels)
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=intertwin"]

c.JupyterHub.spawner_class = "intertwin"
c.KubeSpawner.namespace = {cp.namespace!r}
c.KubeSpawner.hub_connect_url = "http://127.0.0.1:{hub_port}"
c.KubeSpawner.image = "ghcr.io/intertwin-eu/itwinai:jlab-slim-latest"
# the local interLink plugin runs the pod's command as a process; the testbed's Python
# environment plays the role of the image
c.KubeSpawner.cmd = ["{venv_bin}/jupyterhub-singleuser"]
c.KubeSpawner.args = {["--allow-root"] if as_root else []!r}
c.KubeSpawner.default_url = "/lab"
c.KubeSpawner.cpu_limit = 1.0
c.KubeSpawner.mem_limit = "2G"
c.KubeSpawner.start_timeout = 180
c.KubeSpawner.http_timeout = 90
c.KubeSpawner.events_enabled = True
# the testbed's cloud node is a virtual kubelet too: pod-vpn gives each pod its own address
c.KubeSpawner.extra_annotations = {{"interlink.eu/pod-vpn": "true"}}
# every testbed node's PodCIDR is a loopback /24 the hub reaches directly: the sites' pods are
# reached by pod-vpn here (the shipped catalogue says wstunnel, which needs an ingress)
c.InterTwinSpawner.site_reach = {reach!r}
# sessions reach the intertwin service through the proxy (the testbed hub has no public_url)
c.InterTwinSpawner.service_url = "http://127.0.0.1:{port}/services/intertwin/"
c.KubeSpawner.automount_service_account_token = False
"""
        + (rucio_config(rucio, demo_login=keycloak is None) if rucio else "")
        + values
    )


def checkin_values(env: str = "prod") -> dict[str, dict[str, Any]]:
    """The authenticator sections of the deployment's Helm values (``hub.config`` of
    ``helm-values/ukri.yaml`` with the environment's overlay)."""
    config = values_for(env)["hub"]["config"]
    return {k: dict(config[k]) for k in ("GenericOAuthenticator", "Authenticator")}


def public_url(env: str = "prod") -> str:
    """The deployed hub's public URL: its ingress host, over TLS."""
    return f"https://{values_for(env)['ingress']['hosts'][0]}"


def values_hub_config(
    kc: Keycloak, hub_url: str, env: str = "prod", auth_refresh_age: int | None = None
) -> dict[str, dict[str, Any]]:
    """The deployment's whole ``hub.config`` (``helm-values/``, environment ``env``) as a testbed
    hub runs it: EGI Check-in's URLs point at the testbed's Keycloak (same realm, same paths),
    the public hub URL (callback, the notebooks' hub_connect_url, the sessions' service_url) at
    the testbed's proxy ``hub_url``, and the hub client is the run's (the chart passes it in
    OAUTH_CLIENT_ID/OAUTH_CLIENT_SECRET). Nothing else changes; a deployment URL left over is an
    error, so a new URL in the values cannot reach the real Check-in or hub from a test.
    ``auth_refresh_age``: a test's shorter refresh interval."""
    config = copy.deepcopy(values_for(env)["hub"]["config"])
    swaps = {CHECKIN_URLS[env]: kc.url, public_url(env): hub_url}

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, str):
            for old, new in swaps.items():
                if value == old or value.startswith(old + "/"):
                    return new + value[len(old) :]
        return value

    config = swap(config)
    oauth = config["GenericOAuthenticator"]
    oauth["client_id"] = kc.client_id
    oauth["client_secret"] = kc.client_secret
    if auth_refresh_age is not None:
        config["Authenticator"]["auth_refresh_age"] = auth_refresh_age
    left = [
        f"{section}.{key}"
        for section, values in config.items()
        for key, value in values.items()
        if any(f"://{urlsplit(old).netloc}" in repr(value) for old in swaps)
    ]
    if left:
        raise TestbedError(f"helm-values ({env}): {', '.join(left)} still name a deployment URL")
    return config


def values_config_lines(config: dict[str, dict[str, Any]]) -> str:
    """``hub.config`` as jupyterhub_config.py lines (what the chart's own jupyterhub_config.py
    does with it, after the settings it derives from the other values:
    https://github.com/jupyterhub/zero-to-jupyterhub-k8s/blob/4.2.0/jupyterhub/files/hub/jupyterhub_config.py)."""
    lines = ["# helm-values' whole hub.config, its URLs swapped for the testbed's (testbed/hub.py)"]
    for section, values in config.items():
        lines += [f"c.{section}.{k} = {v!r}" for k, v in values.items()]
    return "\n".join(lines)


def rucio_config(rucio: dict[str, Any], demo_login: bool = True) -> str:
    """The testbed's Rucio for the hub: each demo user signs in with their own Rucio account
    (testbed/demo_auth.py), sessions get that token, and each site's scratch RSE is the local
    directory the testbed's Rucio writes replicas to."""
    from intertwin_hub.sites import load_catalogue

    mounts = {
        site.slug: rucio["rses"][site.scratch.rse]["path"]
        for site in load_catalogue().sites
        if site.scratch.rse and site.scratch.rse in rucio["rses"]
    }
    passwords = {
        user: acc["password"] for user, acc in rucio["accounts"].items() if user in DEMO_USERS
    }
    repo = str(Path(__file__).resolve().parents[1])
    demo = f"""import sys  # noqa: E402
sys.path.insert(0, {repo!r})
c.JupyterHub.authenticator_class = "testbed.demo_auth.RucioDemoAuthenticator"
c.RucioDemoAuthenticator.rucio_url = {rucio["url"]!r}
c.RucioDemoAuthenticator.rucio_passwords = {passwords!r}
c.Authenticator.enable_auth_state = True
c.Authenticator.refresh_pre_spawn = True
c.Authenticator.auth_refresh_age = 300
"""
    if not demo_login:
        # Keycloak's tokens: sessions renew them through the intertwin service (GET
        # /token/rucio), which exchanges them for the rucio audience this Rucio accepts
        demo = "c.InterTwinSpawner.rucio_token_from_service = True\n"
    return f"""
# the testbed's Rucio DataLake
{demo}c.InterTwinSpawner.rucio_instance = {{"RUCIO_BASE_URL": {rucio["url"]!r},
                                     "RUCIO_AUTH_URL": {rucio["url"]!r}}}
c.InterTwinSpawner.scratch_mount_paths = {mounts!r}
"""


def start_hub(
    sup: Supervisor,
    cp: ControlPlane,
    name: str = "hub",
    extra_config: str = "",
    rucio: dict[str, Any] | None = None,
    keycloak: Keycloak | None = None,
    port: int | None = None,
    auth_refresh_age: int | None = None,
) -> Hub:
    """Start a proxy and a hub; ``name`` and ``extra_config`` let a benchmark run a second,
    differently configured hub on the same testbed (``cp.namespace``: its pods' namespace).
    ``keycloak``: run helm-values' whole ``hub.config`` against it, logging in through it
    instead of the demo password (``auth_refresh_age`` seconds between refreshes instead of the
    values'); ``port`` is then the one its hub client redirects to."""
    run = sup.run_dir / name
    run.mkdir(parents=True, exist_ok=True)
    port, hub_port, proxy_api = port or free_port(), free_port(), free_port()
    service_token = secrets.token_hex(24)
    proxy_token = secrets.token_hex(24)
    cfg = run / "jupyterhub_config.py"
    cfg.write_text(
        hub_config(
            cp,
            run,
            port,
            hub_port,
            proxy_api,
            service_token,
            rucio,
            keycloak=keycloak,
            auth_refresh_age=auth_refresh_age,
        )
        + extra_config
    )
    cfg.chmod(0o600)  # it holds the demo users' Rucio passwords
    env = {"CONFIGPROXY_AUTH_TOKEN": proxy_token}
    suffix = "" if name == "hub" else f"-{name}"
    chp = sup.start(
        f"proxy{suffix}",
        [
            chp_path(),
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-ip",
            "127.0.0.1",
            "--api-port",
            str(proxy_api),
            "--default-target",
            f"http://127.0.0.1:{hub_port}",
            "--error-target",
            f"http://127.0.0.1:{hub_port}/hub/error",
        ],
        env=env,
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{proxy_api}/api/routes") or _port_answers(proxy_api),
        "configurable-http-proxy",
        30,
        chp,
    )
    hub = Hub(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}/hub/api",
        f"http://127.0.0.1:{proxy_api}",
        service_token,
        str(cfg),
    )
    (run / "hub.json").write_text(json.dumps(vars(hub)))
    restart_hub(sup, cp, hub, proxy_token, process=f"jupyterhub{suffix}")
    return hub


def restart_hub(
    sup: Supervisor,
    cp: ControlPlane,
    hub: Hub,
    proxy_token: str | None = None,
    process: str = "jupyterhub",
) -> None:
    """(Re)start the hub process alone; the proxy and the notebook pods keep running."""
    run = Path(hub.config).parent
    token_file = run / "proxy_token"
    if proxy_token:
        token_file.write_text(proxy_token)
        token_file.chmod(0o600)
    crypt_key = run / "crypt_key"
    if not crypt_key.exists():
        # auth_state (the users' DataLake tokens) is stored encrypted with this key
        crypt_key.write_text(secrets.token_hex(32))
        crypt_key.chmod(0o600)
    env = {
        "CONFIGPROXY_AUTH_TOKEN": token_file.read_text(),
        "KUBECONFIG": cp.hub_kubeconfig,
        "JUPYTERHUB_CRYPT_KEY": crypt_key.read_text(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    sup.stop(process)
    proc = sup.start(
        process, [sys.executable, "-m", "jupyterhub", "-f", hub.config], env=env, cwd=run
    )
    wait_until(lambda: http_ok(f"{hub.api_url}/"), "JupyterHub", 90, proc)
    # the hub answers before its managed service listens: wait for the proxy's route to the
    # intertwin service and the service behind it, so the panels work once `testbed up` says so
    wait_until(
        lambda: _service_routed(hub, env["CONFIGPROXY_AUTH_TOKEN"]),
        "the intertwin service behind the proxy",
        90,
        proc,
    )


def service_pid(sup: Supervisor, process: str = "jupyterhub") -> int | None:
    """The pid of the ``intertwin`` service the hub process started (its child running
    ``-m intertwin_hub.service``), None while there is none."""
    hub = sup.pids().get(process)
    if hub is None:
        return None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] in ("Z", "X") or int(fields[1]) != hub:
            continue
        if b"intertwin_hub.service" in cmdline:
            return int(entry.name)
    return None


def _service_routed(hub: Hub, proxy_token: str) -> bool:
    """configurable-http-proxy routes /services/intertwin and its target accepts connections."""
    req = urllib.request.Request(
        f"{hub.proxy_api_url}/api/routes", headers={"Authorization": f"token {proxy_token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            routes = json.loads(r.read())
    except (OSError, ValueError):
        return False
    route = routes.get("/services/intertwin") or routes.get("/services/intertwin/")
    port = urlsplit(str(route.get("target", ""))).port if isinstance(route, dict) else None
    return port is not None and _port_answers(port)


def _port_answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
