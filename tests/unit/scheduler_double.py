"""A SchedulerService test double on a real grpc.aio server (port 0).

It stands in for the scheduler while it is being built, to test the callers'
translation layer (gateway routes, CLI commands): it serves canned resources,
records every request with the caller's identity, raises the contract's errors
(through the runtime's server interceptor, as the real server does) and holds
followed streams open until the client cancels them.

Canned behaviour, by name:

* workflows: ``workflows/missing`` is NOT_FOUND; ``workflows/failing``,
  ``workflows/cancelled``, ``workflows/late`` end FAILED, CANCELLED and
  TIMED_OUT; any other workflow SUCCEEDS. A started execution's journal is
  complete at once (its events end with the terminal one).
* executions: a name that is not ``executions/<letters, digits, ->`` is
  INVALID_ARGUMENT; ``executions/missing`` is NOT_FOUND; ``executions/broken``
  streams its first event and then fails UNAVAILABLE; ``executions/done`` is
  SUCCEEDED (cancel: EXECUTION_STATE_CONFLICT); ``executions/live`` is RUNNING
  and its followed stream stays open after its journal.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from maestro.common.v1 import workflow_pb2 as common_workflow_pb2
from maestro.runtime import context
from maestro.runtime.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.runtime.settings import ServiceSettings
from maestro.scheduler.v1 import execution_pb2 as ex
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SchedulerService"].full_name
_NAME = re.compile(r"^executions/[A-Za-z0-9-]+$")
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    """A timestamp ``seconds`` after T0."""
    whole = int(seconds)
    return timestamp_pb2.Timestamp(seconds=T0 + whole, nanos=round((seconds - whole) * 1e9))


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


_OUTCOMES = {
    "workflows/failing": ex.EXECUTION_STATE_FAILED,
    "workflows/cancelled": ex.EXECUTION_STATE_CANCELLED,
    "workflows/late": ex.EXECUTION_STATE_TIMED_OUT,
}
_TERMINAL_EVENTS = {
    ex.EXECUTION_STATE_SUCCEEDED: ex.EVENT_TYPE_EXECUTION_SUCCEEDED,
    ex.EXECUTION_STATE_FAILED: ex.EVENT_TYPE_EXECUTION_FAILED,
    ex.EXECUTION_STATE_CANCELLED: ex.EVENT_TYPE_EXECUTION_CANCELLED,
    ex.EXECUTION_STATE_TIMED_OUT: ex.EVENT_TYPE_EXECUTION_TIMED_OUT,
}


def sample_execution(
    execution_id: str, state: int = ex.EXECUTION_STATE_SUCCEEDED, workflow: str = "workflows/hello"
) -> ex.Execution:
    """An execution with two steps; ``fetch`` took two attempts (0.5 s + 1.25 s)."""
    ended = state in _TERMINAL_EVENTS
    fetch = ex.StepRun(
        step_id="fetch",
        type=common_workflow_pb2.STEP_TYPE_TASK,
        state=ex.STEP_STATE_SUCCEEDED,
        output=struct({"rows": 3}),
        start_time=ts(1),
        end_time=ts(3),
        attempts=[
            ex.StepAttempt(
                attempt=1,
                state=ex.ATTEMPT_STATE_FAILED,
                deliveries=1,
                start_time=ts(1),
                end_time=ts(1.5),
                error=ex.StepError(code="HTTP_502", message="bad gateway"),
                idempotency_key=f"{execution_id}/fetch/1",
            ),
            ex.StepAttempt(
                attempt=2,
                state=ex.ATTEMPT_STATE_SUCCEEDED,
                deliveries=2,
                start_time=ts(1.75),
                end_time=ts(3),
                idempotency_key=f"{execution_id}/fetch/2",
            ),
        ],
    )
    report = ex.StepRun(
        step_id="report",
        type=common_workflow_pb2.STEP_TYPE_TASK,
        state=ex.STEP_STATE_SUCCEEDED if ended else ex.STEP_STATE_RUNNING,
        start_time=ts(3),
        attempts=[ex.StepAttempt(attempt=1, state=ex.ATTEMPT_STATE_RUNNING, start_time=ts(3))],
    )
    if ended:
        report.end_time.CopyFrom(ts(4))
        report.attempts[0].end_time.CopyFrom(ts(4))
    execution = ex.Execution(
        name=f"executions/{execution_id}",
        workflow=workflow,
        version="1.0.0",
        alias="stable",
        tenant="default",
        creator="local-admin",
        state=state,
        inputs=struct({"count": 3, "name": "ana"}),
        create_time=ts(0),
        start_time=ts(1),
        update_time=ts(4),
        steps=[fetch, report],
        last_event_sequence=4,
        etag="etag-1",
        labels={"team": "data"},
    )
    if ended:
        execution.end_time.CopyFrom(ts(4))
    if state == ex.EXECUTION_STATE_SUCCEEDED:
        execution.outputs.CopyFrom(struct({"total": 3, "ratio": 0.5}))
    elif ended:
        execution.error.CopyFrom(
            ex.ExecutionError(code="HTTP_500", message="boom", step_id="fetch")
        )
    return execution


def sample_events(execution_id: str, state: int = ex.EXECUTION_STATE_SUCCEEDED) -> list[Any]:
    """The journal of :func:`sample_execution`, ending with the terminal event
    when ``state`` is terminal."""
    name = f"executions/{execution_id}"
    rows: list[tuple[int, str, int, dict[str, Any]]] = [
        (ex.EVENT_TYPE_EXECUTION_STARTED, "", 0, {"workflow": "workflows/hello"}),
        (ex.EVENT_TYPE_STEP_STARTED, "fetch", 1, {"worker_identity": "w-1", "delivery": 1}),
        (ex.EVENT_TYPE_STEP_SUCCEEDED, "fetch", 2, {"output": {"rows": 3}, "cache_hit": False}),
    ]
    terminal = _TERMINAL_EVENTS.get(state)
    if terminal is not None:
        rows.append((terminal, "", 0, {"outputs": {"total": 3}}))
    return [
        ex.ExecutionEvent(
            id=str(seq),
            sequence=seq,
            type=kind,
            source=f"//scheduler.maestro.dev/{name}",
            subject=subject,
            time=ts(seq),
            execution=name,
            attempt=attempt,
            data=struct(data),
        )
        for seq, (kind, subject, attempt, data) in enumerate(rows, start=1)
    ]


def sample_human_task(task_id: str = "t-1") -> ex.HumanTask:
    return ex.HumanTask(
        name=f"humanTasks/{task_id}",
        execution="executions/live",
        step_id="approve",
        tenant="default",
        assignees=["role:approver"],
        form_schema=struct({"type": "object", "required": ["approved"]}),
        instructions="Approve the refund.",
        state=ex.HUMAN_TASK_STATE_OPEN,
        due_time=ts(3600),
        create_time=ts(2),
        etag="task-etag",
    )


@dataclass(frozen=True)
class Call:
    """One recorded request and who made it."""

    method: str
    request: Message
    principal: context.Principal
    request_id: str


class FakeScheduler(pb_grpc.SchedulerServiceServicer):
    """The double (see the module docstring)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.executions: dict[str, ex.Execution] = {
            "executions/done": sample_execution("done"),
            "executions/live": sample_execution("live", ex.EXECUTION_STATE_RUNNING),
            "executions/broken": sample_execution("broken", ex.EXECUTION_STATE_RUNNING),
        }
        self.events: dict[str, list[Any]] = {
            "executions/done": sample_events("done"),
            "executions/live": sample_events("live", ex.EXECUTION_STATE_RUNNING),
            "executions/broken": sample_events("broken", ex.EXECUTION_STATE_RUNNING),
        }
        self.started: dict[str, tuple[pb.StartExecutionRequest, ex.Execution]] = {}
        self.streams_open = 0
        self.stream_cancelled = threading.Event()

    def requests(self, method: str) -> list[Any]:
        """The requests of ``method`` so far, oldest first."""
        return [c.request for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        return [c for c in self.calls if c.method == method][-1]

    def _record(self, method: str, request: Message) -> None:
        ctx = context.current()
        self.calls.append(Call(method, request, ctx.principal, ctx.request_id))

    def _execution(self, name: str) -> ex.Execution:
        if not _NAME.match(name):
            raise InvalidArgumentError(f"malformed execution name {name!r}")
        execution = self.executions.get(name)
        if execution is None:
            raise NotFoundError(f"{name} does not exist", reason="EXECUTION_NOT_FOUND")
        return execution

    async def StartExecution(self, request: Any, ctx: Any) -> pb.StartExecutionResponse:
        self._record("StartExecution", request)
        if not request.request_id:
            raise InvalidArgumentError("request_id is required")
        if request.workflow == "workflows/missing":
            raise NotFoundError(f"{request.workflow} does not exist")
        earlier = self.started.get(request.request_id)
        if earlier is not None:
            return pb.StartExecutionResponse(execution=earlier[1], created=False)
        execution_id = f"ex-{len(self.started) + 1}"
        state = _OUTCOMES.get(request.workflow, ex.EXECUTION_STATE_SUCCEEDED)
        execution = sample_execution(execution_id, state, request.workflow)
        execution.inputs.CopyFrom(request.inputs)
        execution.request_id = request.request_id
        self.started[request.request_id] = (request, execution)
        self.executions[execution.name] = execution
        self.events[execution.name] = sample_events(execution_id, state)
        return pb.StartExecutionResponse(execution=execution, created=True)

    async def GetExecution(self, request: Any, ctx: Any) -> pb.GetExecutionResponse:
        self._record("GetExecution", request)
        execution = ex.Execution()
        execution.CopyFrom(self._execution(request.name))
        if request.view == ex.EXECUTION_VIEW_BASIC:
            execution.ClearField("steps")
        return pb.GetExecutionResponse(execution=execution)

    async def ListExecutions(self, request: Any, ctx: Any) -> pb.ListExecutionsResponse:
        self._record("ListExecutions", request)
        return pb.ListExecutionsResponse(
            executions=[
                sample_execution("done"),
                sample_execution("live", ex.EXECUTION_STATE_RUNNING),
            ],
            next_page_token="page-2",
        )

    async def CancelExecution(self, request: Any, ctx: Any) -> pb.CancelExecutionResponse:
        self._record("CancelExecution", request)
        execution = self._execution(request.name)
        if execution.state == ex.EXECUTION_STATE_SUCCEEDED:
            raise FailedPreconditionError(
                f"{request.name} already SUCCEEDED", metadata={"state": "SUCCEEDED"}
            )
        cancelled = ex.Execution()
        cancelled.CopyFrom(execution)
        cancelled.state = ex.EXECUTION_STATE_CANCELLING
        return pb.CancelExecutionResponse(execution=cancelled)

    async def RetryExecution(self, request: Any, ctx: Any) -> pb.RetryExecutionResponse:
        self._record("RetryExecution", request)
        retried = ex.Execution()
        retried.CopyFrom(self._execution(request.name))
        retried.state = ex.EXECUTION_STATE_RUNNING
        return pb.RetryExecutionResponse(execution=retried)

    async def CompensateExecution(self, request: Any, ctx: Any) -> pb.CompensateExecutionResponse:
        self._record("CompensateExecution", request)
        compensating = ex.Execution()
        compensating.CopyFrom(self._execution(request.name))
        compensating.state = ex.EXECUTION_STATE_COMPENSATING
        return pb.CompensateExecutionResponse(execution=compensating)

    async def StreamExecutionEvents(
        self, request: Any, ctx: Any
    ) -> AsyncIterator[pb.StreamExecutionEventsResponse]:
        self._record("StreamExecutionEvents", request)
        self._execution(request.name)
        if request.after_sequence < 0:
            raise InvalidArgumentError("after_sequence must not be negative")
        journal = self.events.get(request.name, [])
        for event in journal:
            if event.sequence > request.after_sequence:
                yield pb.StreamExecutionEventsResponse(event=event)
                if request.name == "executions/broken":
                    raise UnavailableError("the journal is unreachable")
        terminal = bool(journal) and journal[-1].type in _TERMINAL_EVENTS.values()
        if request.follow and not terminal:
            self.streams_open += 1
            try:
                await asyncio.Event().wait()  # until the client cancels
            except asyncio.CancelledError:
                self.stream_cancelled.set()
                raise
            finally:
                self.streams_open -= 1

    async def ListExecutionEvents(self, request: Any, ctx: Any) -> pb.ListExecutionEventsResponse:
        self._record("ListExecutionEvents", request)
        self._execution(request.name)
        events = [e for e in self.events[request.name] if e.sequence > request.after_sequence]
        return pb.ListExecutionEventsResponse(events=events[:2], next_page_token="next")

    async def GetHumanTask(self, request: Any, ctx: Any) -> pb.GetHumanTaskResponse:
        self._record("GetHumanTask", request)
        if request.name != "humanTasks/t-1":
            raise NotFoundError(f"{request.name} does not exist", reason="HUMAN_TASK_NOT_FOUND")
        return pb.GetHumanTaskResponse(human_task=sample_human_task())

    async def ListHumanTasks(self, request: Any, ctx: Any) -> pb.ListHumanTasksResponse:
        self._record("ListHumanTasks", request)
        return pb.ListHumanTasksResponse(human_tasks=[sample_human_task()])

    async def CompleteHumanTask(self, request: Any, ctx: Any) -> pb.CompleteHumanTaskResponse:
        self._record("CompleteHumanTask", request)
        task = sample_human_task(request.name.removeprefix("humanTasks/"))
        task.state = ex.HUMAN_TASK_STATE_COMPLETED
        task.result.CopyFrom(request.result)
        task.completed_by = context.current().principal.subject
        return pb.CompleteHumanTaskResponse(human_task=task)


async def start_fake_scheduler() -> tuple[FakeScheduler, GrpcServer]:
    """The double served by the runtime's server bootstrap on 127.0.0.1:0."""
    fake = FakeScheduler()
    server = await start_grpc_server(
        ServiceSpec(
            name="scheduler",
            servicers=[(pb_grpc.add_SchedulerServiceServicer_to_server, fake)],
            service_names=[SERVICE_NAME],
        ),
        ServiceSettings(port=0, metrics_port=None, grace_seconds=0),
    )
    return fake, server


class LoopThread:
    """An event loop running in a thread of its own, for servers that
    synchronous callers (such as the CLI, which runs its own loop) talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs ``coroutine`` on the loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class ThreadedScheduler:
    """The double on a :class:`LoopThread`."""

    fake: FakeScheduler
    address: str


def serve_in_thread() -> Iterator[ThreadedScheduler]:
    """Generator for a fixture: starts the double in a thread, yields it, stops it."""
    thread = LoopThread()
    fake, server = thread.run(start_fake_scheduler())
    try:
        yield ThreadedScheduler(fake, f"127.0.0.1:{server.port}")
    finally:
        thread.run(server.stop(0))
        thread.close()
