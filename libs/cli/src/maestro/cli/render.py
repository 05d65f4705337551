"""Output of the API commands: rich tables and compiler-style diagnostics for
people, proto JSON for machines, and exit codes by error kind."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from maestro.common.v1 import diagnostic_pb2, diff_pb2
from maestro.common.v1 import workflow_pb2 as common_workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import simulation_pb2
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime.cloudevents import (
    HUMAN_TASK_PREFIX,
    duration_between,
    enum_name,
    execution_state,
    resource_id,
    step_state,
)
from maestro.runtime.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MaestroError,
    NotFoundError,
    UnavailableError,
)
from maestro.runtime.problem import problem
from maestro.scheduler.v1 import execution_pb2


class ExitCode(enum.IntEnum):
    """Exit codes of the API commands (``maestro workflows|run|executions ...``)."""

    OK = 0
    FAILED = 1
    """Invalid definition, failed check (invalid, breaking diff, failed simulation)."""
    USAGE = 2
    """Bad arguments: unknown option, unreadable file, malformed id or JSON."""
    NOT_FOUND = 3
    CONFLICT = 4
    """Already exists, stale etag, frozen workflow, semver bump required."""
    UNAVAILABLE = 5
    """A service did not answer in time."""
    CANCELLED = 6
    """The followed execution ended CANCELLED."""
    TIMED_OUT = 7
    """The followed execution ended TIMED_OUT."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 invalid definition or failed check; 2 usage error; "
    "3 not found; 4 conflict (exists, stale etag, frozen, bump required); "
    "5 service unavailable."
)

_DEFINITION_REASONS = frozenset({"INVALID_DEFINITION", "SOURCE_SYNTAX_ERROR"})
_LOCATION_PREFIX = re.compile(r"^\S*:\d+:\d+: ")
_SEVERITY = {
    diagnostic_pb2.SEVERITY_ERROR: ("error", "red"),
    diagnostic_pb2.SEVERITY_WARNING: ("warning", "yellow"),
    diagnostic_pb2.SEVERITY_INFO: ("info", "blue"),
}


def exit_code(error: MaestroError) -> ExitCode:
    """The exit code for a failed call."""
    if isinstance(error, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(error, AlreadyExistsError | AbortedError | FailedPreconditionError):
        return ExitCode.CONFLICT
    if isinstance(error, UnavailableError | DeadlineExceededError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, InvalidArgumentError) and error.reason not in _DEFINITION_REASONS:
        return ExitCode.USAGE
    return ExitCode.FAILED


def message_json(message: Message) -> dict[str, Any]:
    """Proto JSON (camelCase) of a message."""
    body: dict[str, Any] = json_format.MessageToDict(message)
    return body


def workflow_json(workflow: resources.Workflow) -> dict[str, Any]:
    """A workflow as JSON, with its ``id`` (as the REST API returns it)."""
    body = message_json(workflow)
    body["id"] = workflow.name.removeprefix("workflows/")
    return body


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value), highlight=False)


def error_json(error: MaestroError) -> dict[str, Any]:
    """The RFC 9457 problem body the REST API would return for ``error``."""
    _, body = problem(error)
    return body


def strip_location(message: str) -> str:
    """A message without a leading ``file:line:col: `` (the CLI prints its own)."""
    return _LOCATION_PREFIX.sub("", message, count=1)


def location(filename: str, line: int, column: int) -> str:
    return f"{filename}:{line}:{column}" if line else filename


def diagnostic_text(filename: str, diagnostic: diagnostic_pb2.Diagnostic) -> Text:
    """``file:line:col: CODE message`` (then the JSON Pointer and the hint)."""
    severity, style = _SEVERITY.get(diagnostic.severity, ("error", "red"))
    text = Text()
    text.append(
        location(filename, diagnostic.position.line, diagnostic.position.column) + ": ",
        style="bold",
    )
    text.append(diagnostic.code, style=f"bold {style}")
    text.append(f" {strip_location(diagnostic.message)}")
    details = [f"{severity} at {diagnostic.path or '/'}"]
    if diagnostic.hint:
        details.append(f"hint: {diagnostic.hint}")
    text.append(f"  ({'; '.join(details)})", style="dim")
    return text


