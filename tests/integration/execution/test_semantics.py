"""The execution promises, end to end on both backends: branches, fan-out and
join, durable delays, retries with backoff, timeouts, cancel, retry of a failed
execution, human steps, and idempotent starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from maestro.runtime.context import CallContext, Principal, bind
from maestro.runtime.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from maestro.scheduler.v1 import execution_pb2
from maestro.scheduler.v1 import scheduler_service_pb2 as pb
from tests.integration.execution.sink import Sink, running_sink
from tests.integration.execution.support import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
X = execution_pb2.ExecutionState
S = execution_pb2.StepState
A = execution_pb2.AttemptState
E = execution_pb2.EventType


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with running_sink() as running:
        yield running


def states(execution: execution_pb2.Execution) -> dict[str, str]:
    return {s.step_id: S.Name(s.state).removeprefix("STEP_STATE_") for s in execution.steps}


BRANCHES = """
name: branches
inputSchema: {type: object, required: [amount], properties: {amount: {type: number}}}
outputs: {route: 'steps.decide.output.result ? "small" : "large"'}
steps:
  - {id: decide, type: condition,
     condition: {expression: "inputs.amount < 100.0", thenSteps: [small], elseSteps: [large]}}
  - {id: small, type: task, handler: echo, needs: [decide], timeout: 5s, input: {size: '"small"'}}
  - {id: large, type: task, handler: echo, needs: [decide], timeout: 5s, input: {size: '"large"'}}
  - {id: after_large, type: task, handler: noop, needs: [large], timeout: 5s}
"""


async def test_condition_takes_one_branch_and_skips_the_other(mesh: Mesh) -> None:
    await mesh.publish(BRANCHES, "branches")
    small = await mesh.run("branches", {"amount": 5})
    large = await mesh.run("branches", {"amount": 500})
    assert small.state == X.EXECUTION_STATE_SUCCEEDED, small
    assert states(small) == {
        "decide": "SUCCEEDED", "small": "SUCCEEDED", "large": "SKIPPED", "after_large": "SKIPPED"
    }  # fmt: skip
    assert small.outputs["route"] == "small"
    assert states(large)["small"] == "SKIPPED"
    assert states(large)["after_large"] == "SUCCEEDED"
    assert large.outputs["route"] == "large"
    decide = next(s for s in small.steps if s.step_id == "decide")
    assert decide.output["result"] is True


FANOUT = """
name: fanout
inputSchema: {type: object, properties: {items: {type: array, items: {type: integer}}}}
outputs: {count: size(steps.join.output.all)}
steps:
  - id: each
    type: loop
    loop:
      items: inputs.items
      parallelism: 3
      body: {type: task, handler: echo, timeout: 5s, input: {n: item, at: index}}
  - {id: join, type: task, handler: echo, needs: [each], timeout: 5s,
     input: {all: steps.each.output.results}}
"""


async def test_loop_fans_out_under_its_parallelism_then_joins(mesh: Mesh) -> None:
    await mesh.publish(FANOUT, "fanout")
    execution = await mesh.run("fanout", {"items": list(range(10))})
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED, execution
    iterations = [s for s in execution.steps if s.step_id.startswith("each[")]
    assert [s.step_id for s in iterations] == [f"each[{i}]" for i in range(10)]
    assert [s.output["n"] for s in iterations] == list(range(10))
    join = next(s for s in execution.steps if s.step_id == "join")
    assert [r["at"] for r in join.output["all"]] == list(range(10))
    assert execution.outputs["count"] == 10
    # Never more than 3 iterations scheduled or running at once.
    running: set[str] = set()
    peak = 0
    for event in await mesh.events(execution.name):
        if not event.subject.startswith("each["):
            continue
        if event.type == E.EVENT_TYPE_STEP_SCHEDULED:
            running.add(event.subject)
        elif event.type == E.EVENT_TYPE_STEP_SUCCEEDED:
            running.discard(event.subject)
        peak = max(peak, len(running))
    assert peak == 3


async def test_empty_loop_succeeds_at_once(mesh: Mesh) -> None:
    await mesh.publish(FANOUT, "fanout")
    execution = await mesh.run("fanout", {"items": []})
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED
    assert execution.outputs["count"] == 0


DELAY = """
name: delayed
steps:
  - {id: wait, type: delay, delay: {duration: 0.4s}}
  - {id: after, type: task, handler: noop, needs: [wait], timeout: 5s}
