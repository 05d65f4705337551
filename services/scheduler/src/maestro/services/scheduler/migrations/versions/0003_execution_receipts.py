"""Execution receipts: the receipt of an execution's last finish, the starter's
full principal and the policy decisions taken for it on ``executions``, and the
``pending_receipts`` outbox that a finishing transaction writes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("receipt", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("started_by", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("policy_decisions", sa.Text(), nullable=False, server_default="")
        )

    op.create_table(
        "pending_receipts",
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("finish_sequence", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "without_version_receipt", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
        sa.PrimaryKeyConstraint("execution_id", "finish_sequence", name="pk_pending_receipts"),
    )
    with op.batch_alter_table("pending_receipts", schema=None) as batch_op:
        batch_op.create_index("ix_pending_receipts_create_time", ["create_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_receipts_create_time")

    op.drop_table("pending_receipts")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("policy_decisions")
        batch_op.drop_column("started_by")
        batch_op.drop_column("receipt")