def print_diagnostics(
    console: Console, filename: str, diagnostics: Iterable[diagnostic_pb2.Diagnostic]
) -> tuple[int, int]:
    """Prints every diagnostic; returns (errors, warnings)."""
    errors = warnings = 0
    for diagnostic in diagnostics:
        console.print(diagnostic_text(filename, diagnostic), soft_wrap=True)
        errors += diagnostic.severity == diagnostic_pb2.SEVERITY_ERROR
        warnings += diagnostic.severity == diagnostic_pb2.SEVERITY_WARNING
    return errors, warnings


def print_error(console: Console, error: MaestroError, filename: str = "") -> None:
    """A failed call for people: reason, message, then each violation (with its
    location in ``filename`` when the error is about the file)."""
    if error.reason == "SOURCE_SYNTAX_ERROR" and filename:
        line, column = int(error.metadata.get("line", 0)), int(error.metadata.get("column", 0))
        text = Text(location(filename, line, column) + ": ", style="bold")
        text.append("SOURCE_SYNTAX_ERROR", style="bold red")
        text.append(f" {strip_location(error.message)}")
        console.print(text, soft_wrap=True)
        return
    text = Text("error: ", style="bold red")
    text.append(f"{error.reason}", style="bold")
    text.append(f" {error.message}")
    console.print(text, soft_wrap=True)
    for violation in error.field_violations:
        where = f"{filename}: {violation.field}" if filename else violation.field
        row = Text(f"  {where}: ", style="bold")
        row.append(violation.reason or "INVALID", style="red")
        row.append(f" {violation.description}")
        console.print(row, soft_wrap=True)


def _timestamp(message: Message, field: str) -> str:
    if not message.HasField(field):
        return "-"
    value = getattr(message, field).ToDatetime()
    return str(value.strftime("%Y-%m-%d %H:%M:%SZ"))


def _state(state: int) -> str:
    return str(resources.WorkflowState.Name(state)).removeprefix("WORKFLOW_STATE_").lower()


