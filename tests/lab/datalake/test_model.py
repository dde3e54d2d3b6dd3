"""Pure helpers of the DataLake API (no server, no Rucio)."""

from __future__ import annotations

from datetime import datetime

import pytest
from intertwin_lab.datalake.model import (
    FILTER_SYNTAX,
    aggregate_replicas,
    here_state,
    local_path,
    next_cursor,
    parse_cursor,
    parse_did,
    parse_filters,
    parse_lifetime_days,
    pick_pfn,
    rule_json,
    rule_state,
)

from intertwin_hub.errors import ApiError


def test_filters_like_rucio_jupyterlab() -> None:
    assert parse_filters("datatype=climate,run_number>3", "era5*") == [
        {"name": "era5*", "datatype": "climate", "run_number.gt": "3"}
    ]
    assert parse_filters("run_number>=2020;datatype!=climate") == [
        {"name": "*", "run_number.gte": "2020"},
        {"name": "*", "datatype.ne": "climate"},
    ]
    assert parse_filters("") == [{"name": "*"}]
    assert parse_filters(" name = ds* , version=v1") == [{"name": "ds*", "version": "v1"}]


def test_rucio_jupyterlab_operators_and_ranges() -> None:
    """rucio-jupyterlab's filter box writes ≥ ≤ ≠ == and ranges (its
    parse_did_filter_from_string_fe)."""
    assert parse_filters("run_number≥2020,version==v1;datatype≠climate,run_number≤7") == [
        {"name": "*", "run_number.gte": "2020", "version": "v1"},
        {"name": "*", "datatype.ne": "climate", "run_number.lte": "7"},
    ]
    assert parse_filters("2019<run_number≤2021") == [
        {"name": "*", "run_number.gt": "2019", "run_number.lte": "2021"}
    ]
    assert parse_filters("2021 >= run_number > 2019") == [
        {"name": "*", "run_number.lte": "2021", "run_number.gt": "2019"}
    ]


