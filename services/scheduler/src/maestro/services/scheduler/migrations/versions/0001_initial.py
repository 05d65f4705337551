"""Initial scheduler schema: executions, plans, step runs, attempts (the SQL task
queue), the event journal, human tasks, request ids and the dispatch outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:04:13.882089
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("task_id", sa.String(length=320), nullable=False),
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("step_id", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("task_queue", sa.String(length=63), nullable=False),
        sa.Column("handler", sa.String(length=255), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("step_output", sa.Text(), nullable=True),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=320), nullable=False),
        sa.Column("schedule_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visible_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_id", sa.String(length=32), nullable=False),
        sa.Column("lease_expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_identity", sa.String(length=256), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("traceparent", sa.String(length=64), nullable=False),
        sa.Column("dispatch_ref", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_attempts"),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attempts_execution_step", ["execution_id", "step_id"], unique=False
        )
        batch_op.create_index(
            "ix_attempts_queue_state_visible", ["task_queue", "state", "visible_time"], unique=False
        )
        batch_op.create_index("ix_attempts_state_deadline", ["state", "deadline"], unique=False)
        batch_op.create_index(
            "ix_attempts_state_lease_expire", ["state", "lease_expire_time"], unique=False
        )

    op.create_table(
        "execution_events",
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "sequence", name="pk_execution_events"),
    )
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("workflow_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("definition_digest", sa.String(length=64), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("correlation_id", sa.String(length=128), nullable=False),
        sa.Column("parent_execution_id", sa.String(length=26), nullable=False),
        sa.Column("parent_step_id", sa.String(length=255), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("last_event_sequence", sa.BigInteger(), nullable=False),
        sa.Column("completions", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", name="pk_executions"),
        sa.UniqueConstraint("tenant", "request_id", name="uq_executions_tenant_request_id"),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_executions_state_expire_time", ["state", "expire_time"], unique=False
        )
        batch_op.create_index(
            "ix_executions_tenant_create_time",
            ["tenant", "create_time", "execution_id"],
            unique=False,
        )

    op.create_table(
        "human_tasks",
        sa.Column("task_id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("step_id", sa.String(length=255), nullable=False),
        sa.Column("assignees", sa.Text(), nullable=False),
        sa.Column("form_schema", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("due_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("completed_by", sa.String(length=255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("close_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etag", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_human_tasks"),
    )
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_human_tasks_execution", ["execution_id"], unique=False)
        batch_op.create_index(
            "ix_human_tasks_tenant_state_due", ["tenant", "state", "due_time"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("task_id", sa.String(length=320), nullable=False),
        sa.Column("task_queue", sa.String(length=63), nullable=False),
        sa.Column("visible_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_outbox"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_visible_time", ["visible_time"], unique=False)

    op.create_table(
        "plans",
        sa.Column("definition_digest", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.LargeBinary(), nullable=False),
        sa.Column("definition", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("definition_digest", name="pk_plans"),
    )
    op.create_table(
        "requests",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "method", "request_id", name="pk_requests"),
    )
    op.create_table(
        "step_runs",
        sa.Column("execution_id", sa.String(length=26), nullable=False),
        sa.Column("step_id", sa.String(length=255), nullable=False),
        sa.Column("parent_step", sa.String(length=255), nullable=False),
        sa.Column("loop_index", sa.Integer(), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("item", sa.Text(), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("attempt_base", sa.Integer(), nullable=False),
        sa.Column("skip_reason", sa.String(length=16), nullable=False),
        sa.Column("human_task", sa.String(length=64), nullable=False),
        sa.Column("child_execution", sa.String(length=64), nullable=False),
        sa.Column("timer_fire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timer_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "step_id", name="pk_step_runs"),
    )
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.create_index("ix_step_runs_timer_due", ["timer_due"], unique=False)
        batch_op.create_index("ix_step_runs_type_state", ["type", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_step_runs_type_state")
        batch_op.drop_index("ix_step_runs_timer_due")

    op.drop_table("step_runs")
    op.drop_table("requests")
    op.drop_table("plans")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_visible_time")

    op.drop_table("outbox")
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_human_tasks_tenant_state_due")
        batch_op.drop_index("ix_human_tasks_execution")

    op.drop_table("human_tasks")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_tenant_create_time")
        batch_op.drop_index("ix_executions_state_expire_time")

    op.drop_table("executions")
    op.drop_table("execution_events")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_state_lease_expire")
        batch_op.drop_index("ix_attempts_state_deadline")
        batch_op.drop_index("ix_attempts_queue_state_visible")
        batch_op.drop_index("ix_attempts_execution_step")

    op.drop_table("attempts")