def workflow_table(workflow: resources.Workflow) -> Table:
    """One workflow as a two-column table."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    latest = workflow.latest_version.version if workflow.HasField("latest_version") else "-"
    aliases = ", ".join(f"{a}={v}" for a, v in sorted(workflow.aliases.items())) or "-"
    rows = [
        ("id", workflow.name.removeprefix("workflows/")),
        ("name", workflow.display_name),
        ("description", workflow.description or "-"),
        ("state", _state(workflow.state) + (" (frozen)" if workflow.frozen else "")),
        ("owner", workflow.owner),
        ("tags", ", ".join(workflow.tags) or "-"),
        ("draft", f"{workflow.draft.version}  digest {workflow.draft.digest[:12]}"),
        ("latest", latest),
        ("aliases", aliases),
        ("etag", workflow.etag),
        ("updated", _timestamp(workflow, "update_time")),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def workflows_table(workflows: Sequence[resources.Workflow]) -> Table:
    table = Table(title="workflows")
    for column in ("id", "name", "state", "draft", "latest", "owner", "tags", "updated"):
        table.add_column(column, overflow="fold")
    for w in workflows:
        table.add_row(
            w.name.removeprefix("workflows/"),
            w.display_name,
            _state(w.state),
            w.draft.version,
            w.latest_version.version if w.HasField("latest_version") else "-",
            w.owner,
            ", ".join(w.tags),
            _timestamp(w, "update_time"),
        )
    return table


def _compatibility(value: int) -> str:
    return str(diff_pb2.Compatibility.Name(value)).removeprefix("COMPATIBILITY_").lower()


def _bump(value: int) -> str:
    return str(diff_pb2.SemverBump.Name(value)).removeprefix("SEMVER_BUMP_").lower()


def versions_table(versions: Sequence[resources.WorkflowVersion]) -> Table:
    table = Table(title="versions")
    for column in ("version", "digest", "published", "by", "change", "changelog"):
        table.add_column(column, overflow="fold")
    for v in versions:
        change = (
            _compatibility(v.diff_from_previous.compatibility)
            if v.HasField("diff_from_previous")
            else "first"
        )
        table.add_row(
            v.version,
            v.digest[:12],
            _timestamp(v, "publish_time"),
            v.published_by,
            change,
            v.changelog,
        )
    return table


def print_diff(console: Console, diff: diff_pb2.WorkflowDiff, base: str, target: str) -> None:
    verdict = _compatibility(diff.compatibility)
    style = {"breaking": "red", "compatible": "yellow", "identical": "green"}.get(verdict, "")
    header = Text(f"{base} -> {target}: ")
    header.append(verdict.upper(), style=f"bold {style}")
    header.append(f" (required bump: {_bump(diff.required_bump)})")
    console.print(header, soft_wrap=True)
    if diff.step_changes:
        table = Table(title="step changes")
        for column in ("step", "change", "fields"):
            table.add_column(column, overflow="fold")
        for change in diff.step_changes:
            kind = str(diff_pb2.ChangeKind.Name(change.kind)).removeprefix("CHANGE_KIND_").lower()
            fields = ", ".join(f.path for f in change.field_changes)
            table.add_row(change.step_id, kind, fields or "-")
        console.print(table)
    for field_change in diff.workflow_changes:
        kind = str(diff_pb2.ChangeKind.Name(field_change.kind)).removeprefix("CHANGE_KIND_")
        console.print(Text(f"workflow {field_change.path}: {kind.lower()}"), soft_wrap=True)
    for breaking in diff.breaking_changes:
        line = Text("breaking: ", style="red")
        line.append(f"{breaking.code} {breaking.message} ({breaking.path or '/'})")
        console.print(line, soft_wrap=True)


def _seconds(duration: Any) -> str:
    return f"{duration.seconds + duration.nanos / 1e9:.3f}s"


def print_simulation(console: Console, result: compiler_pb.SimulateWorkflowResponse) -> None:
    table = Table(title="simulation")
    for column in ("step", "status", "start", "duration", "attempts", "cost (cents)"):
        table.add_column(column, overflow="fold")
    for step in result.steps:
        status = (
            str(simulation_pb2.SimulatedStepStatus.Name(step.status))
            .removeprefix("SIMULATED_STEP_STATUS_")
            .lower()
        )
        table.add_row(
            step.step_id,
            status,
            _seconds(step.start_offset),
            _seconds(step.duration),
            str(step.attempts),
            f"{step.cost_cents:.2f}",
        )
    console.print(table)
    for decision in result.path:
        console.print(
            Text(
                f"{decision.step_id}: {decision.expression} -> {str(decision.result).lower()}; "
                f"taken {', '.join(decision.taken_steps) or '-'}; "
                f"skipped {', '.join(decision.skipped_steps) or '-'}"
            ),
            soft_wrap=True,
        )
    console.print(Text(f"critical path: {' -> '.join(result.critical_path) or '-'}"))
    summary = Text("succeeded" if result.succeeded else "failed")
    summary.stylize("bold green" if result.succeeded else "bold red")
    summary.append(
        f" in {_seconds(result.total_duration)}, estimated cost {result.total_cost_cents:.2f} cents"
    )
    console.print(summary)


_STATE_STYLES = {
    "SUCCEEDED": "green",
    "COMPENSATED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "COMPENSATION_FAILED": "red",
    "CANCELLED": "yellow",
    "CANCELLING": "yellow",
    "RETRYING": "yellow",
    "RUNNING": "cyan",
    "WAITING": "magenta",
    "OPEN": "cyan",
    "ESCALATED": "yellow",
    "COMPLETED": "green",
}


def state_text(state: str) -> Text:
    """A state name, coloured by outcome."""
    return Text(state, style=_STATE_STYLES.get(state, ""))


def _duration(message: Any) -> str:
    if message.HasField("start_time") and message.HasField("end_time"):
        return duration_between(message.start_time, message.end_time)
    return "-"


def execution_table(execution: execution_pb2.Execution) -> Table:
    """One execution's summary as a two-column table."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    version = execution.version + (f" ({execution.alias})" if execution.alias else "")
    rows: list[tuple[str, str | Text]] = [
        ("id", resource_id(execution.name)),
        ("workflow", execution.workflow.removeprefix("workflows/")),
        ("version", version or "-"),
        ("state", state_text(execution_state(execution.state))),
        ("creator", execution.creator or "-"),
        ("created", _timestamp(execution, "create_time")),
        ("started", _timestamp(execution, "start_time")),
        ("ended", _timestamp(execution, "end_time")),
        ("duration", _duration(execution)),
    ]
    if execution.correlation_id:
        rows.append(("correlation", execution.correlation_id))
    if execution.labels:
        rows.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(execution.labels.items()))))
    if execution.parent_execution:
        rows.append(("parent", f"{execution.parent_execution} ({execution.parent_step_id})"))
    if execution.HasField("error"):
        where = f" (step {execution.error.step_id})" if execution.error.step_id else ""
        rows.append(("error", Text(f"{execution.error.code}{where}: {execution.error.message}")))
    for key, value in rows:
        table.add_row(key, value)
    return table


