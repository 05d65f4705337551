"""``maestro run``, ``maestro executions`` and ``maestro human-tasks`` against a
SchedulerService double on a real gRPC server (in a thread of its own: the CLI
runs its own event loop): options -> requests, output (text and JSON), exit
codes, and following an execution's events (with resume). Then a run through
the real scheduler (and registry, without an executor)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from maestro.cli import executions_cli
from maestro.cli.executions_cli import (
    StepBoard,
    outcome_exit_code,
    parse_inputs,
    parse_pairs,
    start_request,
)
from maestro.cli.main import app
from maestro.cli.render import ExitCode
from maestro.runtime.server import GrpcServer
from maestro.scheduler.v1 import execution_pb2 as ex
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.server import create_server as create_scheduler
from tests.conftest import REPO, free_port, start_policy
from tests.unit.scheduler_double import (
    LoopThread,
    ThreadedScheduler,
    sample_events,
    serve_in_thread,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def scheduler() -> Iterator[ThreadedScheduler]:
    yield from serve_in_thread()


def invoke(scheduler: ThreadedScheduler, *args: str, env: dict[str, str] | None = None) -> Result:
    """``maestro <args>`` against the double (its address from the settings)."""
    environment = {
        "COLUMNS": "200",
        "MAESTRO_CLI_SCHEDULER_ADDRESS": scheduler.address,
        **(env or {}),
    }
    return CliRunner().invoke(app, list(args), env=environment)


# --- pure helpers ----------------------------------------------------------------


def test_inputs_merge_file_then_json_then_pairs(tmp_path: Path) -> None:
    inputs_file = tmp_path / "inputs.yaml"
    inputs_file.write_text("y: 2\ncount: 0\n")
    inputs = parse_inputs(
        '{"x": 1, "count": 1}',
        inputs_file,
        ["count=3", "name=ana", "zip=01234", "flag=true", "list=[1,2]", "eq=a=b"],
    )
    assert inputs == {
        "y": 2,
        "x": 1,
        "count": 3,
        "name": "ana",
        "zip": "01234",
        "flag": True,
        "list": [1, 2],
        "eq": "a=b",
    }
    assert parse_inputs(None, None, None) == {}


@pytest.mark.parametrize(
    ("input_json", "pairs", "hint"),
    [
        ("[1, 2]", [], "--input"),
        ("{not json", [], "--input"),
        (None, ["novalue"], "-i"),
        (None, ["=3"], "-i"),
    ],
)
def test_bad_inputs_are_usage_errors(input_json: str | None, pairs: list[str], hint: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        parse_inputs(input_json, None, pairs)
    assert caught.value.param_hint == hint


def test_labels_stay_strings() -> None:
    assert parse_pairs(["n=3", "team=data"], "--label", json_values=False) == {
        "n": "3",
        "team": "data",
    }


def test_start_request() -> None:
    request = start_request("workflows/hello", version="1.0.0", inputs={"n": 1})
    assert (request.workflow, request.version, request.inputs["n"]) == (
        "workflows/hello",
        "1.0.0",
        1,
    )
    assert uuid.UUID(request.request_id).version == 4
    assert not request.HasField("timeout")
    assert start_request("hello", idempotency_key=" k ").request_id == "k"
    with pytest.raises(typer.BadParameter):
        start_request("workflows/")


def test_outcome_exit_codes() -> None:
    assert outcome_exit_code(ex.EXECUTION_STATE_SUCCEEDED) == ExitCode.OK
    assert outcome_exit_code(ex.EXECUTION_STATE_FAILED) == ExitCode.FAILED
    assert outcome_exit_code(ex.EXECUTION_STATE_COMPENSATED) == ExitCode.FAILED
    assert outcome_exit_code(ex.EXECUTION_STATE_CANCELLED) == 6
    assert outcome_exit_code(ex.EXECUTION_STATE_TIMED_OUT) == 7


def test_step_board_tracks_steps_from_events() -> None:
    board = StepBoard("ex-1")
    for event in sample_events("ex-1"):
        board.update(event)
    assert board.state == "SUCCEEDED"
    table = board.table()
    assert table.row_count == 1
    assert [str(cell) for cell in table.columns[0].cells] == ["fetch"]
    assert [str(cell) for cell in table.columns[2].cells] == ["2"]
    assert [str(cell) for cell in table.columns[3].cells] == ["1s"]


# --- maestro run -----------------------------------------------------------------


def test_run_sends_the_options_and_prints_the_id(
    scheduler: ThreadedScheduler, tmp_path: Path
) -> None:
    inputs_file = tmp_path / "in.json"
    inputs_file.write_text('{"y": 2}')
    key = str(uuid.uuid4())
    result = invoke(
        scheduler,
        "run",
        "workflows/hello",
        "--version",
        "stable",
        "--input",
        '{"x": 1}',
        "--input-file",
        str(inputs_file),
        "-i",
        "count=3",
        "--set",
        "name=ana",
        "--idempotency-key",
        key,
        "--timeout",
        "30s",
        "--correlation-id",
        "order-7",
        "--label",
        "team=data",
        env={"MAESTRO_CLI_TENANT": "acme"},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "ex-1\n"
    call = scheduler.fake.last("StartExecution")
    request = call.request
    assert request.workflow == "workflows/hello"
    assert request.version == "stable"
    assert dict(request.inputs) == {"x": 1, "y": 2, "count": 3, "name": "ana"}
    assert request.request_id == key
    assert (request.timeout.seconds, request.correlation_id) == (30, "order-7")
    assert dict(request.labels) == {"team": "data"}
    assert call.principal.tenant == "acme"


def test_run_generates_a_key_and_prints_json(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "run", "hello", "-o", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["executionId"] == "ex-1"
    assert body["created"] is True
    assert body["execution"]["inputs"] == {}
    request_id = scheduler.fake.last("StartExecution").request.request_id
    assert uuid.UUID(request_id).version == 4
    assert body["execution"]["requestId"] == request_id


def test_run_follow_shows_progress_and_outputs(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "run", "hello", "--follow")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "started executions/ex-1" in out
    for text in ("execution.started", "step.succeeded", "fetch", "execution.succeeded"):
        assert text in out
    assert "2 (+1 redelivered)" in out  # the final timeline
    assert '"total": 3' in out
    # The double's executions end at once: already terminal, so replayed.
    stream = scheduler.fake.requests("StreamExecutionEvents")
    assert [(r.after_sequence, r.follow) for r in stream] == [(0, False)]


@pytest.mark.parametrize(
    ("workflow", "code", "state"),
    [
        ("failing", 1, "FAILED"),
        ("cancelled", 6, "CANCELLED"),
        ("late", 7, "TIMED_OUT"),
    ],
)
def test_run_follow_exit_code_by_outcome(
    scheduler: ThreadedScheduler, workflow: str, code: int, state: str
) -> None:
    result = invoke(scheduler, "run", workflow, "--follow")
    assert result.exit_code == code, result.output
    assert state in result.stdout
    assert "HTTP_500" in result.stdout  # the execution error


def test_run_follow_json_prints_the_final_execution(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "run", "failing", "--follow", "--output", "json")
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["execution"]["state"] == "EXECUTION_STATE_FAILED"
    assert body["execution"]["error"]["code"] == "HTTP_500"


def test_run_of_an_unknown_workflow_is_not_found(scheduler: ThreadedScheduler) -> None:
    text = invoke(scheduler, "run", "missing")
    assert text.exit_code == 3
    assert "WORKFLOW_NOT_FOUND" in text.stderr
    as_json = invoke(scheduler, "run", "missing", "-o", "json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["reason"] == "WORKFLOW_NOT_FOUND"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "hello", "-i", "novalue"],
        ["run", "hello", "--input", "[1]"],
        ["run", "hello", "--timeout", "30 seconds"],
        ["run", "hello", "--input-file", "missing.yaml"],
        ["run", "hello", "--output", "xml"],
        ["run"],
        ["executions", "list", "--status", "SLEEPING"],
        ["executions", "list", "--limit", "5000"],
        ["executions", "events", "done", "--after", "-1"],
        ["executions", "get", "bad!id"],
        ["human-tasks", "complete", "t-1"],
        ["human-tasks", "complete", "t-1", "--result", "[]"],
    ],
)
def test_usage_errors_exit_2(scheduler: ThreadedScheduler, args: list[str]) -> None:
    result = invoke(scheduler, *args)
    assert result.exit_code == 2, result.output
    assert scheduler.fake.requests("StartExecution") == []


def test_scheduler_unavailable_exits_5(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "executions", "get", "done", "--address", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 5, result.output
    assert "DEPENDENCY_UNAVAILABLE" in result.stderr
    assert scheduler.fake.calls == []


# --- maestro executions ----------------------------------------------------------


def test_list_builds_the_filter(scheduler: ThreadedScheduler) -> None:
    result = invoke(
        scheduler,
        "executions",
        "list",
        "--status",
        "running",
        "-s",
        "FAILED,PENDING",
        "--workflow",
        "hello",
        "--started-after",
        "2025-09-01",
        "--limit",
        "5",
    )
    assert result.exit_code == 0, result.output
    request = scheduler.fake.last("ListExecutions").request
    assert request.filter == (
        "(state = RUNNING OR state = FAILED OR state = PENDING)"
        ' AND workflow = "workflows/hello" AND start_time >= "2025-09-01T00:00:00Z"'
    )
    assert request.page_size == 5
    for text in ("done", "live", "SUCCEEDED", "RUNNING", "more: --page-token page-2"):
        assert text in result.stdout
    as_json = json.loads(invoke(scheduler, "executions", "list", "-o", "json").stdout)
    assert [e["executionId"] for e in as_json["executions"]] == ["done", "live"]
    assert as_json["nextPageToken"] == "page-2"


def test_get_prints_the_timeline(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "executions", "get", "executions/done")
    assert result.exit_code == 0, result.output
    assert scheduler.fake.last("GetExecution").request.name == "executions/done"
    assert scheduler.fake.last("GetExecution").request.view == ex.EXECUTION_VIEW_FULL
    for text in ("fetch", "report", "SUCCEEDED", "2 (+1 redelivered)", "2s", "HTTP_502"):
        assert text in result.stdout
    assert '"ratio": 0.5' in result.stdout
    body = json.loads(invoke(scheduler, "executions", "get", "done", "-o", "json").stdout)
    assert body["executionId"] == "done"
    assert body["steps"][0]["attempts"][1]["duration"] == "1.250s"


def test_get_of_an_unknown_execution_exits_3(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "executions", "get", "missing")
    assert result.exit_code == 3
    assert "EXECUTION_NOT_FOUND" in result.stderr


def test_cancel_retry_and_compensate(scheduler: ThreadedScheduler) -> None:
    cancelled = invoke(scheduler, "executions", "cancel", "live", "--reason", "oops")
    assert cancelled.exit_code == 0, cancelled.output
    assert "CANCELLING" in cancelled.stdout
    request = scheduler.fake.last("CancelExecution").request
    assert (request.name, request.reason) == ("executions/live", "oops")

    conflict = invoke(scheduler, "executions", "cancel", "done")
    assert conflict.exit_code == 4
    assert "EXECUTION_STATE_CONFLICT" in conflict.stderr

    retried = invoke(scheduler, "executions", "retry", "done", "-o", "json")
    assert retried.exit_code == 0
    assert json.loads(retried.stdout)["state"] == "EXECUTION_STATE_RUNNING"
    invoke(scheduler, "executions", "retry", "done", "--idempotency-key", "k-1")
    first, second = scheduler.fake.requests("RetryExecution")
    assert uuid.UUID(first.request_id).version == 4
    assert second.request_id == "k-1"

    compensating = invoke(scheduler, "executions", "compensate", "done", "--reason", "undo")
    assert compensating.exit_code == 0
    assert "COMPENSATING" in compensating.stdout


def test_events_json_is_one_cloudevent_per_line(scheduler: ThreadedScheduler) -> None:
    result = invoke(scheduler, "executions", "events", "done", "--after", "2", "-o", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["id"] for e in events] == ["3", "4"]
    assert events[0]["specversion"] == "1.0"
    assert events[1]["type"] == "dev.maestro.execution.succeeded"
    request = scheduler.fake.last("StreamExecutionEvents").request
    assert (request.after_sequence, request.follow) == (2, False)


def test_events_follow_of_a_finished_execution_replays_and_stops(
    scheduler: ThreadedScheduler,
) -> None:
    result = invoke(scheduler, "executions", "events", "done", "--follow")
    assert result.exit_code == 0, result.output
    assert "execution.succeeded" in result.stdout
    assert scheduler.fake.last("StreamExecutionEvents").request.follow is False


def test_events_follow_resumes_after_the_last_event(
    scheduler: ThreadedScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `broken` fails UNAVAILABLE after each first event; it ends SUCCEEDED.
    scheduler.fake.events["executions/broken"] = sample_events("broken")
    monkeypatch.setattr(executions_cli, "RESUME_BACKOFF_SECONDS", 0.01)
    result = invoke(scheduler, "executions", "events", "broken", "--follow", "-o", "json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["1", "2", "3", "4"]
    stream = scheduler.fake.requests("StreamExecutionEvents")
    assert [(r.after_sequence, r.follow) for r in stream] == [
        (0, True),
        (1, True),
        (2, True),
        (3, True),
    ]


# --- maestro human-tasks ---------------------------------------------------------


def test_human_tasks(scheduler: ThreadedScheduler, tmp_path: Path) -> None:
    listed = invoke(
        scheduler, "human-tasks", "list", "--state", "open", "--execution", "live", "--mine"
    )
    assert listed.exit_code == 0, listed.output
    request = scheduler.fake.last("ListHumanTasks").request
    assert request.filter == 'state = OPEN AND execution = "executions/live"'
    assert request.assigned_to_caller is True
    for text in ("t-1", "approve", "role:approver", "OPEN"):
        assert text in listed.stdout

    got = invoke(scheduler, "human-tasks", "get", "t-1")
    assert got.exit_code == 0
    assert "Approve the refund." in got.stdout
    assert invoke(scheduler, "human-tasks", "get", "t-2").exit_code == 3

    form = tmp_path / "form.yaml"
    form.write_text("approved: true\namount: 12\n")
    completed = invoke(
        scheduler,
        "human-tasks",
        "complete",
        "humanTasks/t-1",
        "--result",
        f"@{form}",
        "--idempotency-key",
        "k-7",
        "-o",
        "json",
    )
    assert completed.exit_code == 0, completed.output
    body: dict[str, Any] = json.loads(completed.stdout)
    assert body["result"] == {"approved": True, "amount": 12}
    assert body["completedBy"] == "local-admin"
    request = scheduler.fake.last("CompleteHumanTask").request
    assert (request.name, request.request_id) == ("humanTasks/t-1", "k-7")


def test_help_lists_the_commands_and_exit_codes() -> None:
    executions = CliRunner().invoke(app, ["executions", "--help"], env={"COLUMNS": "200"})
    assert executions.exit_code == 0
    for command in ("list", "get", "cancel", "retry", "compensate", "events"):
        assert command in executions.stdout
    assert "6 it was CANCELLED" in executions.stdout
    run = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert run.exit_code == 0
    for option in ("--follow", "--input-file", "--idempotency-key", "--timeout", "--set"):
        assert option in run.stdout
    human = CliRunner().invoke(app, ["human-tasks", "--help"], env={"COLUMNS": "200"})
    assert "complete" in human.stdout


# --- against the real scheduler (with the real registry; no executor) -----------


@pytest.fixture
def mesh_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Compiler, registry and scheduler on a loop thread; the CLI's settings."""
    thread = LoopThread()

    async def start() -> list[GrpcServer]:
        policy = await start_policy(tmp_path)
        compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
        registry = await create_registry(
            RegistrySettings(
                port=0,
                metrics_port=None,
                data_dir=tmp_path,
                compiler_address=f"127.0.0.1:{compiler.port}",
                policy_address=f"127.0.0.1:{policy.port}",
            )
        )
        scheduler = await create_scheduler(
            SchedulerSettings(
                port=0,
                metrics_port=None,
                data_dir=tmp_path,
                registry_address=f"127.0.0.1:{registry.port}",
                policy_address=f"127.0.0.1:{policy.port}",
            )
        )
        return [scheduler, registry, compiler, policy]

    async def stop(servers: list[GrpcServer]) -> None:
        for server in servers:
            await server.stop(0)

    servers = thread.run(start())
    try:
        yield {
            "COLUMNS": "200",
            "MAESTRO_CLI_SCHEDULER_ADDRESS": servers[0].address,
            "MAESTRO_CLI_REGISTRY_ADDRESS": servers[1].address,
            "MAESTRO_CLI_COMPILER_ADDRESS": servers[2].address,
        }
    finally:
        thread.run(stop(servers))
        thread.close()


