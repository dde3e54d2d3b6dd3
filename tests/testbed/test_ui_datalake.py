"""The DataLake panel in Debian's Chromium (ui-tests/tests/datalake.spec.ts) on the testbed hub
with its real Rucio: alice searches, opens a dataset, makes it available at Vega, watches the
rule finish and copies a local path; then Rucio is stopped and the panel must say so; the
lifetime choices saved in JupyterLab's settings are the ones offered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from testbed.rucio import set_pump_interval, start_rucio_server, stop_rucio_server

from .browser import ui_test

pytestmark = pytest.mark.testbed
DATASET = "climate.era5.2021"


@pytest.fixture
def rucio_control(testbed: dict[str, Any]) -> Iterator[str]:
    """POST /stop and /start of the Rucio server for the browser test; the conveyor pumps on
    its own meanwhile (as it does in the demo), and everything is restored afterwards."""
    state = testbed["rucio"]
    down = False

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal down
            try:
                if self.path == "/stop":
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    set_pump_interval(state, 1.0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        if down:
            start_rucio_server(state)
        set_pump_interval(state, state.get("pump_interval"))


def test_datalake_panel_in_chromium(
    testbed: dict[str, Any], rucio_control: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    # INTERTWIN_SCREENSHOTS=docs refreshes docs/datalake.png
    env = {
        "DATALAKE_UI": "1",
        "DATALAKE_DATASET": DATASET,
        "RUCIO_CONTROL_URL": rucio_control,
    }
    ui_test("tests/datalake.spec.ts", testbed["hub"], tmp_path, env, passed=2, timeout=900)

    # the path the panel copied is a real file in Vega's scratch RSE, with the dataset's bytes
    copied = Path((results / "copied-path.txt").read_text().strip())
    vega = Path(testbed["rucio"]["rses"]["VEGA-DCACHE"]["path"])
    assert copied.is_relative_to(vega), (copied, vega)
    assert copied.is_file() and copied.stat().st_size == 4096, copied
    assert copied.name.startswith(DATASET), copied
