"""digest_opt_outs: recipients who unsubscribed from the web (one-click or the recipient page)

Recipients stay configuration as code; this table only records who asked to stop receiving
digests, when and how, so that sends skip them and the admin sees it in `digest list`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_opt_outs")),
        sa.UniqueConstraint("recipient", name=op.f("uq_digest_opt_outs_recipient")),
    )


def downgrade() -> None:
    op.drop_table("digest_opt_outs")