@pytest.mark.parametrize(
    "text",
    [
        "datatype",
        "=climate",
        "a=",
        "run_number>>3",
        "a b=1",
        "x=1,x=2",
        "2019<run_number>2021",
        "1<a<2<3",
        "a=1=2",
        "x≥1,x>=2",
    ],
)
def test_bad_filters_name_the_parameter(text: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_filters(text)
    assert e.value.status == 400 and e.value.extra["param"] == "filters"


@pytest.mark.parametrize("text", ["datatype", "run_number>>3", "2019<run_number>2021"])
def test_a_bad_filter_shows_the_accepted_syntax(text: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_filters(text)
    assert FILTER_SYNTAX in e.value.message and "≥" in FILTER_SYNTAX


def test_did_and_lifetime_validation() -> None:
    assert parse_did("intertwin:climate.era5.2020") == ("intertwin", "climate.era5.2020")
    assert parse_did("user.alice:a:b") == ("user.alice", "a:b")
    for bad in (None, "nocolon", "bad scope:x", "s:", "s:*"):
        with pytest.raises(ApiError) as e:
            parse_did(bad)
        assert e.value.extra["param"] == "did"
    assert parse_lifetime_days(None, 7, 30) == 7
    assert parse_lifetime_days(3, 7, 30) == 3
    assert parse_lifetime_days(3.0, 7, 30) == 3
    for bad in (0, -1, 31, 1.5, "3", True):
        with pytest.raises(ApiError) as e:
            parse_lifetime_days(bad, 7, 30)
        assert e.value.extra["param"] == "lifetime_days"


def test_a_cursor_is_the_next_of_a_page() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None
    assert parse_cursor(next_cursor(0)) == 0
    assert parse_cursor(next_cursor(61_000)) == 61_000
    for bad in ("-1", "1.5", "page two", "²", "9" * 19):
        with pytest.raises(ApiError) as e:
            parse_cursor(bad)
        assert e.value.status == 400 and e.value.extra["param"] == "cursor"


def test_local_path_strips_the_protocol_prefix() -> None:
    pfn = "file://localhost/data/rses/VEGA-DCACHE/intertwin/ab/cd/f.dat"
    assert (
        local_path(pfn, "/data/rses/VEGA-DCACHE/", "/dcache/intertwin")
        == "/dcache/intertwin/intertwin/ab/cd/f.dat"
    )
    assert local_path("file:///data/x/f", "/data/x", "/m") == "/m/f"
    assert local_path(pfn, "/elsewhere/", "/m") is None  # not under the prefix: no guess
    assert local_path(pfn, "/data/rses/VEGA-DCACHE/", None) is None
    assert local_path("file:///data/x/../../etc/passwd", "/data/x", "/m") is None


DAVS = "davs://door.psnc.pl:2880/pnfs/psnc.pl/data/intertwin/intertwin/ab/cd/f.dat"


def test_local_path_of_a_pfn_of_any_scheme() -> None:
    """Scratch RSEs that expose only davs/root still give local paths: by the protocol
    prefix, by rucio-jupyterlab's path_begins_at, or by an explicit PFN prefix."""
    want = "/mnt/dcache/intertwin/intertwin/ab/cd/f.dat"
    assert local_path(DAVS, "/pnfs/psnc.pl/data/intertwin/", "/mnt/dcache/intertwin") == want
    assert local_path("root://eos.x:1094//eos/itw/s/f", "/eos/itw", "/m") == "/m/s/f"
    assert local_path(DAVS, None, "/mnt/dcache/intertwin", path_begins_at=4) == want
    assert (
        local_path(DAVS, None, "/m", path_begins_at=0)
        == "/m/pnfs/psnc.pl/data/intertwin/intertwin/ab/cd/f.dat"
    )
    assert local_path(DAVS, None, "/m", path_begins_at=9) is None  # fewer components
    prefix = "davs://door.psnc.pl:2880/pnfs/psnc.pl/data/intertwin"
    assert local_path(DAVS, "/wrong/", "/mnt/dcache/intertwin", pfn_prefix=prefix) == want
    assert local_path(DAVS, None, "/m", pfn_prefix="davs://other:2880/pnfs/") is None
    assert local_path(DAVS.replace("ab/cd", "../.."), None, "/m", path_begins_at=4) is None


def test_file_pfn_preferred_then_lan() -> None:
    row = {
        "pfns": {
            "davs://h/x/f": {"rse": "R", "domain": "lan", "priority": 1},
            "file://localhost/wan/f": {"rse": "R", "domain": "wan", "priority": 1},
            "file://localhost/lan/f": {"rse": "R", "domain": "lan", "priority": 2},
            "file://localhost/other/f": {"rse": "S", "domain": "lan", "priority": 1},
            "root://h//t/f": {"rse": "T", "domain": "wan", "priority": 1},
            "davs://h/t/f": {"rse": "T", "domain": "lan", "priority": 2},
        }
    }
    assert pick_pfn(row, "R") == "file://localhost/lan/f"
    assert pick_pfn(row, "T") == "davs://h/t/f"  # no file protocol: lan first
    assert pick_pfn(row, "U") is None


def test_rule_json_and_progress() -> None:
    r = rule_json(
        {
            "id": "a" * 32,
            "scope": "s",
            "name": "n",
            "did_type": "DATASET",
            "account": "alice",
            "rse_expression": "VEGA-DCACHE",
            "state": "REPLICATING",
            "locks_ok_cnt": 1,
            "locks_replicating_cnt": 3,
            "locks_stuck_cnt": 0,
            "expires_at": "Tue, 01 Dec 2026 10:00:00 UTC",
            "created_at": datetime(2026, 11, 22, 10, 0, 0),
            "error": None,
        }
    )
    assert r["did"] == "s:n" and r["did_type"] == "dataset" and r["progress"] == 0.25
    assert r["locks"] == {"ok": 1, "replicating": 3, "stuck": 0}
    assert r["expires_at"] == "2026-12-01T10:00:00Z"
    assert r["created_at"] == "2026-11-22T10:00:00Z"
    assert rule_state("R") == "REPLICATING" and rule_state("RuleState.OK") == "OK"


def test_here_state() -> None:
    full = {"state": "AVAILABLE", "available_length": 4, "length": 4}
    half = {"state": "UNAVAILABLE", "available_length": 2, "length": 4}
    assert here_state(full, None) == "AVAILABLE"
    assert here_state(None, None) == "NOT_AVAILABLE"
    assert here_state(half, None) == "PARTIAL"
    assert here_state(half, {"state": "REPLICATING"}) == "REPLICATING"
    assert here_state(None, {"state": "STUCK"}) == "STUCK"
    assert here_state(None, {"state": "SUSPENDED"}) == "STUCK"
    assert here_state(None, {"state": "OK"}) == "AVAILABLE"


def test_container_replicas_are_summed_per_rse() -> None:
    rows = [
        {
            "scope": "s",
            "name": "a",
            "rse": "EODC",
            "available_length": 4,
            "length": 4,
            "state": "AVAILABLE",
        },
        {
            "scope": "s",
            "name": "b",
            "rse": "EODC",
            "available_length": 4,
            "length": 4,
            "state": "AVAILABLE",
        },
        {
            "scope": "s",
            "name": "a",
            "rse": "VEGA-DCACHE",
            "available_length": 4,
            "length": 4,
            "state": "AVAILABLE",
        },
    ]
    out = aggregate_replicas(rows, 8, {"EODC": "EODC", "VEGA-DCACHE": "VEGA"})
    assert out == [
        {"rse": "EODC", "site": "EODC", "state": "AVAILABLE", "available_length": 8, "length": 8},
        {
            "rse": "VEGA-DCACHE",
            "site": "VEGA",
            "state": "UNAVAILABLE",
            "available_length": 4,
            "length": 8,
        },
    ]


def test_rucio_errors_become_truthful_statuses() -> None:
    import requests
    from intertwin_lab.datalake.errors import translate
    from rucio.common import exception as rexc

    cases = [
        (requests.exceptions.ConnectionError("refused"), 503, "rucio_unavailable"),
        (
            rexc.RucioException("no error information passed (http status code: 503)"),
            503,
            "rucio_unavailable",
        ),
        (rexc.CannotAuthenticate("bad token"), 401, "token_expired"),
        (rexc.DataIdentifierNotFound("x"), 404, "not_found"),
        (rexc.InsufficientAccountLimit("quota"), 507, "quota_exceeded"),
        (rexc.DuplicateRule("dup"), 409, "duplicate_rule"),
        (rexc.InvalidMetadata("no plugin"), 400, "bad_request"),
        (rexc.AccessDenied("no"), 403, "forbidden"),
        (rexc.RucioException("boom"), 502, "rucio_error"),
    ]
    for exc, status, code in cases:
        err = translate(exc, param="filters")
        assert (err.status, err.code) == (status, code), exc
        assert err.message
