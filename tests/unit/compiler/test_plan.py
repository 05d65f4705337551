"""Compiled plans: order, levels, defaults, digests, determinism."""

from __future__ import annotations

import random
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro.common.v1 import plan_pb2, workflow_pb2
from maestro.services.compiler import digest
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.plan import (
    COMPILER_VERSION,
    PLAN_VERSION,
    compile_plan,
    referenced_steps,
)

from .generated import layered_workflow

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "workflows"


def plan_of(document: dict[str, Any]) -> plan_pb2.CompiledPlan:
    normal = normalize(document)
    return compile_plan(normal, digest.digest(normal))


def test_hello_sample_plan() -> None:
    plan = plan_of(yaml.safe_load((SAMPLES / "hello.yaml").read_text()))
    assert plan.plan_version == PLAN_VERSION
    # The installed compiler's version: what version receipts attest.
    assert plan.compiler_version == metadata.version("maestro-compiler") == COMPILER_VERSION
    assert [s.step.id for s in plan.steps] == ["greet", "pause", "reply"]
    assert [(s.order, s.level) for s in plan.steps] == [(0, 0), (1, 1), (2, 2)]
    assert [list(level.step_ids) for level in plan.levels] == [["greet"], ["pause"], ["reply"]]
    assert [list(s.dependents) for s in plan.steps] == [["pause"], ["reply"], []]
    assert [list(s.reads) for s in plan.steps] == [[], [], ["greet"]]
    assert list(plan.terminal_steps) == ["reply"]
    assert plan.critical_path_timeout.seconds == 15
    assert plan.max_fanout == 1
    assert len(plan.definition_digest) == 64


def test_order_breaks_ties_by_id_and_resolves_defaults() -> None:
    plan = plan_of(
        {
            "name": "diamond",
            "steps": [
                {"id": "z", "type": "task", "needs": ["b", "c"]},
                {"id": "c", "type": "task", "needs": ["a"], "timeout": "1h"},
                {"id": "b", "type": "task", "needs": ["a"], "input": {"v": "steps.a.output.v"}},
                {"id": "a", "type": "task", "timeout": "2m"},
                {"id": "y", "type": "condition", "condition": {"expression": "true"}},
            ],
        }
    )
    assert [s.step.id for s in plan.steps] == ["a", "b", "c", "y", "z"]
    assert [list(level.step_ids) for level in plan.levels] == [["a", "y"], ["b", "c"], ["z"]]
    assert list(plan.terminal_steps) == ["y", "z"]
    # a (120s) + c (3600s) + z (default 300s)
    assert plan.critical_path_timeout.seconds == 120 + 3600 + 300
    b = plan.steps[1]
    assert list(b.reads) == ["a"]
    assert b.step.timeout.seconds == 300
    assert b.step.retry.max_attempts == 1
    assert b.step.retry.max_backoff.seconds == 60
    assert b.step.task_queue == "default"
    y = plan.steps[3]
    assert y.step.type == workflow_pb2.STEP_TYPE_CONDITION
    assert not y.step.HasField("timeout")
    assert not y.step.HasField("retry")


def test_fanout_counts_loop_parallelism() -> None:
    body = {"type": "task", "timeout": "5s"}
    plan = plan_of(
        {
            "name": "fan",
            "steps": [
                {"id": "a", "type": "task"},
                {"id": "b", "type": "loop", "loop": {"items": "[1]", "body": body}},
                {
                    "id": "c",
                    "type": "loop",
                    "needs": ["a"],
                    "loop": {"items": "[1]", "parallelism": 3, "body": body},
                },
            ],
        }
    )
    assert plan.max_fanout == 1 + 10
    loop = next(s for s in plan.steps if s.step.id == "b")
    assert loop.step.loop.body.timeout.seconds == 5
    assert loop.step.loop.body.retry.max_attempts == 1
    assert plan.critical_path_timeout.seconds == 300 + 5


def test_delay_and_condition_weigh_their_own_time() -> None:
    plan = plan_of(
        {
            "name": "wait",
            "steps": [
                {"id": "c", "type": "condition", "condition": {"expression": "true"}},
                {"id": "d", "type": "delay", "needs": ["c"], "delay": {"duration": "10m"}},
            ],
        }
    )
    assert plan.critical_path_timeout.seconds == 600


