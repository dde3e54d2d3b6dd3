"""A hub-managed service's life is bound to its hub's: a hub killed without its clean-up would
leave the service holding its port, and an orphan would answer for the next hub (its service
could not start). Imports only the standard library, so ``__main__`` can use it first thing."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)


def hub_pid() -> int:
    """The pid of the hub that started this process: ``INTERTWIN_HUB_PID`` as the hub's
    configuration gives it (the hub's ``os.getpid()``; the testbed and helm-values set it),
    else the parent. Call it first thing: a hub killed before the service looked leaves the
    service re-parented, and a service that took its new parent for the hub would outlive it."""
    given = os.environ.get("INTERTWIN_HUB_PID", "")
    return int(given) if given.isdigit() else os.getppid()


def die_with_the_hub(pid: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies, even if it is killed without its
    clean-up (prctl(2), ``PR_SET_PDEATHSIG`` = 1), and end now if the hub is already gone."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != pid:
        sys.exit(0)


async def exit_with_the_hub(pid: int, interval: float = 1.0) -> None:
    """Watch the hub from the event loop too (``PR_SET_PDEATHSIG`` is Linux-only): once the
    parent noted at start is gone the process is re-parented, so its parent differs."""
    while True:
        if os.getppid() != pid:
            log.info("the hub (pid %d) is gone; stopping", pid)
            os._exit(0)
        await asyncio.sleep(interval)
