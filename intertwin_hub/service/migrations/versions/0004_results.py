"""a batch cell's result, kept once it ended (its pod, and its log with it, are deleted)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("result_state", sa.String(16), nullable=True))
        b.add_column(sa.Column("result_status", sa.String(16), nullable=True))
        b.add_column(sa.Column("result_bytes", sa.BigInteger, nullable=True))
        b.add_column(sa.Column("result_sha256", sa.String(64), nullable=True))
        b.add_column(sa.Column("result_note", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        for column in ("result_note", "result_sha256", "result_bytes", "result_status"):
            b.drop_column(column)
        b.drop_column("result_state")
