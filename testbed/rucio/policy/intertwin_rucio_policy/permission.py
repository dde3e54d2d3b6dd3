"""Permissions: ``generic`` plus "a rule's owner may delete it and change its lifetime"."""

from __future__ import annotations

from typing import Any

from rucio.core.permission import generic

# what an owner may change on their own rule (moving or re-targeting it stays root's)
OWNER_RULE_OPTIONS = {"lifetime", "comment"}


def _owns_rule(issuer: Any, rule_id: str, session: Any) -> bool:
    from rucio.common.exception import RuleNotFound
    from rucio.core.rule import get_rule

    try:
        return bool(get_rule(rule_id, session=session)["account"] == issuer)
    except RuleNotFound:
        return False


def has_permission(issuer: Any, action: str, kwargs: dict[str, Any], *, session: Any = None) -> Any:
    if action == "del_rule" and _owns_rule(issuer, kwargs["rule_id"], session):
        return True
    if (
        action == "update_rule"
        and set(kwargs.get("options") or {}) <= OWNER_RULE_OPTIONS
        and _owns_rule(issuer, kwargs["rule_id"], session)
    ):
        return True
    return generic.has_permission(issuer, action, kwargs, session=session)
