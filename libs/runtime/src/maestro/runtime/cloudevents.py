"""Executions, human tasks and execution events as JSON, for REST and the CLI.

One rendering for every client-facing surface: the gateway's REST responses
and SSE stream, and ``maestro run``/``maestro executions``.

* Resources are proto JSON (camelCase, enums by name, int64 as strings,
  timestamps RFC 3339) plus conveniences: the resource id (``executionId``,
  ``humanTaskId``) and, on an execution and each of its steps and attempts, a
  ``duration`` (proto JSON Duration, ``"1.250s"``) once both ends are known.
* An :class:`~maestro.scheduler.v1.execution_pb2.ExecutionEvent` is a
  CloudEvents 1.0 event in the JSON format: ``specversion``, ``id``,
  ``source``, ``type`` (the ``dev.maestro.*`` string of its EventType),
  ``subject`` (the step id; omitted when empty), ``time``,
  ``datacontenttype`` and ``data``, plus the extension attributes
  ``executionid`` (the execution id), ``sequence`` (the journal position as a
  zero-padded decimal string, so it orders lexicographically as the CloudEvents
  sequence extension requires; ``id`` is the same number unpadded) and
  ``attempt`` (omitted when the event is not about an attempt).

Numbers inside ``google.protobuf.Struct`` values (inputs, outputs, event data)
are doubles on the wire; integral ones are printed as JSON integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from maestro.scheduler.v1 import execution_pb2

SPEC_VERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
EVENT_SOURCE_PREFIX = "//scheduler.maestro.dev/"
EXECUTION_PREFIX = "executions/"
HUMAN_TASK_PREFIX = "humanTasks/"
SEQUENCE_DIGITS = 19
"""Digits of the padded ``sequence`` attribute: every non-negative int64 fits."""

_E = execution_pb2.EventType
EVENT_TYPES: Mapping[int, str] = {
    _E.EVENT_TYPE_EXECUTION_STARTED: "dev.maestro.execution.started",
    _E.EVENT_TYPE_STEP_SCHEDULED: "dev.maestro.step.scheduled",
    _E.EVENT_TYPE_STEP_STARTED: "dev.maestro.step.started",
    _E.EVENT_TYPE_STEP_SUCCEEDED: "dev.maestro.step.succeeded",
    _E.EVENT_TYPE_STEP_FAILED: "dev.maestro.step.failed",
    _E.EVENT_TYPE_STEP_RETRYING: "dev.maestro.step.retrying",
    _E.EVENT_TYPE_STEP_TIMED_OUT: "dev.maestro.step.timed_out",
    _E.EVENT_TYPE_STEP_CANCELLED: "dev.maestro.step.cancelled",
    _E.EVENT_TYPE_STEP_SKIPPED: "dev.maestro.step.skipped",
    _E.EVENT_TYPE_HUMAN_TASK_CREATED: "dev.maestro.human_task.created",
    _E.EVENT_TYPE_HUMAN_TASK_COMPLETED: "dev.maestro.human_task.completed",
    _E.EVENT_TYPE_TIMER_STARTED: "dev.maestro.timer.started",
    _E.EVENT_TYPE_TIMER_FIRED: "dev.maestro.timer.fired",
    _E.EVENT_TYPE_COMPENSATION_STARTED: "dev.maestro.compensation.started",
    _E.EVENT_TYPE_STEP_COMPENSATED: "dev.maestro.step.compensated",
    _E.EVENT_TYPE_EXECUTION_SUCCEEDED: "dev.maestro.execution.succeeded",
    _E.EVENT_TYPE_EXECUTION_FAILED: "dev.maestro.execution.failed",
    _E.EVENT_TYPE_EXECUTION_CANCEL_REQUESTED: "dev.maestro.execution.cancel_requested",
    _E.EVENT_TYPE_EXECUTION_CANCELLED: "dev.maestro.execution.cancelled",
    _E.EVENT_TYPE_EXECUTION_TIMED_OUT: "dev.maestro.execution.timed_out",
    _E.EVENT_TYPE_EXECUTION_RETRIED: "dev.maestro.execution.retried",
    _E.EVENT_TYPE_EXECUTION_COMPENSATED: "dev.maestro.execution.compensated",
}
"""The CloudEvents ``type`` of each EventType (as listed in execution.proto)."""

TERMINAL_EVENT_TYPES = frozenset(
    {
        _E.EVENT_TYPE_EXECUTION_SUCCEEDED,
        _E.EVENT_TYPE_EXECUTION_FAILED,
        _E.EVENT_TYPE_EXECUTION_CANCELLED,
        _E.EVENT_TYPE_EXECUTION_TIMED_OUT,
        _E.EVENT_TYPE_EXECUTION_COMPENSATED,
    }
)
"""Event types that put an execution in a terminal state."""

_S = execution_pb2.ExecutionState
TERMINAL_STATES = frozenset(
    {
        _S.EXECUTION_STATE_SUCCEEDED,
        _S.EXECUTION_STATE_FAILED,
        _S.EXECUTION_STATE_CANCELLED,
        _S.EXECUTION_STATE_TIMED_OUT,
        _S.EXECUTION_STATE_COMPENSATED,
    }
)
"""Execution states that stay put until an explicit retry or compensation."""

_MAX_EXACT_INT = 2**53


def event_type(value: int) -> str:
    """The CloudEvents ``type`` of an EventType value. A value this build does
    not know (a newer scheduler) gets ``dev.maestro.<name in lower case>``."""
    known = EVENT_TYPES.get(value)
    if known is not None:
        return known
    try:
        name = execution_pb2.EventType.Name(value).removeprefix("EVENT_TYPE_")
    except ValueError:
        name = f"unknown_{value}"
    return f"dev.maestro.{name.lower()}"


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name without its prefix (``RUNNING``), or its number
    when this build does not know it."""
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def execution_state(value: int) -> str:
    """``RUNNING`` for ``EXECUTION_STATE_RUNNING``."""
    return enum_name(execution_pb2.ExecutionState, value, "EXECUTION_STATE_")


