"""The DataLake panel in Debian's Chromium (ui-tests/tests/datalake.spec.ts) on the hub that logs
in through the session's Keycloak (``checkin_hub``, as the real hub through EGI Check-in), with
the session's real Rucio: alice searches, opens a dataset, makes it available at Vega, watches
the rule finish and copies a local path; then Rucio is stopped and the panel must say so; the
lifetime choices saved in JupyterLab's settings are the ones offered.

The whole chain is real: the panel's calls go to the session's DataLake gateway, which gets
alice's token from the intertwin service (``GET /token/rucio``: her Keycloak sign-in, exchanged
for the audience ``rucio``), and Rucio accepts that token for her account through her OIDC
identity; Rucio's own tokens table shows it did."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from testbed.keycloak import Keycloak
from testbed.rucio import set_pump_interval, start_rucio_server, stop_rucio_server
from testbed.rucio.client import oidc_tokens

from .browser import ui_test

pytestmark = pytest.mark.testbed
DATASET = "climate.era5.2021"


@dataclass
class RucioControl:
    url: str
    # alice's Keycloak tokens Rucio had accepted, read each time the spec stops it: Rucio
    # deletes an account's expired rows now and then, and the tokens live a minute
    alice_tokens: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def rucio_control(testbed: dict[str, Any]) -> Iterator[RucioControl]:
    """POST /stop and /start of the Rucio server for the browser test; the conveyor pumps on
    its own meanwhile (as it does in the demo), and everything is restored afterwards."""
    state = testbed["rucio"]
    down = False
    control = RucioControl(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal down
            try:
                if self.path == "/stop":
                    control.alice_tokens += oidc_tokens(state, "alice")
                    stop_rucio_server(state)
                    down = True
                elif self.path == "/start":
                    start_rucio_server(state)
                    down = False
                else:
                    self.send_error(404)
                    return
                self.send_response(204)
                self.end_headers()
            except Exception as e:  # reported to the browser test, which fails with it
                self.send_error(500, str(e))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    control.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    set_pump_interval(state, 1.0)
    try:
        yield control
    finally:
        server.shutdown()
        if down:
            start_rucio_server(state)
        set_pump_interval(state, state.get("pump_interval"))


# the spec's own budget (ui_test: 900 s), plus the session's testbed, Keycloak, Rucio and
# checkin hub when this test is the first to need them: more than the default 600 s
@pytest.mark.timeout(1800)
def test_datalake_panel_in_chromium(
    testbed: dict[str, Any],
    checkin_hub: dict[str, Any],
    keycloak: Keycloak,
    rucio_control: RucioControl,
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    # Rucio stores times in UTC without a zone
    started = datetime.now(UTC).replace(tzinfo=None)
    # INTERTWIN_SCREENSHOTS=docs refreshes docs/datalake.png
    env = {
        "DATALAKE_UI": "1",
        "DATALAKE_DATASET": DATASET,
        "RUCIO_CONTROL_URL": rucio_control.url,
    }
    ui_test("tests/datalake.spec.ts", checkin_hub, tmp_path, env, passed=2, timeout=900)

    # the path the panel copied is a real file in Vega's scratch RSE, with the dataset's bytes
    copied = Path((results / "copied-path.txt").read_text().strip())
    vega = Path(testbed["rucio"]["rses"]["VEGA-DCACHE"]["path"])
    assert copied.is_relative_to(vega), (copied, vega)
    assert copied.is_file() and copied.stat().st_size == 4096, copied
    assert copied.name.startswith(DATASET), copied

    # Rucio took the panel's calls on alice's Keycloak tokens: it validated them and mapped
    # them to her account through her OIDC identity (the session holds no Rucio password)
    identity = f"SUB={keycloak.user_id('alice')}, ISS={keycloak.issuer}"
    accepted = [t for t in rucio_control.alice_tokens if t["created_at"] >= started]
    assert accepted, rucio_control.alice_tokens
    for token in accepted:
        assert token["identity"] == identity, token
        assert token["audience"] == "rucio", token
        assert {"openid", "profile"} <= set(str(token["scope"]).split()), token