def test_config_digest_is_the_digest_of_the_normal_step() -> None:
    doc = {"name": "d", "steps": [{"id": "a", "type": "task", "timeout": "1m"}]}
    normal = normalize(doc)
    plan = compile_plan(normal, "x")
    assert plan.steps[0].config_digest == digest.digest(normal["steps"][0])
    respelled = {"name": "d", "steps": [{"id": "a", "type": "task", "timeout": "60000ms"}]}
    assert plan_of(respelled).steps[0].config_digest == plan.steps[0].config_digest


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("steps.a.output.x + steps.b.output", {"a", "b"}),
        ('steps["my-step"].output.x', {"my-step"}),
        ("steps . a . output", {"a"}),
        ('"steps.a.output" + inputs.x', set()),
        ("'it''s steps.a' + steps.b.output", {"b"}),
        ('r"""steps.q""" + mysteps.r.output + x.steps.s', set()),
        ("has(steps.c.output.v) ? steps.c.output.v : 0", {"c"}),
    ],
)
def test_referenced_steps(expression: str, expected: set[str]) -> None:
    assert referenced_steps(expression) == expected


def test_reads_cover_conditions_loops_and_delays() -> None:
    plan = plan_of(
        {
            "name": "reads",
            "steps": [
                {"id": "a", "type": "task"},
                {"id": "b", "type": "task"},
                {
                    "id": "c",
                    "type": "condition",
                    "needs": ["a", "b"],
                    "condition": {"expression": "steps.a.output.ok"},
                },
                {
                    "id": "l",
                    "type": "loop",
                    "needs": ["a", "b"],
                    "loop": {
                        "items": "steps.b.output.items",
                        "body": {"type": "task", "input": {"x": "steps.a.output.x + item"}},
                    },
                },
                {
                    "id": "w",
                    "type": "delay",
                    "needs": ["b"],
                    "delay": {"until": "steps.b.output.when"},
                },
            ],
        }
    )
    reads = {s.step.id: list(s.reads) for s in plan.steps}
    assert reads == {"a": [], "b": [], "c": ["a"], "l": ["a", "b"], "w": ["b"]}


def test_a_cycle_is_refused() -> None:
    normal = normalize(
        {
            "name": "c",
            "steps": [
                {"id": "a", "type": "task", "needs": ["b"]},
                {"id": "b", "type": "task", "needs": ["a"]},
            ],
        }
    )
    with pytest.raises(ValueError, match="cycle"):
        compile_plan(normal, "x")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=80),
    st.integers(min_value=1, max_value=12),
    st.randoms(use_true_random=False),
)
def test_plans_are_topological_and_deterministic(
    steps: int, width: int, rng: random.Random
) -> None:
    doc = layered_workflow(steps, seed=rng.randint(0, 10**6), width=width)
    normal = normalize(doc)
    plan = compile_plan(normal, "digest")
    position = {s.step.id: s.order for s in plan.steps}
    assert sorted(position.values()) == list(range(steps))
    for planned in plan.steps:
        assert all(position[need] < planned.order for need in planned.step.needs)
        expected_level = 1 + max(
            (plan.steps[position[n]].level for n in planned.step.needs), default=-1
        )
        assert planned.level == expected_level
        assert planned.step.id in plan.levels[planned.level].step_ids
        assert set(planned.reads) <= set(planned.step.needs)
        for dependent in planned.dependents:
            assert planned.step.id in plan.steps[position[dependent]].step.needs
    terminal = {s.step.id for s in plan.steps if not s.dependents}
    assert list(plan.terminal_steps) == sorted(terminal)
    assert plan.max_fanout == max(len(level.step_ids) for level in plan.levels)

    # Same input, same bytes; the list order of steps does not matter either.
    first = plan.SerializeToString(deterministic=True)
    assert compile_plan(normalize(doc), "digest").SerializeToString(deterministic=True) == first
    shuffled = dict(normal, steps=rng.sample(normal["steps"], len(normal["steps"])))
    assert compile_plan(shuffled, "digest").SerializeToString(deterministic=True) == first