"""


async def test_delay_is_a_durable_timer(mesh: Mesh) -> None:
    await mesh.publish(DELAY, "delayed")
    started = await mesh.start("delayed")
    # Asserted from the journal and the finished run, not by catching the
    # step WAITING: on a slow machine the 0.4 s timer can fire before a poll.
    execution = await mesh.wait(started.name)
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED
    wait, after = (next(s for s in execution.steps if s.step_id == i) for i in ("wait", "after"))
    fire = wait.timer_fire_time.ToDatetime()
    assert fire - wait.start_time.ToDatetime() == timedelta(seconds=0.4)
    assert wait.end_time.ToDatetime() >= fire
    assert after.start_time.ToDatetime() >= wait.end_time.ToDatetime()
    events = await mesh.events(execution.name)
    kinds = [e.type for e in events]
    assert kinds.index(E.EVENT_TYPE_TIMER_STARTED) < kinds.index(E.EVENT_TYPE_TIMER_FIRED)
    timer = events[kinds.index(E.EVENT_TYPE_TIMER_STARTED)]
    assert datetime.fromisoformat(timer.data["fire_time"]).replace(tzinfo=None) == fire


def flaky(url: str, failures: int, attempts: int) -> str:
    return f"""
name: flaky
steps:
  - id: call
    type: task
    handler: http
    config: {{url: "{url}/flaky?failures={failures}", method: POST}}
    timeout: 5s
    retry: {{maxAttempts: {attempts}, initialBackoff: 0.1s, multiplier: 2, maxBackoff: 1s}}
"""


async def test_retry_then_succeed_keeps_every_attempt(mesh: Mesh, sink: Sink) -> None:
    await mesh.publish(flaky(sink.url, failures=2, attempts=3), "flaky")
    execution = await mesh.run("flaky")
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED, execution
    call = execution.steps[0]
    assert [a.state for a in call.attempts] == [
        A.ATTEMPT_STATE_FAILED, A.ATTEMPT_STATE_FAILED, A.ATTEMPT_STATE_SUCCEEDED
    ]  # fmt: skip
    assert call.attempts[0].error.code == "HTTP_503"
    assert [a.idempotency_key.rsplit("/", 1)[1] for a in call.attempts] == ["1", "2", "3"]
    # Backoff: the third attempt was not leased before initialBackoff * multiplier
    # (0.1 s * 2) after the second failed; the first retry waited 0.1 s.
    first = call.attempts[1].start_time.ToDatetime() - call.attempts[0].end_time.ToDatetime()
    second = call.attempts[2].start_time.ToDatetime() - call.attempts[1].end_time.ToDatetime()
    assert first.total_seconds() >= 0.1
    assert second.total_seconds() >= 0.2
    kinds = [e.type for e in await mesh.events(execution.name)]
    assert kinds.count(E.EVENT_TYPE_STEP_RETRYING) == 2


async def test_retries_exhausted_fail_the_execution_then_retry_resumes_it(
    mesh: Mesh, sink: Sink
) -> None:
    source = (
        flaky(sink.url, failures=2, attempts=2)
        .replace("steps:\n", "steps:\n  - {id: first, type: task, handler: echo, timeout: 5s}\n")
        .replace("    timeout: 5s\n    retry", "    needs: [first]\n    timeout: 5s\n    retry")
    )
    await mesh.publish(source, "flaky")
    failed = await mesh.run("flaky")
    assert failed.state == X.EXECUTION_STATE_FAILED
    assert failed.error.code == "HTTP_503"
    assert failed.error.step_id == "call"
    assert states(failed) == {"first": "SUCCEEDED", "call": "FAILED"}
    first_before = failed.steps[0].attempts[0].idempotency_key

    request_id = str(uuid.uuid4())
    resumed = await mesh.scheduler_client.retry_execution(
        pb.RetryExecutionRequest(name=failed.name, request_id=request_id)
    )
    assert resumed.execution.state in (X.EXECUTION_STATE_RUNNING, X.EXECUTION_STATE_SUCCEEDED)
    done = await mesh.wait(failed.name)
    assert done.state == X.EXECUTION_STATE_SUCCEEDED, done
    call = next(s for s in done.steps if s.step_id == "call")
    # The completed step kept its checkpoint; the failed one went on counting.
    assert len(done.steps[0].attempts) == 1
    assert done.steps[0].attempts[0].idempotency_key == first_before
    assert [a.attempt for a in call.attempts] == [1, 2, 3]
    kinds = [e.type for e in await mesh.events(done.name)]
    assert kinds.count(E.EVENT_TYPE_EXECUTION_RETRIED) == 1
    # The same request id again: the same answer, no second resume.
    again = await mesh.scheduler_client.retry_execution(
        pb.RetryExecutionRequest(name=failed.name, request_id=request_id)
    )
    assert again.execution.state == X.EXECUTION_STATE_SUCCEEDED
    with pytest.raises(FailedPreconditionError) as conflict:
        await mesh.scheduler_client.retry_execution(
            pb.RetryExecutionRequest(name=failed.name, request_id=str(uuid.uuid4()))
        )
    assert conflict.value.reason == "EXECUTION_STATE_CONFLICT"


async def test_non_retryable_http_error_fails_at_once(mesh: Mesh, sink: Sink) -> None:
    await mesh.publish(
        f"""
