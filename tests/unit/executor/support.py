"""A scripted TaskQueueService and a tiny HTTP server, for executor tests.

The fake scheduler is a real gRPC server (the runtime's bootstrap on port 0, so
errors carry the same rich status as the real one): tests queue StepTasks, flip
switches (cancel, stale lease, outages) and read back every call the worker
made.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
from google.protobuf import json_format, struct_pb2

from maestro.runtime.errors import (
    FailedPreconditionError,
    InternalError,
    MaestroError,
    UnavailableError,
)
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from maestro.scheduler.v1 import task_pb2

TASK_QUEUE_SERVICE = pb.DESCRIPTOR.services_by_name["TaskQueueService"].full_name

Result = pb.CompleteTaskRequest | pb.FailTaskRequest


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Waits until ``predicate()`` is truthy; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if value:
        message.update(value)
    return message


def make_task(
    handler: str = "echo",
    *,
    input: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    deadline_seconds: float = 10.0,
    heartbeat_seconds: float = 0.1,
    task_queue: str = "default",
    **fields: Any,
) -> task_pb2.StepTask:
    """A leased StepTask with sensible defaults."""
    task_id = fields.pop("task_id", f"t-{uuid.uuid4().hex[:8]}")
    now = datetime.now(UTC)
    task = task_pb2.StepTask(
        task_id=task_id,
        lease_id=fields.pop("lease_id", f"l-{uuid.uuid4().hex[:8]}"),
        kind=fields.pop("kind", task_pb2.TASK_KIND_RUN),
        execution=fields.pop("execution", "executions/e1"),
        tenant=fields.pop("tenant", "acme"),
        workflow=fields.pop("workflow", "workflows/orders"),
        version=fields.pop("version", "1.0.0"),
        step_id=fields.pop("step_id", "step-a"),
        attempt=fields.pop("attempt", 1),
        delivery=fields.pop("delivery", 1),
        idempotency_key=fields.pop("idempotency_key", f"e1/step-a/1/{task_id}"),
        handler=handler,
        config=struct(config),
        input=struct(input),
        task_queue=task_queue,
        **fields,
    )
    task.lease_expire_time.FromDatetime(now + timedelta(seconds=30))
    task.heartbeat_interval.FromTimedelta(timedelta(seconds=heartbeat_seconds))
    task.deadline.FromDatetime(now + timedelta(seconds=deadline_seconds))
    task.timeout.FromTimedelta(timedelta(seconds=deadline_seconds))
    return task


@dataclass
class PollCall:
    task_queue: str
    worker_identity: str
    max_tasks: int
    wait_seconds: float
    outstanding: int
    """Tasks leased and not yet finished when the poll arrived."""


@dataclass
class FakeTaskQueue(pb_grpc.TaskQueueServiceServicer):
    """Hands out queued tasks and records what the worker reports."""

    queues: defaultdict[str, asyncio.Queue[task_pb2.StepTask]] = field(
        default_factory=lambda: defaultdict(asyncio.Queue)
    )
    polls: list[PollCall] = field(default_factory=list)
    heartbeats: list[pb.HeartbeatTaskRequest] = field(default_factory=list)
    reports: list[Result] = field(default_factory=list)
    """Every CompleteTask/FailTask call or ReportTasks report, including refused ones."""
    batches: list[pb.ReportTasksRequest] = field(default_factory=list)
    """Every ReportTasks call."""
    broken_batches: int = 0
    """How many more ReportTasks calls fail whole with INTERNAL (not retried)."""
    results: dict[str, Result] = field(default_factory=dict)
    """The first accepted result per task id."""
    leased: dict[str, task_pb2.StepTask] = field(default_factory=dict)
    cancel: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)
    unavailable: dict[str, int] = field(default_factory=dict)
    """Method name -> how many more calls answer UNAVAILABLE."""
    most_outstanding: int = 0
    active_polls: int = 0
    """PollTasks calls being served now."""

    def add(self, *tasks: task_pb2.StepTask) -> None:
        for task in tasks:
            self.queues[task.task_queue or "default"].put_nowait(task)

    def outstanding(self) -> int:
        return len(set(self.leased) - set(self.results) - self.stale)

    def calls(self, method: str) -> list[Result]:
        kind = pb.CompleteTaskRequest if method == "CompleteTask" else pb.FailTaskRequest
        return [r for r in self.reports if isinstance(r, kind)]

    async def result(self, task_id: str, timeout: float = 5.0) -> Result:
        await eventually(lambda: task_id in self.results, timeout)
        return self.results[task_id]

    async def completed(self, task_id: str) -> dict[str, Any]:
        """The output of a completed task (fails the test if it failed)."""
        result = await self.result(task_id)
        assert isinstance(result, pb.CompleteTaskRequest), result
        return dict(json_format.MessageToDict(result.output))

    async def failed(self, task_id: str) -> pb.FailTaskRequest:
        result = await self.result(task_id)
        assert isinstance(result, pb.FailTaskRequest), result
        return result

    def _maybe_unavailable(self, method: str) -> None:
        if self.unavailable.get(method, 0) > 0:
            self.unavailable[method] -= 1
            raise UnavailableError("scheduler restarting", reason="NOT_READY")

    def _check_lease(self, task_id: str) -> None:
        if task_id in self.stale:
            raise FailedPreconditionError(
                "the lease is stale", reason="LEASE_STALE", metadata={"task_id": task_id}
            )

    async def PollTasks(
        self, request: pb.PollTasksRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.PollTasksResponse:
        self.polls.append(
            PollCall(
                request.task_queue,
                request.worker_identity,
                request.max_tasks,
                request.wait.ToTimedelta().total_seconds(),
                self.outstanding(),
            )
        )
        self._maybe_unavailable("PollTasks")
        self.active_polls += 1
        try:
            return await self._lease(request)
        finally:
            self.active_polls -= 1

    async def _lease(self, request: pb.PollTasksRequest) -> pb.PollTasksResponse:
        queue = self.queues[request.task_queue or "default"]
        try:
            first = await asyncio.wait_for(queue.get(), request.wait.ToTimedelta().total_seconds())
        except TimeoutError:
            return pb.PollTasksResponse()
        tasks = [first]
        while len(tasks) < max(request.max_tasks, 1) and not queue.empty():
            tasks.append(queue.get_nowait())
        for task in tasks:
            self.leased[task.task_id] = task
        self.most_outstanding = max(self.most_outstanding, self.outstanding())
        return pb.PollTasksResponse(tasks=tasks)

    async def HeartbeatTask(
        self, request: pb.HeartbeatTaskRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.HeartbeatTaskResponse:
        self.heartbeats.append(request)
        self._maybe_unavailable("HeartbeatTask")
        self._check_lease(request.task_id)
        response = pb.HeartbeatTaskResponse(cancel_requested=request.task_id in self.cancel)
        response.lease_expire_time.FromDatetime(datetime.now(UTC) + timedelta(seconds=30))
        return response

    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.CompleteTaskResponse:
        self.reports.append(request)
        self._maybe_unavailable("CompleteTask")
        self._check_lease(request.task_id)
        self.results.setdefault(request.task_id, request)
        return pb.CompleteTaskResponse()

    async def FailTask(
        self, request: pb.FailTaskRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.FailTaskResponse:
        self.reports.append(request)
        self._maybe_unavailable("FailTask")
        self._check_lease(request.task_id)
        self.results.setdefault(request.task_id, request)
        return pb.FailTaskResponse(will_retry=not request.non_retryable)

    async def ReportTasks(
        self, request: pb.ReportTasksRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.ReportTasksResponse:
        """Each report as its CompleteTask/FailTask, answered per report."""
        self.batches.append(request)
        self._maybe_unavailable("ReportTasks")
        if self.broken_batches > 0:
            self.broken_batches -= 1
            raise InternalError("the batch broke")
        response = pb.ReportTasksResponse()
        for report in request.reports:
            complete = report.WhichOneof("result") == "complete"
            item = response.results.add(
                task_id=report.complete.task_id if complete else report.fail.task_id
            )
            try:
                if complete:
                    await self.CompleteTask(report.complete, ctx)
                else:
                    item.fail.CopyFrom(await self.FailTask(report.fail, ctx))
            except MaestroError as error:
                item.code, item.reason, item.message = int(error.code), error.reason, error.message
                item.metadata.update(error.metadata)
        return response


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class HttpTarget:
    """An HTTP server on 127.0.0.1 in a thread. Paths:

    ``/json`` 200 with a JSON echo of the request, ``/text`` 200 text,
    ``/status/<code>`` that status, ``/slow`` answers after 2 s (or at
    teardown), ``/big`` 2 MiB of text.
    """

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.release = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                seen = SeenRequest(
                    self.command, url.path, parse_qs(url.query), dict(self.headers), body
                )
                target.requests.append(seen)
                if url.path == "/slow":
                    target.release.wait(2.0)
                    self._send(200, b"late", "text/plain")
                elif url.path == "/big":
                    self._send(200, b"x" * (2 * 1024 * 1024), "text/plain")
                elif url.path.startswith("/status/"):
                    self._send(int(url.path.rsplit("/", 1)[1]), b"boom", "text/plain")
                elif url.path == "/text":
                    self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
                else:
                    echo = {
                        "method": self.command,
                        "query": seen.query,
                        "body": body.decode(),
                        "content_type": self.headers.get("Content-Type", ""),
                    }
                    self._send(200, json.dumps(echo).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Trace", "abc")
                self.send_header("Set-Cookie", "session=secret")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @contextmanager
    def running(self) -> Iterator[HttpTarget]:
        self._thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self._server.shutdown()
            self._server.server_close()
