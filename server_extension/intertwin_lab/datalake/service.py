"""The DataLake API's operations (async): what each route answers, built from Rucio calls made
through :class:`~.gateway.RucioGateway` and pure helpers from :mod:`.model`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache

from intertwin_hub.errors import ApiError

from .config import DataLake
from .errors import translate
from .gateway import RucioGateway
from .listing import Listing, ListingCache, Row
from .model import (
    aggregate_replicas,
    content_row,
    did_row,
    did_type_of,
    ends_soon,
    file_replicas,
    here_state,
    iso,
    local_path,
    metadata,
    next_cursor,
    pick_pfn,
    rule_json,
    rule_rank,
)

DAY = 86400
# a rule that lives at least this much longer may be probed (its lifetime re-set to what is
# left) to learn whether Rucio lets this account change lifetimes
PROBE_MIN_SECONDS = 600


def _refused(cfg: DataLake, action: str, rule: Mapping[str, Any] | None = None) -> str:
    """What the site's Rucio does not allow (``action``: extend, delete or both), for a 403
    and for the panel's disabled buttons."""
    rucio = cfg.rucio_base_url or "the DataLake's Rucio"
    what = {
        "extend": "change the lifetime of replication rules",
        "delete": "delete replication rules",
        "both": "extend or delete replication rules",
    }[action]
    ends = iso((rule or {}).get("expires_at"))
    after = (
        f"The rule ends by itself when its lifetime runs out ({ends}); ask the DataLake "
        "operators if it must change sooner."
        if ends
        else "Rules end by themselves when their lifetime runs out; ask the DataLake operators "
        "if one must change sooner."
    )
    return (
        f"The DataLake's Rucio ({rucio}) does not let your account {what}: its permission "
        f"policy leaves that to Rucio administrators. {after}"
    )


def _no_scratch(cfg: DataLake) -> str:
    where = cfg.site_title or cfg.site_name or "This session's site"
    return (
        f"{where} has no scratch storage (RSE) in the DataLake, so data cannot be made "
        "available here. Start your server at a site with scratch storage (e.g. Vega) to "
        "replicate data next to it."
    )