name: notfound
steps:
  - id: call
    type: task
    handler: http
    config: {{url: "{sink.url}/status/404"}}
    timeout: 5s
    retry: {{maxAttempts: 5, initialBackoff: 0.1s}}
""",
        "notfound",
    )
    execution = await mesh.run("notfound")
    assert execution.state == X.EXECUTION_STATE_FAILED
    assert len(execution.steps[0].attempts) == 1
    assert execution.steps[0].error.non_retryable


SLOW = """
name: slow
steps:
  - id: nap
    type: task
    handler: sleep
    config: {seconds: 30}
    timeout: 0.5s
    retry: {maxAttempts: 2, initialBackoff: 0.1s}
"""


async def test_step_timeout_retries_then_fails_the_execution(mesh: Mesh) -> None:
    await mesh.publish(SLOW, "slow")
    execution = await mesh.run("slow")
    assert execution.state == X.EXECUTION_STATE_FAILED, execution
    assert execution.error.code == "STEP_TIMED_OUT"
    nap = execution.steps[0]
    assert nap.state == S.STEP_STATE_TIMED_OUT
    assert [a.state for a in nap.attempts] == [A.ATTEMPT_STATE_TIMED_OUT] * 2


async def test_execution_timeout(mesh: Mesh) -> None:
    await mesh.publish(SLOW.replace("timeout: 0.5s", "timeout: 60s"), "slow")
    execution = await mesh.run("slow", timeout=0.5)
    assert execution.state == X.EXECUTION_STATE_TIMED_OUT
    assert execution.error.code == "EXECUTION_TIMED_OUT"
    assert execution.steps[0].state == S.STEP_STATE_CANCELLED


async def test_cancel_tells_the_running_step_and_ends_cancelled(mesh: Mesh) -> None:
    await mesh.publish(
        SLOW.replace("timeout: 0.5s", "timeout: 60s")
        + "  - {id: later, type: task, handler: noop, needs: [nap], timeout: 5s}\n",
        "slow",
    )
    started = await mesh.start("slow")
    await mesh.wait_step(started.name, "nap", S.STEP_STATE_RUNNING)
    cancel = pb.CancelExecutionRequest(
        name=started.name, reason="operator said so", request_id=str(uuid.uuid4())
    )
    response = await mesh.scheduler_client.cancel_execution(cancel)
    assert response.execution.state in (
        X.EXECUTION_STATE_CANCELLING,
        X.EXECUTION_STATE_CANCELLED,
    )
    # The worker hears it on its next heartbeat (lease 2 s: every ~0.7 s).
    execution = await mesh.wait(started.name, timeout=10)
    assert execution.state == X.EXECUTION_STATE_CANCELLED
    assert execution.error.code == "CANCELLED"
    assert execution.error.message == "operator said so"
    assert states(execution) == {"nap": "CANCELLED", "later": "SKIPPED"}
    assert execution.steps[0].attempts[0].state == A.ATTEMPT_STATE_CANCELLED
    # Cancelling again changes nothing; cancelling a succeeded one conflicts.
    again = await mesh.scheduler_client.cancel_execution(
        pb.CancelExecutionRequest(name=started.name)
    )
    assert again.execution.last_event_sequence == execution.last_event_sequence
    # Repeating the request id shows the execution only to a caller who may read it.
    replayed = await mesh.scheduler_client.cancel_execution(cancel)
    assert replayed.execution.name == started.name
    nobody = Principal(tenant="default", subject="eve", roles=())
    with bind(CallContext(principal=nobody)), pytest.raises(PermissionDeniedError):
        await mesh.scheduler_client.cancel_execution(cancel)


HUMAN = """
name: approval
inputSchema: {type: object, properties: {amount: {type: number}}}
outputs: {approved: steps.review.output.approved}
steps:
  - id: review
    type: human
    human:
      assignees: ["role:approver"]
      instructions: Check it
      due: 1h
      formSchema: {type: object, required: [approved], properties: {approved: {type: boolean}}}
  - {id: done, type: task, handler: echo, needs: [review], timeout: 5s,
     input: {approved: steps.review.output.approved}}
