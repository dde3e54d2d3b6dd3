"""One shared watch of the labelled workload pods (in the hub's namespace) and of the nodes,
feeding the ``Index``. A watch that expires (HTTP 410 Gone: the resourceVersion is too old,
https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes)
or breaks is followed by a fresh list, which the index reconciles (kubernetes_asyncio's
``Watch`` raises the 410 as an ``ApiException``).

A workload seen ended (or being deleted) gets the last lines of its log fetched once and kept
in the history: the log lives at the site only as long as the pod does."""

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
from .index import LAST_LINES, Index, ended_container, kept_tail

log = logging.getLogger("intertwin.service")
WATCH_SECONDS = 300
RETRY_SECONDS = (1, 2, 5, 10, 30)
# a log fetch goes virtual kubelet → interLink → the site's plugin; a cancel waits for it
TAIL_TIMEOUT_SECONDS = 15


class Watcher:
    def __init__(self, api: client.ApiClient, namespace: str, index: Index) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.index = index
        self.pods_listed = asyncio.Event()
        self.nodes_listed = asyncio.Event()
        self.relists = 0
        # pods whose last lines were fetched (or are being fetched) in this process
        self.tails: set[str] = set()
        self._tail_tasks: set[asyncio.Task[None]] = set()
        # told of every labelled pod listed or changed (the service keeps ended batch cells'
        # results and deletes their pods); True: it keeps the pod's last lines itself
        self.on_pod: Callable[[dict[str, Any]], bool] | None = None

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
            self._pods_listed,
            self.pods_listed,
            self._pod_event,
        )

    def _pods_listed(self, pods: list[dict[str, Any]]) -> None:
        self.index.reconcile(pods)
        for pod in pods:
            self._ended(pod)

    def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        self.index.pod_event(kind, pod)
        if kind != "DELETED":
            self._ended(pod)

    def _ended(self, pod: dict[str, Any]) -> None:
        if self.on_pod is None or not self.on_pod(pod):
            self._keep_tail_if_ended(pod)

    def _keep_tail_if_ended(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or uid in self.tails or uid not in self.index.pods:
            return
        container = ended_container(pod)
        if container is None:
            return
        job = self.index.store.get(uid)
        if job is None or job.last_lines is not None:
            self.tails.add(uid)
            return
        task = asyncio.get_running_loop().create_task(
            self.keep_tail(uid, meta.get("name") or "", container)
        )
        self._tail_tasks.add(task)
        task.add_done_callback(self._tail_tasks.discard)

    async def keep_tail(self, uid: str, pod: str, container: str | None = None) -> None:
        """Fetch the last ``LAST_LINES`` lines of the pod's log (through the Kubernetes API:
        virtual kubelet, interLink, the site's plugin) and keep them with the job. Once per
        pod; a log that cannot be had is told in the service's log and left."""
        self.tails.add(uid)
        kwargs: dict[str, Any] = {
            "tail_lines": LAST_LINES,
            "_preload_content": False,
            "_request_timeout": TAIL_TIMEOUT_SECONDS,
        }
        if container:
            kwargs["container"] = container
        try:
            resp: Any = await self.core.read_namespaced_pod_log(pod, self.namespace, **kwargs)
            try:
                text = (await resp.read()).decode(errors="replace")
            finally:
                resp.release()
        except asyncio.CancelledError:
            raise
        except ApiException as e:
            log.warning("the last lines of pod %s: %s %s", pod, e.status, e.reason)
            return
        except (OSError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("the last lines of pod %s: the Kubernetes API is unreachable (%s)", pod, e)
            return
        self.index.store.keep_last_lines(uid, kept_tail(text))

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
