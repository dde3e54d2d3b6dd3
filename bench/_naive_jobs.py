"""The naive "my jobs" that ``bench/jobs.py`` measures the intertwin service against: a
hub-managed service of the same kind (tornado, the intertwin service's own request handler base,
so the same ``HubOAuth`` authentication and admin check, reached through the same proxy) that
keeps nothing: every request LISTs the caller's pods from the Kubernetes API with a label
selector and tells each one's status.

Started by the bench's hub as ``c.JupyterHub.services`` entry ``naive-jobs``
(``python bench/_naive_jobs.py``), with the intertwin service's Kubernetes identity in
``KUBECONFIG`` and the namespace in ``INTERTWIN_NAMESPACE``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyterhub.services.auth import HubOAuth
from jupyterhub.utils import url_path_join
from kubernetes_asyncio import client, config
from kubespawner.slugs import is_valid_label, safe_slug
from tornado.web import Application

from intertwin_hub.labels import (
    LABEL_USER,
    WORKLOAD_SELECTOR,
    kind_of,
    owner_of,
    server_of,
    site_of,
)
from intertwin_hub.service import db
from intertwin_hub.service.app import BaseHandler, Service
from intertwin_hub.service.lifetime import exit_with_the_hub, hub_pid
from intertwin_hub.sites import load_catalogue
from intertwin_hub.status import PENDING, JobStatus, pod_status

# the hub that starts this service: the service ends with it
HUB_PID = hub_pid()
NAME = "naive-jobs"


class NaiveService(Service):
    """The intertwin service's shared state, for what ``BaseHandler`` needs (the hub's admin
    flag, cached as the intertwin service caches it) and the cluster client; its watch is
    never started, so its index and history stay empty: every answer comes from a LIST."""

    def site_name(self, slug: str) -> str:
        site = self.catalogue.get(slug)
        return site.name if site else slug


class NaiveJobsHandler(BaseHandler):
    svc: NaiveService

    async def get(self) -> None:
        selector = WORKLOAD_SELECTOR
        if not self.admin:
            # KubeSpawner's label is a slug of the name; the exact name is checked below
            slug = safe_slug(self.user_name, is_valid=is_valid_label)
            selector = f"{LABEL_USER}={slug},{selector}"
        # _preload_content=False: the raw aiohttp response, not the model the stubs name
        resp: Any = await self.svc.core.list_namespaced_pod(
            self.svc.namespace, label_selector=selector, _preload_content=False
        )
        try:
            items = json.loads(await resp.read()).get("items") or []
        finally:
            resp.release()
        jobs = []
        for pod in items:
            user = owner_of(pod)
            if user != self.user_name and not self.admin:
                continue
            meta = pod.get("metadata") or {}
            site = site_of(pod) or ""
            status = pod_status(self.svc.site_name(site), pod) or JobStatus(PENDING, "")
            jobs.append(
                {
                    "id": meta.get("uid"),
                    "user": user,
                    "kind": kind_of(pod),
                    "site": site,
                    "site_name": self.svc.site_name(site),
                    "pod": meta.get("name"),
                    "server_name": server_of(pod),
                    "submitted": meta.get("creationTimestamp"),
                    **status.to_json(),
                }
            )
        jobs.sort(key=lambda j: (j["submitted"] or "", j["id"] or ""), reverse=True)
        self.write_json({"jobs": jobs, "next": None})


async def serve() -> None:
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s naive-jobs] %(message)s"
    )
    await config.load_kube_config()
    # an empty history nobody writes (the hub starts this service in its run folder)
    store = db.open_store("sqlite:///naive-jobs-unused.sqlite")
    svc = NaiveService(
        load_catalogue(),
        store,
        os.environ.get("INTERTWIN_NAMESPACE", "default"),
        client.ApiClient(),
    )
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{NAME}/")
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    args: dict[str, Any] = {"svc": svc}
    app = Application(
        [(url_path_join(prefix, "api/jobs"), NaiveJobsHandler, args)],
        cookie_secret=os.urandom(32),
        hub_auth=HubOAuth.instance(),
    )
    app.listen(url.port or 80, url.hostname or "127.0.0.1")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, os._exit, 0)
    await exit_with_the_hub(HUB_PID)


if __name__ == "__main__":
    asyncio.run(serve())
