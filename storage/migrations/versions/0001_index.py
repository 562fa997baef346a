"""Index of received instances: patients, studies, series, instances.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("patient_name", sa.Text),
        sa.Column("birth_date", sa.String(8)),
        sa.Column("sex", sa.String(16)),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_patients_identity"),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_instance_uid", UID, nullable=False, unique=True),
        sa.Column("patient_fk", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("accession_number", sa.Text),
        sa.Column("study_date", sa.String(8)),
        sa.Column("study_time", sa.String(32)),
        sa.Column("study_description", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_studies_patient_fk", "studies", ["patient_fk"])
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series_instance_uid", UID, nullable=False, unique=True),
        sa.Column("study_fk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("modality", sa.String(16)),
        sa.Column("series_number", sa.Integer),
        sa.Column("series_description", sa.Text),
        sa.Column("body_part_examined", sa.Text),
        sa.Column("laterality", sa.String(2)),
    )
    op.create_index("ix_series_study_fk", "series", ["study_fk"])
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sop_instance_uid", UID, nullable=False, unique=True),
        sa.Column("sop_class_uid", UID, nullable=False),
        sa.Column("series_fk", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("transfer_syntax_uid", UID, nullable=False),
        sa.Column("instance_number", sa.Integer),
        sa.Column("image_laterality", sa.String(2)),
        sa.Column("view_position", sa.String(16)),
        sa.Column("view_code", sa.String(16)),
        sa.Column("image_type", sa.Text),
        sa.Column("acquisition_datetime", sa.String(32)),
        sa.Column("content_date", sa.String(8)),
        sa.Column("content_time", sa.String(32)),
        sa.Column("rows", sa.Integer),
        sa.Column("columns", sa.Integer),
        sa.Column("number_of_frames", sa.Integer),
        sa.Column("file_path", sa.Text, nullable=False, unique=True),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("calling_ae", sa.String(16), nullable=False),
        sa.Column("peer_address", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_instances_series_fk", "instances", ["series_fk"])
    op.create_index("ix_instances_received_at", "instances", ["received_at"])


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_table("series")
    op.drop_table("studies")
    op.drop_table("patients")