def timeline_table(steps: Sequence[execution_pb2.StepRun]) -> Table:
    """The step timeline: state, attempts, start and duration of each step."""
    table = Table(title="steps")
    for column in ("step", "type", "state", "attempts", "started", "duration", "error"):
        table.add_column(column, overflow="fold")
    for step in steps:
        attempts = str(len(step.attempts)) if step.attempts else "-"
        if step.cache_hit:
            attempts = "cached"
        redelivered = sum(max(a.deliveries - 1, 0) for a in step.attempts)
        if redelivered:
            attempts += f" (+{redelivered} redelivered)"
        error = f"{step.error.code}: {step.error.message}" if step.HasField("error") else ""
        failed = [a for a in step.attempts if a.HasField("error")]
        if not error and failed:  # retried past it: say why the retries happened
            error = f"attempt {failed[-1].attempt}: {failed[-1].error.code}"
        table.add_row(
            step.step_id,
            enum_name(common_workflow_pb2.StepType, step.type, "STEP_TYPE_").lower(),
            state_text(step_state(step.state)),
            attempts,
            _timestamp(step, "start_time"),
            _duration(step),
            error,
        )
    return table


def executions_table(executions: Sequence[execution_pb2.Execution]) -> Table:
    table = Table(title="executions")
    for column in ("id", "workflow", "version", "state", "created", "duration"):
        table.add_column(column, overflow="fold")
    for e in executions:
        table.add_row(
            resource_id(e.name),
            e.workflow.removeprefix("workflows/"),
            e.version or "-",
            state_text(execution_state(e.state)),
            _timestamp(e, "create_time"),
            _duration(e),
        )
    return table


def human_task_state(value: int) -> str:
    """``OPEN`` for ``HUMAN_TASK_STATE_OPEN``."""
    return enum_name(execution_pb2.HumanTaskState, value, "HUMAN_TASK_STATE_")


def human_tasks_table(tasks: Sequence[execution_pb2.HumanTask]) -> Table:
    table = Table(title="human tasks")
    for column in ("id", "execution", "step", "state", "assignees", "due"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        table.add_row(
            resource_id(task.name, HUMAN_TASK_PREFIX),
            resource_id(task.execution),
            task.step_id,
            state_text(human_task_state(task.state)),
            ", ".join(task.assignees) or "-",
            _timestamp(task, "due_time"),
        )
    return table


def event_text(event: dict[str, Any]) -> Text:
    """One CloudEvent (as :func:`maestro.runtime.cloudevents.cloudevent`
    renders it) as a progress line: time, sequence, type, step, attempt, data."""
    kind = str(event.get("type", "")).removeprefix("dev.maestro.")
    text = Text(f"{str(event.get('time', ''))[11:23]:<12} ", style="dim")
    text.append(f"#{event.get('id', '?'):<4} ")
    outcome = kind.rsplit(".", 1)[-1].upper()
    text.append(f"{kind:<32}", style=_STATE_STYLES.get(outcome, "bold"))
    if event.get("subject"):
        text.append(f" {event['subject']}", style="bold")
    if event.get("attempt"):
        text.append(f" attempt {event['attempt']}")
    if event.get("data"):
        text.append(f"  {json.dumps(event['data'], separators=(',', ':'))}", style="dim")
    return text
