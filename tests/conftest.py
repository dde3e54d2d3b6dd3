"""Shared fixtures: the local testbed, brought up once per test session and torn down after, with
the session's Keycloak (the software EGI Check-in runs on) and the session's Rucio, which accepts
that Keycloak's tokens as the interTwin DataLake accepts Check-in's."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from testbed.keycloak import RUCIO_CLIENT, Keycloak, start_keycloak
from testbed.lifecycle import down, up
from testbed.procs import Supervisor
from testbed.rucio import start_rucio
from testbed.rucio.client import add_oidc_identity

# jp_fetch and friends for the server-extension tests in tests/lab
pytest_plugins = ("pytest_jupyter.jupyter_server",)

# more than two of the VK's 5 s status polls, so the queued state is always seen
QUEUE_SECONDS = 12.0
# Check-in's access tokens live an hour; in the tests a minute, so a test sees one expire
ACCESS_TOKEN_LIFESPAN = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests marked `last` tear the shared testbed down, so they run after everything else
    items.sort(key=lambda i: i.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def testbed_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("testbed")


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    """The session's Keycloak, realm ``egi`` (20 s to start on an idle machine, up to two
    minutes on a busy one: started once). Each hub registers its callback with
    ``allow_redirect``; the session's Rucio accepts its tokens."""
    sup = Supervisor(tmp_path_factory.mktemp("keycloak"))
    try:
        yield start_keycloak(
            sup,
            [],
            access_token_lifespan=ACCESS_TOKEN_LIFESPAN,
            progress=lambda m: print(f"[keycloak] {m}"),
        )
    finally:
        sup.stop_all()


@pytest.fixture(scope="session")
def rucio(tmp_path_factory: pytest.TempPathFactory, keycloak: Keycloak) -> Iterator[dict[str, Any]]:
    """A real Rucio server for the whole session (testbed/rucio), in a folder and Supervisor of
    its own so tests can use it without Kubernetes. Transfers move only when a test steps the
    conveyor (testbed.rucio.conveyor_step), so rule states are deterministic. Its accounts sign
    in with userpass, and with the session Keycloak's access tokens for the audience ``rucio``:
    each Keycloak user with a Rucio account (alice, bob) has their OIDC identity on it, as a
    hub logging in through Keycloak hands its sessions such tokens."""
    run_dir = tmp_path_factory.mktemp("rucio")
    sup = Supervisor(run_dir)
    try:
        state = start_rucio(
            sup,
            run_dir,
            pump_interval=None,
            progress=lambda m: print(f"[rucio] {m}"),
            oidc={
                "issuer": keycloak.issuer,
                "client_id": RUCIO_CLIENT,
                "client_secret": keycloak.rucio_client_secret,
            },
        )
        for user in state["accounts"]:
            add_oidc_identity(state, user, keycloak.user_id(user), f"{user}@example.org")
        yield state
    finally:
        sup.stop_all()


@pytest.fixture(scope="session")
def testbed(testbed_run_dir: Path, rucio: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The real testbed: control plane, interLink per site, hub, and the session's Rucio.
    Fails (never skips) when it cannot start: CI builds every binary first."""
    # offloaded jobs wait a little in the emulated batch queue, as they do at a real site
    state = up(
        testbed_run_dir,
        hub=True,
        queue_seconds=QUEUE_SECONDS,
        progress=lambda m: print(f"[testbed] {m}"),
        rucio=rucio,
    )
    try:
        yield state
    finally:
        down(testbed_run_dir)


@pytest_asyncio.fixture
async def kube(testbed: dict[str, Any]) -> AsyncIterator[Any]:
    from kubernetes_asyncio import client, config

    api = await config.new_client_from_config(
        config_file=testbed["control_plane"]["admin_kubeconfig"]
    )
    try:
        yield client.CoreV1Api(api)
    finally:
        await api.close()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        if k in os.environ:
            monkeypatch.delenv(k)
