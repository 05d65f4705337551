"""The worker: leases step tasks from the scheduler's task queues and runs them.

One poll loop per task queue long-polls ``PollTasks`` for as many tasks as
there are free slots (``concurrency`` is shared by all queues, so at most that
many attempts run at once). Each leased task runs as its own asyncio task:

- the handler runs bounded by the task's ``deadline`` (past it: ``TIMED_OUT``);
- a heartbeat every ``heartbeat_interval`` renews the lease and carries the
  latest progress; ``cancel_requested`` cancels the handler and reports
  ``CANCELLED``; ``LEASE_STALE`` stops the handler and drops the task
  unreported (the scheduler has given the attempt to someone else);
- the result is reported with CompleteTask/FailTask, idempotent on
  ``(task_id, lease_id)``, retried with capped backoff while the scheduler is
  unavailable for up to ``report_retry_seconds``.

Draining stops polling and lets in-flight attempts finish (a PollTasks call
already waiting at the scheduler is allowed to return, and what it leased runs:
abandoning it could leave tasks leased to nobody). Stopping abandons polls at
once and cancels attempts that have not finished within the grace period
(their leases expire and the scheduler delivers them again). Delivery is at
least once: every path that loses a result relies on that.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from maestro.runtime import context
from maestro.runtime.clients import TaskQueueClient, report_error
from maestro.runtime.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MaestroError,
    ResourceExhaustedError,
    UnavailableError,
    UnimplementedError,
)
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from maestro.scheduler.v1 import task_pb2
from maestro.services.executor.config import ExecutorSettings
from maestro.services.executor.handlers.api import (
    HandlerError,
    HandlerSpec,
    SecretResolver,
    TaskContext,
    TaskKind,
)
from maestro.services.executor.handlers.registry import HandlerRegistry

MAX_POLL_TASKS = 100
"""PollTasks leases at most this many tasks per call."""
POLL_DEADLINE_MARGIN_SECONDS = 5.0
"""The PollTasks gRPC deadline is the long-poll wait plus this."""
POLL_BACKOFF_SECONDS = (0.2, 2.0)
"""First and largest pause between polls while the scheduler is unreachable."""
REPORT_BACKOFF_SECONDS = (0.1, 5.0)
"""First and largest pause between CompleteTask/FailTask retries."""
DEFAULT_HEARTBEAT_SECONDS = 5.0
"""Heartbeat interval when a task names none and its lease says nothing."""
CANCEL_WAIT_SECONDS = 1.0
"""How long a cancelled handler may take to unwind before it is left behind."""
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_MESSAGE_BYTES = 4 * 1024
MAX_DETAILS_BYTES = 64 * 1024
LEASE_STALE = "LEASE_STALE"
UNKNOWN_HANDLER_LABEL = "unknown"
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
_TRANSIENT = (UnavailableError, DeadlineExceededError, ResourceExhaustedError)

log = logging.getLogger("maestro.executor.worker")


class Outcome(enum.StrEnum):
    """How an attempt ended on this worker (the ``outcome`` metric label)."""

    SUCCEEDED = "succeeded"
    """CompleteTask was accepted."""
    FAILED = "failed"
    """FailTask was accepted (handler error, unknown handler, bad output)."""
    CANCELLED = "cancelled"
    """The scheduler asked for cancellation; FailTask CANCELLED was accepted."""
    TIMED_OUT = "timed_out"
    """The handler ran past the deadline; FailTask TIMED_OUT was accepted."""
    LEASE_LOST = "lease_lost"
    """The scheduler answered LEASE_STALE: the task was dropped unreported."""
    UNREPORTED = "unreported"
    """No result reached the scheduler (it stayed unavailable for
    ``report_retry_seconds``, refused the report, or the worker stopped first);
    the lease expires and the task is delivered again."""


def default_identity() -> str:
    """``executor-<hostname>/pid-<pid>``."""
    return f"executor-{socket.gethostname()}/pid-{os.getpid()}"[:256]


def executor_version() -> str:
    """The installed version of the ``maestro-executor`` distribution."""
    try:
        return metadata.version("maestro-executor")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


@dataclass(frozen=True, slots=True)
class InFlightTask:
    """An attempt this worker runs now."""

    task_id: str
    execution: str
    step_id: str
    attempt: int
    handler: str
    task_queue: str
    start_time: datetime
    lease_expire_time: datetime | None
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A snapshot of the worker (GetWorkerStatus)."""

    identity: str
    version: str
    task_queues: tuple[str, ...]
    concurrency: int
    in_flight: tuple[InFlightTask, ...]
    completed_total: int
    failed_total: int
    lease_lost_total: int
    draining: bool
    start_time: datetime
    drain_time: datetime | None


