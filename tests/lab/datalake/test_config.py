"""The DataLake configuration follows rucio-jupyterlab's RUCIO_* convention (what the hub's
spawner injects), so an interTwin image configured for rucio-jupyterlab works unchanged."""

from __future__ import annotations

import pytest
from intertwin_lab.datalake import DataLake
from traitlets.config import Config

from intertwin_hub.sites import load_catalogue
from intertwin_hub.spawner.pod import rucio_env

RUCIO_VARS = (
    "RUCIO_BASE_URL",
    "RUCIO_AUTH_URL",
    "RUCIO_DESTINATION_RSE",
    "RUCIO_RSE_MOUNT_PATH",
    "RUCIO_SITE_NAME",
    "RUCIO_REPLICATION_RULE_LIFETIME_DAYS",
    "RUCIO_OIDC_AUTH",
    "RUCIO_OIDC_ENV_NAME",
    "RUCIO_OIDC_FILE_NAME",
    "RUCIO_ACCOUNT",
    "RUCIO_AUTH_TYPE",
    "RUCIO_DEFAULT_AUTH_TYPE",
    "RUCIO_USERNAME",
    "RUCIO_PASSWORD",
    "RUCIO_VO",
    "INTERTWIN_SITE_TITLE",
    "RUCIO_PATH_BEGINS_AT",
    "INTERTWIN_RUCIO_PFN_PREFIX",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in RUCIO_VARS:
        monkeypatch.delenv(var, raising=False)


def test_defaults_from_what_the_spawner_injects(monkeypatch: pytest.MonkeyPatch) -> None:
    vega = next(s for s in load_catalogue().sites if s.slug == "vega")
    env = rucio_env(
        vega,
        {
            "RUCIO_BASE_URL": "https://rucio.example/",
            "RUCIO_AUTH_URL": "https://rucio-auth.example",
        },
        "jwt-of-alice",
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = DataLake()
    assert cfg.rucio_base_url == "https://rucio.example"
    assert cfg.auth_url == "https://rucio-auth.example"
    assert cfg.destination_rse == "VEGA-DCACHE" and cfg.site_name == "VEGA"
    assert cfg.rse_mount_path == vega.scratch.mount_path
    assert cfg.auth_type == "oidc" and cfg.oidc_auth == "env"
    assert cfg.oidc_env_name == "RUCIO_ACCESS_TOKEN"
    assert cfg.lifetime_days == 7


def test_explicit_env_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUCIO_AUTH_TYPE", "userpass")
    monkeypatch.setenv("RUCIO_USERNAME", "alice")
    monkeypatch.setenv("RUCIO_REPLICATION_RULE_LIFETIME_DAYS", "3")
    monkeypatch.setenv("RUCIO_OIDC_AUTH", "file")
    monkeypatch.setenv("RUCIO_DESTINATION_RSE", "")
    cfg = DataLake()
    assert cfg.auth_type == "userpass" and cfg.username == "alice"
    assert cfg.lifetime_days == 3 and cfg.oidc_auth == "file"
    assert cfg.destination_rse is None  # a site without scratch
    c = Config()
    c.DataLake.destination_rse = "PSNC-DCACHE"
    c.DataLake.default_lifetime_days = 0
    cfg = DataLake(config=c)
    assert cfg.destination_rse == "PSNC-DCACHE" and cfg.lifetime_days == 7


def test_the_sites_pfn_rule_reaches_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    psnc = next(s for s in load_catalogue().sites if s.slug == "psnc")
    env = rucio_env(psnc, {"RUCIO_BASE_URL": "https://rucio.example"}, None)
    assert env["RUCIO_PATH_BEGINS_AT"] == "4" and "INTERTWIN_RUCIO_PFN_PREFIX" not in env
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = DataLake()
    assert cfg.path_begins_at == 4 and cfg.pfn_prefix is None
    monkeypatch.setenv("INTERTWIN_RUCIO_PFN_PREFIX", "davs://door:2880/pnfs/x/")
    monkeypatch.setenv("RUCIO_PATH_BEGINS_AT", "")
    cfg = DataLake()
    assert cfg.path_begins_at is None and cfg.pfn_prefix == "davs://door:2880/pnfs/x/"
