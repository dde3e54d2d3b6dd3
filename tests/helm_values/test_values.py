"""helm-values/ must validate against the Zero to JupyterHub 4.4.0 schema, merged as helm does:
the shared ukri.yaml with each environment's overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from testbed.helm_values import ENVIRONMENTS, helm_merge, values_for

REPO = Path(__file__).parents[2]
# byte-for-byte copies of the chart's 4.4.0 schema and defaults (see z2jh/README.md)
Z2JH = Path(__file__).parent / "z2jh"


def errors(values: dict[str, Any]) -> list[str]:
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(helm_merge(defaults, values))
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_validates_against_the_chart_schema(env: str) -> None:
    assert errors(values_for(env)) == []


def test_every_values_file_is_the_base_or_an_environment() -> None:
    files = {p.name for p in (REPO / "helm-values").glob("*.yaml")}
    assert files == {"ukri.yaml"} | {f"{env}.yaml" for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_environment_has_its_own_login_and_address(env: str) -> None:
    """Check-in's instance, the callback, the hub address the notebooks call back to and the
    intertwin service's address the sessions use agree within an environment, and no two
    environments share them."""
    values = values_for(env)
    oauth = values["hub"]["config"]["GenericOAuthenticator"]
    host = values["ingress"]["hosts"][0]
    assert oauth["oauth_callback_url"] == f"https://{host}/hub/oauth_callback"
    assert values["hub"]["config"]["KubeSpawner"]["hub_connect_url"] == f"https://{host}"
    # the sessions' address of the intertwin service (the Jobs panel, %%offload)
    service_url = values["hub"]["config"]["InterTwinSpawner"]["service_url"]
    assert service_url == f"https://{host}/services/intertwin/"
    issuer = oauth["authorize_url"].split("/protocol/")[0]
    assert oauth["token_url"].startswith(issuer) and oauth["userdata_url"].startswith(issuer)
    others = [values_for(e) for e in ENVIRONMENTS if e != env]
    for other in others:
        assert other["ingress"]["hosts"][0] != host
        assert not other["hub"]["config"]["GenericOAuthenticator"]["authorize_url"].startswith(
            issuer
        )


def test_the_schema_check_catches_a_typo() -> None:
    values = values_for("prod")
    values["hub"]["extraConfg"] = {}
    assert any("extraConfg" in e for e in errors(values))


def test_named_servers_are_capped() -> None:
    values = values_for("prod")
    hub = values["hub"]["config"]["JupyterHub"]
    assert hub["allow_named_servers"] is True
    assert isinstance(hub["named_server_limit_per_user"], int)
    assert 0 < hub["named_server_limit_per_user"] <= 10
    # the chart's own key would be a second, conflicting place to set it
    assert "namedServerLimitPerUser" not in values["hub"]


def test_the_intertwin_service_is_managed_by_the_hub_with_its_own_identity() -> None:
    values = values_for("prod")
    svc = values["hub"]["services"]["intertwin"]
    assert svc["command"][-2:] == ["-m", "intertwin_hub.service"]
    assert svc["url"].endswith(":10101")
    assert "access:services!service=intertwin" in values["hub"]["loadRoles"]["user"]["scopes"]
    assert values["hub"]["loadRoles"]["intertwin-service"]["services"] == ["intertwin"]
    mounts = {m["mountPath"] for m in values["hub"]["extraVolumeMounts"]}
    assert str(Path(svc["environment"]["INTERTWIN_KUBE_TOKEN_FILE"]).parent) in mounts


def test_the_service_role_is_the_one_the_testbed_grants() -> None:
    from testbed.cluster import SERVICE_CLUSTER_ROLE_RULES, SERVICE_ROLE_RULES

    docs = {
        d["kind"]: d
        for d in yaml.safe_load_all(
            (REPO / "helm-values" / "rbac" / "intertwin-service.yaml").read_text()
        )
    }
    assert docs["Role"]["rules"] == SERVICE_ROLE_RULES
    assert docs["ClusterRole"]["rules"] == SERVICE_CLUSTER_ROLE_RULES