class WorkerMetrics:
    """The worker's domain metrics, in the server's registry."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.tasks = Counter(
            "maestro_executor_tasks_total",
            "Step attempts finished by this worker, by handler and outcome.",
            ("handler", "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "maestro_executor_task_duration_seconds",
            "Time from lease to reported result of an attempt, in seconds.",
            ("handler",),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "maestro_executor_in_flight_tasks",
            "Attempts running on this worker now.",
            registry=registry,
        )
        self.polls = Counter(
            "maestro_executor_polls_total",
            "PollTasks calls, by outcome (tasks, empty, error).",
            ("outcome",),
            registry=registry,
        )


class Slots:
    """The concurrency limit: slots are taken before polling and freed when an
    attempt ends. Waiters are served first come, first served."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        return self.total - self.used

    async def acquire(self, most: int) -> int:
        """Waits for a free slot, then takes up to ``most``; returns how many."""
        if self.free > 0 and not self._waiters:
            taken = min(self.free, most)
            self.used += taken
            return taken
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() handed one slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(1)
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        extra = 0 if self._waiters else min(self.free, most - 1)
        self.used += extra
        return 1 + extra

    def release(self, count: int) -> None:
        """Frees ``count`` slots, handing them to waiters first."""
        self.used -= count
        while self._waiters and self.free > 0:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.used += 1
                waiter.set_result(None)


@dataclass(frozen=True, slots=True)
class _Failure:
    code: str
    message: str
    outcome: Outcome = Outcome.FAILED
    non_retryable: bool = False
    details: Mapping[str, Any] | None = None


class _Report(enum.Enum):
    ACCEPTED = "accepted"
    LEASE_LOST = "lease_lost"
    REFUSED = "refused"
    GAVE_UP = "gave_up"


@dataclass(eq=False)
class _Run:
    """Mutable state of one leased attempt."""

    task: task_pb2.StepTask
    spec: HandlerSpec | None
    start_time: datetime
    lease_expire_time: datetime | None
    cancel_requested: bool = False
    lease_lost: bool = False
    progress: dict[str, Any] | None = None
    ctx: TaskContext | None = None
    handler_task: asyncio.Task[Any] | None = None
    refusal: MaestroError | None = field(default=None, repr=False)

    @property
    def handler_label(self) -> str:
        return self.spec.name if self.spec is not None else UNKNOWN_HANDLER_LABEL

    def extra(self, **more: object) -> dict[str, object]:
        """Log fields naming the attempt (never its input, config or output)."""
        return {
            "execution": self.task.execution,
            "step_id": self.task.step_id,
            "attempt": self.task.attempt,
            "delivery": self.task.delivery,
            "task_id": self.task.task_id,
            "task_queue": self.task.task_queue,
            "handler": self.task.handler,
            **more,
        }

    def set_progress(self, progress: Mapping[str, Any]) -> None:
        self.progress = dict(progress)

    def stop_handler_soon(self) -> None:
        if self.handler_task is not None and not self.handler_task.done():
            self.handler_task.cancel()

    def snapshot(self) -> InFlightTask:
        return InFlightTask(
            task_id=self.task.task_id,
            execution=self.task.execution,
            step_id=self.task.step_id,
            attempt=self.task.attempt,
            handler=self.task.handler,
            task_queue=self.task.task_queue,
            start_time=self.start_time,
            lease_expire_time=self.lease_expire_time,
            cancel_requested=self.cancel_requested,
        )


def _datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _seconds(duration: duration_pb2.Duration) -> float:
    return float(duration.ToTimedelta().total_seconds())


