"""The Jobs routes when the intertwin service cannot be reached: an honest 503 with a sentence
(the routes against the real service run on the testbed: tests/testbed/test_jobs_lab.py)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from intertwin_lab.jobs.config import JobsService
from tornado.httpclient import HTTPClientError


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _error(jp_fetch: Any, *path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch(*path, **kw)
    assert e.value.response is not None
    return e.value.code, json.loads(e.value.response.body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ("intertwin", "jobs")),
        ("GET", ("intertwin", "jobs", "0b4c5d6e")),
        ("DELETE", ("intertwin", "jobs", "0b4c5d6e")),
        ("GET", ("intertwin", "jobs", "0b4c5d6e", "logs")),
        ("GET", ("intertwin", "sites")),
    ],
)
async def test_a_service_nobody_answers_at_is_a_503_with_a_sentence(
    jp_fetch: Any, jp_serverapp: Any, method: str, path: tuple[str, ...]
) -> None:
    jp_serverapp.web_app.settings[
        "intertwin_jobs"
    ].service_url = f"http://127.0.0.1:{closed_port()}/services/intertwin/"
    status, body = await _error(jp_fetch, *path, method=method, params={"follow": "true"})
    assert status == 503
    assert body["error"] == "service_unreachable"
    assert body["message"].startswith("The intertwin service is not reachable")


async def test_a_session_not_told_where_the_service_is_says_so(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    jp_serverapp.web_app.settings["intertwin_jobs"].service_url = ""
    status, body = await _error(jp_fetch, "intertwin", "jobs")
    assert status == 503 and body["error"] == "service_unreachable"
    assert "INTERTWIN_SERVICE_URL" in body["message"]


def test_the_service_url_comes_from_the_spawners_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERTWIN_SERVICE_URL", "https://hub.example/services/intertwin")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t0k3n")
    cfg = JobsService()
    assert cfg.service_url == "https://hub.example/services/intertwin/"
    assert cfg.api_token == "t0k3n"
    monkeypatch.delenv("INTERTWIN_SERVICE_URL")
    assert JobsService().service_url == ""
