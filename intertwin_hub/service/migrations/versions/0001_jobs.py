"""jobs and their state changes

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("uid", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("pod", sa.String(253), nullable=False),
        sa.Column("server_name", sa.String(255), nullable=False),
        sa.Column("notebook_path", sa.Text, nullable=True),
        sa.Column("cell_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("sentence", sa.Text, nullable=False),
        sa.Column("node", sa.String(253), nullable=True),
        sa.Column("batch_job", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("cpu", sa.Float, nullable=True),
        sa.Column("memory", sa.BigInteger, nullable=True),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("image", sa.Text, nullable=True),
        sa.Column("submitted", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_jobs_user", "jobs", ["user"])
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_submitted", "jobs", ["submitted"])
    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "job_uid", sa.String(64), sa.ForeignKey("jobs.uid", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_state_changes_job_uid", "state_changes", ["job_uid"])


def downgrade() -> None:
    op.drop_table("state_changes")
    op.drop_table("jobs")
