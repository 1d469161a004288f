"""leases for several workers, failing_since and rhythm for scheduling, run pruning index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rhythm_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("leased_by", sa.Text(), nullable=True))
    with op.batch_alter_table("collection_runs") as batch:
        batch.create_index("ix_collection_runs_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collection_runs") as batch:
        batch.drop_index("ix_collection_runs_started_at")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("leased_by")
        batch.drop_column("leased_until")
        batch.drop_column("rhythm_s")
        batch.drop_column("failing_since")
