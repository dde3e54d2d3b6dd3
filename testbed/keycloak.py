"""A real Keycloak (the server EGI Check-in runs on) with a realm ``egi`` that mirrors Check-in.

Keycloak runs from the build that ``build/build-keycloak.sh`` made (``kc.sh start --optimized``:
an in-memory H2 database, so every start begins from the realm file) on plain HTTP on free
loopback ports, under ``/auth`` as Check-in's URLs are
(``/auth/realms/egi/protocol/openid-connect/...``). The realm comes from
``testbed/keycloak/egi-realm.json``; what a run changes in it (the hub client's secret and
redirect URI, the access-token lifespan) is set on a copy before Keycloak's admin REST API
creates it (https://www.keycloak.org/docs-api/latest/rest-api/index.html#_realms_admin).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .binaries import BUILD_DIR, cache_dir
from .procs import Supervisor, TestbedError, free_port, http_ok, log_tail, wait_until

KEYCLOAK_VERSION = os.environ.get("KEYCLOAK_VERSION", "26.5.6")
REALM_FILE = Path(__file__).parent / "keycloak" / "egi-realm.json"
REALM = "egi"
HUB_CLIENT = "intertwin-hub"
# the DataLake's client: the audience of the tokens Rucio accepts (the hub client exchanges its
# users' tokens for it, Keycloak's standard token exchange), and Rucio's own OIDC client
RUCIO_CLIENT = "rucio"
RELATIVE_PATH = "/auth"
# the realm file's users, all with this password (the demo's)
USERS_PASSWORD = "intertwin-demo"
# EGI Check-in entitlements of the testbed's VOs (urn:mace:egi.eu:group:<vo>[:<group>]:role=...)
DEV_VO_ENTITLEMENT = "urn:mace:egi.eu:group:dev.intertwin.eu:role=member#aai.egi.eu"
ADMIN_ENTITLEMENT = "urn:mace:egi.eu:group:dev.intertwin.eu:admins:role=member#aai.egi.eu"
# Keycloak's JVM sizes its heap from the machine's memory by default (70 % of it); the testbed
# shares a small machine, and the realm needs far less
HEAP_OPTS = "-Xms64m -Xmx384m -XX:MaxMetaspaceSize=256m"
START_TIMEOUT = 300.0


@dataclass
class Keycloak:
    url: str  # http://127.0.0.1:<port>/auth
    management_url: str
    admin_user: str
    admin_password: str
    client_id: str
    client_secret: str
    access_token_lifespan: int
    java: str
    home: str
    rucio_client_secret: str = ""

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def oidc(self) -> str:
        return f"{self.issuer}/protocol/openid-connect"

    @property
    def token_url(self) -> str:
        return f"{self.oidc}/token"

    def admin_token(self) -> str:
        """An access token of the bootstrap admin (master realm, admin-cli)."""
        data = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_user,
                "password": self.admin_password,
            }
        ).encode()
        body = _request(f"{self.url}/realms/master/protocol/openid-connect/token", data=data)
        return str(body["access_token"])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin REST API of realm ``egi`` (``path`` below /admin/realms/egi)."""
        data = None if body is None else json.dumps(body).encode()
        return _request(
            f"{self.url}/admin/realms/{REALM}{path}",
            data=data,
            method=method,
            token=self.admin_token(),
            content_type="application/json",
        )

    def user_id(self, username: str) -> str:
        found = self.admin("GET", f"/users?exact=true&username={urllib.parse.quote(username)}")
        if not found:
            raise TestbedError(f"Keycloak has no user {username!r} in realm {REALM}")
        return str(found[0]["id"])

    def allow_redirect(self, uri: str) -> None:
        """Let the hub client redirect to ``uri`` too: another hub (its own port) logging in
        through this Keycloak, registered as an operator adds a callback URL to a client."""
        client = self.admin("GET", f"/clients?clientId={urllib.parse.quote(self.client_id)}")[0]
        uris = list(client.get("redirectUris") or [])
        if uri not in uris:
            client["redirectUris"] = [*uris, uri]
            self.admin("PUT", f"/clients/{client['id']}", client)

    def add_user(
        self, username: str, entitlements: Sequence[str] = (), offline_access: bool = True
    ) -> str:
        """A user of the realm with the demo password and these entitlements (a test's own);
        ``offline_access=False``: without the realm's default roles, so Keycloak refuses them
        offline tokens, as an identity provider may refuse a user the scope offline_access."""
        self.admin(
            "POST",
            "/users",
            {
                "username": username,
                "enabled": True,
                "email": f"{username}@example.org",
                "emailVerified": True,
                "firstName": username.title(),
                "lastName": "Tester",
                "attributes": {"eduperson_entitlement": list(entitlements)},
                "credentials": [{"type": "password", "value": USERS_PASSWORD, "temporary": False}],
            },
        )
        uid = self.user_id(username)
        if not offline_access:
            role = self.admin("GET", f"/roles/default-roles-{REALM}")
            self.admin("DELETE", f"/users/{uid}/role-mappings/realm", [role])
        return uid

    def revoke_sessions(self, username: str) -> None:
        """End every session of the user, offline ones included: what an operator (or the
        user, in Check-in's account page) does when a device is lost. The hub's refresh token
        stops working at once."""
        uid = self.user_id(username)
        self.admin("POST", f"/users/{uid}/logout")
        # offline sessions (scope offline_access) end with the client's grant
        self.admin("DELETE", f"/users/{uid}/consents/{HUB_CLIENT}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _request(
    url: str,
    data: bytes | None = None,
    method: str | None = None,
    token: str | None = None,
    content_type: str | None = None,
) -> Any:
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise TestbedError(f"Keycloak: {method or 'GET'} {url} answered {e.code}: {detail}") from e
    return json.loads(raw) if raw.strip() else None


