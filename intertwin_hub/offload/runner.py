"""Runs one offloaded cell at a site: the container command of a batch-cell pod.

    python -m intertwin_hub.offload.runner /var/run/intertwin/cell/inputs

The inputs file (a Secret volume) is what ``%%offload`` packed (:func:`pack_inputs`): the
cell's source, its ``--in`` variables (each pickled on its own with cloudpickle) and the names
of its ``--out`` variables. The cell runs as a module's code would, its stdout and stderr
going to the job's log as they come (line-buffered); at the end the runner prints one frame
(:mod:`intertwin_hub.offload.frame`) holding the ``--out`` values, or the exception and its
traceback (then the traceback again as text, for people reading the log), and exits 0 or 1.

When the cell took a DataLake (Rucio) token with it, the Secret holds it next to the inputs
(``rucio-token``, and ``rucio.json``: its expiry and the session's Rucio hosts). The runner
hands it to rucio-clients as rucio-clients 41 reads a token with ``auth_type = oidc``: the
WLCG bearer token discovery's ``BEARER_TOKEN_FILE`` (``wlcg_token_discovery`` in
https://github.com/rucio/rucio/blob/master/lib/rucio/common/utils.py, read by the client's
``__read_token`` in https://github.com/rucio/rucio/blob/master/lib/rucio/client/baseclient.py),
with ``RUCIO_AUTH_TYPE=oidc``, and the hosts in a ``rucio.cfg`` of the job's own
(``RUCIO_CONFIG``); so ``rucio.client.Client()`` and the ``rucio`` command work in the cell as
the user. The log's first line says until when the token is valid: it is not renewed during
the job (the job holds no hub credentials to renew it with).
"""

from __future__ import annotations

import base64
import configparser
import json
import linecache
import os
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from . import frame

FILENAME = "<offloaded cell>"
INPUTS_VERSION = 1
# the DataLake token and what goes with it, next to the inputs (the service's Secret,
# intertwin_hub.service.submit)
RUCIO_TOKEN_FILE = "rucio-token"
RUCIO_FILE = "rucio.json"


class PackError(ValueError):
    """A variable that cannot travel (the message names it)."""


def _dumps(value: Any) -> bytes:
    import cloudpickle  # the lab extra; imported here so the service can import this module

    return bytes(cloudpickle.dumps(value))


def pickle_value(name: str, value: Any, what: str) -> bytes:
    try:
        return _dumps(value)
    except Exception as e:
        raise PackError(
            f"The {what} variable {name!r} ({type(value).__name__}) cannot be pickled: {e}"
        ) from e


def pack_inputs(source: str, inputs: Mapping[str, Any], outputs: list[str]) -> bytes:
    """The inputs file: zlib-compressed JSON, each variable cloudpickled on its own (so an
    error names the variable, on either side)."""
    body = {
        "version": INPUTS_VERSION,
        "source": source,
        "inputs": {
            k: base64.b64encode(pickle_value(k, v, "input")).decode() for k, v in inputs.items()
        },
        "outputs": list(outputs),
    }
    return zlib.compress(json.dumps(body).encode(), 6)


def unpack_inputs(data: bytes) -> dict[str, Any]:
    body = json.loads(zlib.decompress(data))
    if not isinstance(body, dict) or body.get("version") != INPUTS_VERSION:
        raise ValueError("the inputs were packed by another version of %%offload")
    return body


def result_payload(values: Mapping[str, bytes]) -> bytes:
    body = {"values": {k: base64.b64encode(v).decode() for k, v in values.items()}}
    return zlib.compress(json.dumps(body).encode(), 6)


def error_payload(exc: BaseException, tb_text: str) -> bytes:
    try:
        pickled: str | None = base64.b64encode(_dumps(exc)).decode()
    except Exception:
        pickled = None
    body = {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": tb_text,
        "exception": pickled,
    }
    return zlib.compress(json.dumps(body).encode(), 6)


