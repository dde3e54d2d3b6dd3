"""The DataLake API's errors: the sentences a scientist reads, and :func:`translate`, which turns
a Rucio (or network) failure into the API's :class:`~intertwin_hub.errors.ApiError` with a
truthful status."""

from __future__ import annotations

import logging
import re

import requests
from rucio.common import exception as rexc

from intertwin_hub.errors import ApiError

log = logging.getLogger(__name__)

RUCIO_UNAVAILABLE = (
    "The Rucio DataLake server cannot be reached right now; try again in a few minutes. "
    "If it keeps failing, tell the DataLake operators."
)

TOKEN_EXPIRED = (
    "Rucio did not accept your credentials: your sign-in has probably expired. Stop and start "
    "your server from the hub (File > Hub Control Panel) to sign in again."
)

NOT_CONFIGURED = "This session has no Rucio DataLake configured (RUCIO_BASE_URL is not set)."

_UNAVAILABLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    rexc.ServerConnectionException,
    rexc.ServiceUnavailable,
    rexc.ResourceTemporaryUnavailable,
    rexc.DatabaseException,
    ConnectionError,
    TimeoutError,
)
# what rucio-clients says when a proxy in front of Rucio answers 502/503/504 without a body
_GATEWAY_DOWN = re.compile(r"http status code: 50[234]\b")
# Rucio's "there is no such thing" exceptions
NOT_FOUND = (
    rexc.DataIdentifierNotFound,
    rexc.ScopeNotFound,
    rexc.RuleNotFound,
    rexc.RSENotFound,
    rexc.AccountNotFound,
    rexc.ReplicaNotFound,
)
_BAD_INPUT = (
    rexc.InvalidObject,
    rexc.InvalidValueForKey,
    rexc.InvalidType,
    rexc.InvalidMetadata,
    rexc.KeyNotFound,
    rexc.DIDFilterSyntaxError,
    rexc.DuplicateCriteriaInDIDFilter,
    rexc.FilterEngineGenericError,
    rexc.InputValidationError,
    rexc.UnsupportedKeyType,
    rexc.UnsupportedValueType,
    rexc.InvalidRSEExpression,
    rexc.UnsupportedOperation,
    rexc.NameTypeError,
)


def rucio_error_text(exc: BaseException) -> str:
    """A Rucio exception's server message, without the class boilerplate."""
    args = [str(a) for a in getattr(exc, "args", ()) if a]
    text = " ".join(args) if args else str(exc)
    return text.strip() or exc.__class__.__name__


def translate(exc: BaseException, param: str | None = None, what: str | None = None) -> ApiError:
    """A Rucio (or network) failure → the API's error. ``param`` names the request parameter
    a Rucio input error is about; ``what`` names the thing looked up (for 404s)."""
    if isinstance(exc, ApiError):
        return exc
    text = rucio_error_text(exc)
    if isinstance(exc, _UNAVAILABLE) or _GATEWAY_DOWN.search(text):
        return ApiError(503, "rucio_unavailable", RUCIO_UNAVAILABLE)
    if isinstance(exc, rexc.CannotAuthenticate | rexc.NoAuthInformation):
        return ApiError(401, "token_expired", TOKEN_EXPIRED)
    if isinstance(exc, rexc.AccessDenied | rexc.CannotAuthorize | rexc.ScopeAccessDenied):
        return ApiError(403, "forbidden", f"Rucio refused this for your account: {text}")
    if isinstance(exc, NOT_FOUND):
        return ApiError(
            404, "not_found", f"{what or 'That'} was not found in the DataLake ({text})."
        )
    if isinstance(exc, rexc.InsufficientAccountLimit | rexc.RSEOverQuota):
        return ApiError(
            507,
            "quota_exceeded",
            "Your Rucio quota at this site's scratch storage is too small for this "
            "data. Free space by deleting replicas you no longer need, or ask the "
            f"site for a larger quota. (Rucio: {text})",
        )
    if isinstance(exc, rexc.DuplicateRule):
        return ApiError(
            409, "duplicate_rule", "You already have a rule for this data at this site."
        )
    if isinstance(exc, _BAD_INPUT):
        err = ApiError(400, "bad_request", f"Rucio did not accept the request: {text}")
        if param:
            err.extra["param"] = param
        return err
    if isinstance(exc, rexc.RucioException):
        return ApiError(502, "rucio_error", f"Rucio answered with an error: {text}")
    if isinstance(exc, requests.exceptions.RequestException):
        return ApiError(503, "rucio_unavailable", RUCIO_UNAVAILABLE)
    log.exception("unexpected error talking to Rucio", exc_info=exc)
    return ApiError(
        502, "rucio_error", f"Talking to Rucio failed unexpectedly: {exc.__class__.__name__}: {exc}"
    )
