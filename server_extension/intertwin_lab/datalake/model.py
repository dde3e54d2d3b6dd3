"""Pure helpers of the DataLake API: parsing what users send, shaping what Rucio answers.

Nothing here talks to Rucio or Tornado, so all of it is tested without a server.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from intertwin_hub.errors import bad_request

DID_TYPES = ("all", "collection", "container", "dataset", "file")
# Rucio's scope and name rules (generic schema): no spaces, no wildcard in a scope
_SCOPE = re.compile(r"^[A-Za-z0-9_.\-]{1,25}$")
_NAME = re.compile(r"^[^\s*%]{1,500}$")
_NAME_PATTERN = re.compile(r"^[^\s%]{1,500}$")
_RULE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
# a cursor is a row offset written in decimal (clients treat it as opaque)
_CURSOR = re.compile(r"^[0-9]{1,18}$")
# the operators of a filter text (ours, Rucio's and rucio-jupyterlab's spellings) and the key
# suffix Rucio's filter engine uses for each
_OPERATORS = {
    ">=": "gte",
    "≥": "gte",
    "<=": "lte",
    "≤": "lte",
    "!=": "ne",
    "≠": "ne",
    "==": "",
    "=": "",
    ">": "gt",
    "<": "lt",
}
# longest first, so '>=' is not read as '>' then '='
_OPERATOR_RE = re.compile(
    "(" + "|".join(re.escape(o) for o in sorted(_OPERATORS, key=len, reverse=True)) + ")"
)
# a range `low < key < high` is `key > low` and `key < high`: the left operator turned round
_TURNED = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}
FILTER_SYNTAX = (
    "Write filters as key<operator>value, e.g. datatype=climate or run_number>=2020, with "
    "the operators = == != ≠ > >= ≥ < <= ≤; a range as low<key<high (or with <=, ≤, or "
    "high>key>low), e.g. 2019<run_number<=2021; ',' for AND and ';' for OR."
)
_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")


def check_scope(scope: str, param: str = "scope") -> str:
    if not _SCOPE.match(scope or ""):
        raise bad_request(
            param,
            f"'{scope}' is not a Rucio scope (letters, digits, '_', '-' and "
            "'.', at most 25 characters).",
        )
    return scope


def check_name(name: str, param: str = "name", pattern: bool = False) -> str:
    if not (_NAME_PATTERN if pattern else _NAME).match(name or ""):
        what = "name pattern" if pattern else "data identifier name"
        raise bad_request(param, f"'{name}' is not a valid {what}.")
    return name


def parse_did(text: Any, param: str = "did") -> tuple[str, str]:
    """``"scope:name"`` → (scope, name); a 400 naming ``param`` otherwise."""
    if not isinstance(text, str) or text.count(":") < 1:
        raise bad_request(
            param,
            f"'{param}' must be a data identifier written scope:name, "
            "e.g. intertwin:climate.era5.2020.",
        )
    scope, name = text.split(":", 1)
    return check_scope(scope.strip(), param), check_name(name.strip(), param)


def check_rule_id(rule_id: str) -> str:
    if not _RULE_ID.match(rule_id):
        raise bad_request(
            "rule_id", f"'{rule_id}' is not a Rucio rule id (32 hexadecimal characters)."
        )
    return rule_id.lower()


def parse_int(
    value: str | None, param: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise bad_request(param, f"'{param}' must be a whole number, not '{value}'.") from None
    if n < minimum or (maximum is not None and n > maximum):
        top = f" and at most {maximum}" if maximum is not None else ""
        raise bad_request(param, f"'{param}' must be at least {minimum}{top}; got {n}.")
    return n


def parse_cursor(value: str | None) -> int | None:
    """A page's ``cursor`` (the ``next`` of the page before; opaque to clients) → the row the
    page starts at; None without one."""
    if value is None or value == "":
        return None
    if not _CURSOR.match(value):
        raise bad_request(
            "cursor", f"'{value}' is not a cursor: give the 'next' of the page before."
        )
    return int(value)


def next_cursor(offset: int) -> str:
    """The ``next`` of a page whose successor starts at row ``offset``."""
    return str(offset)


def check_body_keys(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """400 naming the first field of a request body that is not one of ``allowed``."""
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise bad_request(extra[0], f"Unknown field '{extra[0]}' in the request body.")


def parse_lifetime_days(
    value: Any, default: int, maximum: int, param: str = "lifetime_days"
) -> int:
    """A lifetime in whole days: positive and at most ``maximum``; ``None`` → ``default``."""
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise bad_request(param, f"'{param}' must be a whole number of days.")
    days = int(value)
    if days < 1 or days > maximum:
        raise bad_request(param, f"'{param}' must be between 1 and {maximum} days; got {days}.")
    return days


def parse_type(value: str | None) -> str:
    t = (value or "all").lower()
    if t not in DID_TYPES:
        raise bad_request("type", f"'type' must be one of {', '.join(DID_TYPES)}; got '{value}'.")
    return t


def parse_filters(text: str | None, name: str = "*") -> list[dict[str, Any]]:
    """A metadata filter text → Rucio's ``filters`` (a list of OR-ed dicts of AND-ed
    conditions), in rucio-jupyterlab's syntax (its ``parse_did_filter_from_string_fe``):
    ``,`` is AND, ``;`` is OR, operators ``= == != ≠ > >= ≥ < <= ≤``, ranges
    ``low < key < high``: ``"datatype=climate,2019<run_number≤2021"`` →
    ``[{"name": "*", "datatype": "climate", "run_number.gt": "2019",
    "run_number.lte": "2021"}]``. Rucio types the values itself (numbers, dates, booleans).
    Anything else is a 400 that shows the accepted syntax."""
    groups: list[dict[str, Any]] = []
    for raw_group in (text or "").split(";"):
        group: dict[str, Any] = {}
        for cond in raw_group.split(","):
            cond = cond.strip()
            if not cond:
                continue
            tokens = [t.strip() for t in _OPERATOR_RE.split(cond)]
            if len(tokens) == 3:  # key op value
                key, op, value = tokens
                conditions = [(key, _OPERATORS[op], value)]
            elif len(tokens) == 5:  # low op key op high
                low, op1, key, op2, high = tokens
                s1, s2 = _OPERATORS[op1], _OPERATORS[op2]
                if s1 not in _TURNED or s2 not in _TURNED or s1[:2] != s2[:2]:
                    raise bad_request(
                        "filters",
                        f"The range '{cond}' must use < or <= (or > "
                        f"or >=) on both sides. {FILTER_SYNTAX}",
                    )
                conditions = [(key, _TURNED[s1], low), (key, s2, high)]
            else:
                what = "has no operator" if len(tokens) == 1 else "is not a condition"
                raise bad_request("filters", f"The filter '{cond}' {what}. {FILTER_SYNTAX}")
            for key, suffix, value in conditions:
                if not _FILTER_KEY.match(key) or not value:
                    raise bad_request(
                        "filters", f"The filter '{cond}' is not key<operator>value. {FILTER_SYNTAX}"
                    )
                if key == "name":
                    if suffix:
                        raise bad_request("filters", "A name filter only supports '='.")
                    group["name"] = value
                    continue
                full = f"{key}.{suffix}" if suffix else key
                if full in group:
                    raise bad_request(
                        "filters",
                        f"The key '{key}' appears twice with the same operator in one AND group.",
                    )
                group[full] = value
        if group or not groups:
            group.setdefault("name", name)
            groups.append(group)
    return groups


def did_type_of(row: Mapping[str, Any]) -> str:
    """Rucio's ``type`` / ``did_type`` (``DATASET``, ``DIDType.DATASET``) → ``dataset``."""
    raw = str(row.get("type") or row.get("did_type") or "").lower()
    return raw.rsplit(".", 1)[-1] or "file"


