"""Initial signer schema: signing keys, the transparency log, receipts; triggers
that make the log insert-only.

Revision ID: 0001
Revises:
Create Date: 2025-09-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)

_APPEND_ONLY = "the transparency log is append-only"
_RECEIPT_FROZEN = "receipts are immutable but for their cached verification"
_KEY_FROZEN = "signing keys are never deleted; the only change is ACTIVE to RETIRED"

# Columns that never change once written, per table with an allowed update.
_FROZEN_RECEIPT_COLUMNS = (
    "receipt_id",
    "tenant",
    "kind",
    "subject",
    "statement_digest",
    "log_index",
    "request_id",
    "request_hash",
    "create_time",
)
_FROZEN_KEY_COLUMNS = (
    "key_id",
    "public_key",
    "sealed_private_key",
    "kek_id",
    "create_time",
    "request_id",
    "reason",
    "previous_key_id",
)


def _create_tables() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary, nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("create_time", _TZ, nullable=False),
        sa.Column("rotate_time", _TZ, nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("previous_key_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_signing_keys"),
        sa.UniqueConstraint("request_id", name="uq_signing_keys_request_id"),
    )
    op.create_index(
        "uq_signing_keys_active",
        "signing_keys",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'ACTIVE'"),
        postgresql_where=sa.text("state = 'ACTIVE'"),
    )
    op.create_table(
        "log_leaves",
        sa.Column("leaf_index", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("leaf_data", sa.LargeBinary, nullable=False),
        sa.Column("create_time", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_log_leaves"),
    )
    op.create_index("ix_log_leaves_leaf_hash", "log_leaves", ["leaf_hash"])
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_checkpoints"),
        sa.ForeignKeyConstraint(
            ["key_id"], ["signing_keys.key_id"], name="fk_checkpoints_signing_keys"
        ),
    )
    op.create_table(
        "receipts",
        sa.Column("receipt_id", sa.String(26), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("statement_digest", sa.String(64), nullable=False),
        sa.Column("log_index", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("create_time", _TZ, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("verify_time", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_receipts"),
        sa.UniqueConstraint("log_index", name="uq_receipts_log_index"),
        sa.UniqueConstraint("tenant", "request_id", name="uq_receipts_tenant_request_id"),
        sa.ForeignKeyConstraint(
            ["log_index"], ["log_leaves.leaf_index"], name="fk_receipts_log_leaves"
        ),
    )
    op.create_index(
        "ix_receipts_tenant_create_time", "receipts", ["tenant", "create_time", "log_index"]
    )


def _postgres_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION signer_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '{_APPEND_ONLY}: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    for table in ("log_leaves", "checkpoints"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION signer_log_append_only()"
        )
    for table in ("log_leaves", "checkpoints", "receipts", "signing_keys"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION signer_log_append_only()"
        )
    receipt_unchanged = " AND ".join(
        f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _FROZEN_RECEIPT_COLUMNS
    )
    op.execute(
        f"""
        CREATE FUNCTION signer_receipts_immutable() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND {receipt_unchanged} THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION '{_RECEIPT_FROZEN}' USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER receipts_immutable BEFORE UPDATE OR DELETE ON receipts "
        "FOR EACH ROW EXECUTE FUNCTION signer_receipts_immutable()"
    )
    key_unchanged = " AND ".join(
        f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _FROZEN_KEY_COLUMNS
    )
    op.execute(
        f"""
        CREATE FUNCTION signer_keys_retire_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.state = 'ACTIVE' AND NEW.state = 'RETIRED'
             AND OLD.rotate_time IS NULL AND NEW.rotate_time IS NOT NULL
             AND {key_unchanged} THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION '{_KEY_FROZEN}' USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER signing_keys_retire_only BEFORE UPDATE OR DELETE ON signing_keys "
        "FOR EACH ROW EXECUTE FUNCTION signer_keys_retire_only()"
    )


def _sqlite_triggers() -> None:
    for table in ("log_leaves", "checkpoints"):
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}: {operation} on {table} refused'); "
                "END"
            )
    receipt_unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _FROZEN_RECEIPT_COLUMNS)
    op.execute(
        "CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts "
        f"WHEN NOT ({receipt_unchanged}) "
        f"BEGIN SELECT RAISE(ABORT, '{_RECEIPT_FROZEN}'); END"
    )
    op.execute(
        "CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts "
        f"BEGIN SELECT RAISE(ABORT, '{_RECEIPT_FROZEN}'); END"
    )
    key_unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _FROZEN_KEY_COLUMNS)
    op.execute(
        "CREATE TRIGGER signing_keys_no_update BEFORE UPDATE ON signing_keys "
        "WHEN NOT (OLD.state = 'ACTIVE' AND NEW.state = 'RETIRED' "
        "AND OLD.rotate_time IS NULL AND NEW.rotate_time IS NOT NULL "
        f"AND {key_unchanged}) "
        f"BEGIN SELECT RAISE(ABORT, '{_KEY_FROZEN}'); END"
    )
    op.execute(
        "CREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON signing_keys "
        f"BEGIN SELECT RAISE(ABORT, '{_KEY_FROZEN}'); END"
    )


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("log_leaves", "checkpoints"):
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        for table in ("log_leaves", "checkpoints", "receipts", "signing_keys"):
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER receipts_immutable ON receipts")
        op.execute("DROP TRIGGER signing_keys_retire_only ON signing_keys")
        for function in (
            "signer_log_append_only",
            "signer_receipts_immutable",
            "signer_keys_retire_only",
        ):
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for trigger in (
            "log_leaves_no_update",
            "log_leaves_no_delete",
            "checkpoints_no_update",
            "checkpoints_no_delete",
            "receipts_no_update",
            "receipts_no_delete",
            "signing_keys_no_update",
            "signing_keys_no_delete",
        ):
            op.execute(f"DROP TRIGGER {trigger}")
    op.drop_index("ix_receipts_tenant_create_time", "receipts")
    op.drop_table("receipts")
    op.drop_table("checkpoints")
    op.drop_index("ix_log_leaves_leaf_hash", "log_leaves")
    op.drop_table("log_leaves")
    op.drop_index("uq_signing_keys_active", "signing_keys")
    op.drop_table("signing_keys")
