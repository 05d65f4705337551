"""``maestro run``, ``maestro executions ...`` and ``maestro human-tasks ...``:
start published workflows, follow and control their executions, and complete
human tasks, over gRPC (the scheduler).

As with ``maestro workflows``: ``--output json`` prints what the REST API
returns (executions with ``executionId``; events as CloudEvents 1.0, one JSON
object per line), errors print as RFC 9457 problems, and the exit code says
what happened (see :data:`EXIT_CODES_HELP`). The scheduler's address and the
identity come from ``MAESTRO_CLI_*`` settings (``--address`` overrides).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from google.protobuf import duration_pb2, struct_pb2
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from maestro.cli.render import (
    ExitCode,
    error_json,
    event_text,
    execution_table,
    executions_table,
    exit_code,
    human_task_state,
    human_tasks_table,
    print_error,
    print_json,
    state_text,
    timeline_table,
)
from maestro.cli.settings import CliSettings
from maestro.cli.workflows import OutputFormat, parse_value
from maestro.runtime import context, evidence
from maestro.runtime.clients import SchedulerClient, SignerClient, open_channel
from maestro.runtime.cloudevents import (
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATES,
    cloudevent,
    duration_between,
    execution_json,
    execution_name,
    execution_state,
    human_task_json,
    human_task_name,
    resource_id,
)
from maestro.runtime.errors import FailedPreconditionError, MaestroError, UnavailableError
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.services.gateway.filters import execution_filter, human_task_filter

CALLER = "cli"
RESUME_ATTEMPTS = 5
"""Times in a row a followed stream is reopened after the scheduler became
unavailable (each time after the last event received)."""
RESUME_BACKOFF_SECONDS = 0.25
"""First wait before reopening; doubles each time, at most 4 s."""
INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok (with --follow: the execution SUCCEEDED); 1 it FAILED (or was "
    "COMPENSATED); 2 usage error; 3 not found; 4 conflict (state, stale etag, reused "
    "key); 5 service unavailable; 6 it was CANCELLED; 7 it TIMED_OUT."
)

executions_app = typer.Typer(
    name="executions",
    help="List, inspect, follow, cancel and retry executions. " + EXIT_CODES_HELP,
    no_args_is_help=True,
)
human_tasks_app = typer.Typer(
    name="human-tasks",
    help="List and complete the human tasks of HUMAN steps. " + EXIT_CODES_HELP,
    no_args_is_help=True,
)

Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="text (tables, progress lines) or json."),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="host:port of the scheduler; default MAESTRO_CLI_SCHEDULER_ADDRESS (127.0.0.1:50053).",
    ),
]
ExecutionId = Annotated[str, typer.Argument(help="Execution id (or executions/{id}).")]
HumanTaskId = Annotated[str, typer.Argument(help="Human task id (or humanTasks/{id}).")]
Etag = Annotated[str, typer.Option(help="Etag last read; stale: exit 4.")]
PageToken = Annotated[str, typer.Option("--page-token", help="Token printed by the last page.")]
Limit = Annotated[
    int, typer.Option("--limit", "-n", min=0, max=1000, help="At most this many; 0 means 50.")
]

_OUTCOMES = {
    execution_pb2.EXECUTION_STATE_SUCCEEDED: ExitCode.OK,
    execution_pb2.EXECUTION_STATE_CANCELLED: ExitCode.CANCELLED,
    execution_pb2.EXECUTION_STATE_TIMED_OUT: ExitCode.TIMED_OUT,
}
_EVENT_STEP_STATES = {
    execution_pb2.EVENT_TYPE_STEP_SCHEDULED: "SCHEDULED",
    execution_pb2.EVENT_TYPE_STEP_STARTED: "RUNNING",
    execution_pb2.EVENT_TYPE_STEP_SUCCEEDED: "SUCCEEDED",
    execution_pb2.EVENT_TYPE_STEP_FAILED: "FAILED",
    execution_pb2.EVENT_TYPE_STEP_RETRYING: "RETRYING",
    execution_pb2.EVENT_TYPE_STEP_TIMED_OUT: "TIMED_OUT",
    execution_pb2.EVENT_TYPE_STEP_CANCELLED: "CANCELLED",
    execution_pb2.EVENT_TYPE_STEP_SKIPPED: "SKIPPED",
    execution_pb2.EVENT_TYPE_HUMAN_TASK_CREATED: "WAITING",
    execution_pb2.EVENT_TYPE_TIMER_STARTED: "WAITING",
    execution_pb2.EVENT_TYPE_STEP_COMPENSATED: "COMPENSATED",
}
_EVENT_EXECUTION_STATES = {
    execution_pb2.EVENT_TYPE_EXECUTION_STARTED: "RUNNING",
    execution_pb2.EVENT_TYPE_EXECUTION_RETRIED: "RUNNING",
    execution_pb2.EVENT_TYPE_EXECUTION_CANCEL_REQUESTED: "CANCELLING",
    execution_pb2.EVENT_TYPE_COMPENSATION_STARTED: "COMPENSATING",
    execution_pb2.EVENT_TYPE_EXECUTION_SUCCEEDED: "SUCCEEDED",
    execution_pb2.EVENT_TYPE_EXECUTION_FAILED: "FAILED",
    execution_pb2.EVENT_TYPE_EXECUTION_CANCELLED: "CANCELLED",
    execution_pb2.EVENT_TYPE_EXECUTION_TIMED_OUT: "TIMED_OUT",
    execution_pb2.EVENT_TYPE_EXECUTION_COMPENSATED: "COMPENSATED",
}
_FINAL_STEP_STATES = frozenset(
    {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED", "COMPENSATED"}
)


def outcome_exit_code(state: execution_pb2.ExecutionState) -> ExitCode:
    """The exit code of a followed execution that ended in ``state``."""
    return _OUTCOMES.get(state, ExitCode.FAILED)


def workflow_name(workflow: str) -> str:
    """``workflows/{id}`` from ``hello`` or ``workflows/hello``."""
    workflow_id = workflow.strip().removeprefix("workflows/")
    if not workflow_id:
        raise typer.BadParameter("a published workflow id is required", param_hint="WORKFLOW")
    return f"workflows/{workflow_id}"


def _object(value: Any, option: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value


def parse_pairs(values: list[str] | None, option: str, *, json_values: bool) -> dict[str, Any]:
    """``key=value`` options as a dict; with ``json_values`` a value that is
    valid JSON is taken as JSON (``count=3`` is a number), else as a string."""
    result: dict[str, Any] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        value: Any = raw
        if json_values:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        result[key.strip()] = value
    return result


def parse_inputs(
    input_json: str | None, input_file: Path | None, pairs: list[str] | None
) -> dict[str, Any]:
    """Execution inputs: ``--input-file``, then ``--input`` (JSON or @file)
    over it, then each ``-i key=value`` over both."""
    inputs: dict[str, Any] = {}
    if input_file is not None:
        try:
            loaded = yaml.safe_load(input_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise typer.BadParameter(
                f"not a readable JSON or YAML file: {exc}", param_hint="--input-file"
            ) from exc
        inputs.update(_object({} if loaded is None else loaded, "--input-file"))
    if input_json is not None:
        inputs.update(_object(parse_value(input_json, "--input"), "--input"))
    inputs.update(parse_pairs(pairs, "-i", json_values=True))
    return inputs


def parse_duration(value: str | None, option: str) -> duration_pb2.Duration | None:
    """A proto duration (``30s``, ``1.5s``) from an option; None stays None."""
    if value is None:
        return None
    duration = duration_pb2.Duration()
    try:
        duration.FromJsonString(value)
    except ValueError as exc:
        raise typer.BadParameter(
            "expected a duration in seconds like 30s", param_hint=option
        ) from exc
    return duration


def start_request(
    workflow: str,
    *,
    version: str = "",
    inputs: dict[str, Any] | None = None,
    idempotency_key: str = "",
    correlation_id: str = "",
    labels: dict[str, str] | None = None,
    timeout: duration_pb2.Duration | None = None,
) -> scheduler_pb.StartExecutionRequest:
    """The StartExecution request of ``maestro run`` (a fresh UUID4 request id
    without ``idempotency_key``)."""
    struct = struct_pb2.Struct()
    struct.update(inputs or {})
    return scheduler_pb.StartExecutionRequest(
        workflow=workflow_name(workflow),
        version=version,
        inputs=struct,
        request_id=idempotency_key.strip() or context.new_request_id(),
        correlation_id=correlation_id,
        labels=labels or {},
        timeout=timeout,
    )


def write_line(value: Any) -> None:
    """One compact JSON document per line (NDJSON), flushed."""
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def call(
    output: OutputFormat,
    address: str | None,
    command: Callable[[SchedulerClient, Console], Awaitable[ExitCode]],
) -> NoReturn:
    """Runs ``command`` with a scheduler client under the CLI's identity, maps a
    failed call to its message and exit code, and exits (130 on Ctrl-C)."""
    settings = CliSettings()
    target = address or settings.scheduler_address
    console = Console(soft_wrap=False)
    errors = Console(stderr=True)

    async def main() -> ExitCode:
        channel = open_channel(target, caller=CALLER, services=SchedulerClient.SERVICES)
        scheduler = SchedulerClient(channel, timeout=settings.timeout_seconds, address=target)
        bound = context.CallContext(
            request_id=context.new_request_id(),
            principal=settings.principal(),
            caller_service=CALLER,
        )
        try:
            with context.bind(bound):
                return await command(scheduler, console)
        except MaestroError as error:
            if output is OutputFormat.JSON:
                print_json(console, error_json(error))
            else:
                print_error(errors, error)
            return exit_code(error)
        finally:
            await channel.close()

    try:
        code = int(asyncio.run(main()))
    except KeyboardInterrupt:
        code = INTERRUPTED
    raise typer.Exit(code)


async def follow_events(
    scheduler: SchedulerClient,
    name: str,
    on_event: Callable[[execution_pb2.ExecutionEvent], None],
    *,
    after: int = 0,
    follow: bool = True,
) -> int:
    """Calls ``on_event`` for each event of execution ``name`` after ``after``;
    with ``follow`` until the execution ends, reopening the stream after the
    last event seen when the server ends it early or becomes unavailable.
    Returns the last sequence seen."""
    last = after
    if follow:
        reply = await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(name=name, view=execution_pb2.EXECUTION_VIEW_BASIC)
        )
        # A finished execution has nothing more to follow: replay and stop.
        follow = reply.execution.state not in TERMINAL_STATES
    failures = 0
    while True:
        request = scheduler_pb.StreamExecutionEventsRequest(
            name=name, after_sequence=last, follow=follow
        )
        try:
            async for item in scheduler.stream_execution_events(request, timeout=None):
                failures = 0
                on_event(item.event)
                last = max(last, item.event.sequence)
                if follow and item.event.type in TERMINAL_EVENT_TYPES:
                    return last
        except UnavailableError:
            failures += 1
            if not follow or failures > RESUME_ATTEMPTS:
                raise
            await asyncio.sleep(min(RESUME_BACKOFF_SECONDS * 2 ** (failures - 1), 4.0))
            continue
        if not follow:
            return last
        reply = await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(name=name, view=execution_pb2.EXECUTION_VIEW_BASIC)
        )
        if reply.execution.state in TERMINAL_STATES and reply.execution.last_event_sequence <= last:
            return last


class StepBoard:
    """Live step progress built from events: state, attempt and duration per
    step, in the order steps were first seen."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.state = "PENDING"
        self._steps: dict[str, dict[str, Any]] = {}

    def update(self, event: execution_pb2.ExecutionEvent) -> None:
        self.state = _EVENT_EXECUTION_STATES.get(event.type, self.state)
        state = _EVENT_STEP_STATES.get(event.type)
        if state is None or not event.subject:
            return
        row = self._steps.setdefault(event.subject, {"attempt": 0, "start": event.time})
        row["state"] = state
        row["attempt"] = max(row["attempt"], event.attempt)
        row["end"] = event.time if state in _FINAL_STEP_STATES else None

    def table(self) -> Table:
        table = Table(title=f"{self.title}  {self.state}")
        for column in ("step", "state", "attempt", "duration"):
            table.add_column(column)
        for step_id, row in self._steps.items():
            end = row.get("end")
            table.add_row(
                step_id,
                state_text(row["state"]),
                str(row["attempt"] or "-"),
                duration_between(row["start"], end) if end is not None else "...",
            )
        return table


