"""The scheduler's domain metrics (in the server's Prometheus registry).

Names follow Prometheus conventions and are what the dashboards and alert rules
under ``deploy/observability`` query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from maestro.scheduler.v1 import execution_pb2
from maestro.services.scheduler.store import AttemptRow, EventRow, ExecutionRow

_TERMINAL: dict[int, str] = {
    execution_pb2.EVENT_TYPE_EXECUTION_SUCCEEDED: "succeeded",
    execution_pb2.EVENT_TYPE_EXECUTION_FAILED: "failed",
    execution_pb2.EVENT_TYPE_EXECUTION_CANCELLED: "cancelled",
    execution_pb2.EVENT_TYPE_EXECUTION_TIMED_OUT: "timed_out",
}
_STEP: dict[int, str] = {
    execution_pb2.EVENT_TYPE_STEP_SUCCEEDED: "succeeded",
    execution_pb2.EVENT_TYPE_STEP_FAILED: "failed",
    execution_pb2.EVENT_TYPE_STEP_TIMED_OUT: "timed_out",
    execution_pb2.EVENT_TYPE_STEP_RETRYING: "retrying",
    execution_pb2.EVENT_TYPE_STEP_CANCELLED: "cancelled",
}
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class SchedulerMetrics:
    """Counters and histograms of executions, steps and task queues."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.executions_started = Counter(
            "maestro_executions_started_total",
            "Executions started.",
            ["workflow"],
            registry=registry,
        )
        self.executions_finished = Counter(
            "maestro_executions_finished_total",
            "Executions that reached a terminal state, by state.",
            ["workflow", "state"],
            registry=registry,
        )
        self.execution_duration = Histogram(
            "maestro_execution_duration_seconds",
            "Start to terminal state of executions.",
            ["workflow", "state"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )
        self.step_events = Counter(
            "maestro_step_transitions_total",
            "Step outcomes journaled, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.dispatch_latency = Histogram(
            "maestro_task_dispatch_latency_seconds",
            "From an attempt becoming leasable to a worker leasing it.",
            ["task_queue"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.polls = Counter(
            "maestro_task_polls_total",
            "PollTasks calls, by whether they leased anything.",
            ["task_queue", "result"],
            registry=registry,
        )
        self.leased = Counter(
            "maestro_tasks_leased_total", "Task leases granted.", ["task_queue"], registry=registry
        )
        self.lease_expirations = Counter(
            "maestro_task_lease_expirations_total",
            "Leases that expired without a result (worker lost) and were taken over.",
            ["task_queue"],
            registry=registry,
        )
        self.attempts_finished = Counter(
            "maestro_step_attempts_finished_total",
            "Step attempts finished, by outcome.",
            ["task_queue", "outcome"],
            registry=registry,
        )

        self.queue_depth = Gauge(
            "maestro_task_queue_depth",
            "Tasks leasable now and not leased, per task queue (executors scale on it).",
            ["queue"],
            registry=registry,
        )

    def started(self, workflow: str) -> None:
        self.executions_started.labels(workflow).inc()

    def observe_events(self, execution: ExecutionRow, events: Sequence[EventRow]) -> None:
        for event in events:
            outcome = _STEP.get(event.type)
            if outcome is not None:
                self.step_events.labels(outcome).inc()
            state = _TERMINAL.get(event.type)
            if state is not None:
                self.executions_finished.labels(execution.workflow_id, state).inc()
                if execution.start_time is not None:
                    seconds = (event.time - execution.start_time).total_seconds()
                    self.execution_duration.labels(execution.workflow_id, state).observe(seconds)

    def polled(self, task_queue: str, leased: int) -> None:
        self.polls.labels(task_queue, "leased" if leased else "empty").inc()
        if leased:
            self.leased.labels(task_queue).inc(leased)

    def dispatched(self, task_queue: str, attempt: AttemptRow, at: datetime) -> None:
        if attempt.deliveries == 1:
            waited = max(0.0, (at - attempt.visible_time).total_seconds())
            self.dispatch_latency.labels(task_queue).observe(waited)

    def lease_expired(self, task_queue: str) -> None:
        self.lease_expirations.labels(task_queue).inc()

    def attempt_finished(self, attempt: AttemptRow, outcome: str) -> None:
        self.attempts_finished.labels(attempt.task_queue, outcome).inc()
