"""Outbox of version-manifest receipts still to be signed.

A row is written in the transaction that publishes a version (only while
receipts are on) and deleted in the transaction that attaches the signed
receipt to the version. It holds what only the publish call knew: who
published (the full principal) and the policy decisions that allowed it.

Revision ID: 0002
Revises: 0001
Create Date: 2025-09-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_receipt_outbox",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("published_by", sa.Text, nullable=False),
        sa.Column("policy_decision_ids", sa.Text, nullable=False),
        sa.Column("policy_bundle_revision", sa.String(255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "workflow_id", "version", name="pk_version_receipt_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "workflow_id", "version"],
            [
                "workflow_versions.tenant",
                "workflow_versions.workflow_id",
                "workflow_versions.version",
            ],
            name="fk_version_receipt_outbox_workflow_versions",
        ),
    )
    op.create_index(
        "ix_version_receipt_outbox_create_time", "version_receipt_outbox", ["create_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_version_receipt_outbox_create_time", "version_receipt_outbox")
    op.drop_table("version_receipt_outbox")
