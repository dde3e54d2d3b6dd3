"""The one error type of every intertwin REST API (the lab extension's and the hub service's) and
the one writer that answers it: ``{"error": code, "message": sentence, ...extra}`` with a
truthful HTTP status.

Modelled on JupyterHub's ``APIHandler.write_error``
(https://github.com/jupyterhub/jupyterhub/blob/main/jupyterhub/apihandlers/base.py): handlers
raise, one ``write_error`` writes. Only tornado is imported, so the hub service and the
single-user server extension share it.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.web import HTTPError, RequestHandler

INTERNAL_MESSAGE = "The server failed unexpectedly; its log has the details."


class ApiError(HTTPError):
    """An answer ``{"error": code, "message": message, **extra}`` with ``status``.

    A tornado ``HTTPError``, so a handler simply raises it. ``message`` is a sentence for a
    scientist; ``extra`` carries machine-readable details (e.g. ``param`` for a bad parameter).
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        # tornado %-formats an HTTPError's log message with its args: given as the one arg of
        # "%s", the sentence is logged as it is whatever it holds (a "%" in a filter such as
        # "size%" cannot break the log line), in every tornado version
        super().__init__(status, "%s", message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def bad_request(param: str, message: str) -> ApiError:
    """400 naming the parameter at fault."""
    return ApiError(400, "bad_request", message, param=param)


def _code(reason: str) -> str:
    """An error code from an HTTP reason phrase: "Not Found" → ``not_found``."""
    return reason.lower().replace(" ", "_") or "error"


def _log_message(exc: HTTPError) -> str | None:
    """The message an ``HTTPError`` was raised with, its ``%s`` placeholders filled in."""
    get_message = getattr(exc, "get_message", None)
    if get_message is not None:  # newer tornado (its log_message escapes "%" when unformatted)
        return get_message()
    if exc.log_message and exc.args:
        return exc.log_message % exc.args
    return exc.log_message


def error_body(status_code: int, exc: BaseException | None, reason: str) -> dict[str, Any]:
    """The JSON body for an error answer: the ``ApiError``'s own, tornado's ``HTTPError`` as
    ``{code from reason, its message}``, anything else as a generic internal error."""
    if isinstance(exc, ApiError):
        return exc.to_json()
    if isinstance(exc, HTTPError):
        return {"error": _code(reason), "message": _log_message(exc) or reason}
    if status_code >= 500:
        return {"error": "internal_error", "message": INTERNAL_MESSAGE}
    return {"error": _code(reason), "message": reason}


class JSONErrorsMixin(RequestHandler):
    """The one ``write_error``: mix into every handler of an intertwin API (before the
    framework's own base handler in the bases, so this method wins)."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_body(status_code, exc, self._reason)))
