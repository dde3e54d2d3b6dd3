"""Schemas: Rucio's ``generic`` ones, unchanged (present so Rucio does not warn on every start)."""

from rucio.common.schema.generic import *  # noqa: F403