def step_state(value: int) -> str:
    """``SUCCEEDED`` for ``STEP_STATE_SUCCEEDED``."""
    return enum_name(execution_pb2.StepState, value, "STEP_STATE_")


def resource_id(name: str, prefix: str = EXECUTION_PREFIX) -> str:
    """The id part of a resource name (``01J9...`` of ``executions/01J9...``)."""
    return name.removeprefix(prefix).split("/", 1)[0]


def execution_name(execution: str) -> str:
    """``executions/{id}`` from an id or a full name."""
    return f"{EXECUTION_PREFIX}{resource_id(execution.strip())}"


def human_task_name(task: str) -> str:
    """``humanTasks/{id}`` from an id or a full name."""
    return f"{HUMAN_TASK_PREFIX}{resource_id(task.strip(), HUMAN_TASK_PREFIX)}"


def plain_numbers(value: Any) -> Any:
    """``value`` with integral doubles (as Struct values come back) as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def message_json(message: Message) -> dict[str, Any]:
    """Proto JSON (camelCase) of a message, integral Struct numbers as ints."""
    body: dict[str, Any] = plain_numbers(json_format.MessageToDict(message))
    return body


def duration_between(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp) -> str:
    """Proto JSON Duration from ``start`` to ``end`` (``"1.250s"``)."""
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(end.ToNanoseconds() - start.ToNanoseconds())
    return duration.ToJsonString()


def _set_duration(body: dict[str, Any], message: Any) -> None:
    if message.HasField("start_time") and message.HasField("end_time"):
        body["duration"] = duration_between(message.start_time, message.end_time)


def execution_json(execution: execution_pb2.Execution) -> dict[str, Any]:
    """An execution as REST JSON: proto JSON plus ``executionId`` and the
    ``duration`` of the execution and of each step and attempt that ended."""
    body = message_json(execution)
    body["executionId"] = resource_id(execution.name)
    _set_duration(body, execution)
    for step, step_body in zip(execution.steps, body.get("steps", ()), strict=True):
        _set_duration(step_body, step)
        for key, attempts in (
            ("attempts", step.attempts),
            ("compensationAttempts", step.compensation_attempts),
        ):
            for attempt, attempt_body in zip(attempts, step_body.get(key, ()), strict=True):
                _set_duration(attempt_body, attempt)
    return body


def human_task_json(task: execution_pb2.HumanTask) -> dict[str, Any]:
    """A human task as REST JSON: proto JSON plus ``humanTaskId``."""
    body = message_json(task)
    body["humanTaskId"] = resource_id(task.name, HUMAN_TASK_PREFIX)
    return body


def cloudevent(event: execution_pb2.ExecutionEvent) -> dict[str, Any]:
    """An execution event as a CloudEvents 1.0 JSON object (see the module
    docstring for the attributes)."""
    execution_id = resource_id(event.execution or event.source.removeprefix(EVENT_SOURCE_PREFIX))
    body: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event.id or str(event.sequence),
        "source": event.source or f"{EVENT_SOURCE_PREFIX}{EXECUTION_PREFIX}{execution_id}",
        "type": event_type(event.type),
    }
    if event.subject:
        body["subject"] = event.subject
    if event.HasField("time"):
        body["time"] = event.time.ToJsonString()
    body["datacontenttype"] = DATA_CONTENT_TYPE
    body["executionid"] = execution_id
    body["sequence"] = f"{event.sequence:0{SEQUENCE_DIGITS}d}"
    if event.attempt:
        body["attempt"] = event.attempt
    body["data"] = plain_numbers(json_format.MessageToDict(event.data))
    return body
