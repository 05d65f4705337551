"""ReportTasks on both backends: several results in one call, each answered
exactly as its own CompleteTask/FailTask would be (stale leases, validation,
idempotent repeats), applied in order in one group commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from maestro.runtime.clients import TaskQueueClient, open_channel, report_error
from maestro.runtime.errors import (
    Code,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
)
from maestro.scheduler.v1 import execution_pb2, task_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as spb
from tests.integration.execution.support import Backend, Mesh, execution_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
X = execution_pb2.ExecutionState
A = execution_pb2.AttemptState

FAN = """
name: batch-fan
inputSchema: {type: object, properties: {items: {type: array, items: {type: integer}}}}
steps:
  - id: fan
    type: loop
    loop: {items: inputs.items, parallelism: 10, body: {type: task, handler: noop, timeout: 60s}}
"""
ONE = """
name: batch-one
steps:
  - {id: only, type: task, handler: noop, timeout: 60s}
"""
UNKNOWN_TASK = "01ARZ3NDEKTSV4RRFFQ69G5FAV/only/1"


def complete(task_id: str, lease_id: str, **output: Any) -> spb.TaskReport:
    request = spb.CompleteTaskRequest(task_id=task_id, lease_id=lease_id)
    request.output.update(output)
    return spb.TaskReport(complete=request)


def fail(task_id: str, lease_id: str, code: str, *, non_retryable: bool) -> spb.TaskReport:
    return spb.TaskReport(
        fail=spb.FailTaskRequest(
            task_id=task_id,
            lease_id=lease_id,
            code=code,
            message="boom",
            non_retryable=non_retryable,
        )
    )


async def lease(mesh: Mesh, count: int) -> dict[str, task_pb2.StepTask]:
    """Polls until ``count`` tasks are leased; by execution and step."""
    leased: dict[str, task_pb2.StepTask] = {}
    for _ in range(20):
        for task in await mesh.poll(max_tasks=count, wait=1.0):
            leased[f"{task.execution}:{task.step_id}"] = task
        if len(leased) >= count:
            return leased
    raise AssertionError(f"leased {len(leased)} of {count} tasks")


async def report(mesh: Mesh, *reports: spb.TaskReport) -> list[spb.TaskReportResult]:
    response = await mesh.tasks.report_tasks(spb.ReportTasksRequest(reports=reports))
    assert [r.task_id for r in response.results] == [
        (r.complete.task_id if r.WhichOneof("result") == "complete" else r.fail.task_id)
        for r in reports
    ]
    return list(response.results)


def reason(result: spb.TaskReportResult) -> str:
    error = report_error(result)
    return "OK" if error is None else error.reason


async def test_each_report_is_answered_on_its_own(bare_mesh: Mesh) -> None:
    mesh = bare_mesh
    await mesh.publish(FAN, "batch-fan")
    await mesh.publish(ONE, "batch-one")
    fan = await mesh.start("batch-fan", {"items": [1, 2]})
    one = await mesh.start("batch-one")
    tasks = await lease(mesh, 3)
    first, second = tasks[f"{fan.name}:fan[0]"], tasks[f"{fan.name}:fan[1]"]
    only = tasks[f"{one.name}:only"]

    results = await report(
        mesh,
        complete(first.task_id, first.lease_id, n=1),
        complete(second.task_id, "not-the-lease", n=2),
        fail(only.task_id, only.lease_id, "BROKEN", non_retryable=True),
        complete(UNKNOWN_TASK, "whatever"),
        spb.TaskReport(fail=spb.FailTaskRequest(task_id=f"{one.name}/x/1", lease_id="l")),
    )
    assert [reason(r) for r in results] == [
        "OK",
        "LEASE_STALE",
        "OK",
        "LEASE_STALE",
        "INVALID_ARGUMENT",  # no code: FailTask's own validation
    ]
    assert results[1].code == Code.FAILED_PRECONDITION
    assert results[1].metadata["task_id"] == second.task_id
    assert isinstance(report_error(results[1]), FailedPreconditionError)
    assert isinstance(report_error(results[4]), InvalidArgumentError)
    assert results[2].HasField("fail") and not results[2].fail.will_retry
    assert not results[0].HasField("fail")

    # The batch changed exactly what its accepted reports say.
    assert (await mesh.wait(one.name)).state == X.EXECUTION_STATE_FAILED
    running = await mesh.get(fan.name)
    assert running.state == X.EXECUTION_STATE_RUNNING
    (ok,) = await report(mesh, complete(second.task_id, second.lease_id, n=2))
    assert reason(ok) == "OK"
    done = await mesh.wait(fan.name)
    assert done.state == X.EXECUTION_STATE_SUCCEEDED
    loop = next(s for s in done.steps if s.step_id == "fan")
    assert [dict(r) for r in loop.output["results"]] == [{"n": 1}, {"n": 2}]


async def test_a_repeated_batch_answers_like_its_repeats_and_changes_nothing(
    bare_mesh: Mesh,
) -> None:
    mesh = bare_mesh
    await mesh.publish(FAN, "batch-fan")
    fan = await mesh.start("batch-fan", {"items": [1, 2, 3]})
    tasks = await lease(mesh, 3)
    one, two, three = (tasks[f"{fan.name}:fan[{i}]"] for i in range(3))
    batch = (
        complete(one.task_id, one.lease_id, n=1),
        fail(two.task_id, two.lease_id, "FLAKY", non_retryable=False),
        complete(three.task_id, "superseded"),
    )
    first = await report(mesh, *batch)
    assert [reason(r) for r in first] == ["OK", "OK", "LEASE_STALE"]
    events = await mesh.events(fan.name)

    again = await report(mesh, *batch)
    assert [reason(r) for r in again] == ["OK", "OK", "LEASE_STALE"]
    assert again[1].fail == first[1].fail  # FailTask's repeat: the first answer
    assert await mesh.events(fan.name) == events

    # The single RPCs agree with the batch about the same reports.
    await mesh.tasks.complete_task(batch[0].complete)
    assert await mesh.tasks.fail_task(batch[1].fail) == first[1].fail
    with pytest.raises(FailedPreconditionError) as stale:
        await mesh.tasks.complete_task(batch[2].complete)
    assert stale.value.reason == "LEASE_STALE"
    # A report for another lease of an accepted attempt is stale, not a repeat.
    (other,) = await report(mesh, complete(one.task_id, "another-lease"))
    assert reason(other) == "LEASE_STALE"


async def test_concurrent_batches_for_one_execution_apply_each_report_once(
    bare_mesh: Mesh,
) -> None:
    mesh = bare_mesh
    await mesh.publish(FAN, "batch-fan")
    fan = await mesh.start("batch-fan", {"items": list(range(8))})
    tasks = await lease(mesh, 8)
    reports = [
        complete(t.task_id, t.lease_id, i=i)
        for i, t in enumerate(tasks[f"{fan.name}:fan[{i}]"] for i in range(8))
    ]
    answers = await asyncio.gather(
        report(mesh, *reports[:4]), report(mesh, *reports[4:]), report(mesh, *reports[2:6])
    )
    assert all(reason(r) == "OK" for results in answers for r in results)
    done = await mesh.wait(fan.name)
    assert done.state == X.EXECUTION_STATE_SUCCEEDED
    events = await mesh.events(fan.name)
    succeeded = [e for e in events if e.type == execution_pb2.EVENT_TYPE_STEP_SUCCEEDED]
    assert len(succeeded) == 9  # eight iterations and the loop, each once


async def test_a_malformed_call_is_refused_whole(bare_mesh: Mesh) -> None:
    mesh = bare_mesh
    with pytest.raises(InvalidArgumentError):
        await mesh.tasks.report_tasks(spb.ReportTasksRequest())
    with pytest.raises(InvalidArgumentError):
        await mesh.tasks.report_tasks(spb.ReportTasksRequest(reports=[spb.TaskReport()]))
    twice = complete(UNKNOWN_TASK, "lease")
    with pytest.raises(InvalidArgumentError):
        await mesh.tasks.report_tasks(spb.ReportTasksRequest(reports=[twice, twice]))


async def test_the_worker_protocol_serves_worker_identities_on_their_queues(
    backend: Backend, tmp_path: Path
) -> None:
    """A worker leases every tenant's tasks with their inputs and reports their
    results: only the identities in ``workers`` may, each on its own queues."""
    workers = {"executor": ["*"], "payments-worker": ["payments", "payments.*"]}
    async with execution_mesh(backend, tmp_path, executor=False, workers=workers) as mesh:
        await mesh.publish(ONE, "batch-one")
        started = await mesh.start("batch-one")
        address = mesh.scheduler_address
        poll = spb.PollTasksRequest(task_queue="default", worker_identity="w", max_tasks=1)
        for caller, queue in [("gateway", "default"), ("tests", "default"),
                              ("payments-worker", "default")]:  # fmt: skip
            channel = open_channel(address, caller=caller, services=TaskQueueClient.SERVICES)
            try:
                tasks = TaskQueueClient(channel, timeout=5)
                poll.task_queue = queue
                with pytest.raises(PermissionDeniedError) as denied:
                    await tasks.poll_tasks(poll)
                assert denied.value.metadata["caller"] == caller
                if caller not in workers:  # a worker reports on leases only a poll gave it
                    with pytest.raises(PermissionDeniedError):
                        await tasks.report_tasks(
                            spb.ReportTasksRequest(reports=[complete(UNKNOWN_TASK, "l")])
                        )
            finally:
                await channel.close()
        (task,) = await mesh.poll()  # nothing was leased by the refused callers
        assert task.execution == started.name
        channel = open_channel(address, caller="payments-worker", services=TaskQueueClient.SERVICES)
        try:
            poll.wait.FromMilliseconds(10)
            poll.task_queue = "payments.eu"
            assert list((await TaskQueueClient(channel, timeout=5).poll_tasks(poll)).tasks) == []
        finally:
            await channel.close()