def print_execution(console: Console, execution: execution_pb2.Execution) -> None:
    """An execution for people: summary, step timeline, outputs."""
    console.print(execution_table(execution))
    if execution.steps:
        console.print(timeline_table(execution.steps))
    if execution.HasField("outputs") and execution.outputs.fields:
        console.print(Text("outputs", style="bold"))
        print_json(console, execution_json(execution)["outputs"])


@executions_app.command("get")
def get_execution(
    *,
    execution_id: ExecutionId,
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Show an execution: state, step timeline (attempts, durations), outputs."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(
                name=execution_name(execution_id), view=execution_pb2.EXECUTION_VIEW_FULL
            )
        )
        if output is OutputFormat.JSON:
            print_json(console, execution_json(reply.execution))
        else:
            print_execution(console, reply.execution)
        return ExitCode.OK

    call(output, address, command)


@executions_app.command("list")
def list_executions(
    *,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="State (RUNNING, FAILED, ...); repeat or comma-separate."
        ),
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Workflow id.")] = None,
    started_after: Annotated[
        datetime | None,
        typer.Option(
            "--started-after",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
            help="Started at or after (UTC unless an offset is given).",
        ),
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="A further AIP-160 filter.")
    ] = None,
    limit: Limit = 0,
    page_token: PageToken = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """List executions, newest first."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.list_executions(
            scheduler_pb.ListExecutionsRequest(
                page_size=limit,
                page_token=page_token,
                filter=execution_filter(
                    states=status or (),
                    workflow=workflow,
                    started_after=started_after,
                    extra=filter_,
                    states_field="--status",
                ),
            )
        )
        if output is OutputFormat.JSON:
            print_json(
                console,
                {
                    "executions": [execution_json(e) for e in reply.executions],
                    "nextPageToken": reply.next_page_token,
                },
            )
            return ExitCode.OK
        console.print(executions_table(reply.executions))
        if reply.next_page_token:
            console.print(Text(f"more: --page-token {reply.next_page_token}"), soft_wrap=True)
        return ExitCode.OK

    call(output, address, command)


def _print_changed(
    console: Console, output: OutputFormat, execution: execution_pb2.Execution, verb: str
) -> None:
    if output is OutputFormat.JSON:
        print_json(console, execution_json(execution))
        return
    line = Text(f"{verb} {execution.name}: ", style="bold")
    line.append_text(state_text(execution_state(execution.state)))
    console.print(line, soft_wrap=True)


@executions_app.command("cancel")
def cancel_execution(
    *,
    execution_id: ExecutionId,
    reason: Annotated[str, typer.Option(help="Why; recorded in the journal.")] = "",
    etag: Etag = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Request cancellation (CANCELLING, then CANCELLED once nothing runs)."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.cancel_execution(
            scheduler_pb.CancelExecutionRequest(
                name=execution_name(execution_id), reason=reason, etag=etag
            )
        )
        _print_changed(console, output, reply.execution, "cancel requested for")
        return ExitCode.OK

    call(output, address, command)


@executions_app.command("retry")
def retry_execution(
    *,
    execution_id: ExecutionId,
    idempotency_key: Annotated[
        str,
        typer.Option("--idempotency-key", help="A UUID; a repeat does not resume again."),
    ] = "",
    etag: Etag = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Resume a FAILED, CANCELLED or TIMED_OUT execution in place."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.retry_execution(
            scheduler_pb.RetryExecutionRequest(
                name=execution_name(execution_id),
                request_id=idempotency_key.strip() or context.new_request_id(),
                etag=etag,
            )
        )
        _print_changed(console, output, reply.execution, "retried")
        return ExitCode.OK

    call(output, address, command)


@executions_app.command("compensate")
def compensate_execution(
    *,
    execution_id: ExecutionId,
    reason: Annotated[str, typer.Option(help="Why; recorded in the journal.")] = "",
    etag: Etag = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Run the compensate handlers of the succeeded steps, in reverse order."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.compensate_execution(
            scheduler_pb.CompensateExecutionRequest(
                name=execution_name(execution_id), reason=reason, etag=etag
            )
        )
        _print_changed(console, output, reply.execution, "compensating")
        return ExitCode.OK

    call(output, address, command)


@executions_app.command("events")
def execution_events(
    *,
    execution_id: ExecutionId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    after: Annotated[
        int, typer.Option("--after", min=0, help="Only events after this sequence.")
    ] = 0,
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Print an execution's events (json: one CloudEvents 1.0 object per line)."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        def show(event: execution_pb2.ExecutionEvent) -> None:
            if output is OutputFormat.JSON:
                write_line(cloudevent(event))
            else:
                console.print(event_text(cloudevent(event)), soft_wrap=True)

        await follow_events(
            scheduler, execution_name(execution_id), show, after=after, follow=follow
        )
        return ExitCode.OK

    call(output, address, command)


@executions_app.command("evidence")
def execution_evidence(
    *,
    execution_id: ExecutionId,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-O", help="Write the bundle (.tar.gz) here; `-` writes it to stdout."
        ),
    ],
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for a finished execution's receipt to be signed "
            "(default 0: exit 4 if it is not signed yet).",
        ),
    ] = 0.0,
    signer_address: Annotated[
        str | None,
        typer.Option(
            "--signer-address",
            help="host:port of the signer; default MAESTRO_CLI_SIGNER_ADDRESS (127.0.0.1:50056).",
        ),
    ] = None,
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Download the evidence bundle of a finished execution (its receipt, the
    version's receipt, proofs, checkpoint, keys); check it with `maestro verify`."""
    settings = CliSettings()
    target = signer_address or settings.signer_address

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        channel = open_channel(target, caller=CALLER, services=SignerClient.SERVICES)
        signer = SignerClient(channel, timeout=settings.timeout_seconds, address=target)
        deadline = asyncio.get_running_loop().time() + wait
        try:
            while True:
                try:
                    exported = await evidence.execution_evidence(
                        scheduler, signer, execution_name(execution_id)
                    )
                    break
                except FailedPreconditionError as error:
                    # Only a finished execution's receipt is worth waiting for.
                    pending = error.reason == "RECEIPT_PENDING" and error.retry_after_seconds
                    if not pending or asyncio.get_running_loop().time() >= deadline:
                        raise
                    await asyncio.sleep(0.25)
        finally:
            await channel.close()
        if str(out) == "-":
            sys.stdout.buffer.write(exported.bundle)
            sys.stdout.buffer.flush()
        else:
            out.write_bytes(exported.bundle)
        summary = {
            "file": str(out),
            "sha256": exported.bundle_digest,
            "bytes": len(exported.bundle),
            "receipts": list(exported.receipts),
            "treeSize": exported.checkpoint.tree_size,
        }
        errors = Console(stderr=True)
        if output is OutputFormat.JSON:
            print_json(errors if str(out) == "-" else console, summary)
        else:
            (errors if str(out) == "-" else console).print(
                f"wrote {out} ({len(exported.bundle)} bytes, sha256 {exported.bundle_digest}): "
                f"{len(exported.receipts)} receipt(s) at tree size "
                f"{exported.checkpoint.tree_size}; check it with `maestro verify {out}`",
                soft_wrap=True,
            )
        return ExitCode.OK

    call(output, address, command)