def did_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One search result or child, as the API gives it."""
    return {
        "scope": row["scope"],
        "name": row["name"],
        "type": did_type_of(row),
        "bytes": row.get("bytes"),
        "length": row.get("length"),
    }


def content_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scope": row["scope"],
        "name": row["name"],
        "type": did_type_of(row),
        "bytes": row.get("bytes"),
    }


def json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return iso(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def iso(value: Any) -> str | None:
    """Rucio's dates (datetime, or RFC 1123 strings from the REST API) → ISO 8601 UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    for fmt in ("%a, %d %b %Y %H:%M:%S %Z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text.split(".")[0], fmt).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
    return text


# Rucio deletes a rule softly: it sets the rule to expire within this many seconds
SOFT_DELETE_SECONDS = 3600


def ends_soon(rule: Mapping[str, Any], now: datetime | None = None) -> bool:
    """Whether ``rule`` expires within Rucio's soft-deletion window: it was deleted (by any
    server, any session) or is about to lapse; either way it will not keep data for long."""
    text = iso(rule.get("expires_at"))
    if text is None:
        return False
    try:
        expires = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return (expires - now).total_seconds() <= SOFT_DELETE_SECONDS + 60


# columns of Rucio's DID table that say nothing to a scientist, or are in the DID row itself
_META_HIDDEN = {
    "scope",
    "name",
    "did_type",
    "deleted_at",
    "purge_replicas",
    "is_new",
    "hidden",
    "suppressed",
    "obsolete",
    "transient",
    "constituent",
    "is_archive",
    "access_cnt",
    "availability",
    "monotonic",
}


def metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A DID's metadata without empty values and Rucio's internal columns."""
    return {
        k: json_value(v)
        for k, v in sorted(meta.items())
        if v is not None and v != "" and k not in _META_HIDDEN
    }


def rule_state(value: Any) -> str:
    """``"REPLICATING"``, ``"RuleState.REPLICATING"`` or the DB code ``"R"`` → ``REPLICATING``."""
    text = str(value or "").rsplit(".", 1)[-1].upper()
    codes = {
        "O": "OK",
        "R": "REPLICATING",
        "S": "STUCK",
        "U": "SUSPENDED",
        "W": "WAITING_APPROVAL",
        "I": "INJECT",
    }
    return codes.get(text, text)


def rule_json(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A Rucio rule (GET /rules/{id}) as the API gives it."""
    ok = int(rule.get("locks_ok_cnt") or 0)
    rep = int(rule.get("locks_replicating_cnt") or 0)
    stuck = int(rule.get("locks_stuck_cnt") or 0)
    total = ok + rep + stuck
    state = rule_state(rule.get("state"))
    progress = ok / total if total else (1.0 if state == "OK" else 0.0)
    return {
        "id": rule["id"],
        "did": f"{rule['scope']}:{rule['name']}",
        "scope": rule["scope"],
        "name": rule["name"],
        "did_type": did_type_of({"type": rule.get("did_type")}),
        "account": rule.get("account"),
        "rse_expression": rule.get("rse_expression"),
        "state": state,
        "locks": {"ok": ok, "replicating": rep, "stuck": stuck},
        "progress": round(progress, 4),
        "expires_at": iso(rule.get("expires_at")),
        "created_at": iso(rule.get("created_at")),
        "updated_at": iso(rule.get("updated_at")),
        "error": rule.get("error") or None,
    }


def rule_rank(rule: Mapping[str, Any]) -> tuple[int, str]:
    """Sort key: the rule that best explains a DID's state at the site comes first."""
    order = {
        "OK": 0,
        "REPLICATING": 1,
        "INJECT": 2,
        "WAITING_APPROVAL": 3,
        "STUCK": 4,
        "SUSPENDED": 5,
    }
    return order.get(rule_state(rule.get("state")), 9), str(rule.get("id"))


def here_state(replica: Mapping[str, Any] | None, rule: Mapping[str, Any] | None) -> str:
    """What "here" (the site's scratch RSE) holds of a DID, from its replica there and the
    user's rule for it: AVAILABLE, PARTIAL, REPLICATING, NOT_AVAILABLE or STUCK."""
    avail = int((replica or {}).get("available_length") or 0)
    length = (replica or {}).get("length")
    full = replica is not None and (
        replica.get("state") == "AVAILABLE" or (length is not None and avail >= int(length) > 0)
    )
    if full:
        return "AVAILABLE"
    if rule is not None:
        state = rule_state(rule.get("state"))
        if state == "OK":
            return "AVAILABLE"
        if state in ("STUCK", "SUSPENDED"):
            return "STUCK"
        return "REPLICATING"
    if replica is not None and replica.get("state") == "COPYING":
        return "REPLICATING"
    return "PARTIAL" if avail > 0 else "NOT_AVAILABLE"


