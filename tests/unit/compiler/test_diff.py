"""Diffs between definitions: changes, verdicts and the semver bump."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format

from maestro.common.v1 import diff_pb2
from maestro.services.compiler import digest
from maestro.services.compiler.diff import diff
from maestro.services.compiler.normalize import normalize

from .generated import layered_workflow

BASE: dict[str, Any] = {
    "name": "orders",
    "description": "Route orders",
    "tags": ["orders"],
    "labels": {"classification": "internal"},
    "triggers": [
        {"type": "webhook", "path": "new-order"},
        {"type": "schedule", "cron": "0 * * * *"},
    ],
    "inputSchema": {
        "type": "object",
        "required": ["amount"],
        "properties": {
            "amount": {"type": "number"},
            "customer": {"type": "string"},
            "count": {"type": "integer"},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    "outputSchema": {
        "type": "object",
        "required": ["route"],
        "properties": {
            "route": {"type": "string"},
            "score": {"type": "integer"},
            "ratio": {"type": "number"},
        },
    },
    "outputs": {"route": "steps.decide.output.route", "score": "steps.score.output.risk"},
    "steps": [
        {"id": "fetch", "type": "task", "handler": "http", "timeout": "30s"},
        {
            "id": "score",
            "type": "task",
            "handler": "http",
            "needs": ["fetch"],
            "timeout": "30s",
            "config": {"url": "https://risk", "a/b": 1},
        },
        {"id": "decide", "type": "task", "handler": "echo", "needs": ["score"]},
        {"id": "audit", "type": "task", "handler": "echo", "needs": ["fetch"]},
    ],
}


def diff_of(edit: Callable[[dict[str, Any]], None]) -> diff_pb2.WorkflowDiff:
    target = copy.deepcopy(BASE)
    edit(target)
    return diff(normalize(BASE), normalize(target))


def codes(result: diff_pb2.WorkflowDiff) -> list[tuple[str, str]]:
    return [(b.code, b.path) for b in result.breaking_changes]


def value(message: Any) -> Any:
    return json_format.MessageToDict(message)


def test_identical_definitions() -> None:
    respelled = copy.deepcopy(BASE)
    respelled["steps"][0]["timeout"] = "30000ms"
    respelled["tags"] = ["orders", "orders"]
    result = diff(normalize(BASE), normalize(respelled))
    assert result.compatibility == diff_pb2.COMPATIBILITY_IDENTICAL
    assert result.required_bump == diff_pb2.SEMVER_BUMP_PATCH
    assert result.base_digest == result.target_digest == digest.digest(normalize(BASE))
    assert not result.step_changes
    assert not result.workflow_changes
    assert not result.breaking_changes


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(description="Route all orders"),
        lambda d: d.update(tags=["orders", "routing"]),
        lambda d: d["labels"].update(team="billing"),
    ],
)
def test_metadata_changes_are_a_patch(edit: Callable[[dict[str, Any]], None]) -> None:
    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE
    assert result.required_bump == diff_pb2.SEMVER_BUMP_PATCH
    assert result.base_digest != result.target_digest
    assert len(result.workflow_changes) == 1


def test_changed_step_fields_are_listed_with_pointers_and_values() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["steps"][1]["timeout"] = "1m"
        d["steps"][1]["config"]["a/b"] = 2
        d["steps"][1]["retry"] = {"maxAttempts": 3}

    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE
    assert result.required_bump == diff_pb2.SEMVER_BUMP_MINOR
    (change,) = result.step_changes
    assert change.step_id == "score"
    assert change.kind == diff_pb2.CHANGE_KIND_CHANGED
    assert change.base_config_digest == digest.digest(normalize(BASE)["steps"][1])
    assert change.target_config_digest not in ("", change.base_config_digest)
    fields = {
        f.path: (f.kind, value(f.base_value), value(f.target_value)) for f in change.field_changes
    }
    assert [f.path for f in change.field_changes] == ["/config/a~1b", "/retry", "/timeout"]
    assert fields["/timeout"] == (diff_pb2.CHANGE_KIND_CHANGED, "30s", "60s")
    assert fields["/config/a~1b"] == (diff_pb2.CHANGE_KIND_CHANGED, 1, 2)
    kind, base_value, target_value = fields["/retry"]
    assert kind == diff_pb2.CHANGE_KIND_ADDED
    assert base_value is None
    assert target_value["maxAttempts"] == 3


def test_added_and_compatible_removed_steps() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["steps"] = [s for s in d["steps"] if s["id"] != "audit"]
        d["steps"].append({"id": "notify", "type": "task", "needs": ["decide"]})

    result = diff_of(edit)
    assert [(c.step_id, c.kind) for c in result.step_changes] == [
        ("audit", diff_pb2.CHANGE_KIND_REMOVED),
        ("notify", diff_pb2.CHANGE_KIND_ADDED),
    ]
    audit, notify = result.step_changes
    assert audit.base_config_digest and not audit.target_config_digest
    assert notify.target_config_digest and not notify.base_config_digest
    assert result.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE
    assert result.required_bump == diff_pb2.SEMVER_BUMP_MINOR


def test_removing_a_step_that_outputs_depend_on_is_breaking() -> None:
    def edit(d: dict[str, Any]) -> None:
        # fetch feeds `score` and `decide`, which the outputs read.
        d["steps"] = [s for s in d["steps"] if s["id"] != "fetch"]
        for step in d["steps"]:
            step.pop("needs", None) if step["id"] in ("score", "audit") else None

    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert result.required_bump == diff_pb2.SEMVER_BUMP_MAJOR
    assert codes(result) == [("STEP_REMOVED", "/steps/0")]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["inputSchema"]["required"].append("customer"), "/inputSchema/required"),
        (
            lambda d: d["inputSchema"]["properties"].pop("customer"),
            "/inputSchema/properties/customer",
        ),
        (
            lambda d: d["inputSchema"]["properties"]["amount"].update(type="string"),
            "/inputSchema/properties/amount",
        ),
        (
            lambda d: d["inputSchema"]["properties"]["customer"].update(enum=["a", "b"]),
            "/inputSchema/properties/customer/enum",
        ),
        (
            lambda d: d["inputSchema"]["properties"]["address"]["properties"]["city"].update(
                type="integer"
            ),
            "/inputSchema/properties/address/properties/city",
        ),
        (lambda d: d["inputSchema"].update(additionalProperties=False), "/inputSchema"),
    ],
)
def test_narrowed_input_schema_is_breaking(
    edit: Callable[[dict[str, Any]], None], path: str
) -> None:
    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert codes(result) == [("INPUT_SCHEMA_NARROWED", path)]


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["inputSchema"]["properties"]["count"].update(type="number"),
        lambda d: d["inputSchema"]["properties"].update(extra={"type": "string"}),
        lambda d: d["inputSchema"].update(required=[]),
        lambda d: d["outputSchema"]["properties"].update(extra={"type": "string"}),
        lambda d: d["outputSchema"]["properties"]["ratio"].update(type="integer"),
        lambda d: d["outputs"].update(route="steps.score.output.route"),
        lambda d: d["triggers"].append({"type": "event", "event": "order.created"}),
        lambda d: d["triggers"][0].update(input={"amount": "payload.amount"}),
    ],
)
def test_widened_inputs_and_new_outputs_are_compatible(
    edit: Callable[[dict[str, Any]], None],
) -> None:
    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE, codes(result)
    assert result.required_bump == diff_pb2.SEMVER_BUMP_MINOR


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["outputs"].pop("score"), "/outputs/score"),
        (
            lambda d: d["outputSchema"]["properties"].pop("score"),
            "/outputSchema/properties/score",
        ),
        (
            lambda d: d["outputSchema"]["properties"]["score"].update(type="number"),
            "/outputSchema/properties/score",
        ),
        (lambda d: d["outputSchema"].update(required=[]), "/outputSchema/required"),
    ],
)
def test_removed_outputs_are_breaking(edit: Callable[[dict[str, Any]], None], path: str) -> None:
    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert codes(result) == [("OUTPUT_REMOVED", path)]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["triggers"].pop(0), "/triggers/0"),
        (lambda d: d["triggers"][1].update(cron="5 * * * *"), "/triggers/1"),
        (lambda d: d.pop("triggers"), "/triggers/0"),
    ],
)
def test_removed_triggers_are_breaking(edit: Callable[[dict[str, Any]], None], path: str) -> None:
    result = diff_of(edit)
    assert result.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert (codes(result) or [("", "")])[0] == ("TRIGGER_REMOVED", path)
    assert {code for code, _ in codes(result)} == {"TRIGGER_REMOVED"}


def test_breaking_changes_are_all_reported_in_a_stable_order() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["triggers"] = []
        d["outputs"] = {}
        d["inputSchema"]["required"] = ["amount", "customer"]

    result = diff_of(edit)
    assert codes(result) == [
        ("INPUT_SCHEMA_NARROWED", "/inputSchema/required"),
        ("OUTPUT_REMOVED", "/outputs/route"),
        ("OUTPUT_REMOVED", "/outputs/score"),
        ("TRIGGER_REMOVED", "/triggers/0"),
        ("TRIGGER_REMOVED", "/triggers/1"),
    ]
    again = diff_of(edit)
    assert again.SerializeToString(deterministic=True) == result.SerializeToString(
        deterministic=True
    )


def _large_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    base = normalize(layered_workflow(200, seed=3))
    target = copy.deepcopy(base)
    for step in target["steps"][::10]:
        step["timeout"] = "17s"
        step["config"]["url"] += "/v2"
    target["steps"].append({"id": "extra", "type": "task", "taskQueue": "default"})
    return base, target


def test_a_200_step_diff_is_fast() -> None:
    base, target = _large_pair()
    base_digest, target_digest = digest.digest(base), digest.digest(target)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        result = diff(base, target, base_digest=base_digest, target_digest=target_digest)
        timings.append(time.perf_counter() - start)
    assert len(result.step_changes) == 21
    assert result.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE
    assert min(timings) < 0.020
    # Even computing both digests itself stays well inside the budget.
    start = time.perf_counter()
    diff(base, target)
    assert time.perf_counter() - start < 0.050
