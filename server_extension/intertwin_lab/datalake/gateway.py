"""Rucio access of the DataLake API: rucio-clients with the USER's credentials, in threads.

rucio-clients is blocking, so every call runs in a thread pool; listings stream in their own
threads (``listing.py``). The client takes the user's token from memory (``tokens.py``);
Rucio's exceptions become the API's errors with a truthful status (``errors.translate``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cachetools import TTLCache, cachedmethod
from rucio.client import Client
from rucio.common import exception as rexc

from intertwin_hub.errors import ApiError

from .config import DataLake
from .errors import NOT_CONFIGURED, NOT_FOUND, translate
from .tokens import TokenSource, UserClient

T = TypeVar("T")

# one pool per process (one server runs for one user); listings stream in their own threads
_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()
# Rucio's SQL "OR" of many DIDs hits SQLite's expression depth limit beyond ~330
REPLICA_CHUNK = 200
# how long facts that rarely change (RSE attributes, protocols, expressions) are reused, and
# how many of each kind are kept (a DataLake has a few dozen RSEs)
STATIC_TTL = 600.0
STATIC_ENTRIES = 1024


def executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="datalake")
        return _EXECUTOR


class RucioGateway:
    """What the DataLake API asks of Rucio, as one user. Blocking methods (``*_sync``) run in
    threads; :meth:`call` runs one of them from the event loop."""

    def __init__(self, cfg: DataLake) -> None:
        self.cfg = cfg
        self.tokens = TokenSource(cfg)
        self._local = threading.local()
        # facts that rarely change, shared by the pool's threads
        self._sites: TTLCache[str, str | None] = TTLCache(STATIC_ENTRIES, STATIC_TTL)
        self._expressions: TTLCache[str, frozenset[str]] = TTLCache(STATIC_ENTRIES, STATIC_TTL)
        self._prefixes: TTLCache[str, dict[str, str]] = TTLCache(STATIC_ENTRIES, STATIC_TTL)
        self._static_lock = threading.Lock()
        self._account: str | None = cfg.account or None

    # -- plumbing -------------------------------------------------------------------------
    def client(self) -> Client:
        """This thread's client (requests sessions are not shared between threads)."""
        c: Client | None = getattr(self._local, "client", None)
        if c is None:
            if not self.cfg.rucio_base_url:
                raise ApiError(503, "not_configured", NOT_CONFIGURED)
            # an account is passed even when unknown: without one the client looks for a
            # rucio.cfg, which a session need not have (Rucio then takes the token's account)
            c = UserClient(
                self.tokens,
                rucio_host=self.cfg.rucio_base_url,
                auth_host=self.cfg.auth_url,
                account=self.cfg.account or "-",
                ca_cert=self.cfg.ca_cert or None,
                auth_type="oidc",
                creds={},
                timeout=self.cfg.request_timeout,
                vo=self.cfg.vo,
                user_agent="intertwin-lab",
            )
            c.account = self.cfg.account or None
            c.request_retries = 1
            self._local.client = c
        return c

    async def call(
        self, fn: Callable[..., T], *args: Any, param: str | None = None, what: str | None = None
    ) -> T:
        """Run a blocking ``fn(*args)`` in the pool; errors come back as ApiError."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor(), lambda: fn(*args))
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            raise translate(e, param=param, what=what) from e

    # -- account and RSEs -------------------------------------------------------------------
    def account_sync(self) -> str:
        if self._account is None:
            who = self.client().whoami() or {}
            self._account = str(who["account"])
        return self._account

    @cachedmethod(lambda self: self._sites, lock=lambda self: self._static_lock)
    def rse_site_sync(self, rse: str) -> str | None:
        try:
            attrs = self.client().list_rse_attributes(rse)
        except rexc.RucioException:
            return None
        site = attrs.get("site")
        return str(site) if site else None

    def rse_sites_sync(self, rses: Iterable[str]) -> dict[str, str | None]:
        return {rse: self.rse_site_sync(rse) for rse in set(rses)}

    @cachedmethod(lambda self: self._expressions, lock=lambda self: self._static_lock)
    def expression_rses_sync(self, expression: str) -> frozenset[str]:
        try:
            return frozenset(r["rse"] for r in self.client().list_rses(expression))
        except rexc.RucioException:
            return frozenset()

    @cachedmethod(lambda self: self._prefixes, lock=lambda self: self._static_lock)
    def protocol_prefixes_sync(self, rse: str) -> dict[str, str]:
        """The path prefix of each of the RSE's protocols, by scheme (lan read first when a
        scheme has several): what is cut from a PFN of that scheme to get its path under the
        mount."""
        info = self.client().get_rse(rse)
        best: dict[str, tuple[int, str]] = {}
        for p in info.get("protocols") or []:
            domains = p.get("domains") or {}
            lan = (domains.get("lan") or {}).get("read")
            wan = (domains.get("wan") or {}).get("read")
            rank = 0 if lan else (1 if wan else 2)
            scheme = str(p.get("scheme"))
            if scheme not in best or rank < best[scheme][0]:
                best[scheme] = (rank, str(p.get("prefix") or "/"))
        return {k: v[1] for k, v in best.items()}

    # -- DIDs ---------------------------------------------------------------------------------
    def scopes_sync(self) -> list[str]:
        return sorted(self.client().list_scopes())

    def did_sync(self, scope: str, name: str) -> dict[str, Any]:
        """get_did; an open collection has no stored size, so it is then counted from its
        files (``dynamic_depth=FILE``: a container's length is its number of files)."""
        c = self.client()
        did = dict(c.get_did(scope, name))
        if str(did.get("type")).upper() != "FILE" and did.get("length") is None:
            did = dict(c.get_did(scope, name, dynamic_depth="FILE"))
        return did

    def metadata_sync(self, scope: str, name: str) -> dict[str, Any]:
        c = self.client()
        try:
            return dict(c.get_metadata(scope, name, plugin="ALL"))
        except (rexc.InvalidMetadata, rexc.UnsupportedMetadataPlugin, rexc.RucioException) as e:
            if isinstance(e, NOT_FOUND):
                raise
            # JSON metadata needs PostgreSQL: the column metadata is all there is
            return dict(c.get_metadata(scope, name))

    def search_rows(
        self, scope: str, filters: list[dict[str, Any]], did_type: str
    ) -> Iterator[dict[str, Any]]:
        """Blocking generator of search results (run in a listing thread)."""
        return iter(self.client().list_dids(scope, filters, did_type=did_type, long=True))

    def content_rows(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return iter(self.client().list_content(scope, name))

    def file_rows(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return iter(self.client().list_files(scope, name))

    # -- replicas -------------------------------------------------------------------------
    def dataset_replicas_sync(
        self, scope: str, name: str, length: int | None
    ) -> list[dict[str, Any]]:
        c = self.client()
        rows = list(c.list_dataset_replicas(scope, name))
        if not rows and length is not None and length <= self.cfg.deep_replicas_max_files:
            # Rucio keeps collection replicas with a daemon that may lag: count them from the
            # file replicas, when that is cheap enough (it is not for 100k files)
            rows = list(c.list_dataset_replicas(scope, name, deep=True))
        return rows

    def container_replicas_sync(self, scope: str, name: str) -> list[dict[str, Any]]:
        c = self.client()
        datasets = [
            {"scope": r["scope"], "name": r["name"]}
            for r in c.list_content(scope, name)
            if str(r.get("type", "")).upper() == "DATASET"
        ]
        rows: list[dict[str, Any]] = []
        for i in range(0, len(datasets), REPLICA_CHUNK):
            rows += list(c.list_dataset_replicas_bulk(datasets[i : i + REPLICA_CHUNK]))
        return rows

    def file_replicas_sync(self, scope: str, name: str) -> dict[str, Any]:
        rows = list(self.client().list_replicas([{"scope": scope, "name": name}], all_states=True))
        return rows[0] if rows else {}

    def local_replicas_sync(
        self, files: list[Mapping[str, Any]], rse: str, site: str | None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """``POST /replicas/list`` for files on the site's RSE, lan domain (the PFNs valid on
        the compute node), every scheme the RSE has (many scratch RSEs have no ``file``
        protocol), all states; keyed by (scope, name)."""
        c = self.client()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        dids = [{"scope": f["scope"], "name": f["name"]} for f in files]
        location = {"site": site} if site else None
        for i in range(0, len(dids), REPLICA_CHUNK):
            for row in c.list_replicas(
                dids[i : i + REPLICA_CHUNK],
                rse_expression=rse,
                client_location=location,
                domain="lan",
                all_states=True,
                resolve_archives=False,
            ):
                out[(row["scope"], row["name"])] = row
        return out

    def path_rows(
        self, scope: str, name: str, kind: str, length: int | None, rse: str, site: str | None
    ) -> Iterator[dict[str, Any]]:
        """Blocking generator (run in a listing thread) of the replicas at ``rse`` of every
        file of a DID: one streamed ``POST /replicas/list`` of the DID itself (Rucio resolves
        the collection), every scheme the RSE has, ``lan`` domain (the PFNs valid on the
        compute node), all states. Files with no replica at ``rse`` are not in that stream:
        when fewer rows came than the DID has files, they follow as ``{"missing": True}``."""
        c = self.client()
        location = {"site": site} if site else None

        def replicas() -> Iterator[dict[str, Any]]:
            return iter(
                c.list_replicas(
                    [{"scope": scope, "name": name}],
                    rse_expression=rse,
                    client_location=location,
                    domain="lan",
                    all_states=True,
                    resolve_archives=False,
                )
            )

        count = 0
        for row in replicas():
            count += 1
            yield row
        if kind == "file":
            expected = 1
        elif kind == "dataset" and length is not None:
            expected = int(length)
        else:  # a container's stored length counts its children, not its files
            expected = int(c.get_did(scope, name, dynamic_depth="FILE").get("length") or 0)
        if count >= expected:
            return
        if kind == "file":
            yield {"scope": scope, "name": name, "bytes": None, "missing": True}
            return
        # rare (a partial replica): the names seen are needed once, to find the others
        seen = {(x["scope"], x["name"]) for x in replicas()}
        for f in c.list_files(scope, name):
            if (f["scope"], f["name"]) not in seen:
                yield {
                    "scope": f["scope"],
                    "name": f["name"],
                    "bytes": f.get("bytes"),
                    "missing": True,
                }

    # -- rules ----------------------------------------------------------------------------
    def rule_sync(self, rule_id: str) -> dict[str, Any]:
        return dict(self.client().get_replication_rule(rule_id))

    def my_rule_sync(self, rule_id: str) -> dict[str, Any]:
        """The user's rule, or 404 whether it does not exist or belongs to someone else (so
        other accounts' rules are not even confirmed to exist)."""
        try:
            rule = self.rule_sync(rule_id)
        except (rexc.RuleNotFound, rexc.AccessDenied):
            rule = {}
        if not rule or rule.get("account") != self.account_sync():
            raise ApiError(404, "not_found", f"You have no replication rule with id {rule_id}.")
        return rule

    def my_rules_sync(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.client().list_account_rules(self.account_sync())]

    def did_rules_sync(self, scope: str, name: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.client().list_did_rules(scope, name)]

    def covers(self, rule: Mapping[str, Any], rse: str) -> bool:
        expr = str(rule.get("rse_expression") or "")
        return expr == rse or rse in self.expression_rses_sync(expr)

    def my_rules_for_sync(self, scope: str, name: str, rse: str) -> list[dict[str, Any]]:
        me = self.account_sync()
        return [
            r
            for r in self.did_rules_sync(scope, name)
            if r.get("account") == me and self.covers(r, rse)
        ]

    def add_rule_sync(self, scope: str, name: str, rse: str, lifetime_s: int) -> str:
        ids = self.client().add_replication_rule(
            dids=[{"scope": scope, "name": name}],
            copies=1,
            rse_expression=rse,
            grouping="DATASET",
            lifetime=lifetime_s,
            account=self.account_sync(),
            comment="interTwin DataLake panel: make available here",
        )
        return str(ids[0])

    def is_admin_sync(self) -> bool:
        """Whether the account has Rucio's ``admin`` attribute (the stock policy lets admins
        manage any rule; like Rucio, any value counts)."""
        for group in self.client().list_account_attributes(self.account_sync()):
            for attr in group if isinstance(group, list) else [group]:
                if attr.get("key") == "admin":
                    return True
        return False

    def update_lifetime_sync(self, rule_id: str, lifetime_s: int) -> None:
        self.client().update_replication_rule(rule_id, {"lifetime": lifetime_s})

    def delete_rule_sync(self, rule_id: str) -> None:
        self.client().delete_replication_rule(rule_id)
