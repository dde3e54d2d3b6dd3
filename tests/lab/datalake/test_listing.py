"""Listings hold bounded memory: the reader pulls a stream only a little past the furthest row
asked for, keeps at most a window of rows, reads again from the top for a dropped row, and
closes a stream left idle. The source here is a plain Python generator (what a Rucio stream
is to the listing); tests/lab/datalake/test_api.py drives the same code against Rucio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from intertwin_lab.datalake.listing import ListingCache

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class Stream:
    """A stream of ``n`` rows that records how far it was read and whether it was closed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0
        self.opened = 0
        self.closed = 0

    def __call__(self) -> Iterator[dict[str, Any]]:
        self.opened += 1
        try:
            for i in range(self.n):
                self.pulled = max(self.pulled, i + 1)
                yield {"i": i, "bytes": 10}
        finally:
            self.closed += 1


def ids(rows: list[dict[str, Any]] | None) -> list[int]:
    assert rows is not None, "the rows were dropped"
    return [r["i"] for r in rows]


async def until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_reader_pulls_only_as_far_as_asked() -> None:
    stream = Stream(1_000_000)
    cache = ListingCache(window=1_000, readahead=100, idle=None)
    listing = cache.get("k", stream, dict)
    await listing.wait_for(50)
    await until(lambda: listing.waiting, "the reader to wait")
    assert stream.pulled <= 50 + 100 + 1 and not listing.done
    assert ids(listing.slice(0, 50)) == list(range(50))
    cache.drop("k")
    await until(lambda: listing.done and stream.closed == 1, "the cancelled stream to close")


async def test_memory_is_bounded_and_dropped_rows_are_read_again() -> None:
    stream = Stream(300_000)
    cache = ListingCache(window=1_000, readahead=100, idle=None)
    listing = cache.get("k", stream, dict, offset=250_000)
    await listing.wait_for(250_100)
    assert ids(listing.slice(250_000, 100)) == list(range(250_000, 250_100))
    await until(lambda: listing.waiting, "the reader to wait")
    assert listing.held <= 1_250 and cache.held() <= 1_250
    assert not listing.has(0) and listing.has(250_000)
    again = cache.get("k", stream, dict, offset=10)  # row 10 was dropped: read from the top
    assert again is not listing and stream.opened == 2
    await again.wait_for(20)
    assert ids(again.slice(10, 10)) == list(range(10, 20))
    await again.wait_for(1_000_000)  # to the end: the totals are the stream's
    assert again.done and not again.stopped and again.count == 300_000
    assert again.bytes_known and again.bytes_sum == 3_000_000
    assert again.held <= 1_250
    cache.drop("k")


async def test_an_idle_stream_is_closed_and_read_again_when_asked() -> None:
    stream = Stream(100_000)
    cache = ListingCache(window=1_000, readahead=100, idle=0.2)
    listing = cache.get("k", stream, dict)
    await listing.wait_for(10)
    await until(lambda: listing.done and listing.stopped, "the idle listing to stop")
    assert stream.closed == 1 and listing.count < 200
    assert listing.has(5)  # rows already read are still served
    fresh = cache.get("k", stream, dict, offset=5_000)
    assert fresh is not listing
    await fresh.wait_for(5_010)
    assert ids(fresh.slice(5_000, 10)) == list(range(5_000, 5_010))
    cache.drop("k")


async def test_far_apart_requests_each_get_their_rows() -> None:
    """The panel's list jumps: a page at 25,000 and one at 99,800 are asked for at once. The
    reader races to the further one, but keeps the rows a waiting request needs."""
    stream = Stream(100_000)
    cache = ListingCache(window=1_000, readahead=100, idle=None)
    listing = cache.get("k", stream, dict)
    near, far = await asyncio.gather(listing.read(25_000, 200), listing.read(99_800, 200))
    assert ids(near) == list(range(25_000, 25_200))
    assert ids(far) == list(range(99_800, 100_000))
    await until(lambda: listing.done, "the end of the stream")
    assert listing.held <= 1_250 and stream.opened == 1
    assert await listing.read(10, 10) is None  # dropped long ago: the cache reads again
    cache.drop("k")


async def test_the_least_recently_used_listing_is_evicted_and_closed() -> None:
    streams = {k: Stream(100_000) for k in "abc"}
    cache = ListingCache(entries=2, window=1_000, readahead=100, idle=None)
    a = cache.get("a", streams["a"], dict)
    b = cache.get("b", streams["b"], dict)
    assert cache.get("a", streams["a"], dict) is a  # a is now the most recently used
    await asyncio.gather(a.wait_for(10), b.wait_for(10))
    c = cache.get("c", streams["c"], dict)  # one too many: b goes
    assert cache.all() == [a, c] and cache.peek("b") is None
    await until(lambda: b.done and streams["b"].closed == 1, "the evicted stream to close")
    assert not a.done and streams["a"].closed == 0
    cache.drop("a")
    cache.drop("c")


async def test_an_old_listing_expires_and_is_read_again() -> None:
    stream = Stream(100_000)
    cache = ListingCache(ttl=0.3, window=1_000, readahead=100, idle=None)
    first = cache.get("k", stream, dict)
    await first.wait_for(10)
    assert cache.get("k", stream, dict) is first  # within its time to live: reused
    await until(lambda: cache.peek("k") is None, "the listing to expire")
    again = cache.get("k", stream, dict)
    assert again is not first and stream.opened == 2
    await until(lambda: first.done and stream.closed >= 1, "the expired stream to close")
    cache.drop("k")
