"""Fixtures of the testbed tests that log in as on the real hub: one hub of helm-values' whole
``hub.config`` against the session's Keycloak (tests/conftest.py), which the browser tests use;
and a Keycloak that is not running, for the tests that only render a hub's configuration from
one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest

from testbed.cluster import hub_namespace
from testbed.hub import start_hub
from testbed.keycloak import Keycloak
from testbed.lifecycle import control_plane_of
from testbed.procs import Supervisor, free_port

# the checkin hub's notebooks: a namespace of their own, so its intertwin service sees them
# alone and the session hub's service none of them
CHECKIN_NAMESPACE = "intertwin-checkin"


@pytest.fixture
def unstarted_keycloak() -> Keycloak:
    """A Keycloak's coordinates with nothing behind them (ports 1 and 2 of loopback, a hub
    client ``intertwin-hub`` with the secret ``s``, 60 s access tokens): what the tests that
    render a hub's configuration from a Keycloak, without starting one, render it from."""
    return Keycloak(
        url="http://127.0.0.1:1/auth",
        management_url="http://127.0.0.1:2/auth",
        admin_user="a",
        admin_password="p",
        client_id="intertwin-hub",
        client_secret="s",
        access_token_lifespan=60,
        java="java",
        home="/nowhere",
    )


@pytest.fixture(scope="session")
def checkin_hub(
    testbed: dict[str, Any], keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A hub on the session testbed that runs helm-values' whole production ``hub.config``
    (testbed/hub.py: values_hub_config) against the session's Keycloak: users log in through
    Keycloak's own page, their VOs are the groups their entitlements give them, the spawner,
    named-server limit and service URL are the values'. With the session's Rucio, which takes
    that Keycloak's tokens: its sessions' DataLake renews them through the intertwin service.
    Its state as ``testbed["hub"]`` gives it, plus ``login`` (``checkin``), ``idp_url`` and
    ``namespace``."""
    sup = Supervisor(tmp_path_factory.mktemp("checkin-hub"))
    port = free_port()
    keycloak.allow_redirect(f"http://127.0.0.1:{port}/hub/oauth_callback")
    cp = hub_namespace(control_plane_of(testbed), CHECKIN_NAMESPACE)
    try:
        hub = start_hub(
            sup, cp, name="checkin", rucio=testbed.get("rucio"), keycloak=keycloak, port=port
        )
        yield {
            **asdict(hub),
            "login": "checkin",
            "idp_url": keycloak.url,
            "namespace": cp.namespace,
        }
    finally:
        sup.stop_all(("jupyterhub-checkin", "proxy-checkin"))
