"""GET /intertwin/site: the session's site, or an honest 404 outside the interTwin hub."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


async def test_site_comes_from_the_spawner_env(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERTWIN_SITE", "vega")
    monkeypatch.setenv("INTERTWIN_SITE_TITLE", "Offload to Vega HPC - dev VO")
    monkeypatch.setenv("INTERTWIN_SCRATCH_RSE", "VEGA-DCACHE")
    monkeypatch.setenv("INTERTWIN_SCRATCH_PATH", "/dcache/sling.si/projects/intertwin")
    monkeypatch.setenv("INTERTWIN_SITE_NAME", "Vega")
    monkeypatch.setenv("INTERTWIN_GPU_MODEL", "A100")
    r = await jp_fetch("intertwin", "site")
    assert r.code == 200
    assert json.loads(r.body) == {
        "slug": "vega",
        "title": "Offload to Vega HPC - dev VO",
        "scratch_rse": "VEGA-DCACHE",
        "scratch_path": "/dcache/sling.si/projects/intertwin",
        "name": "Vega",
        "gpu_model": "A100",
    }


async def test_no_site_is_a_404_with_a_sentence(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTERTWIN_SITE", raising=False)
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("intertwin", "site")
    assert e.value.code == 404
    body = json.loads(e.value.response.body)  # type: ignore[union-attr]
    assert body["error"] == "no_site" and "not started by the interTwin hub" in body["message"]


async def test_requests_without_a_token_are_refused(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("intertwin", "site", headers={"Authorization": ""})
    assert e.value.code in (401, 403)


async def test_a_percent_sign_reaches_the_client_and_the_log_intact(
    jp_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A sentence quoting what the user typed keeps its '%' in the answer and in the server's
    log line (a filter is parsed before Rucio is asked, so no Rucio is needed here)."""
    with caplog.at_level(logging.WARNING), pytest.raises(HTTPClientError) as e:
        await jp_fetch(
            "intertwin", "datalake", "dids", params={"scope": "intertwin", "filters": "size%=3"}
        )
    assert e.value.code == 400
    body = json.loads(e.value.response.body)  # type: ignore[union-attr]
    assert body["error"] == "bad_request" and body["param"] == "filters"
    assert body["message"].startswith("The filter 'size%=3' is not key<operator>value.")
    logged = [r.getMessage() for r in caplog.records]  # a broken %-format would raise here
    (line,) = [x for x in logged if x.endswith(body["message"])]
    assert line.startswith("400 GET ") and "/intertwin/datalake/dids" in line