def _plain(value: Any) -> Any:
    """JSON from a Struct with integral numbers as ``int`` (Struct keeps doubles)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values."""
    return dict(_plain(json_format.MessageToDict(struct)))


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."


def _details(details: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    """Failure details as a Struct, replaced by a note when unusable."""
    if not details:
        return None
    try:
        encoded = json.dumps(dict(details), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return _struct({"note": "details were not JSON-serializable and were dropped"})
    if len(encoded.encode()) > MAX_DETAILS_BYTES:
        return _struct({"note": f"details were over {MAX_DETAILS_BYTES} bytes and were dropped"})
    return _struct(json.loads(encoded))


def _output(value: object) -> struct_pb2.Struct | _Failure:
    """The handler's return value as a Struct, or the failure to report."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        return _Failure(
            "INVALID_OUTPUT",
            f"handler returned {type(value).__name__}, not a mapping",
            non_retryable=True,
        )
    try:
        encoded = json.dumps(dict(value), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        return _Failure(
            "INVALID_OUTPUT", _cut(f"handler output is not JSON: {exc}", 1024), non_retryable=True
        )
    size = len(encoded.encode())
    if size > MAX_OUTPUT_BYTES:
        return _Failure(
            "OUTPUT_TOO_LARGE",
            f"handler output is {size} bytes as JSON; the limit is {MAX_OUTPUT_BYTES}",
            non_retryable=True,
            details={"bytes": size, "limit": MAX_OUTPUT_BYTES},
        )
    return _struct(json.loads(encoded))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Marks a handler task's exception as seen (it is reported, not lost)."""
    if not task.cancelled():
        task.exception()


class Reporter:
    """Sends results to the scheduler, batched: a result waits up to
    ``window`` seconds (or until ``max_items`` wait) for others, then all go in
    one ReportTasks call, which the scheduler commits as one transaction.

    Each result is answered on its own, raising exactly what CompleteTask or
    FailTask would raise. When the batch call itself fails (the scheduler is
    unreachable, or too old to know ReportTasks), every result of the batch
    falls back to its own CompleteTask/FailTask call.
    """

    def __init__(self, client: TaskQueueClient, *, max_items: int, window: float) -> None:
        self._client = client
        self._max = max_items
        self._window = window
        self._batching = max_items > 1
        self._pending: list[tuple[pb.TaskReport, asyncio.Future[pb.FailTaskResponse]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def complete(self, request: pb.CompleteTaskRequest) -> None:
        """CompleteTask, possibly batched."""
        if not self._batching:
            await self._client.complete_task(request)
            return
        await self._enqueue(pb.TaskReport(complete=request))

    async def fail(self, request: pb.FailTaskRequest) -> pb.FailTaskResponse:
        """FailTask, possibly batched."""
        if not self._batching:
            return await self._client.fail_task(request)
        return await self._enqueue(pb.TaskReport(fail=request))

    def close(self) -> None:
        """Cancels what has not been sent (those results are then unreported)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, future in self._pending:
            future.cancel()
        self._pending = []
        for task in self._sending:
            task.cancel()

    async def _enqueue(self, report: pb.TaskReport) -> pb.FailTaskResponse:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[pb.FailTaskResponse] = loop.create_future()
        self._pending.append((report, future))
        if len(self._pending) >= self._max:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._send(batch), name="report tasks")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[pb.TaskReport, asyncio.Future[pb.FailTaskResponse]]]
    ) -> None:
        if len(batch) > 1 and self._batching:
            try:
                response = await self._client.report_tasks(
                    pb.ReportTasksRequest(reports=[report for report, _ in batch])
                )
            except UnimplementedError:
                log.info("the scheduler has no ReportTasks; reporting results one by one")
                self._batching = False
            except MaestroError as exc:
                log.debug("ReportTasks failed (%s); reporting its results one by one", exc)
            else:
                if len(response.results) == len(batch):
                    for (_, future), result in zip(batch, response.results, strict=True):
                        if future.done():
                            continue
                        error = report_error(result)
                        if error is None:
                            future.set_result(result.fail)
                        else:
                            future.set_exception(error)
                    return
                log.warning(
                    "ReportTasks answered %d results for %d reports",
                    len(response.results),
                    len(batch),
                )
        await asyncio.gather(*(self._single(report, future) for report, future in batch))

    async def _single(
        self, report: pb.TaskReport, future: asyncio.Future[pb.FailTaskResponse]
    ) -> None:
        try:
            if report.WhichOneof("result") == "complete":
                await self._client.complete_task(report.complete)
                response = pb.FailTaskResponse()
            else:
                response = await self._client.fail_task(report.fail)
        except Exception as exc:  # the caller's retry loop decides
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(response)


class Worker:
    """Polls ``settings.task_queues`` and runs the leased tasks' handlers."""

    def __init__(
        self,
        client: TaskQueueClient,
        handlers: HandlerRegistry,
        settings: ExecutorSettings,
        *,
        secrets: SecretResolver | None = None,
        registry: CollectorRegistry | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.handlers = handlers
        self.identity = settings.identity or default_identity()
        self.version = executor_version()
        self.task_queues = tuple(dict.fromkeys(settings.task_queues))
        self.concurrency = settings.concurrency
        self._client = client
        self._settings = settings
        self._secrets = secrets
        self._metrics = WorkerMetrics(registry)
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("maestro.services.executor")
        self._slots = Slots(settings.concurrency)
        self._reporter = Reporter(
            client,
            max_items=settings.report_batch_max,
            window=settings.report_batch_window_seconds,
        )
        self._share = min(MAX_POLL_TASKS, math.ceil(settings.concurrency / len(self.task_queues)))
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._polling: set[str] = set()
        """Queues whose poll loop is inside a PollTasks call right now."""
        self._closing = False
        """Set by drain and stop: no PollTasks call starts any more."""
        self._runners: set[asyncio.Task[None]] = set()
        self._left_behind: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[tuple[str, str], _Run] = {}
        self._completed = self._failed = self._lease_lost = 0
        self._start_time = datetime.now(UTC)
        self._drain_time: datetime | None = None
        self._stopped = False

    # Lifecycle ---------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._drain_time is not None

    def start(self) -> None:
        """Starts one poll loop per task queue."""
        if self._pollers or self._closing:
            return
        log.info(
            "worker %s polling %s",
            self.identity,
            ", ".join(self.task_queues),
            extra={"task_queues": list(self.task_queues), "concurrency": self.concurrency},
        )
        self._pollers = {
            queue: asyncio.create_task(self._poll_loop(queue), name=f"poll {queue}")
            for queue in self.task_queues
        }

    async def drain(self, reason: str = "") -> WorkerStatus:
        """Stops leasing new tasks; in-flight attempts go on and report. Idempotent.

        A PollTasks call already waiting at the scheduler is not abandoned: the
        tasks it may still lease (within ``poll_wait_seconds``) run like the
        others, rather than sit leased to nobody until their leases expire.
        """
        if not self.draining:
            self._drain_time = datetime.now(UTC)
            log.info(
                "worker %s draining",
                self.identity,
                extra={"reason": reason, "in_flight": len(self._in_flight)},
            )
            self._halt_polling()
        return self.status()

    async def stop(self, grace: float | None = None) -> None:
        """Stops polling, gives in-flight attempts ``grace`` seconds (default
        ``stop_grace_seconds``), then cancels the rest unreported.

        Unlike draining, a PollTasks call in flight is abandoned: shutdown does
        not wait out a long poll, and whatever it might still lease is
        delivered again when the lease expires.
        """
        if self._stopped:
            return
        self._stopped = True
        grace = self._settings.stop_grace_seconds if grace is None else grace
        self._halt_polling()
        pollers = list(self._pollers.values())
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        pending: set[asyncio.Task[None]] = set()
        if self._runners:
            _, pending = await asyncio.wait(set(self._runners), timeout=grace)
        if pending:
            log.warning(
                "cancelling %d unfinished tasks; their leases will expire",
                len(pending),
                extra={"grace_seconds": grace},
            )
            for runner in pending:
                runner.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for handler_task in self._left_behind:
            handler_task.cancel()
        self._reporter.close()

    def _halt_polling(self) -> None:
        """No new PollTasks call starts; idle poll loops end now, busy ones after
        their call (cancelling it could lose the tasks it leases)."""
        self._closing = True
        for queue, poller in self._pollers.items():
            if queue not in self._polling:
                poller.cancel()

    def status(self) -> WorkerStatus:
        """A snapshot for GetWorkerStatus."""
        return WorkerStatus(
            identity=self.identity,
            version=self.version,
            task_queues=self.task_queues,
            concurrency=self.concurrency,
            in_flight=tuple(
                sorted(
                    (run.snapshot() for run in self._in_flight.values()),
                    key=lambda t: (t.start_time, t.task_id),
                )
            ),
            completed_total=self._completed,
            failed_total=self._failed,
            lease_lost_total=self._lease_lost,
            draining=self.draining,
            start_time=self._start_time,
            drain_time=self._drain_time,
        )

    # Polling -----------------------------------------------------------------

    async def _poll_loop(self, queue: str) -> None:
        backoff = POLL_BACKOFF_SECONDS[0]
        outage: str | None = None
        wait = self._settings.poll_wait_seconds
        while not self._closing:
            slots = await self._slots.acquire(self._share)
            if self._closing:
                self._slots.release(slots)
                return
            started = time.monotonic()
            tasks, error = await self._poll(queue, slots, wait)
            if error is not None:
                self._metrics.polls.labels(outcome="error").inc()
                if outage is None:
                    outage = type(error).__name__
                    log.warning(
                        "cannot poll task queue %s: %s; retrying",
                        queue,
                        error,
                        extra={"task_queue": queue, "scheduler": self._settings.scheduler_address},
                    )
                if not self._closing:
                    await asyncio.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_SECONDS[1])
                continue
            if outage is not None:
                log.info("polling task queue %s again", queue, extra={"task_queue": queue})
                outage = None
            backoff = POLL_BACKOFF_SECONDS[0]
            self._metrics.polls.labels(outcome="tasks" if tasks else "empty").inc()
            for task in tasks:
                self._spawn(task)
            if not tasks and not self._closing and time.monotonic() - started < wait / 10:
                # The scheduler answered at once without waiting: do not spin.
                await asyncio.sleep(POLL_BACKOFF_SECONDS[0])

    async def _poll(
        self, queue: str, slots: int, wait: float
    ) -> tuple[Sequence[task_pb2.StepTask], BaseException | None]:
        """One PollTasks call for ``slots`` tasks; frees the slots it does not fill."""
        tasks: Sequence[task_pb2.StepTask] = ()
        self._polling.add(queue)
        try:
            request = pb.PollTasksRequest(
                task_queue=queue, worker_identity=self.identity, max_tasks=slots
            )
            request.wait.FromNanoseconds(int(wait * 1e9))
            response = await self._client.poll_tasks(
                request, timeout=wait + POLL_DEADLINE_MARGIN_SECONDS
            )
            tasks = response.tasks[:slots]
            if len(response.tasks) > slots:
                log.error(
                    "PollTasks leased %d tasks for %d slots; the rest are left to expire",
                    len(response.tasks),
                    slots,
                    extra={"task_queue": queue},
                )
        except MaestroError as exc:
            return (), exc
        except Exception as exc:  # a bug here must not end polling
            log.exception("poll loop of %s failed", queue, extra={"task_queue": queue})
            return (), exc
        finally:
            self._polling.discard(queue)
            self._slots.release(slots - len(tasks))
        return tasks, None

    def _spawn(self, task: task_pb2.StepTask) -> None:
        """Runs a leased task (it holds one slot until it ends)."""
        runner = asyncio.create_task(self._run_task(task), name=f"task {task.task_id}")
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)

    # Running one attempt -----------------------------------------------------

    async def _run_task(self, task: task_pb2.StepTask) -> None:
        now = datetime.now(UTC)
        run = _Run(
            task=task,
            spec=self.handlers.get(task.handler),
            start_time=now,
            lease_expire_time=(
                _datetime(task.lease_expire_time) if task.HasField("lease_expire_time") else None
            ),
        )
        key = (task.task_id, task.lease_id)
        self._in_flight[key] = run
        self._metrics.in_flight.inc()
        started = time.monotonic()
        outcome = Outcome.UNREPORTED
        try:
            with context.bind_step(task.execution.removeprefix("executions/"), task.step_id):
                outcome = await self._traced(run)
        finally:
            self._in_flight.pop(key, None)
            self._metrics.in_flight.dec()
            self._slots.release(1)
            elapsed = time.monotonic() - started
            self._metrics.tasks.labels(handler=run.handler_label, outcome=outcome.value).inc()
            self._metrics.duration.labels(handler=run.handler_label).observe(elapsed)
            if outcome is Outcome.SUCCEEDED:
                self._completed += 1
            elif outcome is Outcome.LEASE_LOST:
                self._lease_lost += 1
            elif outcome is not Outcome.UNREPORTED:
                self._failed += 1
            log.log(
                logging.WARNING if outcome is Outcome.UNREPORTED else logging.INFO,
                "task %s %s",
                task.task_id,
                outcome.value,
                extra=run.extra(outcome=outcome.value, seconds=round(elapsed, 3)),
            )

    async def _traced(self, run: _Run) -> Outcome:
        task = run.task
        parent = otel_context.Context()
        if task.traceparent:
            carrier = {"traceparent": task.traceparent}
            if task.tracestate:
                carrier["tracestate"] = task.tracestate
            parent = TraceContextTextMapPropagator().extract(carrier, context=parent)
        with self._tracer.start_as_current_span(
            f"handler {task.handler}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "maestro.execution": task.execution,
                "maestro.step_id": task.step_id,
                "maestro.attempt": task.attempt,
                "maestro.delivery": task.delivery,
                "maestro.task_id": task.task_id,
                "maestro.task_queue": task.task_queue,
                "maestro.handler": task.handler,
            },
        ) as span:
            outcome = await self._execute(run)
            span.set_attribute("maestro.outcome", outcome.value)
            if outcome is not Outcome.SUCCEEDED:
                span.set_status(Status(StatusCode.ERROR, outcome.value))
            return outcome

    async def _execute(self, run: _Run) -> Outcome:
        task = run.task
        log.debug("task %s leased", task.task_id, extra=run.extra())
        if run.spec is None:
            return await self._report_failure(
                run,
                _Failure(
                    "UNKNOWN_HANDLER",
                    f"worker {self.identity} has no handler {task.handler!r}",
                    non_retryable=True,
                ),
            )
        run.ctx = self._context(run)
        heartbeat = asyncio.create_task(self._heartbeat_loop(run), name=f"heartbeat {task.task_id}")
        try:
            result = await self._invoke(run, run.spec, run.ctx)
            if run.lease_lost:
                return Outcome.LEASE_LOST
            if isinstance(result, _Failure):
                return await self._report_failure(run, result)
            return await self._report_success(run, result)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    def _context(self, run: _Run) -> TaskContext:
        task = run.task
        deadline: datetime | None = None
        if task.HasField("deadline"):
            deadline = _datetime(task.deadline)
        elif task.HasField("timeout"):
            deadline = run.start_time + task.timeout.ToTimedelta()
        return TaskContext(
            input=struct_to_dict(task.input),
            config=struct_to_dict(task.config),
            idempotency_key=task.idempotency_key,
            execution=task.execution,
            step_id=task.step_id,
            attempt=task.attempt,
            delivery=task.delivery,
            tenant=task.tenant,
            workflow=task.workflow,
            version=task.version,
            deadline=deadline,
            labels=dict(task.labels),
            kind=(
                TaskKind.COMPENSATE if task.kind == task_pb2.TASK_KIND_COMPENSATE else TaskKind.RUN
            ),
            step_output=struct_to_dict(task.step_output),
            handler=task.handler,
            task_id=task.task_id,
            task_queue=task.task_queue,
            secrets=self._secrets,
            progress_sink=run.set_progress,
        )

    async def _invoke(
        self, run: _Run, spec: HandlerSpec, ctx: TaskContext
    ) -> struct_pb2.Struct | _Failure:
        """Runs the handler to its result, bounded by the deadline."""
        remaining = ctx.remaining_seconds()
        timed_out = _Failure(
            "TIMED_OUT",
            f"handler {spec.name} did not finish before the attempt's deadline",
            outcome=Outcome.TIMED_OUT,
        )
        if remaining is not None and remaining <= 0:
            return timed_out

        async def call() -> object:
            return await spec.fn(ctx)

        handler_task = asyncio.create_task(call(), name=f"handler {spec.name} {run.task.task_id}")
        handler_task.add_done_callback(_retrieve)
        run.handler_task = handler_task
        try:
            done, _ = await asyncio.wait({handler_task}, timeout=remaining)
        except asyncio.CancelledError:
            await self._stop_handler(run)
            raise
        if not done:
            await self._stop_handler(run)
            if not run.cancel_requested:
                return timed_out
        return self._result(run, spec, handler_task)

    @staticmethod
    def _result(
        run: _Run, spec: HandlerSpec, handler_task: asyncio.Task[Any]
    ) -> struct_pb2.Struct | _Failure:
        """What a finished (or stopped) handler task amounts to."""
        if run.cancel_requested:
            return _Failure(
                "CANCELLED",
                "the execution is being cancelled",
                outcome=Outcome.CANCELLED,
                non_retryable=True,
            )
        if handler_task.cancelled():
            return _Failure("HANDLER_ERROR", "the handler was cancelled")
        error = handler_task.exception()
        if isinstance(error, HandlerError):
            return _Failure(
                error.code,
                _cut(error.message, MAX_MESSAGE_BYTES),
                non_retryable=error.non_retryable,
                details=error.details,
            )
        if error is not None:
            log.error(
                "handler %s raised %s",
                spec.name,
                type(error).__name__,
                exc_info=error,
                extra=run.extra(),
            )
            return _Failure(
                "HANDLER_ERROR", _cut(f"{type(error).__name__}: {error}", MAX_MESSAGE_BYTES)
            )
        return _output(handler_task.result())

    async def _stop_handler(self, run: _Run) -> None:
        """Cancels the handler and waits a little for it to unwind."""
        handler_task = run.handler_task
        if handler_task is None or handler_task.done():
            return
        handler_task.cancel()
        await asyncio.wait({handler_task}, timeout=CANCEL_WAIT_SECONDS)
        if not handler_task.done():
            log.error(
                "handler %s ignores cancellation; leaving it behind",
                run.task.handler,
                extra=run.extra(),
            )
            self._left_behind.add(handler_task)
            handler_task.add_done_callback(self._left_behind.discard)

    def _heartbeat_interval(self, run: _Run) -> float:
        interval = _seconds(run.task.heartbeat_interval)
        if interval > 0:
            return interval
        if run.lease_expire_time is not None:
            lease = (run.lease_expire_time - datetime.now(UTC)).total_seconds()
            return min(DEFAULT_HEARTBEAT_SECONDS, max(lease / 3, 0.1))
        return DEFAULT_HEARTBEAT_SECONDS

    async def _heartbeat_loop(self, run: _Run) -> None:
        """Renews the lease until cancelled; reacts to cancellation and stale leases."""
        interval = self._heartbeat_interval(run)
        timeout = min(self._settings.client_timeout_seconds, max(interval, 1.0))
        failing = False
        while True:
            await asyncio.sleep(interval)
            progress = run.progress
            request = pb.HeartbeatTaskRequest(task_id=run.task.task_id, lease_id=run.task.lease_id)
            if progress is not None:
                request.progress.update(progress)
            try:
                response = await self._client.heartbeat_task(request, timeout=timeout)
            except MaestroError as exc:
                if isinstance(exc, FailedPreconditionError) and exc.reason == LEASE_STALE:
                    self._lose_lease(run, "HeartbeatTask")
                    return
                if not failing:
                    log.warning(
                        "heartbeat of task %s failed: %s", run.task.task_id, exc, extra=run.extra()
                    )
                    failing = True
                continue
            except Exception:  # a bug here must not end the heartbeats
                log.exception("heartbeat of task %s failed", run.task.task_id, extra=run.extra())
                continue
            if failing:
                log.info("heartbeat of task %s recovered", run.task.task_id, extra=run.extra())
                failing = False
            if run.progress is progress:
                run.progress = None
            if response.HasField("lease_expire_time"):
                run.lease_expire_time = _datetime(response.lease_expire_time)
            if response.cancel_requested and not run.cancel_requested:
                self._cancel(run)

    def _cancel(self, run: _Run) -> None:
        if run.handler_task is None or run.handler_task.done():
            return  # finished already: its result is reported as it is
        log.info("task %s: cancellation requested", run.task.task_id, extra=run.extra())
        run.cancel_requested = True
        if run.ctx is not None:
            run.ctx.cancelled.set()
        run.stop_handler_soon()

    def _lose_lease(self, run: _Run, method: str) -> None:
        if not run.lease_lost:
            log.warning(
                "task %s: lease is stale (%s); dropping the task",
                run.task.task_id,
                method,
                extra=run.extra(),
            )
        run.lease_lost = True
        run.stop_handler_soon()

    # Reporting ---------------------------------------------------------------

    async def _report_success(self, run: _Run, output: struct_pb2.Struct) -> Outcome:
        request = pb.CompleteTaskRequest(
            task_id=run.task.task_id, lease_id=run.task.lease_id, output=output
        )
        report = await self._report(run, "CompleteTask", self._reporter.complete, request)
        if report is _Report.ACCEPTED:
            return Outcome.SUCCEEDED
        if report is _Report.REFUSED and isinstance(run.refusal, InvalidArgumentError):
            # The scheduler refused the output itself (size): fail the attempt instead.
            return await self._report_failure(
                run,
                _Failure(
                    "OUTPUT_TOO_LARGE",
                    _cut(f"the scheduler refused the output: {run.refusal.message}", 1024),
                    non_retryable=True,
                ),
            )
        return self._unreported(report)

    async def _report_failure(self, run: _Run, failure: _Failure) -> Outcome:
        request = pb.FailTaskRequest(
            task_id=run.task.task_id,
            lease_id=run.task.lease_id,
            code=failure.code,
            message=failure.message,
            details=_details(failure.details),
            non_retryable=failure.non_retryable,
        )
        log.info(
            "task %s failed with %s",
            run.task.task_id,
            failure.code,
            extra=run.extra(code=failure.code, non_retryable=failure.non_retryable),
        )
        report = await self._report(run, "FailTask", self._reporter.fail, request)
        if report is _Report.ACCEPTED:
            return failure.outcome
        return self._unreported(report)

    @staticmethod
    def _unreported(report: _Report) -> Outcome:
        return Outcome.LEASE_LOST if report is _Report.LEASE_LOST else Outcome.UNREPORTED

    async def _report(
        self,
        run: _Run,
        method: str,
        call: Callable[..., Awaitable[object]],
        request: Any,
    ) -> _Report:
        """Sends a result, retrying transient failures for ``report_retry_seconds``."""
        give_up = time.monotonic() + self._settings.report_retry_seconds
        delay = REPORT_BACKOFF_SECONDS[0]
        warned = False
        while not run.lease_lost:
            try:
                await call(request)
                return _Report.ACCEPTED
            except FailedPreconditionError as exc:
                if exc.reason != LEASE_STALE:
                    return self._refused(run, method, exc)
                self._lose_lease(run, method)
                return _Report.LEASE_LOST
            except _TRANSIENT as exc:
                if time.monotonic() + delay > give_up:
                    log.error(
                        "%s for task %s failed for %.0f s; giving up (the lease will expire)",
                        method,
                        run.task.task_id,
                        self._settings.report_retry_seconds,
                        extra=run.extra(error=str(exc)),
                    )
                    return _Report.GAVE_UP
                if not warned:
                    log.warning(
                        "%s for task %s failed: %s; retrying",
                        method,
                        run.task.task_id,
                        exc,
                        extra=run.extra(),
                    )
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, REPORT_BACKOFF_SECONDS[1])
            except MaestroError as exc:
                return self._refused(run, method, exc)
        return _Report.LEASE_LOST

    @staticmethod
    def _refused(run: _Run, method: str, error: MaestroError) -> _Report:
        log.error(
            "%s for task %s was refused: %r",
            method,
            run.task.task_id,
            error,
            extra=run.extra(),
        )
        run.refusal = error
        return _Report.REFUSED