def keycloak_dist() -> Path:
    return cache_dir() / "keycloak" / KEYCLOAK_VERSION


def ensure_fetched() -> tuple[Path, str]:
    """The unpacked distribution (fetched by build/build-keycloak.sh when missing) and the
    Java that runs it."""
    script = str(BUILD_DIR / "build-keycloak.sh")
    env = dict(os.environ, KEYCLOAK_VERSION=KEYCLOAK_VERSION)
    # a no-op (0.1 s) when the cache has this version built with the testbed's options
    built = subprocess.run([script], env=env, capture_output=True, text=True)
    if built.returncode != 0:
        tail = "\n".join(built.stderr.strip().splitlines()[-15:])
        raise TestbedError(f"{script} failed:\n{tail}")
    found = subprocess.run([script, "--find-java"], env=env, capture_output=True, text=True)
    if found.returncode != 0:
        raise TestbedError(found.stderr.strip())
    return keycloak_dist(), found.stdout.strip()


def run_home(dist: Path, home: Path) -> Path:
    """A Keycloak home of this run: data/ (and conf/, bin/: kc.sh finds the home from its own
    resolved path) are the run's own, the built lib/quarkus a copy; the jars, themes and
    providers are links into the cache."""
    if home.exists():
        shutil.rmtree(home)
    (home / "lib").mkdir(parents=True)
    for part in ("bin", "conf"):
        shutil.copytree(dist / part, home / part)
    shutil.copytree(dist / "lib" / "quarkus", home / "lib" / "quarkus")
    shutil.copy2(dist / "lib" / "quarkus-run.jar", home / "lib" / "quarkus-run.jar")
    for part in ("lib/lib", "lib/app", "themes", "providers"):
        if (dist / part).exists():
            (home / part).symlink_to(dist / part)
    (home / "data").mkdir()
    return home


