"""Deliveries are leased like jobs: a heartbeat column, and an events row per state change.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_fk", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("worker_id", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_delivery_events_delivery_fk", "delivery_events", ["delivery_fk"])


def downgrade() -> None:
    op.drop_table("delivery_events")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("heartbeat_at")
