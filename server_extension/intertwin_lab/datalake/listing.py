"""Streamed listings with paging: Rucio streams a collection's children (or a search result) as
NDJSON with no offset, so a page is served as soon as ``offset + limit`` rows have arrived while
a reader thread keeps filling the listing for the next pages (and the next requests).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Row = dict[str, Any]
# a listing waits at most this long without news before it re-checks (belt and braces)
_WAKE_CHECK = 1.0


class Listing:
    """Rows read by a daemon thread from a blocking iterator; async readers wait for rows."""

    def __init__(self, rows: Callable[[], Iterable[Any]], convert: Callable[[Any], Row],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.rows: list[Row] = []
        self.done = False
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.finished: float | None = None
        self._source = rows
        self._convert = convert
        self._loop = loop
        self._event = asyncio.Event()
        self._wake_at = sys.maxsize  # row count a waiter needs; read by the reader thread
        self._cancelled = False
        self._thread = threading.Thread(target=self._read, name="datalake-listing", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        it: Iterator[Any] | None = None
        try:
            it = iter(self._source())
            for raw in it:
                if self._cancelled:
                    break
                self.rows.append(self._convert(raw))
                if len(self.rows) >= self._wake_at:
                    self._wake_at = sys.maxsize
                    self._wake()
        except BaseException as e:
            self.error = e
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
            self.finished = time.monotonic()
            self.done = True
            self._wake()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._notify)
        except RuntimeError:  # the loop is closed: nobody is waiting
            pass

    def _notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, count: int) -> None:
        """Return once ``count`` rows are there or the listing has ended (or failed)."""
        while len(self.rows) < count and not self.done:
            event = self._event
            self._wake_at = min(self._wake_at, count)
            if len(self.rows) >= count or self.done:
                break
            try:
                await asyncio.wait_for(event.wait(), _WAKE_CHECK)
            except TimeoutError:
                continue

    def cancel(self) -> None:
        self._cancelled = True


class ListingCache:
    """The listings of one user, by key (least recently used dropped first, expired after
    ``ttl`` seconds, failed ones dropped so the next request retries)."""

    def __init__(self, entries: int = 16, ttl: float = 300.0) -> None:
        self.entries = entries
        self.ttl = ttl
        self._items: OrderedDict[Any, Listing] = OrderedDict()

    def get(self, key: Any, rows: Callable[[], Iterable[Any]],
            convert: Callable[[Any], Row]) -> Listing:
        listing = self._items.get(key)
        now = time.monotonic()
        if listing is not None and (listing.error is not None or now - listing.started > self.ttl):
            listing.cancel()
            del self._items[key]
            listing = None
        if listing is None:
            listing = Listing(rows, convert, asyncio.get_running_loop())
            self._items[key] = listing
            while len(self._items) > self.entries:
                _, old = self._items.popitem(last=False)
                old.cancel()
        self._items.move_to_end(key)
        return listing

    def drop(self, key: Any) -> None:
        listing = self._items.pop(key, None)
        if listing is not None:
            listing.cancel()

    def clear(self) -> None:
        for listing in self._items.values():
            listing.cancel()
        self._items.clear()
