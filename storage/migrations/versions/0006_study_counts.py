"""Studies count their instances, so the completion sweep reads studies, not instances.

The counts are filled from the instances already indexed; a study's ``analysed_count`` is the
number its latest version covered (those received up to ``analysed_through``), so what was
pending before the upgrade is pending after it, and nothing else.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PENDING = sa.text("received_count > analysed_count")
STUDIES = sa.table(
    "studies",
    sa.column("id"),
    sa.column("received_count"),
    sa.column("last_received_at"),
    sa.column("analysed_count"),
    sa.column("analysed_through"),
)
SERIES = sa.table("series", sa.column("id"), sa.column("study_fk"))
INSTANCES = sa.table("instances", sa.column("series_fk"), sa.column("received_at"))


def of_study(figure: sa.ColumnElement[Any], *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
    """``figure`` over the instances of the study being updated (a correlated subquery)."""
    joined = INSTANCES.join(SERIES, INSTANCES.c.series_fk == SERIES.c.id)
    return (
        sa.select(figure)
        .select_from(joined)
        .where(SERIES.c.study_fk == STUDIES.c.id, *where)
        .scalar_subquery()
    )


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(
            sa.Column("received_count", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("last_received_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("analysed_count", sa.Integer, nullable=False, server_default="0")
        )
    covered = INSTANCES.c.received_at <= STUDIES.c.analysed_through
    op.execute(
        STUDIES.update().values(
            received_count=of_study(sa.func.count()),
            last_received_at=of_study(sa.func.max(INSTANCES.c.received_at)),
            analysed_count=sa.case(
                (STUDIES.c.analysed_through.is_(None), 0),
                else_=of_study(sa.func.count(), covered),
            ),
        )
    )
    op.create_index(
        "ix_studies_pending", "studies", ["id"], sqlite_where=PENDING, postgresql_where=PENDING
    )


def downgrade() -> None:
    op.drop_index("ix_studies_pending", table_name="studies")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("analysed_count")
        batch.drop_column("last_received_at")
        batch.drop_column("received_count")