def run_workflow(
    *,
    workflow: Annotated[
        str, typer.Argument(help="Published workflow id (`hello` or `workflows/hello`).")
    ],
    version: Annotated[
        str,
        typer.Option(help="Version (1.4.0) or alias (stable); default: the latest published."),
    ] = "",
    input_json: Annotated[
        str | None,
        typer.Option("--input", help='Inputs: a JSON object (`{"n": 3}`) or @file (JSON/YAML).'),
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input-file", help="Inputs from a JSON or YAML file.")
    ] = None,
    input_pairs: Annotated[
        list[str] | None,
        typer.Option(
            "-i",
            "--set",
            help="One input as key=value (JSON when the value parses as JSON, else a "
            "string); repeatable; applied over --input and --input-file.",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Show step progress until it ends; exit code by outcome."
        ),
    ] = False,
    idempotency_key: Annotated[
        str,
        typer.Option(
            "--idempotency-key",
            help="A UUID; a repeat returns the same execution. Default: a new one.",
        ),
    ] = "",
    timeout: Annotated[
        str | None, typer.Option(help="Overall deadline of the execution, e.g. 30s.")
    ] = None,
    correlation_id: Annotated[
        str, typer.Option("--correlation-id", help="Your id for this run (stored, not read).")
    ] = "",
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="A label key=value; repeatable.")
    ] = None,
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Start an execution of a published workflow and print its id.

    With --follow, show each step's progress until the execution ends, then its
    timeline and outputs; the exit code is 0 when it SUCCEEDED, 1 FAILED, 6
    CANCELLED, 7 TIMED_OUT.
    """
    request = start_request(
        workflow,
        version=version,
        inputs=parse_inputs(input_json, input_file, input_pairs),
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        labels=parse_pairs(label, "--label", json_values=False),
        timeout=parse_duration(timeout, "--timeout"),
    )

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.start_execution(request)
        execution = reply.execution
        errors = Console(stderr=True)
        if not follow:
            if output is OutputFormat.JSON:
                print_json(console, _run_json(execution, created=reply.created))
            else:
                console.print(resource_id(execution.name), soft_wrap=True)
                errors.print(
                    Text(
                        f"{'started' if reply.created else 'already started'} "
                        f"{execution.workflow}@{execution.version}; follow with: maestro "
                        f"executions events {resource_id(execution.name)} --follow",
                        style="dim",
                    ),
                    soft_wrap=True,
                )
            return ExitCode.OK
        if output is OutputFormat.JSON:
            await follow_events(scheduler, execution.name, lambda _: None)
        else:
            await _follow_with_progress(scheduler, console, execution)
        final = await scheduler.get_execution(
            scheduler_pb.GetExecutionRequest(
                name=execution.name, view=execution_pb2.EXECUTION_VIEW_FULL
            )
        )
        if output is OutputFormat.JSON:
            print_json(console, _run_json(final.execution, created=reply.created))
        else:
            print_execution(console, final.execution)
        return outcome_exit_code(final.execution.state)

    call(output, address, command)


def _run_json(execution: execution_pb2.Execution, *, created: bool) -> dict[str, Any]:
    """The body ``POST /api/workflows/{id}/execute`` returns."""
    body = execution_json(execution)
    return {"executionId": body["executionId"], "created": created, "execution": body}


async def _follow_with_progress(
    scheduler: SchedulerClient, console: Console, execution: execution_pb2.Execution
) -> None:
    """Follows with a live step table on a terminal, progress lines otherwise."""
    console.print(
        Text(f"started {execution.name} ({execution.workflow}@{execution.version})"),
        style="bold",
        soft_wrap=True,
    )
    if not console.is_terminal:
        await follow_events(
            scheduler,
            execution.name,
            lambda event: console.print(event_text(cloudevent(event)), soft_wrap=True),
        )
        return
    board = StepBoard(resource_id(execution.name))
    with Live(board.table(), console=console, transient=True, refresh_per_second=8) as live:

        def show(event: execution_pb2.ExecutionEvent) -> None:
            board.update(event)
            live.update(board.table())

        await follow_events(scheduler, execution.name, show)


@human_tasks_app.command("list")
def list_human_tasks(
    *,
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="State (OPEN, ESCALATED, ...); repeat or comma-separate."),
    ] = None,
    execution: Annotated[
        str | None, typer.Option("--execution", "-e", help="Execution id.")
    ] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="Only tasks this identity may complete.")
    ] = False,
    limit: Limit = 0,
    page_token: PageToken = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """List human tasks, by due time."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.list_human_tasks(
            scheduler_pb.ListHumanTasksRequest(
                page_size=limit,
                page_token=page_token,
                filter=human_task_filter(
                    states=state or (), execution=execution, states_field="--state"
                ),
                assigned_to_caller=mine,
            )
        )
        if output is OutputFormat.JSON:
            print_json(
                console,
                {
                    "humanTasks": [human_task_json(t) for t in reply.human_tasks],
                    "nextPageToken": reply.next_page_token,
                },
            )
            return ExitCode.OK
        console.print(human_tasks_table(reply.human_tasks))
        if reply.next_page_token:
            console.print(Text(f"more: --page-token {reply.next_page_token}"), soft_wrap=True)
        return ExitCode.OK

    call(output, address, command)