def test_run_inspect_cancel_and_follow_with_the_real_scheduler(
    mesh_env: dict[str, str],
) -> None:
    def maestro(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=mesh_env)

    hello = str(REPO / "samples/workflows/hello.yaml")
    assert maestro("workflows", "create", hello, "--id", "hello").exit_code == 0
    assert maestro("workflows", "publish", "hello").exit_code == 0

    run = maestro("run", "hello", "-i", "who=ana", "--label", "team=data")
    assert run.exit_code == 0, run.output
    execution_id = run.stdout.strip()
    assert re.fullmatch(r"[0-9A-Z]{26}", execution_id), run.stdout

    got = maestro("executions", "get", execution_id)
    assert got.exit_code == 0, got.output
    for text in ("greet", "pause", "reply", "team=data", "1.0.0"):
        assert text in got.stdout
    listed = maestro("executions", "list", "--workflow", "hello", "-s", "PENDING,RUNNING")
    assert listed.exit_code == 0, listed.output
    assert execution_id in listed.stdout

    cancelled = maestro("executions", "cancel", execution_id, "--reason", "test")
    assert cancelled.exit_code == 0, cancelled.output
    # No executor: nothing runs, so the cancel completes and the follow ends.
    events = maestro("executions", "events", execution_id, "--follow", "-o", "json")
    assert events.exit_code == 0, events.output
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types[0] == "dev.maestro.execution.started"
    assert types[-1] == "dev.maestro.execution.cancelled"

    assert maestro("run", "hello", "-i", "who=5").exit_code == 2  # INPUT_SCHEMA_VIOLATION
    assert maestro("run", "nope").exit_code == 3
    assert maestro("executions", "get", "01J9Z8Q4T6K3M5N7P9R1S3T5V7").exit_code == 3
    assert maestro("executions", "cancel", execution_id).exit_code == 0  # idempotent
