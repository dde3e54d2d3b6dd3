"""the site's measured wall time beside the allocated one (a Slurm job's own start to end), and
an index to find a site's batch job by its id (``intertwin-hub usage import-slurm``)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger") as b:
        b.add_column(sa.Column("measured_wall_seconds", sa.Float, nullable=True))
    op.create_index("ix_jobs_site_batch_job", "jobs", ["site", "batch_job"])


def downgrade() -> None:
    op.drop_index("ix_jobs_site_batch_job", "jobs")
    with op.batch_alter_table("usage_ledger") as b:
        b.drop_column("measured_wall_seconds")