"""


async def test_human_step_waits_for_completion_through_the_api(mesh: Mesh) -> None:
    await mesh.publish(HUMAN, "approval")
    started = await mesh.start("approval")
    review = await mesh.wait_step(started.name, "review", S.STEP_STATE_WAITING)
    task = (
        await mesh.scheduler_client.get_human_task(pb.GetHumanTaskRequest(name=review.human_task))
    ).human_task
    assert task.state == execution_pb2.HUMAN_TASK_STATE_OPEN
    assert list(task.assignees) == ["role:approver"]
    listed = await mesh.scheduler_client.list_human_tasks(
        pb.ListHumanTasksRequest(filter='assignees: "role:approver" AND state = OPEN')
    )
    assert [t.name for t in listed.human_tasks] == [task.name]

    outsider = Principal(tenant="default", subject="mallory", roles=("viewer",))
    with bind(CallContext(principal=outsider)), pytest.raises(PermissionDeniedError):
        await mesh.scheduler_client.complete_human_task(
            pb.CompleteHumanTaskRequest(name=task.name, request_id=str(uuid.uuid4()))
        )
    approver = Principal(tenant="default", subject="ana", roles=("approver",))
    bad = pb.CompleteHumanTaskRequest(name=task.name, request_id=str(uuid.uuid4()))
    bad.result.update({"approved": "yes"})
    with bind(CallContext(principal=approver)), pytest.raises(InvalidArgumentError) as invalid:
        await mesh.scheduler_client.complete_human_task(bad)
    assert invalid.value.reason == "INPUT_SCHEMA_VIOLATION"

    good = pb.CompleteHumanTaskRequest(name=task.name, request_id=str(uuid.uuid4()))
    good.result.update({"approved": True})
    with bind(CallContext(principal=approver)):
        completed = await mesh.scheduler_client.complete_human_task(good)
        repeat = await mesh.scheduler_client.complete_human_task(good)
    assert completed.human_task.state == execution_pb2.HUMAN_TASK_STATE_COMPLETED
    assert completed.human_task.completed_by == "ana"
    assert repeat.human_task.etag == completed.human_task.etag
    nobody = Principal(tenant="default", subject="eve", roles=())
    with bind(CallContext(principal=nobody)), pytest.raises(PermissionDeniedError):
        await mesh.scheduler_client.complete_human_task(good)  # a repeat shows the task
    execution = await mesh.wait(started.name)
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED
    assert execution.outputs["approved"] is True
    with bind(CallContext(principal=approver)), pytest.raises(FailedPreconditionError):
        await mesh.scheduler_client.complete_human_task(
            pb.CompleteHumanTaskRequest(name=task.name, request_id=str(uuid.uuid4()))
        )


async def test_fifty_concurrent_starts_with_one_request_id_make_one_execution(
    mesh: Mesh,
) -> None:
    await mesh.publish(DELAY, "delayed")
    request_id = str(uuid.uuid4())
    started = await asyncio.gather(
        *(mesh.start("delayed", request_id=request_id) for _ in range(50))
    )
    assert len({e.name for e in started}) == 1
    listed = await mesh.scheduler_client.list_executions(
        pb.ListExecutionsRequest(filter='workflow = "workflows/delayed"')
    )
    assert len(listed.executions) == 1
    with pytest.raises(AlreadyExistsError):
        await mesh.start("delayed", {"other": 1}, request_id=request_id)


STRICT = """
name: strict
inputSchema:
  type: object
  required: [amount]
  properties: {amount: {type: number, minimum: 0}, who: {type: string}}
