"""helm-values' whole ``hub.config`` is a working hub configuration: the testbed runs it with
only the deployment's URLs swapped (EGI Check-in for the testbed's Keycloak, the public hub URL
for the testbed's proxy), and a user logs in through Keycloak and spawns through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from traitlets.config import Config

from testbed import procs
from testbed.cluster import ControlPlane, Identity
from testbed.helm_values import ENVIRONMENTS, values_for
from testbed.hub import hub_config, public_url, values_hub_config
from testbed.keycloak import USERS_PASSWORD, Keycloak

from .hubapi import checkin_login, follow, form_action, stop

HUB = "http://127.0.0.1:3"
# what the testbed changes in hub.config: the deployment's URLs, and the run's hub client
SWAPPED = {
    ("GenericOAuthenticator", "authorize_url"),
    ("GenericOAuthenticator", "token_url"),
    ("GenericOAuthenticator", "userdata_url"),
    ("GenericOAuthenticator", "oauth_callback_url"),
    ("KubeSpawner", "hub_connect_url"),
    ("InterTwinSpawner", "service_url"),
}
CLIENT = {("GenericOAuthenticator", "client_id"), ("GenericOAuthenticator", "client_secret")}


def keys(config: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    return {(section, key) for section, values in config.items() for key in values}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_testbed_runs_the_whole_hub_config_with_only_its_urls_swapped(
    env: str, unstarted_keycloak: Keycloak
) -> None:
    kc = unstarted_keycloak
    values = values_for(env)["hub"]["config"]
    config = values_hub_config(kc, HUB, env)
    assert keys(config) == keys(values) | CLIENT
    changed = {(s, k) for s, k in keys(values) if config[s][k] != values[s][k]}
    assert changed == SWAPPED
    oauth = config["GenericOAuthenticator"]
    assert oauth["authorize_url"] == f"{kc.url}/realms/egi/protocol/openid-connect/auth"
    assert oauth["userdata_url"] == f"{kc.url}/realms/egi/protocol/openid-connect/userinfo"
    assert oauth["oauth_callback_url"] == f"{HUB}/hub/oauth_callback"
    assert config["KubeSpawner"]["hub_connect_url"] == HUB
    assert config["InterTwinSpawner"]["service_url"] == f"{HUB}/services/intertwin/"
    assert values["InterTwinSpawner"]["service_url"].startswith(public_url(env) + "/")


def test_a_deployment_url_the_testbed_does_not_swap_is_refused(
    monkeypatch: pytest.MonkeyPatch, unstarted_keycloak: Keycloak
) -> None:
    """A new Check-in or hub URL in the values must not send a test to the real one."""
    import testbed.hub

    values = values_for("prod")
    values["hub"]["config"]["GenericOAuthenticator"]["logout_redirect_url"] = (
        "https://aai.egi.eu/oidc/logout"
    )
    monkeypatch.setattr(testbed.hub, "values_for", lambda env: values)
    with pytest.raises(procs.TestbedError, match=r"GenericOAuthenticator\.logout_redirect_url"):
        values_hub_config(unstarted_keycloak, HUB)


def test_hub_config_wins_over_the_testbed_defaults(
    tmp_path: Path, unstarted_keycloak: Keycloak
) -> None:
    """The testbed's jupyterhub_config.py, loaded as JupyterHub loads it: every hub.config value
    is in force (it comes last, as the chart applies it), e.g. the named-server limit."""
    cp = ControlPlane(
        api_url="https://127.0.0.1:4",
        admin_kubeconfig="/nowhere",
        hub_kubeconfig="/nowhere",
        namespace="intertwin-checkin",
        identities={"service": Identity("service", "t")},
    )
    kc = unstarted_keycloak
    text = hub_config(cp, tmp_path, 3, 5, 6, "token", keycloak=kc)
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"get_config": lambda: c})
    expected = values_hub_config(kc, HUB)
    assert {(s, k): c[s][k] for s, k in keys(expected)} == {
        (s, k): expected[s][k] for s, k in keys(expected)
    }
    assert c.JupyterHub.named_server_limit_per_user == 5
    assert c.KubeSpawner.namespace == "intertwin-checkin"


@pytest.mark.testbed
@pytest.mark.asyncio
async def test_alice_logs_in_and_spawns_on_the_hub_of_the_values(
    checkin_hub: dict[str, Any],
) -> None:
    """On the hub of the values: alice logs in through Keycloak, the spawn form offers her VO's
    sites, and the server she starts from it (at UKRI) answers her through the proxy (the
    notebook reached the hub at the values' hub_connect_url for her login)."""
    hub = checkin_hub
    url = hub["url"]
    session, status, page, where = await checkin_login(
        url, hub["idp_url"], "alice", USERS_PASSWORD, next_url="/hub/spawn/alice/values"
    )
    async with session:
        assert status == 200 and where == f"{url}/hub/spawn/alice/values", (status, where)
        assert "Offload to Vega HPC - dev VO" in page and "UKRI Cloud" in page
        async with session.post(f"{url}{form_action(page)}", data={"profile": "ukri"}) as r:
            assert r.status == 200, await r.text()
        admin = {"Authorization": f"token {hub['service_token']}"}
        async with aiohttp.ClientSession(headers=admin) as api:
            try:
                events = await follow(api, hub["api_url"], "alice", "values")
                assert events[-1].get("ready"), events
                # the notebook's own login: its OAuth with the hub, at hub_connect_url
                async with session.get(f"{url}/user/alice/values/lab") as r:
                    assert r.status == 200, await r.text()
                    assert r.url.path == "/user/alice/values/lab", r.url
            finally:
                await stop(api, hub["api_url"], "alice", "values")
