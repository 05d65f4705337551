"""Initial policy schema: the decision log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(26), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("create_time", _TZ, nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("allow", sa.Boolean, nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_name", sa.String(1024), nullable=False),
        sa.Column("resource_tenant", sa.String(255), nullable=False),
        sa.Column("bundle_revision", sa.String(80), nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("enforcer", sa.String(255), nullable=False),
        sa.Column("decision", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
        sa.UniqueConstraint("request_id", name="uq_decisions_request_id"),
    )
    op.create_index(
        "ix_decisions_tenant_create_time",
        "decisions",
        ["tenant", "create_time", "decision_id"],
    )
    op.create_index(
        "ix_decisions_resource_tenant_create_time",
        "decisions",
        ["resource_tenant", "create_time", "decision_id"],
    )
    op.create_index("ix_decisions_create_time", "decisions", ["create_time"])


def downgrade() -> None:
    op.drop_table("decisions")
