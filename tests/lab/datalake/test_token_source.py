"""The session's Rucio token source (intertwin_lab.datalake.tokens.TokenSource) when Rucio
refuses a token: a newer one from the intertwin service replaces it; a new JWT refused with no
newer one is sent once more (two requests bringing it to Rucio at once can see one of them
refused while Rucio saves it), and refused for good the second time or when it has expired."""

from __future__ import annotations

import base64
import json
import time

import pytest
from intertwin_lab.datalake import DataLake
from intertwin_lab.datalake.tokens import TokenSource
from rucio.common import exception as rexc


def jwt(exp: float, n: int = 0) -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'exp': exp, 'n': n})}.signature"


def source(issued: list[str]) -> tuple[TokenSource, list[str]]:
    """A source whose service hands out ``issued`` in turn (the last one again when they run
    out); returns the tokens it was asked for, one entry per request."""
    cfg = DataLake(token_from_service=True, service_url="http://127.0.0.1:9/", hub_api_token="t")
    src = TokenSource(cfg)
    asked: list[str] = []

    def from_service() -> str:
        tok = issued.pop(0) if len(issued) > 1 else issued[0]
        asked.append(tok)
        return tok

    src._from_service = from_service  # type: ignore[method-assign]
    return src, asked


def test_a_refused_token_is_replaced_by_a_newer_one() -> None:
    old, new = jwt(time.time() + 600, 1), jwt(time.time() + 600, 2)
    src, _ = source([old, new])
    assert src.token() == old
    assert src.renew(old) == new
    assert src.token() == new


def test_a_new_jwt_refused_without_a_newer_one_is_sent_once_more() -> None:
    tok = jwt(time.time() + 600)
    src, asked = source([tok])
    assert src.token() == tok
    assert src.renew(tok) == tok  # once more: Rucio may have refused it while saving it
    with pytest.raises(rexc.CannotAuthenticate):
        src.renew(tok)  # refused again: Rucio means it
    assert len(asked) == 3  # the service was asked for a newer one each time


def test_an_expired_jwt_is_not_sent_again() -> None:
    tok = jwt(time.time() - 1)
    src, _ = source([tok])
    src._token = tok
    with pytest.raises(rexc.CannotAuthenticate):
        src.renew(tok)