steps:
  - {id: a, type: task, handler: echo, timeout: 5s}
"""


async def test_bad_starts_are_typed_errors_and_create_nothing(mesh: Mesh) -> None:
    await mesh.publish(STRICT, "strict")
    with pytest.raises(InvalidArgumentError) as schema:
        await mesh.start("strict", {"amount": -1, "who": 3})
    assert schema.value.reason == "INPUT_SCHEMA_VIOLATION"
    fields = sorted(v.field for v in schema.value.field_violations)
    assert fields == ["inputs.amount", "inputs.who"]
    with pytest.raises(NotFoundError) as version:
        await mesh.start("strict", {"amount": 1}, version="9.9.9")
    assert version.value.reason == "VERSION_NOT_FOUND"
    with pytest.raises(NotFoundError) as workflow:
        await mesh.start("nope", {"amount": 1})
    assert workflow.value.reason == "WORKFLOW_NOT_FOUND"
    with pytest.raises(InvalidArgumentError):
        await mesh.scheduler_client.start_execution(
            pb.StartExecutionRequest(workflow="workflows/strict")
        )
    # A caller who may not start anything learns nothing of versions or schemas.
    viewer = Principal(tenant="default", subject="vic", roles=("viewer",))
    with bind(CallContext(principal=viewer)):
        for workflow, inputs in [("nope", {"amount": 1}), ("strict", {"amount": -1})]:
            with pytest.raises(PermissionDeniedError):
                await mesh.start(workflow, inputs)
    listed = await mesh.scheduler_client.list_executions(pb.ListExecutionsRequest())
    assert list(listed.executions) == []


async def test_a_repeated_start_returns_the_first_execution_only_to_a_reader(
    mesh: Mesh,
) -> None:
    """A repeat is found by the start's own write (no read before it); a repeat
    the caller may no longer start still gets the first execution if the caller
    may read it, and a caller who may not gets PERMISSION_DENIED, not the
    execution."""
    await mesh.publish(STRICT, "strict")
    request_id = str(uuid.uuid4())
    first = await mesh.start("strict", {"amount": 1}, request_id=request_id)
    again = await mesh.scheduler_client.start_execution(_strict_request(request_id, 1))
    assert (again.execution.name, again.created) == (first.name, False)

    viewer = Principal(tenant="default", subject="vic", roles=("viewer",))
    with bind(CallContext(principal=viewer)):
        with pytest.raises(PermissionDeniedError):
            await mesh.start("strict", {"amount": 2})  # a viewer may not start
        replayed = await mesh.scheduler_client.start_execution(_strict_request(request_id, 1))
        assert (replayed.execution.name, replayed.created) == (first.name, False)
        with pytest.raises(AlreadyExistsError):
            await mesh.scheduler_client.start_execution(_strict_request(request_id, 2))
    nobody = Principal(tenant="default", subject="eve", roles=())
    with bind(CallContext(principal=nobody)), pytest.raises(PermissionDeniedError) as denied:
        await mesh.scheduler_client.start_execution(_strict_request(request_id, 1))
    assert denied.value.reason == "POLICY_DENIED"
    listed = await mesh.scheduler_client.list_executions(pb.ListExecutionsRequest())
    assert [e.name for e in listed.executions] == [first.name]


def _strict_request(request_id: str, amount: int) -> pb.StartExecutionRequest:
    request = pb.StartExecutionRequest(workflow="workflows/strict", request_id=request_id)
    request.inputs.update({"amount": amount})
    return request


SECRET_CHILD = """
name: secret-child
labels: {classification: restricted}
steps:
  - {id: a, type: task, handler: echo, timeout: 5s, input: {said: '"classified"'}}
