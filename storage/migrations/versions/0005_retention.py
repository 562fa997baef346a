"""Retention: received instances and the results derived from them record a purge.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("result_objects") as batch:
        batch.add_column(sa.Column("source_purged_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("result_objects") as batch:
        batch.drop_column("source_purged_at")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("purged_at")
