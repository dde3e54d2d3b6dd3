"""A tiny synchronous REST client for the testbed's own set-up calls (RBAC, namespaces, nodes).

The product and the tests use kubernetes_asyncio; the testbed bootstrap only needs a dozen
idempotent POSTs before any event loop exists, so plain urllib keeps it dependency-free.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class KubeError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {body[:500]}")
        self.status = status


class Kube:
    def __init__(self, server: str, token: str) -> None:
        self.server = server.rstrip("/")
        self.token = token
        # the testbed apiserver serves a self-signed certificate it generated itself
        self.ctx = ssl._create_unverified_context()

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise KubeError(e.code, e.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def ensure(self, path: str, obj: dict[str, Any]) -> None:
        """Create ``obj`` under collection ``path``; an existing object is left as it is."""
        try:
            self.request("POST", path, obj)
        except KubeError as e:
            if e.status != 409:
                raise