outputs: {said: steps.a.output.said}
"""
PUBLIC_PARENT = """
name: public-parent
steps:
  - {id: child, type: subworkflow, subworkflow: {workflow: workflows/secret-child}, timeout: 10s}
"""


async def test_a_subworkflow_runs_only_what_its_starter_may_start(mesh: Mesh) -> None:
    """The child is started on the parent's starter's permission, checked with
    the child's own labels: a public parent cannot run a restricted child for
    someone without clearance (and hand its outputs back)."""
    await mesh.publish(SECRET_CHILD, "secret-child")
    await mesh.publish(PUBLIC_PARENT, "public-parent")
    uncleared = Principal(tenant="default", subject="oscar", roles=("operator",))
    with bind(CallContext(principal=uncleared)):
        denied = await mesh.wait((await mesh.start("public-parent")).name)
    assert denied.state == X.EXECUTION_STATE_FAILED
    (step,) = denied.steps
    assert (step.error.code, step.child_execution) == ("SUBWORKFLOW_DENIED", "")
    assert "CLEARANCE" in step.error.message.upper()
    cleared = replace(
        uncleared, clearance="restricted", purpose="operations", legal_basis="contract"
    )
    with bind(CallContext(principal=cleared)):
        ran = await mesh.wait((await mesh.start("public-parent")).name)
    assert ran.state == X.EXECUTION_STATE_SUCCEEDED, ran.steps[0].error
    assert ran.steps[0].output["said"] == "classified"


async def test_list_filters_and_pages(mesh: Mesh) -> None:
    await mesh.publish(STRICT, "strict")
    names = [(await mesh.run("strict", {"amount": i})).name for i in range(5)]
    page = await mesh.scheduler_client.list_executions(
        pb.ListExecutionsRequest(page_size=2, filter="state = SUCCEEDED")
    )
    assert [e.name for e in page.executions] == names[::-1][:2]
    rest = await mesh.scheduler_client.list_executions(
        pb.ListExecutionsRequest(
            page_size=10, filter="state = SUCCEEDED", page_token=page.next_page_token
        )
    )
    assert [e.name for e in rest.executions] == names[::-1][2:]
    assert not rest.next_page_token
    none = await mesh.scheduler_client.list_executions(
        pb.ListExecutionsRequest(filter='state = FAILED OR workflow = "workflows/other"')
    )
    assert list(none.executions) == []
    with pytest.raises(InvalidArgumentError) as bad:
        await mesh.scheduler_client.list_executions(pb.ListExecutionsRequest(filter="colour = red"))
    assert bad.value.reason == "INVALID_FILTER"


async def test_a_failing_input_mapping_is_journaled_as_the_step_failure(mesh: Mesh) -> None:
    await mesh.publish(
        """