def realm_for_run(
    redirect_uris: Sequence[str],
    client_secret: str,
    access_token_lifespan: int,
    rucio_client_secret: str = "",
) -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    realm["accessTokenLifespan"] = access_token_lifespan
    for client in realm["clients"]:
        if client["clientId"] == HUB_CLIENT:
            client["secret"] = client_secret
            client["redirectUris"] = list(redirect_uris)
        elif client["clientId"] == RUCIO_CLIENT:
            client["secret"] = rucio_client_secret or secrets.token_hex(16)
    return realm


def start_keycloak(
    sup: Supervisor,
    redirect_uris: Sequence[str],
    access_token_lifespan: int = 3600,
    name: str = "keycloak",
    progress: Callable[[str], None] = lambda m: None,
) -> Keycloak:
    """Start Keycloak for this run and create the realm ``egi`` with the hub client allowed to
    redirect to ``redirect_uris`` (the hub's oauth_callback)."""
    dist, java = ensure_fetched()
    home = run_home(dist, sup.run_dir / name)
    port, mgmt = free_port(), free_port()
    admin_password = secrets.token_hex(12)
    kc = Keycloak(
        url=f"http://127.0.0.1:{port}{RELATIVE_PATH}",
        management_url=f"http://127.0.0.1:{mgmt}{RELATIVE_PATH}",
        admin_user="testbed-admin",
        admin_password=admin_password,
        client_id=HUB_CLIENT,
        client_secret=secrets.token_hex(16),
        access_token_lifespan=access_token_lifespan,
        java=java,
        home=str(home),
        rucio_client_secret=secrets.token_hex(16),
    )
    env = {
        "JAVA": java,
        "JAVA_OPTS_KC_HEAP": HEAP_OPTS,
        # JBoss Threads' thread-local reset needs this on Java 24 and later (its own error
        # message says so when a request thread starts without it)
        "JAVA_OPTS_APPEND": "--add-opens=java.base/java.lang=ALL-UNNAMED",
        # the master realm's first admin (https://www.keycloak.org/server/bootstrap-admin-recovery)
        "KC_BOOTSTRAP_ADMIN_USERNAME": kc.admin_user,
        "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
    }
    t0 = time.monotonic()
    proc = sup.start(
        name,
        [
            str(home / "bin" / "kc.sh"),
            # built by build-keycloak.sh with the build-time options (in-memory database,
            # local cache, health, the /auth prefix); what follows is per run
            "start",
            "--optimized",
            # plain HTTP on loopback, URLs from the request (https://www.keycloak.org/server/hostname)
            "--http-enabled=true",
            "--hostname-strict=false",
            "--http-host=127.0.0.1",
            f"--http-port={port}",
            f"--http-management-port={mgmt}",
        ],
        env=env,
        cwd=home,
    )
    progress(
        f"starting Keycloak {KEYCLOAK_VERSION} on 127.0.0.1:{port} "
        "(20 s on an idle machine, a minute or two on a busy one)"
    )
    wait_until(
        lambda: http_ok(f"{kc.management_url}/health/ready"),
        f"Keycloak {KEYCLOAK_VERSION} (log {proc.log})",
        START_TIMEOUT,
        proc,
        interval=0.5,
    )
    token = kc.admin_token()
    try:
        _request(
            f"{kc.url}/admin/realms",
            data=json.dumps(
                realm_for_run(
                    redirect_uris, kc.client_secret, access_token_lifespan, kc.rucio_client_secret
                )
            ).encode(),
            method="POST",
            token=token,
            content_type="application/json",
        )
    except TestbedError as e:
        raise TestbedError(f"{e}\nLast log lines of {proc.log}:\n{log_tail(proc.log)}") from e
    wait_until(
        lambda: http_ok(f"{kc.issuer}/.well-known/openid-configuration"),
        "Keycloak realm egi",
        30,
        proc,
    )
    progress(f"Keycloak ready with realm {REALM} ({time.monotonic() - t0:.1f} s)")
    return kc
