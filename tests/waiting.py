"""Waiting on a state in tests: poll until a check holds, fail with what was awaited (and the
last answer) after a generous timeout. One loop for plain checks, one for coroutine checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def wait_for(check: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05) -> T:
    """The first truthy value of ``check()``."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(interval)


async def wait_for_async(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 60.0, interval: float = 0.5
) -> T:
    """The first truthy value of ``await check()``."""
    deadline = time.monotonic() + timeout
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)
