"""helm-values/ must validate against the Zero to JupyterHub 4.4.0 schema, merged as helm does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).parents[2]
# byte-for-byte copies of the chart's 4.4.0 schema and defaults (see z2jh/README.md)
Z2JH = Path(__file__).parent / "z2jh"


def helm_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = helm_merge(out[k], v)
        else:
            out[k] = v
    return out


def errors(values: dict[str, Any]) -> list[str]:
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(helm_merge(defaults, values))
    ]


@pytest.mark.parametrize("path", sorted((REPO / "helm-values").glob("*.yaml")), ids=str)
def test_values_validate_against_the_chart_schema(path: Path) -> None:
    assert errors(yaml.safe_load(path.read_text())) == []


def test_the_schema_check_catches_a_typo() -> None:
    values = yaml.safe_load((REPO / "helm-values" / "ukri.yaml").read_text())
    values["hub"]["extraConfg"] = {}
    assert any("extraConfg" in e for e in errors(values))


def test_named_servers_are_capped() -> None:
    values = yaml.safe_load((REPO / "helm-values" / "ukri.yaml").read_text())
    hub = values["hub"]["config"]["JupyterHub"]
    assert hub["allow_named_servers"] is True
    assert isinstance(hub["named_server_limit_per_user"], int)
    assert 0 < hub["named_server_limit_per_user"] <= 10
    # the chart's own key would be a second, conflicting place to set it
    assert "namedServerLimitPerUser" not in values["hub"]


def test_the_intertwin_service_is_managed_by_the_hub_with_its_own_identity() -> None:
    values = yaml.safe_load((REPO / "helm-values" / "ukri.yaml").read_text())
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
