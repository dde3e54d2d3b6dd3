"""What differs between the JupyterHub lines the spawner runs under: 6.x (the testbed, the
``hub`` extra's newest) and 5.x (the hub image of the Zero to JupyterHub chart 4.4.0)."""

from __future__ import annotations

from tornado import web

try:
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub 5: SpawnException is new in 6.0

    class SpawnException(web.HTTPError):  # type: ignore[no-redef]
        """JupyterHub 6's ``SpawnException`` for JupyterHub 5, whose API answers any
        ``HTTPError`` raised during a spawn with its status and message
        (https://github.com/jupyterhub/jupyterhub/blob/5.5.0/jupyterhub/apihandlers/base.py)."""

        def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
            self.message = message
            self.status_code = status_code
            # JupyterHub 5 formats log_message with the (empty) args: a "%" must stay one
            super().__init__(status_code, message.replace("%", "%%"), reason=reason)

        def __str__(self) -> str:
            return f"{self.status_code} SpawnException(reason={self.reason}): {self.message}"


__all__ = ["SpawnException"]
