"""Simulated executions: routing, loops, retries, failures, timing and cost."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import duration_pb2, json_format

from maestro.compiler.v1 import compiler_service_pb2, simulation_pb2
from maestro.services.compiler import digest
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.plan import compile_plan
from maestro.services.compiler.simulate import (
    COST_CENTS,
    DEFAULT_HUMAN_DURATION,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    simulate,
)

ROUTING: dict[str, Any] = {
    "name": "routing",
    "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}},
    "outputs": {"route": "steps.fast.output.route", "risk": "steps.score.output.risk"},
    "steps": [
        {"id": "score", "type": "task", "handler": "http", "input": {"a": "inputs.amount"}},
        {
            "id": "decide",
            "type": "condition",
            "needs": ["score"],
            "condition": {
                "expression": "steps.score.output.risk < 0.5 && inputs.amount < 1000",
                "thenSteps": ["fast"],
                "elseSteps": ["review"],
            },
        },
        {"id": "fast", "type": "task", "handler": "echo", "needs": ["decide"]},
        {"id": "review", "type": "human", "needs": ["decide"]},
        {"id": "after-review", "type": "task", "needs": ["review"]},
        {"id": "archive", "type": "task", "handler": "s3"},
    ],
}


def mock(**fields: Any) -> simulation_pb2.StepMock:
    output = fields.pop("output", None)
    duration = fields.pop("duration", None)
    result = simulation_pb2.StepMock(**fields)
    if output is not None:
        result.output.update(output)
    if duration is not None:
        result.duration.FromTimedelta(__import__("datetime").timedelta(seconds=duration))
    return result


def run(
    document: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    mocks: dict[str, simulation_pb2.StepMock] | None = None,
    cost_table: dict[str, float] | None = None,
    default_task_duration: float | None = None,
) -> compiler_service_pb2.SimulateWorkflowResponse:
    normal = normalize(document)
    plan = compile_plan(normal, digest.digest(normal))
    return simulate(
        normal, plan, inputs or {}, mocks or {}, cost_table or {}, default_task_duration
    )


def seconds(duration: duration_pb2.Duration) -> float:
    return duration.ToTimedelta().total_seconds()


def by_id(response: compiler_service_pb2.SimulateWorkflowResponse) -> dict[str, Any]:
    return {s.step_id: s for s in response.steps}


def test_condition_true_takes_then_branch() -> None:
    response = run(ROUTING, {"amount": 10}, {"score": mock(output={"risk": 0.2})})
    steps = by_id(response)
    assert steps["fast"].status == SUCCEEDED
    assert steps["review"].status == SKIPPED
    assert steps["after-review"].status == SKIPPED  # downstream of a skipped step
    (decision,) = response.path
    assert (decision.step_id, decision.result) == ("decide", True)
    assert list(decision.taken_steps) == ["fast"]
    assert list(decision.skipped_steps) == ["review"]
    assert response.succeeded
    outputs = json_format.MessageToDict(response.outputs)
    assert outputs == {"route": None, "risk": 0.2}  # `fast` produced no `route`
    # 100 ms per task: score, then decide (instant), then fast.
    assert seconds(steps["fast"].start_offset) == pytest.approx(0.1)
    assert seconds(response.total_duration) == pytest.approx(0.2)
    assert list(response.critical_path) == ["score", "decide", "fast"]


def test_condition_false_takes_else_branch() -> None:
    response = run(
        ROUTING,
        {"amount": 5000},
        {"score": mock(output={"risk": 0.2}), "after-review": mock(duration=2)},
    )
    steps = by_id(response)
    assert steps["fast"].status == SKIPPED
    assert steps["review"].status == SUCCEEDED
    assert steps["after-review"].status == SUCCEEDED
    assert response.path[0].result is False
    assert seconds(steps["review"].duration) == DEFAULT_HUMAN_DURATION / 1e9
    assert seconds(response.total_duration) == pytest.approx(0.1 + 3600 + 2)
    assert list(response.critical_path) == ["score", "decide", "review", "after-review"]
    assert response.total_cost_cents == pytest.approx(3 * COST_CENTS["task"] + COST_CENTS["human"])
    # Timeline order: by start offset, then plan order.
    assert [s.step_id for s in response.steps] == [
        "archive",
        "score",
        "decide",
        "fast",
        "review",
        "after-review",
    ]


def test_loop_fans_out_in_rounds_of_parallelism() -> None:
    document = {
        "name": "fan",
        "steps": [
            {
                "id": "each",
                "type": "loop",
                "loop": {
                    "items": "inputs.recipients",
                    "parallelism": 10,
                    "body": {"type": "task", "handler": "mail"},
                },
            },
            {"id": "done", "type": "task", "needs": ["each"]},
        ],
    }
    recipients = [f"r{i}" for i in range(25)]
    response = run(document, {"recipients": recipients}, {"each": mock(duration=2)})
    each = by_id(response)["each"]
    assert (each.status, each.iterations, each.attempts) == (SUCCEEDED, 25, 25)
    assert seconds(each.duration) == 6  # ceil(25 / 10) rounds of 2 s
    assert seconds(by_id(response)["done"].start_offset) == 6
    assert each.cost_cents == pytest.approx(25 * COST_CENTS["task"])
    empty = run(document, {"recipients": []})
    assert (by_id(empty)["each"].iterations, seconds(by_id(empty)["each"].duration)) == (0, 0)


def test_loop_over_a_non_list_fails() -> None:
    document = {
        "name": "fan",
        "steps": [{"id": "each", "type": "loop", "loop": {"items": "inputs.n", "body": {}}}],
    }
    response = run(document, {"n": 3})
    assert by_id(response)["each"].status == FAILED
    assert not response.succeeded


def test_retries_with_backoff_then_succeed() -> None:
    document = {
        "name": "retry",
        "steps": [
            {
                "id": "flaky",
                "type": "task",
                "retry": {"maxAttempts": 4, "initialBackoff": "1s", "multiplier": 3},
            },
            {"id": "next", "type": "task", "needs": ["flaky"]},
        ],
    }
    response = run(document, mocks={"flaky": mock(failures_before_success=2, duration=1)})
    flaky = by_id(response)["flaky"]
    assert (flaky.status, flaky.attempts) == (SUCCEEDED, 3)
    assert seconds(flaky.duration) == 3 * 1 + 1 + 3  # attempts plus backoffs of 1 s and 3 s
    assert flaky.cost_cents == pytest.approx(3 * COST_CENTS["task"])
    assert by_id(response)["next"].status == SUCCEEDED
    assert response.succeeded


def test_backoff_is_capped_at_max_backoff() -> None:
    document = {
        "name": "retry",
        "steps": [
            {
                "id": "flaky",
                "type": "task",
                "retry": {"maxAttempts": 5, "initialBackoff": "10s", "maxBackoff": "15s"},
            }
        ],
    }
    response = run(document, mocks={"flaky": mock(failures_before_success=4, duration=1)})
    assert seconds(by_id(response)["flaky"].duration) == 5 + 10 + 15 + 15 + 15


def test_failures_propagate_downstream() -> None:
    document = {
        "name": "fail",
        "outputs": {"x": "steps.c.output.x"},
        "steps": [
            {"id": "a", "type": "task", "retry": {"maxAttempts": 2}},
            {"id": "b", "type": "task", "needs": ["a"]},
            {"id": "c", "type": "task", "needs": ["b"]},
            {"id": "side", "type": "task"},
        ],
    }
    response = run(document, mocks={"a": mock(fail=True, error_code="BOOM")})
    steps = by_id(response)
    assert (steps["a"].status, steps["a"].attempts) == (FAILED, 2)
    assert seconds(steps["a"].duration) == pytest.approx(0.1 + 1 + 0.1)
    assert steps["b"].status == SKIPPED
    assert steps["c"].status == SKIPPED
    assert steps["side"].status == SUCCEEDED  # independent branches still run
    assert not response.succeeded
    assert json_format.MessageToDict(response.outputs) == {"x": None}


def test_exhausted_retries_fail() -> None:
    document = {"name": "f", "steps": [{"id": "a", "type": "task", "retry": {"maxAttempts": 2}}]}
    response = run(document, mocks={"a": mock(failures_before_success=5)})
    assert (response.steps[0].status, response.steps[0].attempts) == (FAILED, 2)


def test_attempt_longer_than_timeout_fails() -> None:
    document = {"name": "t", "steps": [{"id": "a", "type": "task", "timeout": "1s"}]}
    response = run(document, mocks={"a": mock(duration=5)})
    assert response.steps[0].status == FAILED
    assert seconds(response.steps[0].duration) == 1


def test_delay_human_and_default_task_duration() -> None:
    document = {
        "name": "timing",
        "steps": [
            {"id": "wait", "type": "delay", "delay": {"duration": "10m"}},
            {"id": "ask", "type": "human", "needs": ["wait"]},
            {"id": "act", "type": "task", "needs": ["ask"]},
        ],
    }
    response = run(document, mocks={"ask": mock(duration=60)}, default_task_duration=2.5)
    steps = by_id(response)
    assert seconds(steps["wait"].duration) == 600
    assert seconds(steps["ask"].start_offset) == 600
    assert seconds(steps["act"].start_offset) == 660
    assert seconds(response.total_duration) == 662.5


def test_cost_table_overrides_by_type_and_by_handler() -> None:
    mocks = {"score": mock(output={"risk": 0.9})}
    default = run(ROUTING, {"amount": 1}, mocks)
    by_type = run(ROUTING, {"amount": 1}, mocks, {"task": 1.0, "human": 100.0})
    by_handler = run(ROUTING, {"amount": 1}, mocks, {"task": 1.0, "http": 7.0, "human": 0})
    # score(http) + archive(s3) + review(human) + after-review(task) ran.
    assert default.total_cost_cents == pytest.approx(3 * 0.01 + 50)
    assert by_type.total_cost_cents == pytest.approx(3 * 1.0 + 100)
    assert by_handler.total_cost_cents == pytest.approx(7.0 + 1.0 + 1.0)
    assert by_id(by_handler)["score"].cost_cents == 7.0


def test_condition_that_cannot_be_evaluated_fails() -> None:
    response = run(ROUTING, {"amount": 1})  # score has no `risk` output
    steps = by_id(response)
    assert steps["decide"].status == FAILED
    assert steps["fast"].status == steps["review"].status == SKIPPED
    assert not response.path
    assert not response.succeeded
    # The instant failure at 0.1 s ends the chain, not a parallel step ending then too.
    assert list(response.critical_path) == ["score", "decide"]


def test_simulation_is_deterministic() -> None:
    mocks = {"score": mock(output={"risk": 0.2})}
    first = run(ROUTING, {"amount": 3}, mocks).SerializeToString(deterministic=True)
    assert run(ROUTING, {"amount": 3}, mocks).SerializeToString(deterministic=True) == first
