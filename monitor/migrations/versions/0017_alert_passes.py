"""alert_passes: the passes whose alerts are not claimed yet, so a crash loses no alert

A pass adds its row before it stores a post; its alert round deletes it in the transaction of
its claims. The next round also alerts on the posts first seen since a row a dead process left.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_passes")),
    )


def downgrade() -> None:
    op.drop_table("alert_passes")