def _print_human_task(
    console: Console, output: OutputFormat, task: execution_pb2.HumanTask
) -> None:
    body = human_task_json(task)
    if output is OutputFormat.JSON:
        print_json(console, body)
        return
    line = Text(f"{task.name} ({task.execution} step {task.step_id}): ", style="bold")
    line.append_text(state_text(human_task_state(task.state)))
    console.print(line, soft_wrap=True)
    if task.instructions:
        console.print(task.instructions, soft_wrap=True)
    console.print(Text(f"assignees: {', '.join(task.assignees) or '-'}"), soft_wrap=True)
    for key in ("formSchema", "result"):
        if key in body:
            console.print(Text(key, style="bold"))
            print_json(console, body[key])


@human_tasks_app.command("get")
def get_human_task(
    *,
    task_id: HumanTaskId,
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Show a human task: instructions, assignees, form schema, result."""

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.get_human_task(
            scheduler_pb.GetHumanTaskRequest(name=human_task_name(task_id))
        )
        _print_human_task(console, output, reply.human_task)
        return ExitCode.OK

    call(output, address, command)


@human_tasks_app.command("complete")
def complete_human_task(
    *,
    task_id: HumanTaskId,
    result: Annotated[
        str, typer.Option("--result", help="The form: a JSON object or @file (JSON/YAML).")
    ],
    idempotency_key: Annotated[
        str, typer.Option("--idempotency-key", help="A UUID; a repeat returns the first result.")
    ] = "",
    etag: Etag = "",
    output: Output = OutputFormat.TEXT,
    address: Address = None,
) -> None:
    """Complete an open human task with the submitted form."""
    form = struct_pb2.Struct()
    form.update(_object(parse_value(result, "--result"), "--result"))

    async def command(scheduler: SchedulerClient, console: Console) -> ExitCode:
        reply = await scheduler.complete_human_task(
            scheduler_pb.CompleteHumanTaskRequest(
                name=human_task_name(task_id),
                result=form,
                request_id=idempotency_key.strip() or context.new_request_id(),
                etag=etag,
            )
        )
        _print_human_task(console, output, reply.human_task)
        return ExitCode.OK

    call(output, address, command)
