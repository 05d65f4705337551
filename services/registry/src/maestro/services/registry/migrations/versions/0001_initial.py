"""Initial registry schema: workflows, tags, immutable versions, aliases, request ids.

Revision ID: 0001
Revises:
Create Date: 2025-09-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)

# Every column of workflow_versions but `receipt`: none of them may ever change.
_FROZEN_VERSION_COLUMNS = (
    "tenant",
    "workflow_id",
    "version",
    "seq",
    "source",
    "source_format",
    "definition",
    "plan",
    "digest",
    "publish_time",
    "published_by",
    "changelog",
    "diff_from_previous",
)
_IMMUTABLE = "published workflow versions are immutable"


def _create_tables() -> None:
    op.create_table(
        "workflows",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("draft_version", sa.String(64), nullable=False),
        sa.Column("draft_source", sa.LargeBinary, nullable=False),
        sa.Column("draft_format", sa.SmallInteger, nullable=False),
        sa.Column("draft_definition", sa.LargeBinary, nullable=False),
        sa.Column("draft_digest", sa.String(64), nullable=False),
        sa.Column("draft_diagnostics", sa.Text, nullable=False),
        sa.Column("draft_update_time", _TZ, nullable=False),
        sa.Column("latest_version", sa.String(64), nullable=True),
        sa.Column("frozen", sa.Boolean, nullable=False),
        sa.Column("frozen_reason", sa.Text, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("create_time", _TZ, nullable=False),
        sa.Column("update_time", _TZ, nullable=False),
        sa.Column("delete_time", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("tenant", "workflow_id", name="pk_workflows"),
    )
    op.create_index(
        "ix_workflows_tenant_update_time", "workflows", ["tenant", "update_time", "workflow_id"]
    )
    op.create_table(
        "workflow_tags",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "workflow_id", "tag", name="pk_workflow_tags"),
        sa.ForeignKeyConstraint(
            ["tenant", "workflow_id"],
            ["workflows.tenant", "workflows.workflow_id"],
            name="fk_workflow_tags_workflows",
        ),
    )
    op.create_index("ix_workflow_tags_tenant_tag", "workflow_tags", ["tenant", "tag"])
    op.create_table(
        "workflow_versions",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("source", sa.LargeBinary, nullable=False),
        sa.Column("source_format", sa.SmallInteger, nullable=False),
        sa.Column("definition", sa.LargeBinary, nullable=False),
        sa.Column("plan", sa.LargeBinary, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("publish_time", _TZ, nullable=False),
        sa.Column("published_by", sa.String(255), nullable=False),
        sa.Column("changelog", sa.Text, nullable=False),
        sa.Column("diff_from_previous", sa.LargeBinary, nullable=True),
        sa.Column("receipt", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "workflow_id", "version", name="pk_workflow_versions"),
        sa.UniqueConstraint("tenant", "workflow_id", "seq", name="uq_workflow_versions_seq"),
        sa.ForeignKeyConstraint(
            ["tenant", "workflow_id"],
            ["workflows.tenant", "workflows.workflow_id"],
            name="fk_workflow_versions_workflows",
        ),
    )
    op.create_table(
        "workflow_aliases",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("update_time", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "workflow_id", "alias", name="pk_workflow_aliases"),
        sa.ForeignKeyConstraint(
            ["tenant", "workflow_id", "version"],
            [
                "workflow_versions.tenant",
                "workflow_versions.workflow_id",
                "workflow_versions.version",
            ],
            name="fk_workflow_aliases_workflow_versions",
        ),
    )
    op.create_table(
        "request_ids",
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("workflow_id", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("create_time", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "request_id", name="pk_request_ids"),
    )


def _create_immutability_triggers() -> None:
    # A published version never changes and is never deleted; the one allowed
    # update attaches a signer receipt to a version that has none.
    if op.get_bind().dialect.name == "postgresql":
        unchanged = " AND ".join(
            f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _FROZEN_VERSION_COLUMNS
        )
        op.execute(
            f"""
            CREATE FUNCTION workflow_versions_immutable() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'UPDATE' AND OLD.receipt = '' AND {unchanged} THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION '{_IMMUTABLE}' USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER workflow_versions_immutable "
            "BEFORE UPDATE OR DELETE ON workflow_versions "
            "FOR EACH ROW EXECUTE FUNCTION workflow_versions_immutable()"
        )
    else:
        unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _FROZEN_VERSION_COLUMNS)
        op.execute(
            "CREATE TRIGGER workflow_versions_no_update BEFORE UPDATE ON workflow_versions "
            f"WHEN NOT (OLD.receipt = '' AND {unchanged}) "
            f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
        )
        op.execute(
            "CREATE TRIGGER workflow_versions_no_delete BEFORE DELETE ON workflow_versions "
            f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
        )


def upgrade() -> None:
    _create_tables()
    _create_immutability_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER workflow_versions_immutable ON workflow_versions")
        op.execute("DROP FUNCTION workflow_versions_immutable()")
    else:
        op.execute("DROP TRIGGER workflow_versions_no_update")
        op.execute("DROP TRIGGER workflow_versions_no_delete")
    for table in ("request_ids", "workflow_aliases", "workflow_versions", "workflow_tags"):
        op.drop_table(table)
    op.drop_index("ix_workflows_tenant_update_time", "workflows")
    op.drop_table("workflows")
