"""AIP-160 filters from the friendly query parameters of list endpoints.

Kept free of web-framework imports: the CLI builds the same filters from its
flags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from maestro.runtime.cloudevents import execution_name
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.scheduler.v1 import execution_pb2


def _quote(value: str) -> str:
    return json.dumps(value)


def rfc3339(value: datetime) -> str:
    """A timestamp as RFC 3339 in UTC (``...Z``); a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def list_filter(
    *,
    owner: str | None = None,
    tag: str | None = None,
    state: str | None = None,
    updated_since: datetime | None = None,
    extra: str | None = None,
) -> str:
    """The AIP-160 filter of ``GET /api/workflows``'s query parameters, ANDed
    with a raw ``filter`` if given: strings quoted (JSON escapes), the state an
    enum literal (``state = PUBLISHED``), ``updated_since`` as
    ``update_time >= "<RFC 3339>"``."""
    terms = []
    if owner:
        terms.append(f"owner = {_quote(owner)}")
    if tag:
        terms.append(f"tag = {_quote(tag)}")
    if state:
        terms.append(f"state = {state.upper()}")
    if updated_since is not None:
        terms.append(f"update_time >= {_quote(rfc3339(updated_since))}")
    if extra and extra.strip():
        # No parentheses: AIP-160's OR binds tighter than AND, so appending with
        # AND keeps the raw filter's meaning (and the registry's subset has none).
        terms.append(extra.strip())
    return " AND ".join(terms)


def enum_literals(values: Iterable[str], enum: Any, prefix: str, field: str) -> list[str]:
    """Enum names for a filter from repeated and/or comma-separated values, in
    any case, with or without ``prefix`` (``running,FAILED`` -> ``RUNNING``,
    ``FAILED``); duplicates dropped.

    Raises:
        InvalidArgumentError: a value is not a name of ``enum``; ``field`` names
            the parameter in the violation.
    """
    known = [
        n.removeprefix(prefix)
        for n in enum.keys()  # noqa: SIM118 - an enum wrapper
        if not n.endswith("_UNSPECIFIED")
    ]
    names: list[str] = []
    for item in values:
        for raw in item.split(","):
            name = raw.strip().upper().removeprefix(prefix)
            if not name:
                continue
            if name not in known:
                raise InvalidArgumentError(
                    f"{field} must be one of {', '.join(known)}, got {raw.strip()!r}",
                    field_violations=[FieldViolation(field, f"unknown value {raw.strip()!r}")],
                )
            if name not in names:
                names.append(name)
    return names


def _any_of(field: str, literals: list[str]) -> str:
    terms = [f"{field} = {literal}" for literal in literals]
    return terms[0] if len(terms) == 1 else f"({' OR '.join(terms)})"


def _and(terms: list[str], extra: str | None) -> str:
    if extra and extra.strip():
        # As in list_filter: AND binds looser than OR, so the raw filter keeps
        # its meaning; parenthesized anyway, the scheduler supports it.
        terms.append(f"({extra.strip()})" if terms else extra.strip())
    return " AND ".join(terms)


def execution_filter(
    *,
    states: Iterable[str] = (),
    workflow: str | None = None,
    started_after: datetime | None = None,
    tenant: str | None = None,
    extra: str | None = None,
    states_field: str = "status",
) -> str:
    """The AIP-160 filter of ``GET /api/executions``: ``states`` (repeated or
    comma-separated ``ExecutionState`` names, ORed), ``workflow`` (an id or
    ``workflows/{id}``), executions started at or after ``started_after``, a
    ``tenant``, ANDed with a raw ``extra`` filter. String values are quoted.

    Raises:
        InvalidArgumentError: an unknown state (violation on ``states_field``).
    """
    terms = []
    literals = enum_literals(states, execution_pb2.ExecutionState, "EXECUTION_STATE_", states_field)
    if literals:
        terms.append(_any_of("state", literals))
    if workflow and workflow.strip():
        workflow_id = workflow.strip().removeprefix("workflows/")
        terms.append(f"workflow = {_quote(f'workflows/{workflow_id}')}")
    if started_after is not None:
        terms.append(f"start_time >= {_quote(rfc3339(started_after))}")
    if tenant:
        terms.append(f"tenant = {_quote(tenant)}")
    return _and(terms, extra)


def human_task_filter(
    *,
    states: Iterable[str] = (),
    execution: str | None = None,
    step_id: str | None = None,
    assignee: str | None = None,
    extra: str | None = None,
    states_field: str = "state",
) -> str:
    """The AIP-160 filter of ``GET /api/human-tasks``: ``states``
    (``HumanTaskState`` names, ORed), the ``execution`` (an id or
    ``executions/{id}``), the ``step_id``, an ``assignee`` entry (a subject or
    ``role:<name>``), ANDed with a raw ``extra`` filter.

    Raises:
        InvalidArgumentError: an unknown state (violation on ``states_field``).
    """
    terms = []
    literals = enum_literals(
        states, execution_pb2.HumanTaskState, "HUMAN_TASK_STATE_", states_field
    )
    if literals:
        terms.append(_any_of("state", literals))
    if execution and execution.strip():
        terms.append(f"execution = {_quote(execution_name(execution))}")
    if step_id:
        terms.append(f"step_id = {_quote(step_id)}")
    if assignee:
        terms.append(f"assignees: {_quote(assignee)}")
    return _and(terms, extra)
