"""Runs one offloaded cell at a site: the container command of a batch-cell pod.

    python -m intertwin_hub.offload.runner /var/run/intertwin/cell/inputs

The inputs file (a Secret volume) is what ``%%offload`` packed (:func:`pack_inputs`): the
cell's source, its ``--in`` variables (each pickled on its own with cloudpickle) and the names
of its ``--out`` variables. The cell runs as a module's code would, its stdout and stderr
going to the job's log as they come (line-buffered); at the end the runner prints one frame
(:mod:`intertwin_hub.offload.frame`) holding the ``--out`` values, or the exception and its
traceback (then the traceback again as text, for people reading the log), and exits 0 or 1.
"""

from __future__ import annotations

import base64
import json
import linecache
import sys
import traceback
import zlib
from collections.abc import Mapping
from typing import Any

from . import frame

FILENAME = "<offloaded cell>"
INPUTS_VERSION = 1


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


def run(inputs_path: str) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    try:
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
