"""The kernel side of "add to notebook": DIDs attached to a notebook become Python variables.

An IPython extension (``%load_ext intertwin_lab.datalake.kernel``; the DataLake panel loads it
itself) that answers rucio-jupyterlab's ``rucio-jupyterlab:kernel`` comm with the same message,
so notebooks and images made for rucio-jupyterlab keep working::

    {"action": "inject", "dids": [{"type": "file" | "collection", "variableName": "era5",
      "did": "scope:name", "didAvailable": true, "files": [{"path": ..., "pfn": ...}] | null}]}

A file becomes a ``str`` (its local path), a collection a ``list`` of them. A DID not yet
available at the session's site becomes a placeholder that says so when used, rather than a
path that does not exist.

``resolve_dids()`` (rucio-jupyterlab's helper, put in the user's namespace as it does) asks the
panel over the ``rucio-jupyterlab:frontend`` comm to set the notebook's attached DIDs again;
they are set when the running cell ends (the kernel handles the panel's answer then).
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from typing import Any

COMM_TARGET = "rucio-jupyterlab:kernel"
# the frontend's comm target, which rucio-jupyterlab's resolve_dids() asks for injections on
FRONTEND_COMM_TARGET = "rucio-jupyterlab:frontend"


class DIDNotAvailableError(RuntimeError):
    """A variable was used before its DID reached this site's scratch."""


class LocalFile(str):
    """The local path of one file of the DataLake, with its DID and Rucio PFN."""

    did: str
    pfn: str | None

    def __new__(cls, path: str, did: str = "", pfn: str | None = None) -> LocalFile:
        obj = super().__new__(cls, path)
        obj.did, obj.pfn = did, pfn
        return obj


class LocalFiles(list[LocalFile]):
    """The local paths of a collection's files, in the collection's order."""

    def __init__(self, did: str, files: list[LocalFile]) -> None:
        super().__init__(files)
        self.did = did

    def __repr__(self) -> str:
        return f"<{len(self)} local files of {self.did}>"


class NotAvailable:
    """Stands for a DID that is not at this site yet; any use explains what to do."""

    def __init__(self, did: str, variable: str) -> None:
        self._did, self._variable = did, variable

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise DIDNotAvailableError(
            f"{self._did} is not available at this site yet, so `{self._variable}` has no "
            "local path. Make it available in the DataLake panel and wait until it shows "
            "AVAILABLE; the variable is filled in then."
        )

    __str__ = __fspath__ = __iter__ = __len__ = __getitem__ = _refuse

    def __repr__(self) -> str:
        return f"<{self._did}: not available at this site yet>"


def variables(dids: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The variables an ``inject`` message asks for; entries that make no sense are skipped."""
    out: dict[str, Any] = {}
    for entry in dids:
        name = str(entry.get("variableName") or "")
        did = str(entry.get("did") or "")
        if not name.isidentifier() or keyword.iskeyword(name):
            continue
        files = [
            LocalFile(str(f["path"]), did, f.get("pfn"))
            for f in (entry.get("files") or [])
            if isinstance(f, Mapping) and f.get("path")
        ]
        available = bool(entry.get("didAvailable", bool(files)))
        if not available or (entry.get("type") != "collection" and not files):
            out[name] = NotAvailable(did, name)
        elif entry.get("type") == "collection":
            out[name] = LocalFiles(did, files)
        else:
            out[name] = files[0]
    return out


def _frontend_comm() -> Any:
    try:
        from comm import create_comm  # ipykernel >= 6.22 makes this a kernel comm
    except ImportError:  # older ipykernel
        from ipykernel.comm import Comm

        return Comm(target_name=FRONTEND_COMM_TARGET)
    return create_comm(target_name=FRONTEND_COMM_TARGET)


def make_resolve_dids() -> Any:
    """rucio-jupyterlab's ``resolve_dids()``: ask the panel to set the attached DIDs again."""
    state: dict[str, Any] = {}

    def resolve_dids() -> None:
        """Ask the DataLake panel to set this notebook's attached DIDs as variables again (with
        the paths where they are now); they are set when this cell has finished."""
        if state.get("comm") is None:
            state["comm"] = _frontend_comm()
        state["comm"].send({"action": "request-inject"})

    return resolve_dids


def load_ipython_extension(ipython: Any) -> None:
    """Register the comm target; the panel opens a comm, sends ``inject``, gets ``ack-inject``.
    Also give the user rucio-jupyterlab's ``resolve_dids()``."""
    kernel = getattr(ipython, "kernel", None)
    if kernel is None:  # a terminal IPython: no frontend to talk to
        return
    ipython.push({"resolve_dids": make_resolve_dids()})

    def opened(comm: Any, _open_msg: Mapping[str, Any]) -> None:
        @comm.on_msg
        def received(msg: Mapping[str, Any]) -> None:
            data = msg["content"]["data"]
            if data.get("action") != "inject":
                return
            pushed = variables(list(data.get("dids") or []))
            ipython.push(pushed)
            comm.send({"action": "ack-inject", "variable_names": sorted(pushed)})

    kernel.comm_manager.register_target(COMM_TARGET, opened)


def unload_ipython_extension(ipython: Any) -> None:
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        kernel.comm_manager.unregister_target(COMM_TARGET, None)