def read_payload(data: bytes) -> dict[str, Any]:
    body = json.loads(zlib.decompress(data))
    if not isinstance(body, dict):
        raise ValueError("the result payload is not an object")
    return body


def _traceback_without_runner(exc: BaseException) -> str:
    """The remote traceback from the cell's own frames on (the runner's are noise)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _utc(ts: float, now: float) -> str:
    at = datetime.fromtimestamp(ts, UTC)
    same_day = at.date() == datetime.fromtimestamp(now, UTC).date()
    return at.strftime("%H:%M UTC" if same_day else "%H:%M UTC on %Y-%m-%d")


def use_rucio_token(
    cell_dir: str, env: MutableMapping[str, str], now: float | None = None
) -> str | None:
    """Set ``env`` up for rucio-clients with the job's DataLake token, if it has one; the line
    the log starts with (until when the token is valid, or that it has expired), else None."""
    token_file = os.path.join(cell_dir, RUCIO_TOKEN_FILE)
    if not os.path.isfile(token_file):
        return None
    with open(os.path.join(cell_dir, RUCIO_FILE)) as f:
        info = json.load(f)
    env["BEARER_TOKEN_FILE"] = token_file
    env["RUCIO_AUTH_TYPE"] = "oidc"
    if info.get("rucio_host"):
        cfg = configparser.ConfigParser()
        cfg["client"] = {
            "rucio_host": info["rucio_host"],
            "auth_host": info.get("auth_host") or info["rucio_host"],
            "auth_type": "oidc",
        }
        path = os.path.join(tempfile.mkdtemp(prefix="intertwin-rucio-"), "rucio.cfg")
        with open(path, "w") as f:
            cfg.write(f)
        env["RUCIO_CONFIG"] = path
    now = time.time() if now is None else now
    expires = float(info["expires_at"])
    if expires <= now:
        return (
            f"The Rucio token expired at {_utc(expires, now)}, before this job started (it "
            "waited longer than a token lives): the DataLake will refuse it. Run the cell "
            "again for a fresh token."
        )
    left = expires - now
    ahead = f"{int(left)} s" if left < 120 else f"{int(left // 60)} min"
    return (
        f"Rucio token valid until {_utc(expires, now)} "
        f"({ahead} from now; it is not renewed during the job)."
    )


def run(inputs_path: str) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    try:
        said = use_rucio_token(os.path.dirname(os.path.abspath(inputs_path)), os.environ)
        if said:
            print(said, flush=True)
        with open(inputs_path, "rb") as f:
            body = unpack_inputs(f.read())
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        import cloudpickle

        for name, b64 in body["inputs"].items():
            try:
                namespace[name] = cloudpickle.loads(base64.b64decode(b64))
            except Exception as e:
                raise PackError(
                    f"The input variable {name!r} cannot be unpickled at the site "
                    f"({type(e).__name__}: {e}); is its package installed in the job's image?"
                ) from e
        source = body["source"]
        # the source under a file name of its own, so the traceback shows the cell's lines
        linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
        exec(compile(source, FILENAME, "exec"), namespace)
        values = {}
        for name in body["outputs"]:
            if name not in namespace:
                raise NameError(f"the cell did not define the output variable {name!r}")
            values[name] = pickle_value(name, namespace[name], "output")
        status, payload = "ok", result_payload(values)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        tb_text = _traceback_without_runner(e)
        status, payload = "error", error_payload(e, tb_text)
    sys.stderr.flush()
    sys.stdout.flush()
    out = sys.__stdout__ or sys.stdout
    for line in frame.encode(status, payload):
        out.write(line + "\n")
    out.flush()
    if status == "error":
        # after the frame, for whoever reads the log (the Jobs panel); the cell that waits for
        # the job stops at the frame and re-raises the exception with this traceback instead
        err = sys.__stderr__ or sys.stderr
        err.write(tb_text)
        err.flush()
    return 0 if status == "ok" else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m intertwin_hub.offload.runner INPUTS_FILE\n")
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
