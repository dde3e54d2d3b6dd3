import os

# The hub that starts this service: its pid as its configuration gives it (INTERTWIN_HUB_PID,
# the hub's os.getpid(); the testbed and helm-values set it), else the parent noted first
# thing. A hub killed before the service looked would leave it re-parented, and a service that
# took its new parent for the hub would outlive it.
_given = os.environ.get("INTERTWIN_HUB_PID", "")
HUB_PID = int(_given) if _given.isdigit() else os.getppid()

import asyncio  # noqa: E402
import ctypes  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

if sys.platform == "linux":
    # and from now on the kernel sends SIGTERM when the hub dies, even if it is killed
    # without its clean-up (prctl(2), PR_SET_PDEATHSIG = 1)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != HUB_PID:
    sys.exit(0)

from .app import serve  # noqa: E402

asyncio.run(serve(hub_pid=HUB_PID))