name: badmap
inputSchema: {type: object, properties: {items: {type: array, items: {type: integer}}}}
steps:
  - {id: pick, type: task, handler: echo, timeout: 5s, input: {first: "inputs.items[5]"}}
  - {id: after, type: task, handler: noop, needs: [pick], timeout: 5s}
""",
        "badmap",
    )
    execution = await mesh.run("badmap", {"items": [1]})
    assert execution.state == X.EXECUTION_STATE_FAILED
    assert execution.error.code == "INPUT_EVALUATION_FAILED"
    assert execution.error.step_id == "pick"
    assert states(execution) == {"pick": "FAILED", "after": "SKIPPED"}
    failed = [e for e in await mesh.events(execution.name) if e.type == E.EVENT_TYPE_STEP_FAILED]
    assert [e.subject for e in failed] == ["pick"]
    assert failed[0].data["code"] == "INPUT_EVALUATION_FAILED"


def saga(url: str) -> str:
    return f"""
name: saga
steps:
  - {{id: reserve, type: task, handler: echo, compensate: echo, timeout: 5s,
     input: {{item: '"book"'}}}}
  - {{id: note, type: task, handler: noop, needs: [reserve], timeout: 5s}}
  - id: charge
    type: task
    handler: echo
    needs: [note]
    compensate: http
    config: {{url: "{url}/flaky?failures=1", method: POST}}
    input: {{amount: '"10"'}}
    timeout: 5s
"""


async def test_compensation_undoes_completed_steps_in_reverse(mesh: Mesh, sink: Sink) -> None:
    await mesh.publish(saga(sink.url), "saga")
    done = await mesh.run("saga")
    assert done.state == X.EXECUTION_STATE_SUCCEEDED
    with pytest.raises(FailedPreconditionError):
        await mesh.scheduler_client.retry_execution(
            pb.RetryExecutionRequest(name=done.name, request_id=str(uuid.uuid4()))
        )
    # charge's undo fails once (no retries: maxAttempts 1): compensation FAILS.
    await mesh.scheduler_client.compensate_execution(
        pb.CompensateExecutionRequest(name=done.name, reason="order withdrawn")
    )
    failed = await mesh.wait(done.name)
    assert failed.state == X.EXECUTION_STATE_FAILED
    assert failed.error.code == "COMPENSATION_FAILED"
    assert states(failed)["charge"] == "COMPENSATION_FAILED"
    assert states(failed)["reserve"] == "SUCCEEDED"  # not reached: charge came first
    with pytest.raises(FailedPreconditionError):
        await mesh.scheduler_client.retry_execution(
            pb.RetryExecutionRequest(name=done.name, request_id=str(uuid.uuid4()))
        )
    # Calling again finishes what is left.
    await mesh.scheduler_client.compensate_execution(
        pb.CompensateExecutionRequest(name=done.name, reason="again")
    )
    compensated = await mesh.wait(done.name)
    assert compensated.state == X.EXECUTION_STATE_COMPENSATED, compensated
    assert states(compensated) == {
        "reserve": "COMPENSATED", "note": "SUCCEEDED", "charge": "COMPENSATED"
    }  # fmt: skip
    charge = next(s for s in compensated.steps if s.step_id == "charge")
    assert [a.idempotency_key.rsplit(":", 1)[1] for a in charge.compensation_attempts] == [
        "compensate/1",
        "compensate/2",
    ]
    reserve = next(s for s in compensated.steps if s.step_id == "reserve")
    assert len(reserve.attempts) == 1
    assert len(reserve.compensation_attempts) == 1
    events = await mesh.events(done.name)
    order = [e.subject for e in events if e.type == E.EVENT_TYPE_STEP_COMPENSATED]
    assert order == ["charge", "reserve"]
    assert events[-1].type == E.EVENT_TYPE_EXECUTION_COMPENSATED
    # Compensating a compensated execution changes nothing.
    again = await mesh.scheduler_client.compensate_execution(
        pb.CompensateExecutionRequest(name=done.name)
    )
    assert again.execution.last_event_sequence == events[-1].sequence