def aggregate_replicas(
    rows: Iterable[Mapping[str, Any]], length: int | None, sites: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """Dataset replicas (one row per dataset and RSE) → one entry per RSE for the DID:
    a container's entry sums its datasets; ``length`` is the DID's file count."""
    per_rse: dict[str, dict[str, Any]] = {}
    for r in rows:
        e = per_rse.setdefault(
            r["rse"], {"rse": r["rse"], "available_length": 0, "length": 0, "states": set()}
        )
        e["available_length"] += int(r.get("available_length") or 0)
        e["length"] += int(r.get("length") or 0)
        e["states"].add(str(r.get("state") or "UNAVAILABLE").rsplit(".", 1)[-1])
    out = []
    for rse, e in sorted(per_rse.items()):
        total = length if length is not None else e["length"]
        if total and e["available_length"] >= total:
            state = "AVAILABLE"
        elif "COPYING" in e["states"]:
            state = "COPYING"
        else:
            state = "UNAVAILABLE" if total else sorted(e["states"])[0]
        out.append(
            {
                "rse": rse,
                "site": sites.get(rse),
                "state": state,
                "available_length": e["available_length"],
                "length": total,
            }
        )
    return out


def file_replicas(row: Mapping[str, Any], sites: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """One file's ``list_replicas`` row (``states`` per RSE) → one entry per RSE."""
    out = []
    for rse, state in sorted((row.get("states") or {}).items()):
        state = str(state).rsplit(".", 1)[-1]
        out.append(
            {
                "rse": rse,
                "site": sites.get(rse),
                "state": state,
                "available_length": 1 if state == "AVAILABLE" else 0,
                "length": 1,
            }
        )
    return out


def local_path(
    pfn: str | None,
    prefix: str | None,
    mount_path: str | None,
    *,
    pfn_prefix: str | None = None,
    path_begins_at: int | None = None,
) -> str | None:
    """A PFN on the site's RSE (any scheme: ``file``, ``davs``, ``root``...) → the file's path
    on this compute node, joined to the mount path (where the site mounts the RSE). What is
    cut from the PFN, in order of precedence: ``pfn_prefix`` (the site's explicit PFN prefix),
    ``path_begins_at`` (that many leading path components, rucio-jupyterlab's rule), else
    ``prefix`` (the path prefix of the RSE protocol that made the PFN). None when the PFN does
    not fit the rule: a wrong path is worse than none."""
    if not pfn or not mount_path:
        return None
    if pfn_prefix:
        root = pfn_prefix.rstrip("/") + "/"
        if not pfn.startswith(root):
            return None
        rel = unquote(urlparse(pfn).path)[len(unquote(urlparse(root).path)) :]
    else:
        # root:// PFNs write the path after a double slash (root://host:1094//eos/...)
        path = re.sub(r"/+", "/", unquote(urlparse(pfn).path))
        if path_begins_at is not None:
            parts = [p for p in path.split("/") if p]
            if len(parts) <= path_begins_at:
                return None
            rel = "/".join(parts[path_begins_at:])
        else:
            root = "/" + (prefix or "").strip("/")
            if root != "/" and not (path == root or path.startswith(root + "/")):
                return None
            rel = path[len(root) :] if root != "/" else path
    rel = rel.strip("/")
    if not rel or ".." in rel.split("/"):
        return None
    return posixpath.join(mount_path, rel)


def pick_pfn(row: Mapping[str, Any], rse: str) -> str | None:
    """The best PFN of a ``list_replicas`` row on ``rse``: ``file`` first (a path valid on the
    node as it is), then the lan domain, then Rucio's priority."""
    best: tuple[int, int, int, str] | None = None
    for pfn, info in (row.get("pfns") or {}).items():
        if info.get("rse") != rse:
            continue
        rank = (
            0 if str(pfn).startswith("file:") else 1,
            0 if info.get("domain") == "lan" else 1,
            int(info.get("priority") or 0),
            pfn,
        )
        if best is None or rank < best:
            best = rank
    if best is not None:
        return best[3]
    pfns = [str(p) for p in (row.get("rses") or {}).get(rse) or []]
    return next((p for p in pfns if p.startswith("file:")), pfns[0] if pfns else None)
