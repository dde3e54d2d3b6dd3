"""The DataLake API against the REAL Rucio of the testbed (session fixture ``rucio``), through a
real Jupyter server (pytest-jupyter's ``jp_fetch``), as alice unless a test says otherwise."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import intertwin_lab.datalake
import pytest
import yaml
from intertwin_lab.datalake import DataLake, DataLakeService
from intertwin_lab.datalake.handlers import SETTINGS_KEY
from jsonschema import Draft202012Validator
from tornado.httpclient import HTTPClientError

OPENAPI = Path(intertwin_lab.datalake.__file__).with_name("openapi.yaml")
SITE_RSE = "VEGA-DCACHE"


def datalake_config(
    rucio: dict[str, Any], user: str, rse: str | None = SITE_RSE, **overrides: Any
) -> dict[str, Any]:
    """``c.DataLake`` for ``user`` at the site whose scratch RSE is ``rse``; in the testbed the
    RSE's directory IS the mount path, so local paths are real files."""
    acc = rucio["accounts"][user]
    cfg: dict[str, Any] = {
        "rucio_base_url": rucio["url"],
        "rucio_auth_url": rucio["url"],
        "auth_type": "userpass",
        "account": acc["account"],
        "username": acc["username"],
        "password": acc["password"],
        "destination_rse": rse,
        "rse_mount_path": rucio["rses"][rse]["path"] if rse else None,
        "site_name": rucio["rses"][rse]["site"] if rse else "UKRI",
        "site_title": "Offload to Vega HPC - dev VO" if rse == SITE_RSE else "",
        "default_lifetime_days": 7,
        "max_lifetime_days": 30,
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture
def datalake_user() -> str:
    return "alice"


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], rucio: dict[str, Any], datalake_user: str
) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"intertwin_lab": True}},
        "DataLake": datalake_config(rucio, datalake_user),
    }


Api = Callable[..., Awaitable[tuple[int, Any]]]


class OpenAPI:
    """Validates real answers against openapi.yaml (OpenAPI 3.0 → JSON Schema 2020-12)."""

    def __init__(self) -> None:
        self.doc = yaml.safe_load(OPENAPI.read_text())
        self.components = _to_json_schema(self.doc["components"])

    def check(self, method: str, route: str, status: int, body: Any) -> None:
        op = self.doc["paths"][route][method.lower()]
        assert str(status) in op["responses"], (
            f"{method} {route} answered {status}, which openapi.yaml does not document"
        )
        resp = op["responses"][str(status)]
        if "$ref" in resp:
            resp = self.doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[-1]]
        content = resp.get("content")
        if content is None:
            assert body is None, f"{method} {route} {status} should have no body"
            return
        schema = _to_json_schema(content["application/json"]["schema"])
        Draft202012Validator({**schema, "components": self.components}).validate(body)


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    return OpenAPI()


def _route(path: str) -> str:
    """The openapi.yaml route of a request path."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] == "dids" and len(parts) >= 3:
        return "/dids/{scope}/{name}" + ("/" + parts[3] if len(parts) > 3 else "")
    if parts[0] == "rules" and len(parts) == 2:
        return "/rules/{rule_id}"
    return "/" + "/".join(parts)


@pytest.fixture
def api(jp_fetch: Any, openapi: OpenAPI) -> Api:
    """``await api("GET", "dids", params={...}, body={...})`` → (status, JSON), every answer
    checked against openapi.yaml."""

    async def call(
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        check: bool = True,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"method": method, "params": params or {}}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PATCH", "PUT"):
            kwargs["body"] = "{}"
        kwargs["allow_nonstandard_methods"] = True
        # tornado's 20 s default is short for a page of 1,000 replicas on a loaded 2-core box
        kwargs["request_timeout"] = 180
        try:
            r = await jp_fetch("intertwin", "datalake", *path.split("/"), **kwargs)
            code, raw = r.code, r.body
        except HTTPClientError as e:
            assert e.response is not None
            code, raw = e.code, e.response.body
        data = json.loads(raw) if raw else None
        if check:
            openapi.check(method, _route(path), code, data)
        return code, data

    return call


def did_path(did: str, suffix: str = "") -> str:
    scope, name = did.split(":", 1)
    return f"dids/{quote(scope, safe='')}/{quote(name, safe='')}" + (f"/{suffix}" if suffix else "")


@pytest.fixture
def use_datalake(jp_serverapp: Any, rucio: dict[str, Any]) -> Callable[..., DataLakeService]:
    """Swap the server's DataLake for another user / site / Rucio (same server, one call)."""

    def swap(user: str = "alice", rse: str | None = SITE_RSE, **overrides: Any) -> DataLakeService:
        cfg = DataLake(**datalake_config(rucio, user, rse, **overrides))
        service = DataLakeService(cfg)
        jp_serverapp.web_app.settings[SETTINGS_KEY] = service
        return service

    return swap
