"""``GET /jobs/{id}/result``: a batch cell's result, read from the end of its job's log through
the Kubernetes API (virtual kubelet → interLink → the site's plugin), the one channel every
site has. The frame (:mod:`intertwin_hub.offload.frame`) is found and checked here and handed
on as it is; the service never unpickles it (only the user's own kernel does)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio.client.rest import ApiException

from ..errors import ApiError
from ..labels import KIND_BATCH_CELL
from ..offload.frame import FrameError, decode
from ..status import FINAL
from . import db

if TYPE_CHECKING:
    from .app import Service


async def read_log(svc: Service, job: db.Job) -> str:
    try:
        resp: Any = await svc.core.read_namespaced_pod_log(
            job.pod, svc.namespace, _preload_content=False
        )
    except ApiException as e:
        if e.status in (400, 404):
            raise ApiError(
                410, "result_gone", f"The site has no log of this job any more: {e.reason}"
            ) from None
        raise ApiError(502, "kubernetes_error", f"Kubernetes: {e.reason}") from None
    except (TimeoutError, OSError):
        raise ApiError(
            503, "kubernetes_unavailable", "The Kubernetes API cannot be reached."
        ) from None
    try:
        return (await resp.read()).decode(errors="replace")
    finally:
        resp.release()


async def read_result(svc: Service, job: db.Job) -> dict[str, Any]:
    """``{"status": "ok"|"error", "bytes", "sha256", "payload"}`` of a finished batch cell."""
    if job.kind != KIND_BATCH_CELL:
        raise ApiError(404, "not_found", "Only batch cells have a result; this is a notebook.")
    if job.state not in FINAL:
        raise ApiError(
            409,
            "still_running",
            f"The batch cell has not ended yet ({job.sentence}); ask again when it has.",
            state=job.state,
        )
    if job.uid not in svc.index.pods:
        raise ApiError(
            410,
            "result_gone",
            "The job's pod is gone, and its log with it: its result cannot be read any more.",
        )
    log = await read_log(svc, job)
    try:
        frame = decode(log)
    except FrameError as e:
        if e.missing:
            raise ApiError(
                409,
                "no_result",
                f"The batch cell ended ({job.sentence}) without leaving a result in its log: "
                "it was stopped before the cell finished. Its log tells more.",
                state=job.state,
            ) from None
        raise ApiError(
            502, "result_corrupt", f"The batch cell's result in its log is damaged: {e}."
        ) from None
    return {
        "status": frame.status,
        "bytes": len(frame.payload),
        "sha256": frame.sha256,
        "payload": base64.b64encode(frame.payload).decode(),
    }
