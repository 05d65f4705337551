"""Built-in handlers and handler results, run by the real worker."""

from __future__ import annotations

import time

import pytest

from maestro.scheduler.v1 import task_pb2
from maestro.services.executor.handlers import HandlerError
from tests.unit.executor.conftest import Executor, Scheduler
from tests.unit.executor.support import make_task, struct


async def test_echo_returns_its_input(scheduler: Scheduler, executor: Executor) -> None:
    task = make_task(
        "echo", input={"name": "ada", "n": 3, "tags": ["a", "b"], "nested": {"x": None}}
    )
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {
        "name": "ada",
        "n": 3,
        "tags": ["a", "b"],
        "nested": {"x": None},
    }


async def test_noop_returns_an_empty_object(scheduler: Scheduler, executor: Executor) -> None:
    task = make_task("noop", input={"ignored": True})
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {}


async def test_sleep_sleeps_input_seconds_over_config(
    scheduler: Scheduler, executor: Executor
) -> None:
    from_input = make_task("sleep", input={"seconds": 0.2}, config={"seconds": 9})
    from_config = make_task("sleep", config={"seconds": 0.05})
    started = time.monotonic()
    scheduler.queue.add(from_input, from_config)
    assert await scheduler.queue.completed(from_input.task_id) == {"slept": 0.2}
    assert time.monotonic() - started >= 0.2
    assert await scheduler.queue.completed(from_config.task_id) == {"slept": 0.05}


async def test_sleep_rejects_bad_seconds_non_retryably(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("sleep", input={"seconds": "soon"})
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("INVALID_CONFIG", True)


async def test_task_context_carries_the_attempt(scheduler: Scheduler, executor: Executor) -> None:
    task = make_task(
        "test.inspect",
        input={"count": 3},
        config={"mode": "fast"},
        kind=task_pb2.TASK_KIND_COMPENSATE,
        step_output=struct({"charge_id": "ch_1"}),
        attempt=2,
        delivery=3,
        labels={"classification": "internal"},
    )
    scheduler.queue.add(task)
    output = await scheduler.queue.completed(task.task_id)
    assert output == {
        "input": {"count": 3},
        "input_count_type": "int",  # integral Struct numbers arrive as int
        "config": {"mode": "fast"},
        "kind": "compensate",
        "step_output": {"charge_id": "ch_1"},
        "execution": "executions/e1",
        "step_id": "step-a",
        "attempt": 2,
        "delivery": 3,
        "tenant": "acme",
        "workflow": "workflows/orders",
        "version": "1.0.0",
        "labels": {"classification": "internal"},
        "idempotency_key": task.idempotency_key,
        "task_id": task.task_id,
        "remaining_ok": True,
    }


async def test_unknown_handler_fails_non_retryably(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("team.nobody/nothing")
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert failure.code == "UNKNOWN_HANDLER"
    assert failure.non_retryable
    assert "team.nobody/nothing" in failure.message
    await executor.finished("unknown", "failed")


async def test_handler_error_is_reported_with_its_code_and_details(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.declined")
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.message, failure.non_retryable) == (
        "CARD_DECLINED",
        "the card was declined",
        True,
    )
    assert dict(failure.details) == {"card": "visa"}


async def test_unexpected_exception_is_a_retryable_handler_error(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.crash")
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert failure.code == "HANDLER_ERROR"
    assert not failure.non_retryable
    assert failure.message.startswith("RuntimeError: kaboom")
    assert len(failure.message.encode()) <= 4096


async def test_output_over_4_mib_fails_as_output_too_large(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.huge")
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("OUTPUT_TOO_LARGE", True)
    assert scheduler.queue.calls("CompleteTask") == []


async def test_output_that_is_not_a_mapping_fails_as_invalid_output(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.not-a-mapping")
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("INVALID_OUTPUT", True)


async def test_handler_past_its_deadline_times_out_retryably(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("sleep", input={"seconds": 5}, deadline_seconds=0.3)
    started = time.monotonic()
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("TIMED_OUT", False)
    assert time.monotonic() - started < 2
    await executor.finished("sleep", "timed_out")


async def test_progress_goes_out_with_the_next_heartbeat(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("test.progress", heartbeat_seconds=0.05)
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {"ok": True}
    sent = [dict(h.progress) for h in scheduler.queue.heartbeats if h.HasField("progress")]
    assert sent[0] == {"done": 1, "of": 2}
    # Sent once: later heartbeats leave the timeline's progress unchanged.
    assert len(sent) == 1
    assert len(scheduler.queue.heartbeats) > 1


def test_handler_error_codes_are_upper_snake() -> None:
    with pytest.raises(ValueError, match="UPPER_SNAKE"):
        HandlerError("card-declined", "no")
    assert HandlerError("HTTP_502", "bad gateway").code == "HTTP_502"
