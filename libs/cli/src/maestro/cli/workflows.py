"""``maestro workflows ...``: author workflows over gRPC (registry and compiler).

Every command takes ``--output json`` (proto JSON, camelCase, as the REST API
returns it; errors as RFC 9457 problem objects). Addresses and identity come
from ``MAESTRO_CLI_*`` settings (see :class:`CliSettings`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from google.protobuf import duration_pb2, json_format
from rich.console import Console
from rich.text import Text

from maestro.cli.render import (
    EXIT_CODES_HELP,
    ExitCode,
    error_json,
    exit_code,
    message_json,
    print_diagnostics,
    print_diff,
    print_error,
    print_json,
    print_simulation,
    versions_table,
    workflow_json,
    workflow_table,
    workflows_table,
)
from maestro.cli.settings import CliSettings
from maestro.common.v1 import diff_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.registry.v1 import registry_service_pb2 as registry_pb
from maestro.runtime import context
from maestro.runtime.clients import CompilerClient, RegistryClient, open_channel
from maestro.runtime.errors import InvalidDefinitionError, MaestroError
from maestro.services.gateway.filters import list_filter

CALLER = "cli"

app = typer.Typer(
    name="workflows",
    help="Create, validate, publish, diff and simulate workflows. " + EXIT_CODES_HELP,
    no_args_is_help=True,
)


class OutputFormat(enum.StrEnum):
    """How results are printed."""

    TEXT = "text"
    JSON = "json"


class Bump(enum.StrEnum):
    """A semver bump."""

    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"


class State(enum.StrEnum):
    """A workflow lifecycle state."""

    DRAFT = "draft"
    PUBLISHED = "published"
    DELETED = "deleted"


_BUMPS = {
    None: diff_pb2.SEMVER_BUMP_UNSPECIFIED,
    Bump.PATCH: diff_pb2.SEMVER_BUMP_PATCH,
    Bump.MINOR: diff_pb2.SEMVER_BUMP_MINOR,
    Bump.MAJOR: diff_pb2.SEMVER_BUMP_MAJOR,
}

Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="text (tables, diagnostics) or json (proto JSON)."),
]
WorkflowId = Annotated[str, typer.Argument(help="Workflow id (the {workflow} of its name).")]
DefinitionFile = Annotated[
    str, typer.Argument(help="Definition document, YAML or JSON; `-` reads standard input.")
]
IdempotencyKey = Annotated[
    str, typer.Option("--idempotency-key", help="Retries with the same key return one result.")
]
PageSize = Annotated[int, typer.Option("--page-size", min=0, max=500, help="0 means 50.")]
PageToken = Annotated[str, typer.Option("--page-token", help="Token printed by the last page.")]


@dataclass(frozen=True)
class Clients:
    """The typed clients a command uses."""

    registry: RegistryClient
    compiler: CompilerClient


@dataclass(frozen=True)
class Document:
    """A definition file as read."""

    filename: str
    source: source_pb2.WorkflowSource


def read_document(path: str) -> Document:
    """Reads a definition file (``-``: standard input); the format follows the
    extension (.json, .yaml/.yml), else the compiler detects it."""
    if path == "-":
        return Document("<stdin>", source_pb2.WorkflowSource(content=sys.stdin.buffer.read()))
    file = Path(path)
    if not file.is_file():
        raise typer.BadParameter(f"{path}: no such file", param_hint="FILE")
    suffix = file.suffix.lower()
    fmt = {
        ".json": source_pb2.SOURCE_FORMAT_JSON,
        ".yaml": source_pb2.SOURCE_FORMAT_YAML,
        ".yml": source_pb2.SOURCE_FORMAT_YAML,
    }.get(suffix, source_pb2.SOURCE_FORMAT_UNSPECIFIED)
    return Document(
        path,
        source_pb2.WorkflowSource(content=file.read_bytes(), format=fmt, filename=file.name),
    )


def parse_value(value: str, option: str) -> Any:
    """A JSON value given inline, or ``@file`` holding JSON or YAML."""
    try:
        if value.startswith("@"):
            text = Path(value[1:]).read_text(encoding="utf-8")
            return yaml.safe_load(text)
        return json.loads(value)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"not JSON or a readable @file: {exc}", param_hint=option) from exc


def run(
    output: OutputFormat,
    command: Callable[[Clients, Console], Awaitable[ExitCode]],
    *,
    filename: str = "",
) -> NoReturn:
    """Runs ``command`` with connected clients under the CLI's identity, maps a
    failed call to its message and exit code, and exits."""
    settings = CliSettings()
    console = Console(soft_wrap=False)
    errors = Console(stderr=True)

    async def main() -> ExitCode:
        registry_channel = open_channel(
            settings.registry_address, caller=CALLER, services=RegistryClient.SERVICES
        )
        compiler_channel = open_channel(
            settings.compiler_address, caller=CALLER, services=CompilerClient.SERVICES
        )
        clients = Clients(
            RegistryClient(
                registry_channel,
                timeout=settings.timeout_seconds,
                address=settings.registry_address,
            ),
            CompilerClient(
                compiler_channel,
                timeout=settings.timeout_seconds,
                address=settings.compiler_address,
            ),
        )
        call = context.CallContext(
            request_id=context.new_request_id(),
            principal=settings.principal(),
            caller_service=CALLER,
        )
        try:
            with context.bind(call):
                return await command(clients, console)
        except MaestroError as error:
            if output is OutputFormat.JSON:
                print_json(console, error_json(error))
            else:
                print_error(errors, error, filename)
            return exit_code(error)
        finally:
            await registry_channel.close()
            await compiler_channel.close()

    raise typer.Exit(int(asyncio.run(main())))


async def _explain_invalid(
    clients: Clients,
    console: Console,
    output: OutputFormat,
    document: Document,
    error: InvalidDefinitionError,
) -> ExitCode:
    """An invalid definition, with every diagnostic at its line and column
    (asks the compiler: the registry's error carries JSON Pointers only)."""
    if output is OutputFormat.JSON:
        print_json(console, error_json(error))
        return ExitCode.FAILED
    errors = Console(stderr=True)
    try:
        reply = await clients.compiler.validate_workflow(
            compiler_pb.ValidateWorkflowRequest(source=document.source)
        )
    except MaestroError:
        print_error(errors, error, document.filename)
        return ExitCode.FAILED
    print_error(errors, InvalidDefinitionError(error.message))
    print_diagnostics(errors, document.filename, reply.diagnostics)
    return ExitCode.FAILED


def _print_workflow(console: Console, output: OutputFormat, workflow: Any, title: str) -> None:
    if output is OutputFormat.JSON:
        print_json(console, workflow_json(workflow))
        return
    console.print(Text(title, style="bold green"))
    console.print(workflow_table(workflow))


@app.command()
def create(
    *,
    file: DefinitionFile,
    workflow_id: Annotated[
        str, typer.Option("--id", help="Id of the new workflow; default: assigned.")
    ] = "",
    idempotency_key: IdempotencyKey = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """Create a workflow from a definition file (its first draft, 0.1.0-draft)."""
    document = read_document(file)

    async def command(clients: Clients, console: Console) -> ExitCode:
        try:
            reply = await clients.registry.create_workflow(
                registry_pb.CreateWorkflowRequest(
                    source=document.source, workflow_id=workflow_id, request_id=idempotency_key
                )
            )
        except InvalidDefinitionError as error:
            return await _explain_invalid(clients, console, output, document, error)
        _print_workflow(console, output, reply.workflow, f"created {reply.workflow.name}")
        return ExitCode.OK

    run(output, command, filename=document.filename)


@app.command()
def update(
    *,
    workflow_id: WorkflowId,
    file: DefinitionFile,
    etag: Annotated[str, typer.Option(help="Etag last read; stale: exit 4.")] = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """Replace a workflow's draft with a definition file."""
    document = read_document(file)

    async def command(clients: Clients, console: Console) -> ExitCode:
        try:
            reply = await clients.registry.update_workflow(
                registry_pb.UpdateWorkflowRequest(
                    name=f"workflows/{workflow_id}", source=document.source, etag=etag
                )
            )
        except InvalidDefinitionError as error:
            return await _explain_invalid(clients, console, output, document, error)
        _print_workflow(console, output, reply.workflow, f"updated {reply.workflow.name}")
        return ExitCode.OK

    run(output, command, filename=document.filename)


@app.command()
def get(
    *,
    workflow_id: WorkflowId,
    source: Annotated[
        bool, typer.Option("--source", help="Print the draft document only.")
    ] = False,
    show_deleted: Annotated[bool, typer.Option("--show-deleted")] = False,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Show a workflow: its draft, latest published version and aliases."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.get_workflow(
            registry_pb.GetWorkflowRequest(
                name=f"workflows/{workflow_id}", show_deleted=show_deleted
            )
        )
        if source and output is OutputFormat.TEXT:
            sys.stdout.write(reply.workflow.draft.source.decode("utf-8", errors="replace"))
            sys.stdout.flush()
            return ExitCode.OK
        _print_workflow(console, output, reply.workflow, reply.workflow.name)
        return ExitCode.OK

    run(output, command)


@app.command("list")
def list_(
    *,
    owner: Annotated[str | None, typer.Option(help="Owner (subject) equals.")] = None,
    tag: Annotated[str | None, typer.Option(help="Has this tag.")] = None,
    state: Annotated[State | None, typer.Option(help="Lifecycle state.")] = None,
    updated_since: Annotated[
        datetime | None,
        typer.Option(
            "--updated-since",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
            help="Updated at or after (UTC unless an offset is given).",
        ),
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="A further AIP-160 filter.")
    ] = None,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """List workflows, newest update first."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.list_workflows(
            registry_pb.ListWorkflowsRequest(
                page_size=page_size,
                page_token=page_token,
                filter=list_filter(
                    owner=owner,
                    tag=tag,
                    state=state.value if state else None,
                    updated_since=updated_since,
                    extra=filter_,
                ),
                show_deleted=state is State.DELETED,
            )
        )
        if output is OutputFormat.JSON:
            print_json(
                console,
                {
                    "workflows": [workflow_json(w) for w in reply.workflows],
                    "nextPageToken": reply.next_page_token,
                },
            )
            return ExitCode.OK
        console.print(workflows_table(reply.workflows))
        if reply.next_page_token:
            console.print(Text(f"more: --page-token {reply.next_page_token}"), soft_wrap=True)
        return ExitCode.OK

    run(output, command)


@app.command()
def validate(
    *,
    file: DefinitionFile,
    lint: Annotated[bool, typer.Option("--lint", help="Also run the linters.")] = False,
    disable: Annotated[
        list[str] | None, typer.Option("--disable", help="Lint code to suppress (repeatable).")
    ] = None,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Validate (with --lint also lint) a definition file.

    Diagnostics print as file:line:col: CODE message; exit 1 when it has errors.
    """
    document = read_document(file)

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply: compiler_pb.ValidateWorkflowResponse | compiler_pb.LintWorkflowResponse
        if lint:
            reply = await clients.compiler.lint_workflow(
                compiler_pb.LintWorkflowRequest(
                    source=document.source, disabled_rules=disable or []
                )
            )
        else:
            reply = await clients.compiler.validate_workflow(
                compiler_pb.ValidateWorkflowRequest(source=document.source)
            )
        if output is OutputFormat.JSON:
            body = message_json(reply)
            body.setdefault("valid", False)
            body.setdefault("diagnostics", [])
            print_json(console, body)
        else:
            errors, warnings = print_diagnostics(console, document.filename, reply.diagnostics)
            verdict = Text(f"{document.filename}: ")
            verdict.append("valid" if reply.valid else "invalid", style="bold")
            verdict.stylize("green" if reply.valid else "red", len(document.filename) + 2)
            verdict.append(f" ({errors} error(s), {warnings} warning(s))")
            console.print(verdict, soft_wrap=True)
        return ExitCode.OK if reply.valid else ExitCode.FAILED

    run(output, command, filename=document.filename)


@app.command()
def publish(
    *,
    workflow_id: WorkflowId,
    bump: Annotated[
        Bump | None, typer.Option(help="Semver bump; default: the smallest the diff allows.")
    ] = None,
    version: Annotated[str, typer.Option(help="Explicit version instead of a bump.")] = "",
    changelog: Annotated[str, typer.Option("--changelog", "-m", help="Release notes.")] = "",
    etag: Annotated[str, typer.Option(help="Etag last read; stale: exit 4.")] = "",
    idempotency_key: IdempotencyKey = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """Publish the draft as an immutable semver version.

    A breaking change needs a major bump (exit 4 otherwise).
    """

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.publish_workflow(
            registry_pb.PublishWorkflowRequest(
                name=f"workflows/{workflow_id}",
                bump=_BUMPS[bump],
                version=version,
                changelog=changelog,
                etag=etag,
                request_id=idempotency_key,
            )
        )
        if output is OutputFormat.JSON:
            print_json(
                console,
                {"version": message_json(reply.version), "workflow": workflow_json(reply.workflow)},
            )
            return ExitCode.OK
        console.print(
            Text(f"published {reply.version.name} (digest {reply.version.digest[:12]})"),
            style="bold green",
            soft_wrap=True,
        )
        console.print(versions_table([reply.version]))
        return ExitCode.OK

    run(output, command)


@app.command()
def versions(
    *,
    workflow_id: WorkflowId,
    page_size: PageSize = 0,
    page_token: PageToken = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """List a workflow's published versions, newest first."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.list_workflow_versions(
            registry_pb.ListWorkflowVersionsRequest(
                parent=f"workflows/{workflow_id}", page_size=page_size, page_token=page_token
            )
        )
        if output is OutputFormat.JSON:
            print_json(
                console,
                {
                    "versions": [message_json(v) for v in reply.versions],
                    "nextPageToken": reply.next_page_token,
                },
            )
            return ExitCode.OK
        console.print(versions_table(reply.versions))
        if reply.next_page_token:
            console.print(Text(f"more: --page-token {reply.next_page_token}"), soft_wrap=True)
        return ExitCode.OK

    run(output, command)


@app.command()
def diff(
    *,
    workflow_id: WorkflowId,
    base: Annotated[str, typer.Option(help="Base: semver, alias or draft.")] = "latest",
    target: Annotated[str, typer.Option(help="Target: semver, alias or draft.")] = "draft",
    fail_on_breaking: Annotated[
        bool, typer.Option("--fail-on-breaking", help="Exit 1 when the diff is BREAKING.")
    ] = False,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Diff two versions of a workflow: changed steps, verdict, required bump."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.diff_workflow_versions(
            registry_pb.DiffWorkflowVersionsRequest(
                name=f"workflows/{workflow_id}", base_version=base, target_version=target
            )
        )
        if output is OutputFormat.JSON:
            print_json(console, message_json(reply.diff))
        else:
            print_diff(console, reply.diff, base, target)
        breaking = reply.diff.compatibility == diff_pb2.COMPATIBILITY_BREAKING
        return ExitCode.FAILED if fail_on_breaking and breaking else ExitCode.OK

    run(output, command)


@app.command()
def clone(
    *,
    workflow_id: WorkflowId,
    version: Annotated[str, typer.Option(help="Version to clone; default: the draft.")] = "",
    new_id: Annotated[str, typer.Option("--id", help="Id of the copy; default: assigned.")] = "",
    name: Annotated[str, typer.Option(help="Definition name of the copy.")] = "",
    idempotency_key: IdempotencyKey = "",
    output: Output = OutputFormat.TEXT,
) -> None:
    """Copy a workflow (its draft or a version) into a new workflow."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.clone_workflow(
            registry_pb.CloneWorkflowRequest(
                name=f"workflows/{workflow_id}",
                version=version,
                new_workflow_id=new_id,
                new_definition_name=name,
                request_id=idempotency_key,
            )
        )
        _print_workflow(console, output, reply.workflow, f"cloned into {reply.workflow.name}")
        return ExitCode.OK

    run(output, command)


@app.command()
def promote(
    *,
    workflow_id: WorkflowId,
    version: Annotated[str, typer.Argument(help="Published version (semver).")],
    alias: Annotated[str, typer.Option(help="Alias to point at the version.")] = "stable",
    output: Output = OutputFormat.TEXT,
) -> None:
    """Point an alias (default `stable`) at a published version."""

    async def command(clients: Clients, console: Console) -> ExitCode:
        reply = await clients.registry.promote_workflow_version(
            registry_pb.PromoteWorkflowVersionRequest(
                name=f"workflows/{workflow_id}/versions/{version}", alias=alias
            )
        )
        _print_workflow(
            console, output, reply.workflow, f"{alias} -> {version} on {reply.workflow.name}"
        )
        return ExitCode.OK

    run(output, command)


@app.command()
def simulate(
    *,
    file: DefinitionFile,
    inputs: Annotated[
        str, typer.Option(help='Execution inputs: JSON (`{"amount": 5}`) or @file (JSON/YAML).')
    ] = "{}",
    mocks: Annotated[
        str,
        typer.Option(
            help="Mocked results by step id, JSON or @file: "
            '{"score": {"output": {"risk": 0.2}, "duration": "2s"}}.'
        ),
    ] = "{}",
    cost_table: Annotated[
        str, typer.Option("--cost-table", help='Cents per attempt by type/handler: {"task": 1}.')
    ] = "{}",
    default_task_duration: Annotated[
        str | None, typer.Option(help="Duration of an unmocked task attempt, e.g. 0.25s.")
    ] = None,
    output: Output = OutputFormat.TEXT,
) -> None:
    """Dry-run a definition file with mocked step results.

    Prints the path, timeline, critical path and cost; exit 1 when the simulated
    execution fails.
    """
    document = read_document(file)
    request = simulate_request(
        document.source,
        inputs=parse_value(inputs, "--inputs"),
        mocks=parse_value(mocks, "--mocks"),
        cost_table=parse_value(cost_table, "--cost-table"),
        default_task_duration=default_task_duration,
    )

    async def command(clients: Clients, console: Console) -> ExitCode:
        try:
            reply = await clients.compiler.simulate_workflow(request)
        except InvalidDefinitionError as error:
            return await _explain_invalid(clients, console, output, document, error)
        if output is OutputFormat.JSON:
            body = message_json(reply)
            body.setdefault("succeeded", False)
            print_json(console, body)
        else:
            print_simulation(console, reply)
        return ExitCode.OK if reply.succeeded else ExitCode.FAILED

    run(output, command, filename=document.filename)


def simulate_request(
    source: source_pb2.WorkflowSource,
    *,
    inputs: Any,
    mocks: Any,
    cost_table: Any,
    default_task_duration: str | None,
) -> compiler_pb.SimulateWorkflowRequest:
    """The SimulateWorkflow request, or a usage error naming the bad option."""
    request = compiler_pb.SimulateWorkflowRequest(source=source)
    for option, field, value in (
        ("--inputs", "inputs", inputs),
        ("--mocks", "mocks", mocks),
        ("--cost-table", "costTable", cost_table),
    ):
        if not isinstance(value, dict):
            raise typer.BadParameter("must be a JSON object", param_hint=option)
        try:
            json_format.ParseDict({field: value}, request, ignore_unknown_fields=False)
        except json_format.ParseError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from exc
    if default_task_duration is not None:
        duration = duration_pb2.Duration()
        try:
            duration.FromJsonString(default_task_duration)
        except ValueError as exc:
            raise typer.BadParameter(
                "expected a duration in seconds like 0.25s", param_hint="--default-task-duration"
            ) from exc
        request.default_task_duration.CopyFrom(duration)
    return request
