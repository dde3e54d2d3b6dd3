"""Streamed listings with paging and bounded memory.

Rucio streams a collection's children (or a search result) as NDJSON with no offset, so a page
is served as soon as ``offset + limit`` rows have arrived. The reader thread pulls only a little
ahead of the furthest row asked for (back-pressure: a 100,000-file dataset or a ``*`` search
costs what the user pages through, not the whole stream), and keeps at most ``window`` rows:
older rows are dropped, and a request for a dropped row starts the stream again from the top,
skipping to it. A stream nobody asks anything of for ``idle`` seconds is closed, so a paused
listing does not hold a Rucio server connection open.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from cachetools import TTLCache

Row = dict[str, Any]
# a listing waits at most this long without news before it re-checks (belt and braces)
_WAKE_CHECK = 1.0


class Listing:
    """Rows read by a daemon thread from a blocking iterator; async readers wait for rows.

    ``rows`` holds rows ``base`` .. ``count - 1`` of the stream; ``start`` rows are skipped
    (read, counted, not kept) when the listing resumes a stream at a later offset.
    """

    def __init__(
        self,
        rows: Callable[[], Iterable[Any]],
        convert: Callable[[Any], Row],
        loop: asyncio.AbstractEventLoop,
        *,
        start: int = 0,
        window: int = sys.maxsize,
        readahead: int = sys.maxsize,
        idle: float | None = None,
    ) -> None:
        self.rows: list[Row] = []
        self.base = start
        self.count = 0  # rows of the stream read so far (kept or not)
        self.bytes_sum = 0
        self.bytes_known = True  # every row read so far had a size
        self.done = False
        # the stream was closed before its end (idle, or cancelled): rows past ``count``
        # need a new listing
        self.stopped = False
        self.error: BaseException | None = None
        self.served = 0  # the end of the furthest page answered from this listing
        self.window = max(window, 1)
        self.readahead = max(readahead, 0)
        self.idle = idle
        self._start = start
        self._source = rows
        self._convert = convert
        self._loop = loop
        self._event = asyncio.Event()
        self._wake_at = sys.maxsize  # row count a waiter needs; read by the reader thread
        self._demand = 0  # the furthest row count asked for
        self._cond = threading.Condition()
        self._lock = threading.Lock()  # rows and base change together (the reader trims)
        self._pins: Counter[int] = Counter()  # first rows of the requests waiting
        self._cancelled = False
        self.waiting = False  # the reader is paused, far enough ahead of what was asked
        self._thread = threading.Thread(target=self._read, name="datalake-listing", daemon=True)
        self._thread.start()

    @property
    def held(self) -> int:
        """Rows in memory now."""
        return len(self.rows)

    def has(self, offset: int) -> bool:
        """Whether row ``offset`` is held, or can still be reached by this listing."""
        if offset < self.base:
            return False
        return offset < self.count or not self.stopped

    def _pause(self) -> bool:
        """Back-pressure: wait while far enough ahead of what was asked. False: stop reading
        (cancelled, or nobody asked for more within ``idle`` seconds)."""
        with self._cond:
            try:
                while not self._cancelled and self.count >= self._demand + self.readahead:
                    self.waiting = True
                    demand = self._demand
                    if not self._cond.wait(self.idle) and demand == self._demand:
                        return False
                return not self._cancelled
            finally:
                self.waiting = False

    def _read(self) -> None:
        it: Iterator[Any] | None = None
        try:
            it = iter(self._source())
            for raw in it:
                size = raw.get("bytes") if isinstance(raw, dict) else None
                if size is None:
                    self.bytes_known = False
                else:
                    self.bytes_sum += int(size)
                if self.count >= self._start:
                    row = self._convert(raw)
                    with self._lock:
                        self.rows.append(row)
                        if len(self.rows) > self.window + self.window // 4:
                            # drop the oldest rows in chunks, not one at a time, but none a
                            # request still waits for (another may have asked for rows
                            # further on meanwhile)
                            drop = len(self.rows) - self.window
                            if self._pins:
                                drop = min(drop, min(self._pins) - self.base)
                            if drop > 0:
                                self.base += drop
                                del self.rows[:drop]
                self.count += 1
                if self.count >= self._wake_at:
                    self._wake_at = sys.maxsize
                    self._wake()
                if self.count >= self._demand + self.readahead and not self._pause():
                    self.stopped = True
                    break
        except BaseException as e:
            self.error = e
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
            if self._cancelled:
                self.stopped = True
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

    def _ask(self, count: int) -> None:
        with self._cond:
            if count > self._demand:
                self._demand = count
                self._cond.notify_all()

    async def wait_for(self, count: int) -> None:
        """Return once ``count`` rows have been read or the listing has ended (or failed)."""
        self._ask(count)
        while self.count < count and not self.done:
            event = self._event
            self._wake_at = min(self._wake_at, count)
            if self.count >= count or self.done:
                break
            try:
                await asyncio.wait_for(event.wait(), _WAKE_CHECK)
            except TimeoutError:
                continue

    async def read(self, offset: int, count: int) -> list[Row] | None:
        """Rows ``offset`` .. ``offset + count - 1`` (fewer at the end), once read; None when
        row ``offset`` was dropped before this request came (or the listing stopped)."""
        with self._lock:
            if offset < self.base:
                return None
            self._pins[offset] += 1
        try:
            await self.wait_for(offset + count)
            return self.slice(offset, count)
        finally:
            with self._lock:
                self._pins[offset] -= 1
                if self._pins[offset] <= 0:
                    del self._pins[offset]

    def slice(self, offset: int, count: int) -> list[Row] | None:
        """Rows ``offset`` .. ``offset + count - 1`` of those held (fewer at the end), or None
        when row ``offset`` was dropped."""
        with self._lock:
            i = offset - self.base
            return None if i < 0 else self.rows[i : i + count]

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()


class _Listings(TTLCache[Any, Listing]):
    """Listings by key, least recently used evicted first, expired ``ttl`` seconds after they
    started; a listing that leaves this way is cancelled (its stream closed)."""

    def popitem(self) -> tuple[Any, Listing]:
        key, listing = super().popitem()
        listing.cancel()
        return key, listing

    def expire(self, time: float | None = None) -> list[tuple[Any, Listing]]:
        expired = list(super().expire(time))
        for _, listing in expired:
            listing.cancel()
        return expired


class ListingCache:
    """The listings of one user, by key (least recently used dropped first, expired after
    ``ttl`` seconds, failed or stopped ones replaced so the next request reads again).

    Each listing holds at most ``window`` rows and reads at most ``readahead`` rows past the
    furthest one asked for, so memory is bounded by ``entries * window`` rows whatever the
    size of the collection or search."""

    def __init__(
        self,
        entries: int = 16,
        ttl: float = 300.0,
        *,
        window: int = 10_000,
        readahead: int = 2_000,
        idle: float | None = 60.0,
    ) -> None:
        self.window = window
        self.readahead = readahead
        self.idle = idle
        self._items = _Listings(entries, ttl)

    def get(
        self,
        key: Any,
        rows: Callable[[], Iterable[Any]],
        convert: Callable[[Any], Row],
        offset: int | None = None,
        replace: Listing | None = None,
    ) -> Listing:
        """The listing of ``key``; with ``offset``, one that holds or can reach that row (a new
        one resuming the stream a little before it, when the row was dropped). ``replace``: a
        listing that could not serve a request, replaced if it is still the one cached."""
        self._items.expire()
        listing = self._items.get(key)  # (as the most recently used)
        if listing is not None and (
            listing.error is not None
            or (offset is not None and not listing.has(offset))
            or listing is replace
        ):
            self.drop(key)
            listing = None
        if listing is None:
            # resume half a window before the row asked for, so paging backwards does not
            # restart the stream at every page
            start = max(0, (offset or 0) - self.window // 2)
            listing = Listing(
                rows,
                convert,
                asyncio.get_running_loop(),
                start=start,
                window=self.window,
                readahead=self.readahead,
                idle=self.idle,
            )
            self._items[key] = listing  # evicts (and cancels) the least recently used
        return listing

    def peek(self, key: Any) -> Listing | None:
        return self._items.get(key)

    def drop(self, key: Any) -> None:
        self._items.expire()
        listing = self._items.pop(key, None)
        if listing is not None:
            listing.cancel()

    def all(self) -> list[Listing]:
        self._items.expire()
        return list(self._items.values())

    def held(self) -> int:
        """Rows held by all listings (what the memory bound is about)."""
        return sum(x.held for x in self.all())
