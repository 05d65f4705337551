"""Normal form of workflow definitions (docs/dsl.md, "Normal form and digest")."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro.common.v1 import workflow_pb2
from maestro.services.compiler.normalize import (
    DEFAULT_LOOP_PARALLELISM,
    RETRY_DEFAULTS,
    duration_nanos,
    duration_seconds,
    format_duration,
    normalize,
)
from maestro.services.compiler.servicer import definition_to_proto

from .generated import layered_workflow

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "workflows"


@pytest.mark.parametrize(
    ("text", "normal", "seconds"),
    [
        ("1h30m", "5400s", 5400.0),
        ("500ms", "0.5s", 0.5),
        ("0.500s", "0.5s", 0.5),
        ("2m", "120s", 120.0),
        ("1.5s", "1.5s", 1.5),
        ("30s", "30s", 30.0),
        ("0s", "0s", 0.0),
        ("1h0m0.25s", "3600.25s", 3600.25),
        ("1ns", "0.000000001s", 1e-9),
        ("1500us", "0.0015s", 0.0015),
        ("1.5h", "5400s", 5400.0),
        ("90m", "5400s", 5400.0),
    ],
)
def test_durations_have_one_spelling(text: str, normal: str, seconds: float) -> None:
    doc = normalize({"name": "d", "steps": [{"id": "a", "type": "task", "timeout": text}]})
    assert doc["steps"][0]["timeout"] == normal
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "1d", "-1s", "1.s5", "1 s", "PT1S", "1h 30m"])
def test_non_durations_are_rejected_and_kept(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)
    doc = normalize({"name": "d", "steps": [{"id": "a", "type": "task", "timeout": text}]})
    assert doc["steps"][0].get("timeout", "") == text


@given(st.integers(min_value=0, max_value=10**15))
def test_format_duration_round_trips(nanos: int) -> None:
    text = format_duration(nanos)
    assert duration_nanos(text) == nanos
    assert text == format_duration(duration_nanos(text))
    assert not text.removesuffix("s").endswith("0") or "." not in text


def test_fills_defaults_sorts_sets_and_drops_empty_sections() -> None:
    doc = {
        "name": "flow",
        "description": "",
        "tags": ["b", "a", "b"],
        "labels": {},
        "triggers": [{"type": "WEBHOOK", "path": "in", "input": {}}],
        "steps": [
            {"id": "a", "type": "Task", "retry": {"maxAttempts": 3, "maxBackoff": "2m"}},
            {
                "id": "b",
                "type": "condition",
                "needs": ["a", "a"],
                "condition": {"expression": "true", "thenSteps": ["d", "c"], "elseSteps": []},
            },
            {"id": "c", "type": "human", "needs": ["b"], "human": {"due": "24h"}},
            {
                "id": "d",
                "type": "loop",
                "needs": ["b"],
                "loop": {
                    "items": "[1, 2]",
                    "parallelism": 0,
                    "body": {"id": "x", "needs": ["a"], "type": "task", "timeout": "1m"},
                },
                "cache": {"ttl": "10m"},
                "config": None,
                "input": {},
            },
            {"id": "e", "type": "delay", "delay": {"duration": "1h30m"}, "needs": []},
        ],
    }
    before = copy.deepcopy(doc)
    normal = normalize(doc)
    assert doc == before, "normalize must not mutate its argument"
    assert normal == {
        "name": "flow",
        "tags": ["a", "b"],
        "triggers": [{"type": "webhook", "path": "in"}],
        "steps": [
            {
                "id": "a",
                "type": "task",
                "retry": {**RETRY_DEFAULTS, "maxAttempts": 3, "maxBackoff": "120s"},
                "taskQueue": "default",
            },
            {
                "id": "b",
                "type": "condition",
                "needs": ["a"],
                "condition": {"expression": "true", "thenSteps": ["c", "d"]},
            },
            {"id": "c", "type": "human", "needs": ["b"], "human": {"due": "86400s"}},
            {
                "id": "d",
                "type": "loop",
                "needs": ["b"],
                "loop": {
                    "items": "[1, 2]",
                    "parallelism": DEFAULT_LOOP_PARALLELISM,
                    "body": {"type": "task", "timeout": "60s", "taskQueue": "default"},
                },
                "cache": {"enabled": False, "ttl": "600s"},
            },
            {"id": "e", "type": "delay", "delay": {"duration": "5400s"}},
        ],
    }


def test_free_form_values_are_kept_but_integral_numbers_become_ints() -> None:
    config = {"b": [2.0, 2.5, None], "a": {"": True, "x": 1e300}}
    normal = normalize({"name": "n", "steps": [{"id": "a", "type": "task", "config": config}]})
    kept = normal["steps"][0]["config"]
    assert kept == {"b": [2, 2.5, None], "a": {"": True, "x": 1e300}}
    assert type(kept["b"][0]) is int
    assert type(kept["a"]["x"]) is float  # beyond 2**53: left as a float


def test_explicit_defaults_equal_omitted_ones() -> None:
    short = {"name": "n", "steps": [{"id": "a", "type": "task", "retry": {}}]}
    full = {
        "name": "n",
        "tags": [],
        "steps": [
            {
                "id": "a",
                "type": "task",
                "taskQueue": "default",
                "needs": [],
                "retry": {
                    "maxAttempts": 1,
                    "initialBackoff": "1000ms",
                    "multiplier": 2.0,
                    "maxBackoff": "1m",
                    "jitter": 0,
                },
            }
        ],
    }
    assert normalize(short) == normalize(full)


def test_hello_sample() -> None:
    doc = yaml.safe_load((SAMPLES / "hello.yaml").read_text())
    normal = normalize(doc)
    assert normal["tags"] == ["quickstart", "sample"]
    assert [s["taskQueue"] for s in normal["steps"]] == ["default"] * 3
    assert [s["timeout"] for s in normal["steps"]] == ["5s"] * 3


@pytest.mark.parametrize("value", [None, 3, "text", [1, {"a": 2.0}], {"steps": "x", "tags": 5}])
def test_any_json_value_is_accepted(value: Any) -> None:
    normalize(value)  # never raises on documents that did not validate


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=1000))
def test_normalize_is_idempotent(steps: int, seed: int) -> None:
    normal = normalize(layered_workflow(steps, seed=seed))
    again = normalize(json.loads(json.dumps(normal)))
    assert again == normal


def test_definition_to_proto_parses_any_duration_spelling_and_loop_bodies() -> None:
    definition = definition_to_proto(
        {
            "name": "n",
            "steps": [
                {"id": "a", "type": "task", "timeout": "2m", "retry": {"initialBackoff": "500ms"}},
                {
                    "id": "b",
                    "type": "loop",
                    "needs": ["a"],
                    "loop": {"items": "[1]", "body": {"type": "task", "timeout": "1h30m"}},
                },
            ],
        }
    )
    assert definition is not None
    a, b = definition.steps
    assert a.timeout.seconds == 120
    assert a.task_queue == "default"
    assert (a.retry.max_attempts, a.retry.initial_backoff.nanos, a.retry.max_backoff.seconds) == (
        1,
        500_000_000,
        60,
    )
    assert b.loop.body.type == workflow_pb2.STEP_TYPE_TASK
    assert b.loop.body.timeout.seconds == 5400
    assert b.loop.parallelism == DEFAULT_LOOP_PARALLELISM