class DataLakeService:
    """One user's DataLake: the routes' logic, with a per-user in-memory listing cache."""

    def __init__(self, cfg: DataLake, gateway: RucioGateway | None = None) -> None:
        self.cfg = cfg
        self.rucio = gateway or RucioGateway(cfg)
        self.listings = ListingCache(
            cfg.listing_cache_entries,
            cfg.listing_cache_seconds,
            window=max(cfg.listing_window_rows, cfg.max_page_size + 1 + cfg.listing_readahead_rows),
            readahead=cfg.listing_readahead_rows,
            idle=cfg.listing_idle_seconds,
        )
        # DID facts per listing key (type, length, bytes), read once per listing
        self._did_info: TTLCache[Any, dict[str, Any]] = TTLCache(
            4 * cfg.listing_cache_entries, cfg.listing_cache_seconds
        )
        # rules deleted from this server: Rucio deletes softly (the rule expires within the
        # hour, then its cleaner removes it), so they are hidden here meanwhile
        self._deleted: set[str] = set()
        # whether Rucio lets this account extend / delete its own rules: None until learned
        # (Rucio has no "may I?" call: from the account's admin attribute, a harmless probe of
        # a lifetime change, or a refusal); the stock `generic` policy allows neither
        self._may: dict[str, bool | None] = {"extend": None, "delete": None}

    # -- config and scopes ----------------------------------------------------------------
    async def config(self) -> dict[str, Any]:
        cfg = self.cfg
        account: str | None = cfg.account or None
        if account is None and cfg.rucio_base_url:
            try:
                account = await self.rucio.call(self.rucio.account_sync)
            except ApiError:
                account = None  # the panel learns why from its first real call
        return {
            "site": cfg.site_name or None,
            "site_title": cfg.site_title or cfg.site_name or None,
            "rse": cfg.destination_rse,
            "rse_reason": None if cfg.destination_rse else _no_scratch(cfg),
            "mount_path": cfg.rse_mount_path,
            "account": account,
            "default_lifetime_days": cfg.lifetime_days,
            "max_lifetime_days": cfg.max_lifetime_days,
            "rucio_url": cfg.rucio_base_url or None,
            "auth_type": cfg.auth_type,
        }

    async def scopes(self) -> dict[str, Any]:
        return {"scopes": await self.rucio.call(self.rucio.scopes_sync)}

    # -- search ---------------------------------------------------------------------------
    async def search(
        self,
        scope: str,
        filters: list[dict[str, Any]],
        did_type: str,
        offset: int,
        limit: int,
        fresh: bool,
    ) -> dict[str, Any]:
        key = ("search", scope, did_type, repr(filters))
        if fresh:
            self.listings.drop(key)
        _, rows = await self._rows(
            key,
            lambda: self.rucio.search_rows(scope, filters, did_type),
            did_row,
            offset,
            limit + 1,
            param="filters",
            what=f"The scope '{scope}'",
        )
        more = len(rows) > limit
        return {"items": rows[:limit], "next": next_cursor(offset + limit) if more else None}

    async def _rows(
        self,
        key: Any,
        source: Callable[[], Iterable[Any]],
        convert: Callable[[Any], Row],
        offset: int,
        count: int,
        param: str | None = None,
        what: str | None = None,
    ) -> tuple[Listing, list[Row]]:
        """Rows ``offset`` .. ``offset + count - 1`` of the listing ``key`` (a listing that
        dropped them, or stopped before them, is replaced by one resuming the stream)."""
        failed: Listing | None = None
        for _ in range(3):
            listing = self.listings.get(key, source, convert, offset, replace=failed)
            rows = await listing.read(offset, count)
            if listing.error is not None and listing.count < offset + count:
                raise translate(listing.error, param=param, what=what)
            if rows is not None and (not listing.stopped or listing.count >= offset + count):
                return listing, rows
            # the listing stopped before these rows (left idle, or replaced by one for rows
            # further back): read them from a new one
            failed = listing
        raise ApiError(
            503,
            "rucio_unavailable",
            "The DataLake listing was interrupted several times; try again.",
        )

    # -- one DID --------------------------------------------------------------------------
    async def _did(self, scope: str, name: str, cache_key: Any = None) -> dict[str, Any]:
        """get_did, reused for the life of the listing it describes (when given a key)."""
        if cache_key is not None and cache_key in self._did_info:
            return self._did_info[cache_key]
        did = await self.rucio.call(
            self.rucio.did_sync, scope, name, what=f"The data identifier {scope}:{name}"
        )
        if cache_key is not None:
            self._did_info[cache_key] = did
        return did

    async def details(self, scope: str, name: str) -> dict[str, Any]:
        r = self.rucio
        what = f"The data identifier {scope}:{name}"
        did = await self._did(scope, name)
        kind = did_type_of(did)
        rse = self.cfg.destination_rse

        async def replicas() -> list[dict[str, Any]]:
            if kind == "file":
                row = await r.call(r.file_replicas_sync, scope, name, what=what)
                sites = await r.call(r.rse_sites_sync, list(row.get("states") or {}))
                return file_replicas(row, sites)
            if kind == "dataset":
                rows = await r.call(
                    r.dataset_replicas_sync, scope, name, did.get("length"), what=what
                )
            else:
                rows = await r.call(r.container_replicas_sync, scope, name, what=what)
            sites = await r.call(r.rse_sites_sync, [x["rse"] for x in rows])
            return aggregate_replicas(rows, did.get("length"), sites)

        async def my_rules() -> list[dict[str, Any]]:
            if rse is None:
                return []
            return await r.call(r.my_rules_for_sync, scope, name, rse, what=what)

        meta, reps, rules = await asyncio.gather(
            r.call(r.metadata_sync, scope, name, what=what), replicas(), my_rules()
        )
        here = None
        if rse is not None:
            rules = [x for x in rules if x.get("id") not in self._deleted]
            rule = sorted(rules, key=rule_rank)[0] if rules else None
            mine = next((x for x in reps if x["rse"] == rse), None)
            here = {
                "rse": rse,
                "state": here_state(mine, rule),
                "rule_id": rule["id"] if rule else None,
                "rule": rule_json(rule) if rule else None,
            }
        return {
            **did_row({**did, "type": kind}),
            "account": did.get("account"),
            "open": did.get("open"),
            "metadata": metadata(meta),
            "replicas": reps,
            "here": here,
        }

    # -- content and local paths ----------------------------------------------------------
    def _content_source(
        self, scope: str, name: str, did: Mapping[str, Any]
    ) -> tuple[Any, Callable[[], Iterable[Any]]]:
        if did_type_of(did) == "file":
            row = {"scope": scope, "name": name, "type": "FILE", "bytes": did.get("bytes")}
            return ("self", scope, name), lambda: [row]
        return ("content", scope, name), lambda: self.rucio.content_rows(scope, name)

    async def content(
        self, scope: str, name: str, offset: int, limit: int, refresh: bool
    ) -> dict[str, Any]:
        key = ("content", scope, name)
        if refresh:
            self.listings.drop(key)
            self._did_info.pop(key, None)
        did = await self._did_and_listing(scope, name, key)
        key, source = self._content_source(scope, name, did)
        what = f"The data identifier {scope}:{name}"
        if did_type_of(did) == "container":
            # a container's children are few datasets: count them all, so the total is exact
            await self._rows(key, source, content_row, 0, sys.maxsize, what=what)
        listing, rows = await self._rows(key, source, content_row, offset, limit, what=what)
        return self._page(listing, did, rows, offset, limit)

    async def _did_and_listing(self, scope: str, name: str, key: Any) -> dict[str, Any]:
        """The DID's facts, while its content listing already starts streaming (the first page
        then costs one round trip, not two)."""
        if key not in self._did_info:
            self.listings.get(key, lambda: self.rucio.content_rows(scope, name), content_row)
        did = await self._did(scope, name, cache_key=key)
        if did_type_of(did) == "file":
            self.listings.drop(key)  # a file has no content: it lists itself
        return did

    def _page(
        self, listing: Listing, did: Mapping[str, Any], rows: list[Row], offset: int, limit: int
    ) -> dict[str, Any]:
        """A page; until the listing has been read to its end, the totals are the DID's."""
        complete = listing.done and listing.error is None and not listing.stopped
        if did_type_of(did) == "file":
            total: int = 1
        elif complete:
            total = listing.count
        else:
            total = max(int(did.get("length") or 0), listing.count)
        total_bytes = did.get("bytes")
        if complete and listing.bytes_known:
            total_bytes = listing.bytes_sum
        nxt = offset + len(rows)
        more = nxt < total or (not complete and len(rows) == limit)
        return {
            "items": rows,
            "offset": offset,
            "limit": limit,
            "total": total,
            "total_bytes": total_bytes,
            "complete": complete,
            "next": next_cursor(nxt) if more and rows else None,
        }

    async def paths(
        self, scope: str, name: str, offset: int, limit: int, whole: bool = False
    ) -> dict[str, Any]:
        """The local path (on this compute node) of each file of a DID, a page at a time.

        ``whole``: the caller reads every page in order (what "Add to notebook" does), so the
        pages come from one streamed ``list_replicas`` of the DID itself, in Rucio's replica
        order: about 2.5x cheaper per file for Rucio than looking files up by name. Otherwise
        (the panel's list, which jumps and refreshes) a page is the ``content`` page at that
        offset with its files looked up."""
        rse = self.cfg.destination_rse
        if rse is None:
            raise ApiError(409, "no_scratch", _no_scratch(self.cfg))
        r = self.rucio
        if whole:
            did, prefixes = await asyncio.gather(
                self._did(scope, name, cache_key=("content", scope, name)),
                r.call(r.protocol_prefixes_sync, rse, what=f"The RSE {rse}"),
            )
            page = await self._streamed_paths(scope, name, did, offset, limit, rse, prefixes)
        else:
            page = await self._looked_up_paths(scope, name, offset, limit, rse)
        page.update(rse=rse, mount_path=self.cfg.rse_mount_path)
        return page

    async def _streamed_paths(
        self,
        scope: str,
        name: str,
        did: Mapping[str, Any],
        offset: int,
        limit: int,
        rse: str,
        prefixes: Mapping[str, str],
    ) -> dict[str, Any]:
        r = self.rucio
        kind = did_type_of(did)
        site = self.cfg.site_name or None

        def source() -> Iterable[Any]:
            return r.path_rows(scope, name, kind, did.get("length"), rse, site)

        def convert(rep: Any) -> Row:
            row = {
                "scope": rep["scope"],
                "name": rep["name"],
                "bytes": rep.get("bytes"),
                "type": "file",
            }
            return self._path_item(row, None if rep.get("missing") else rep, rse, prefixes)

        key = ("paths", scope, name)
        old = self.listings.peek(key)
        if old is not None and offset < old.served:
            # read again from an earlier page (a new "Add to notebook", a kernel restart):
            # states may have changed since, so Rucio is asked again
            self.listings.drop(key)
        listing, items = await self._rows(
            key, source, convert, offset, limit, what=f"The data identifier {scope}:{name}"
        )
        listing.served = max(listing.served, offset + len(items))
        return self._page(listing, did, items, offset, limit)

    async def _looked_up_paths(
        self, scope: str, name: str, offset: int, limit: int, rse: str
    ) -> dict[str, Any]:
        what = f"The data identifier {scope}:{name}"
        key = ("content", scope, name)
        did = await self._did_and_listing(scope, name, key)
        source: Callable[[], Iterable[Any]]
        convert: Callable[[Any], Row] = content_row
        if did_type_of(did) == "container":
            key, source = ("files", scope, name), lambda: self.rucio.file_rows(scope, name)
            convert = lambda x: {**content_row(x), "type": "file"}  # noqa: E731
        else:
            key, source = self._content_source(scope, name, did)
        listing, rows = await self._rows(key, source, convert, offset, limit, what=what)
        r = self.rucio
        files = [x for x in rows if x["type"] == "file"]
        found, prefixes = await asyncio.gather(
            r.call(r.local_replicas_sync, files, rse, self.cfg.site_name or None, what=what),
            r.call(r.protocol_prefixes_sync, rse, what=f"The RSE {rse}"),
        )
        items = [
            self._path_item(x, found.get((x["scope"], x["name"])), rse, prefixes) for x in rows
        ]
        return self._page(listing, did, items, offset, limit)

    def _path_item(
        self, row: Row, rep: Mapping[str, Any] | None, rse: str, prefixes: Mapping[str, str]
    ) -> dict[str, Any]:
        state = "NOT_AVAILABLE"
        pfn = path = None
        if row["type"] != "file":
            state = "NOT_A_FILE"
        elif rep:
            state = str((rep.get("states") or {}).get(rse) or "NOT_AVAILABLE").rsplit(".")[-1]
            if state == "AVAILABLE":
                pfn = pick_pfn(rep, rse)
                scheme = (pfn or "").split(":", 1)[0]
                path = local_path(
                    pfn,
                    prefixes.get(scheme),
                    self.cfg.rse_mount_path,
                    pfn_prefix=self.cfg.pfn_prefix,
                    path_begins_at=self.cfg.path_begins_at,
                )
        return {
            "scope": row["scope"],
            "name": row["name"],
            "bytes": row.get("bytes"),
            "state": state,
            "pfn": pfn,
            "path": path,
        }

    # -- rules ----------------------------------------------------------------------------
    async def add_rule(self, scope: str, name: str, lifetime_days: int) -> dict[str, Any]:
        rse = self.cfg.destination_rse
        if rse is None:
            raise ApiError(409, "no_scratch", _no_scratch(self.cfg))
        r = self.rucio
        what = f"The data identifier {scope}:{name}"
        try:
            rule_id = await r.call(
                r.add_rule_sync, scope, name, rse, lifetime_days * DAY, what=what
            )
        except ApiError as e:
            if e.code != "duplicate_rule":
                raise
            existing = await self._existing_rule(scope, name, rse)
            existing_id = str(existing["id"]) if existing is not None else None
            if (
                existing_id is not None
                and existing is not None
                and (existing_id in self._deleted or ends_soon(existing))
            ):
                # deleted a moment ago (here, or by an earlier session: Rucio keeps a deleted
                # rule for an hour) or about to lapse: revive it for the lifetime asked for
                await r.call(r.update_lifetime_sync, existing_id, lifetime_days * DAY)
                self._deleted.discard(existing_id)
                self._forget(scope, name)
                return rule_json(await r.call(r.rule_sync, existing_id))
            raise ApiError(
                409,
                "duplicate_rule",
                f"You already asked for {scope}:{name} at {rse}"
                + (f" (rule {existing_id})" if existing_id else "")
                + ". Extend that rule's lifetime instead of adding another.",
                rule_id=existing_id,
            ) from e
        self._forget(scope, name)
        return rule_json(await r.call(r.rule_sync, rule_id))

    async def _existing_rule(self, scope: str, name: str, rse: str) -> Mapping[str, Any] | None:
        r = self.rucio
        try:
            rules = await r.call(r.my_rules_for_sync, scope, name, rse)
        except ApiError:
            return None
        exact = [x for x in rules if x.get("rse_expression") == rse] or rules
        return sorted(exact, key=rule_rank)[0] if exact else None

    def _forget(self, scope: str, name: str) -> None:
        self._did_info.pop(("content", scope, name), None)
        self.listings.drop(("paths", scope, name))

    async def rules(self) -> dict[str, Any]:
        rules = [
            x
            for x in await self.rucio.call(self.rucio.my_rules_sync)
            if x.get("id") not in self._deleted
        ]
        out = [rule_json(x) for x in rules]
        out.sort(key=lambda x: x["created_at"] or "", reverse=True)
        return {"rules": out, "permissions": await self.permissions(rules)}

    async def permissions(self, rules: list[dict[str, Any]]) -> dict[str, Any]:
        """May this account extend / delete its rules (``None``: not known yet, try)? And a
        sentence when it may not."""
        if None in self._may.values():
            try:
                await self.rucio.call(self._learn_sync, rules)
            except ApiError:
                pass  # the actions themselves answer with the reason
        ext, dele = self._may["extend"] is False, self._may["delete"] is False
        action = "both" if ext and dele else "extend" if ext else "delete" if dele else None
        return {
            "extend": self._may["extend"],
            "delete": self._may["delete"],
            "reason": _refused(self.cfg, action) if action else None,
        }

    def _learn_sync(self, rules: list[dict[str, Any]]) -> None:
        from rucio.common.exception import AccessDenied

        r = self.rucio
        if r.is_admin_sync():
            self._may = {"extend": True, "delete": True}
            return
        if self._may["extend"] is not None:
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        for rule in rules:
            expires = iso(rule.get("expires_at"))
            if expires is None:
                continue
            left = int((datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ") - now).total_seconds())
            if left < PROBE_MIN_SECONDS or ends_soon(rule):
                continue
            try:  # the same lifetime again: Rucio checks the permission, nothing changes
                r.update_lifetime_sync(str(rule["id"]), left)
            except AccessDenied:
                self._may["extend"] = False
                # Rucio cannot be asked about deletion without deleting; a policy that keeps
                # lifetimes from owners (generic) keeps deletion from them too
                if self._may["delete"] is None:
                    self._may["delete"] = False
                return
            self._may["extend"] = True
            return

    def _raise_if_deleted(self, rule_id: str) -> None:
        """404 for a rule deleted from this server (Rucio still has it for up to an hour)."""
        if rule_id in self._deleted:
            raise ApiError(
                404,
                "not_found",
                f"The replication rule {rule_id} was deleted; Rucio "
                "removes it and its replicas within the hour.",
            )

    async def rule(self, rule_id: str) -> dict[str, Any]:
        self._raise_if_deleted(rule_id)
        return rule_json(await self.rucio.call(self.rucio.my_rule_sync, rule_id))

    async def _as_permitted(self, action: str, rule: dict[str, Any], call: Awaitable[Any]) -> None:
        """Run a rule change and remember whether the site's Rucio allows ``action``; a refusal
        is a 403 with a sentence saying what it does not allow."""
        try:
            await call
        except ApiError as e:
            if e.status == 403:
                self._may[action] = False
                raise ApiError(
                    403, "forbidden", _refused(self.cfg, action, rule), action=action
                ) from e
            raise
        self._may[action] = True

    async def extend_rule(self, rule_id: str, lifetime_days: int) -> dict[str, Any]:
        r = self.rucio
        self._raise_if_deleted(rule_id)
        rule = await r.call(r.my_rule_sync, rule_id)
        await self._as_permitted(
            "extend",
            rule,
            r.call(r.update_lifetime_sync, rule_id, lifetime_days * DAY, param="lifetime_days"),
        )
        return rule_json(await r.call(r.rule_sync, rule_id))

    async def delete_rule(self, rule_id: str) -> None:
        r = self.rucio
        self._raise_if_deleted(rule_id)
        rule = await r.call(r.my_rule_sync, rule_id)
        await self._as_permitted("delete", rule, r.call(r.delete_rule_sync, rule_id))
        self._deleted.add(rule_id)
        self._forget(str(rule.get("scope")), str(rule.get("name")))
