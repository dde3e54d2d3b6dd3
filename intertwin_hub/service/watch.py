"""One shared watch of the labelled workload pods (in the hub's namespace) and of the nodes,
feeding the ``Index``. A watch that expires (HTTP 410 Gone: the resourceVersion is too old,
https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes)
or breaks is followed by a fresh list, which the index reconciles (kubernetes_asyncio's
``Watch`` raises the 410 as an ``ApiException``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from ..labels import WORKLOAD_SELECTOR
from .index import Index

log = logging.getLogger("intertwin.service")
WATCH_SECONDS = 300
RETRY_SECONDS = (1, 2, 5, 10, 30)


class Watcher:
    def __init__(self, api: client.ApiClient, namespace: str, index: Index) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.index = index
        self.pods_listed = asyncio.Event()
        self.nodes_listed = asyncio.Event()
        self.relists = 0

    async def run(self) -> None:
        await asyncio.gather(
            self._loop("pods", self._pods_once), self._loop("nodes", self._nodes_once)
        )

    async def _loop(self, what: str, once: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            try:
                await once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except ApiException as e:
                if e.status != 410:
                    failures += 1
                    log.warning("watch of %s: %s %s", what, e.status, e.reason)
            except (OSError, aiohttp.ClientError, TimeoutError) as e:
                failures += 1
                log.warning("watch of %s: the Kubernetes API is unreachable (%s)", what, e)
            except Exception:
                failures += 1
                log.exception("watch of %s broke", what)
            if failures:
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])
            self.relists += 1

    async def _list(
        self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        # the raw JSON: 10,000 pods are not worth turning into models and back
        resp = await func(*args, _preload_content=False, **kwargs)
        try:
            return json.loads(await resp.read())
        finally:
            resp.release()

    async def _pods_once(self) -> None:
        await self._list_then_watch(
            self.core.list_namespaced_pod,
            (self.namespace,),
            {"label_selector": WORKLOAD_SELECTOR},
            self.index.reconcile,
            self.pods_listed,
            self.index.pod_event,
        )

    async def _nodes_once(self) -> None:
        await self._list_then_watch(
            self.core.list_node,
            (),
            {},
            self.index.reset_nodes,
            self.nodes_listed,
            self.index.node_event,
        )

    async def _list_then_watch(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_list: Callable[[list[dict[str, Any]]], Any],
        listed_event: asyncio.Event,
        on_event: Callable[[str, dict[str, Any]], Any],
    ) -> None:
        """List, hand the items over, then watch from the list's resourceVersion until the
        watch ends (the caller lists again)."""
        listed = await self._list(func, *args, **kwargs)
        on_list(listed.get("items") or [])
        listed_event.set()
        w = watch.Watch()
        async with w.stream(
            func,
            *args,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=WATCH_SECONDS,
            **kwargs,
        ) as stream:
            async for ev in stream:
                if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    on_event(ev["type"], ev["raw_object"])
