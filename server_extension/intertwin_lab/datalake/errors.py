"""The DataLake API's errors: a status, a code and a sentence a scientist understands."""

from __future__ import annotations

from typing import Any

from tornado.web import HTTPError


class DataLakeError(HTTPError):
    """An error answered as ``{"error": code, "message": message, ...extra}`` with ``status``
    (a Tornado HTTPError, so handlers simply raise it)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(status, message.replace("%", "%%"))
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def bad_request(param: str, message: str) -> DataLakeError:
    """400 naming the parameter at fault."""
    return DataLakeError(400, "bad_request", message, param=param)


def not_found(what: str) -> DataLakeError:
    return DataLakeError(404, "not_found", f"{what} was not found in the DataLake.")


RUCIO_UNAVAILABLE = (
    "The Rucio DataLake server cannot be reached right now; try again in a few minutes. "
    "If it keeps failing, tell the DataLake operators.")

TOKEN_EXPIRED = (
    "Rucio did not accept your credentials: your sign-in has probably expired. Stop and start "
    "your server from the hub (File > Hub Control Panel) to sign in again.")
