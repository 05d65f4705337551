"""The worker's lease protocol against a scripted scheduler: heartbeats,
cancellation, stale leases, the concurrency limit, outages and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from maestro.executor.v1 import executor_service_pb2 as admin_pb
from tests.unit.executor import sample_handlers
from tests.unit.executor.conftest import Executor, Scheduler, StartExecutor
from tests.unit.executor.support import eventually, make_task


async def in_flight(executor: Executor) -> list[str]:
    response = await executor.admin.get_worker_status(admin_pb.GetWorkerStatusRequest())
    return [t.task_id for t in response.status.in_flight_tasks]


async def test_cancel_requested_on_heartbeat_stops_the_handler_and_fails_cancelled(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.wait-for-cancel", heartbeat_seconds=0.05)
    scheduler.queue.add(task)
    await eventually(lambda: task.task_id in scheduler.queue.leased)
    scheduler.queue.cancel.add(task.task_id)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("CANCELLED", True)
    # The handler saw ctx.cancelled set before its coroutine was cancelled.
    assert sample_handlers.CANCELLED_EVENTS == [True]
    await executor.finished("test.wait-for-cancel", "cancelled")


async def test_stale_lease_on_heartbeat_stops_the_handler_and_reports_nothing(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("sleep", input={"seconds": 30}, heartbeat_seconds=0.05)
    scheduler.queue.add(task)
    await eventually(lambda: task.task_id in scheduler.queue.leased)
    scheduler.queue.stale.add(task.task_id)
    await eventually(lambda: executor.metric("maestro_executor_in_flight_tasks") == 0)
    await asyncio.sleep(0.2)
    assert scheduler.queue.reports == []
    heartbeats = len(scheduler.queue.heartbeats)
    await asyncio.sleep(0.2)
    assert len(scheduler.queue.heartbeats) == heartbeats  # heartbeats stopped too
    status = await executor.admin.get_worker_status(admin_pb.GetWorkerStatusRequest())
    assert status.status.lease_lost_total == 1
    assert list(status.status.in_flight_tasks) == []
    await executor.finished("sleep", "lease_lost")


async def test_stale_lease_on_complete_drops_the_result(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("echo", input={"a": 1})
    scheduler.queue.stale.add(task.task_id)
    scheduler.queue.add(task)
    await eventually(lambda: scheduler.queue.calls("CompleteTask"))
    await executor.finished("echo", "lease_lost")
    assert len(scheduler.queue.reports) == 1  # not retried, and no FailTask either


async def test_results_are_retried_while_the_scheduler_is_unavailable(
    scheduler: Scheduler, executor: Executor
) -> None:
    scheduler.queue.unavailable["CompleteTask"] = 6
    task = make_task("echo", input={"n": 1})
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {"n": 1}
    # Every refused call reached the scheduler, then one was accepted.
    assert len(scheduler.queue.calls("CompleteTask")) == 7
    assert all(r.lease_id == task.lease_id for r in scheduler.queue.calls("CompleteTask"))


async def test_a_result_is_given_up_after_report_retry_seconds(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    executor = await start_executor(report_retry_seconds=0.3)
    scheduler.queue.unavailable["FailTask"] = 10_000
    task = make_task("nope")
    scheduler.queue.add(task)
    await executor.finished("unknown", "unreported")
    assert task.task_id not in scheduler.queue.results


async def test_polling_survives_a_scheduler_outage(
    scheduler: Scheduler, start_executor: StartExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler.queue.unavailable["PollTasks"] = 2
    executor = await start_executor()
    task = make_task("noop")
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {}
    assert executor.metric("maestro_executor_polls_total", outcome="error") == 2
    outage_logs = [r for r in caplog.records if r.getMessage().startswith("cannot poll")]
    assert len(outage_logs) == 1  # once per outage, not per failed poll


async def test_concurrency_is_shared_by_queues_and_never_exceeded(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    await start_executor(concurrency=2, task_queues=("default", "payments"))
    tasks = [
        make_task("sleep", input={"seconds": 0.15}, task_queue=queue)
        for queue in ("default", "payments") * 3
    ]
    scheduler.queue.add(*tasks)
    for task in tasks:
        assert await scheduler.queue.completed(task.task_id) == {"slept": 0.15}
    polls = scheduler.queue.polls
    assert {p.task_queue for p in polls} == {"default", "payments"}
    for poll in polls:
        assert 1 <= poll.max_tasks <= 2 - poll.outstanding, poll
    assert scheduler.queue.most_outstanding == 2


async def test_polls_ask_for_free_slots_with_a_long_poll(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    await start_executor(concurrency=3, poll_wait_seconds=0.5)
    await eventually(lambda: scheduler.queue.polls)
    first = scheduler.queue.polls[0]
    assert (first.task_queue, first.max_tasks, first.wait_seconds) == ("default", 3, 0.5)
    assert first.worker_identity.startswith("executor-")
    assert first.worker_identity.endswith(f"/pid-{os.getpid()}")
    task = make_task("sleep", input={"seconds": 0.5})
    scheduler.queue.add(task)
    await eventually(lambda: any(p.max_tasks == 2 for p in scheduler.queue.polls))


async def test_identity_setting_overrides_the_default(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    executor = await start_executor(identity="worker-7")
    await eventually(lambda: scheduler.queue.polls)
    assert scheduler.queue.polls[0].worker_identity == "worker-7"
    status = await executor.admin.get_worker_status(admin_pb.GetWorkerStatusRequest())
    assert status.status.identity == "worker-7"


async def test_stop_gives_in_flight_tasks_grace_then_cancels_them(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    executor = await start_executor(stop_grace_seconds=0.2)
    short = make_task("sleep", input={"seconds": 0.1})
    long = make_task("sleep", input={"seconds": 30})
    scheduler.queue.add(short, long)
    await eventually(lambda: len(scheduler.queue.leased) == 2)
    started = time.monotonic()
    await executor.server.stop(0)
    assert time.monotonic() - started < 2
    assert await scheduler.queue.completed(short.task_id) == {"slept": 0.1}
    assert long.task_id not in scheduler.queue.results  # left to expire and be redelivered
    polls = len(scheduler.queue.polls)
    await asyncio.sleep(0.2)
    assert len(scheduler.queue.polls) == polls


async def test_metrics_count_tasks_polls_and_durations(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("echo")
    scheduler.queue.add(task)
    await scheduler.queue.completed(task.task_id)
    await executor.finished("echo", "succeeded")
    assert executor.metric("maestro_executor_task_duration_seconds_count", handler="echo") == 1
    assert executor.metric("maestro_executor_polls_total", outcome="tasks") >= 1
    assert executor.metric("maestro_executor_in_flight_tasks") == 0
    status = await executor.admin.get_worker_status(admin_pb.GetWorkerStatusRequest())
    assert (status.status.completed_total, status.status.failed_total) == (1, 0)


async def test_handler_span_joins_the_execution_trace(
    scheduler: Scheduler, start_executor: StartExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await start_executor(tracer_provider=provider)
    caplog.set_level(logging.INFO, logger="maestro.executor.worker")
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    task = make_task("echo", traceparent=f"00-{trace_id}-{parent_id}-01")
    scheduler.queue.add(task)
    await scheduler.queue.completed(task.task_id)
    await eventually(lambda: any(s.name == "handler echo" for s in exporter.get_finished_spans()))
    span = next(s for s in exporter.get_finished_spans() if s.name == "handler echo")
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == parent_id
    assert span.attributes is not None
    assert span.attributes["maestro.step_id"] == "step-a"
    # The task's log record names the attempt.
    finished = f"task {task.task_id} succeeded"
    await eventually(lambda: any(r.getMessage() == finished for r in caplog.records))
    (record,) = [r for r in caplog.records if r.getMessage() == finished]
    fields = ("execution", "step_id", "attempt", "task_id")
    assert [getattr(record, f) for f in fields] == ["executions/e1", "step-a", 1, task.task_id]


async def test_results_ready_together_share_one_report_tasks_call(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    await start_executor(concurrency=8, report_batch_window_seconds=0.05)
    tasks = [make_task("echo", input={"n": i}) for i in range(6)]
    scheduler.queue.stale.add(tasks[5].task_id)
    scheduler.queue.add(*tasks)
    for i, task in enumerate(tasks[:5]):
        assert await scheduler.queue.completed(task.task_id) == {"n": i}
    await eventually(lambda: len(scheduler.queue.reports) == 6)
    assert sum(len(b.reports) for b in scheduler.queue.batches) == 6
    assert len(scheduler.queue.batches) < 6  # batched, not one call each
    await asyncio.sleep(0.2)
    assert len(scheduler.queue.reports) == 6  # the stale one is dropped, not retried


async def test_a_failed_report_tasks_call_falls_back_to_one_call_per_result(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    await start_executor(concurrency=8, report_batch_window_seconds=0.05)
    scheduler.queue.broken_batches = 100
    tasks = [make_task("echo", input={"n": i}) for i in range(3)]
    scheduler.queue.add(*tasks)
    for i, task in enumerate(tasks):
        assert await scheduler.queue.completed(task.task_id) == {"n": i}
    assert scheduler.queue.batches  # tried first, failed whole
    assert len(scheduler.queue.calls("CompleteTask")) == 3  # then one call each


async def test_report_batch_max_one_reports_each_result_alone(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    await start_executor(concurrency=8, report_batch_max=1)
    tasks = [make_task("echo", input={"n": i}) for i in range(3)]
    scheduler.queue.add(*tasks)
    for task in tasks:
        await scheduler.queue.completed(task.task_id)
    assert scheduler.queue.batches == []
