"""``%%offload`` and ``%offload_attach``, an IPython extension (:mod:`.magic`).

Every IPython kernel of a session loads it: the wheel installs
``etc/ipython/ipython_kernel_config.json`` into the environment's prefix, one of the places
IPython reads configuration from (``{sys.prefix}/etc/ipython``,
https://ipython.readthedocs.io/en/stable/development/config.html), which adds this module to
``InteractiveShellApp.extra_extensions`` (a list of its own, so an operator's or user's
``extensions`` setting does not drop it). ``%load_ext intertwin_lab.offload`` loads it by hand.

Loading it also adds :func:`.magic.await_offload` to the shell's input transformers (a
``%%offload`` cell then waits in the kernel's event loop, so its widget's Cancel button works)
and accepts the control comm of a widget front end (:mod:`.display`).
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ip: Any) -> None:
    # imported here: loading the extension at kernel start must stay cheap
    from .display import watch_widget_frontends
    from .magic import OffloadMagics, await_offload

    ip.register_magics(OffloadMagics)
    if await_offload not in ip.input_transformers_post:
        ip.input_transformers_post.append(await_offload)
    watch_widget_frontends(ip)
