"""Rows to API messages: executions, step timelines, events, human tasks, tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from google.protobuf import duration_pb2, struct_pb2

from maestro.common.v1 import workflow_pb2
from maestro.runtime.timestamps import timestamp
from maestro.scheduler.v1 import execution_pb2, task_pb2
from maestro.services.scheduler.store import (
    AttemptRow,
    EventRow,
    ExecutionRow,
    HumanTaskRow,
    StepRow,
    loads,
)

EVENT_SOURCE = "//scheduler.maestro.dev/executions/"


def struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    if not value:
        return None
    message = struct_pb2.Struct()
    message.update(value)
    return message


def struct_of(text: str | None) -> struct_pb2.Struct | None:
    value = loads(text)
    return struct(value) if isinstance(value, dict) else None


def duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message


def _step_error(text: str | None) -> execution_pb2.StepError | None:
    error = loads(text)
    if not isinstance(error, dict):
        return None
    return execution_pb2.StepError(
        code=str(error.get("code", "")),
        message=str(error.get("message", "")),
        details=struct(error.get("details") if isinstance(error.get("details"), dict) else None),
        non_retryable=bool(error.get("non_retryable")),
    )


def attempt_message(row: AttemptRow) -> execution_pb2.StepAttempt:
    return execution_pb2.StepAttempt(
        attempt=row.attempt,
        state=cast("execution_pb2.AttemptState", row.state),
        worker_identity=row.worker_identity,
        deliveries=row.deliveries,
        schedule_time=timestamp(row.schedule_time),
        start_time=timestamp(row.start_time),
        end_time=timestamp(row.end_time),
        error=_step_error(row.error),
        idempotency_key=row.idempotency_key,
        progress=struct_of(row.progress),
    )


def step_message(row: StepRow, attempts: Sequence[AttemptRow]) -> execution_pb2.StepRun:
    return execution_pb2.StepRun(
        step_id=row.step_id,
        type=cast("workflow_pb2.StepType", row.type),
        state=cast("execution_pb2.StepState", row.state),
        input=struct_of(row.input),
        output=struct_of(row.output),
        error=_step_error(row.error),
        start_time=timestamp(row.start_time),
        end_time=timestamp(row.end_time),
        next_attempt_time=timestamp(row.next_attempt_time),
        attempts=[attempt_message(a) for a in attempts if a.kind == task_pb2.TASK_KIND_RUN],
        compensation_attempts=[
            attempt_message(a) for a in attempts if a.kind == task_pb2.TASK_KIND_COMPENSATE
        ],
        human_task=row.human_task,
        child_execution=row.child_execution,
        timer_fire_time=timestamp(row.timer_fire_time),
    )


def execution_message(
    row: ExecutionRow,
    steps: Sequence[StepRow] | None = None,
    attempts: Sequence[AttemptRow] = (),
    order: Mapping[str, int] | None = None,
) -> execution_pb2.Execution:
    """The Execution resource; with ``steps`` the FULL view (plan order, loop
    iterations after their loop)."""
    error = loads(row.error)
    message = execution_pb2.Execution(
        name=f"executions/{row.execution_id}",
        workflow=f"workflows/{row.workflow_id}",
        version=row.version,
        alias=row.alias,
        definition_digest=row.definition_digest,
        tenant=row.tenant,
        creator=row.creator,
        state=cast("execution_pb2.ExecutionState", row.state),
        inputs=struct_of(row.inputs),
        outputs=struct_of(row.outputs),
        error=(
            execution_pb2.ExecutionError(
                code=str(error.get("code", "")),
                message=str(error.get("message", "")),
                step_id=str(error.get("step_id", "")),
            )
            if isinstance(error, dict) and row.state != execution_pb2.EXECUTION_STATE_CANCELLING
            else None
        ),
        create_time=timestamp(row.create_time),
        start_time=timestamp(row.start_time),
        end_time=timestamp(row.end_time),
        update_time=timestamp(row.update_time),
        expire_time=timestamp(row.expire_time),
        request_id=row.request_id,
        correlation_id=row.correlation_id,
        parent_execution=(
            f"executions/{row.parent_execution_id}" if row.parent_execution_id else ""
        ),
        parent_step_id=row.parent_step_id,
        last_event_sequence=row.last_event_sequence,
        etag=row.etag,
        labels=loads(row.labels) or {},
        receipt=row.receipt,
    )
    if steps is not None:
        by_step: dict[str, list[AttemptRow]] = {}
        for attempt in attempts:
            by_step.setdefault(attempt.step_id, []).append(attempt)
        rank = order or {}

        def key(step: StepRow) -> tuple[int, int, str]:
            top = step.parent_step or step.step_id
            return (rank.get(top, len(rank)), step.loop_index, step.step_id)

        message.steps.extend(
            step_message(step, by_step.get(step.step_id, ())) for step in sorted(steps, key=key)
        )
    return message


def event_message(row: EventRow) -> execution_pb2.ExecutionEvent:
    return execution_pb2.ExecutionEvent(
        id=str(row.sequence),
        sequence=row.sequence,
        type=cast("execution_pb2.EventType", row.type),
        source=EVENT_SOURCE + row.execution_id,
        subject=row.subject,
        time=timestamp(row.time),
        execution=f"executions/{row.execution_id}",
        attempt=row.attempt,
        data=struct_of(row.data),
    )


def human_task_message(row: HumanTaskRow) -> execution_pb2.HumanTask:
    return execution_pb2.HumanTask(
        name=f"humanTasks/{row.task_id}",
        execution=f"executions/{row.execution_id}",
        step_id=row.step_id,
        tenant=row.tenant,
        assignees=loads(row.assignees) or [],
        form_schema=struct_of(row.form_schema),
        instructions=row.instructions,
        state=cast("execution_pb2.HumanTaskState", row.state),
        due_time=timestamp(row.due_time),
        result=struct_of(row.result),
        completed_by=row.completed_by,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
        close_time=timestamp(row.close_time),
        etag=row.etag,
    )


def task_message(
    row: AttemptRow,
    execution: ExecutionRow,
    heartbeat_seconds: float,
) -> task_pb2.StepTask:
    return task_pb2.StepTask(
        task_id=row.task_id,
        lease_id=row.lease_id,
        lease_expire_time=timestamp(row.lease_expire_time),
        heartbeat_interval=duration(heartbeat_seconds),
        kind=cast("task_pb2.TaskKind", row.kind),
        execution=f"executions/{row.execution_id}",
        tenant=execution.tenant,
        workflow=f"workflows/{execution.workflow_id}",
        version=execution.version,
        step_id=row.step_id,
        attempt=row.attempt,
        delivery=row.deliveries,
        idempotency_key=row.idempotency_key,
        handler=row.handler,
        config=struct_of(row.config),
        input=struct_of(row.input),
        step_output=struct_of(row.step_output),
        timeout=duration(row.timeout_ms / 1000),
        deadline=timestamp(row.deadline),
        task_queue=row.task_queue,
        traceparent=row.traceparent,
        labels=loads(row.labels) or {},
    )
