"""The workflow JSON Schema: shipped with the package, a valid draft 2020-12
schema, strict about keys, and in step with the proto it maps to."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor
from jsonschema import Draft202012Validator

from maestro.common.v1 import workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.services.compiler.service import Compiler
from maestro.services.compiler.servicer import CompilerServicer
from maestro.services.compiler.source import parse_source
from maestro.services.compiler.validate import validate
from maestro.services.compiler.workflow_schema import SCHEMA_ID, WORKFLOW_SCHEMA, schema_json

DEFS: dict[str, Any] = WORKFLOW_SCHEMA["$defs"]
STEP_TYPES = ["task", "condition", "loop", "human", "subworkflow", "delay"]


def test_schema_ships_as_package_data() -> None:
    resource = importlib.resources.files("maestro.services.compiler").joinpath(
        "workflow.schema.json"
    )
    assert resource.is_file()
    assert json.loads(schema_json()) == WORKFLOW_SCHEMA


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(WORKFLOW_SCHEMA)
    assert WORKFLOW_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_ID == WORKFLOW_SCHEMA["$id"] == "https://maestro.dev/schemas/workflow/v1.json"


def _object_schemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            yield where, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _object_schemas(value, f"{where}/{i}")


def test_every_object_with_properties_rejects_unknown_keys() -> None:
    objects = list(_object_schemas(WORKFLOW_SCHEMA))
    assert len(objects) > 20
    open_objects = {
        where: node for where, node in objects if node.get("additionalProperties") is not False
    }
    # Steps and triggers dispatch on `type` to a closed schema per type, and to
    # a closed schema of every key when the type is missing or unknown.
    assert set(open_objects) == {"#/$defs/stepShape", "#/$defs/trigger"}
    for node in open_objects.values():
        targets = [branch.get("then") or branch.get("else") for branch in node["allOf"]]
        for target in targets:
            closed = DEFS[target["$ref"].removeprefix("#/$defs/")]
            assert closed["additionalProperties"] is False
        assert (
            len(targets)
            == len(DEFS[node["properties"]["type"]["$ref"].removeprefix("#/$defs/")]["enum"]) + 1
        )


def _json_names(descriptor: Descriptor) -> set[str]:
    return {f.json_name for f in descriptor.fields}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("anyStep", workflow_pb2.Step),
        ("anyTrigger", workflow_pb2.Trigger),
        ("retryPolicy", workflow_pb2.RetryPolicy),
        ("cachePolicy", workflow_pb2.CachePolicy),
        ("resourceHints", workflow_pb2.ResourceHints),
        ("conditionSpec", workflow_pb2.ConditionSpec),
        ("loopSpec", workflow_pb2.LoopSpec),
        ("humanSpec", workflow_pb2.HumanSpec),
        ("subworkflowSpec", workflow_pb2.SubworkflowSpec),
        ("delaySpec", workflow_pb2.DelaySpec),
    ],
)
def test_keys_are_the_proto_json_names(definition: str, message: Any) -> None:
    assert set(DEFS[definition]["properties"]) == _json_names(message.DESCRIPTOR)


def test_document_keys_are_the_definition_json_names() -> None:
    assert set(WORKFLOW_SCHEMA["properties"]) == _json_names(
        workflow_pb2.WorkflowDefinition.DESCRIPTOR
    )


def test_step_and_trigger_types_follow_the_proto_enums() -> None:
    def words(enum: Any, prefix: str) -> list[str]:
        names = [value.name for value in enum.DESCRIPTOR.values]
        return [n.removeprefix(prefix).lower() for n in names if not n.endswith("UNSPECIFIED")]

    assert DEFS["stepType"]["enum"] == words(workflow_pb2.StepType, "STEP_TYPE_")
    assert DEFS["triggerType"]["enum"] == words(workflow_pb2.TriggerType, "TRIGGER_TYPE_")


def test_each_step_type_allows_a_subset_of_step_keys_and_requires_its_section() -> None:
    every = set(DEFS["anyStep"]["properties"])
    for kind in STEP_TYPES:
        typed = DEFS[f"{kind}Step"]
        assert set(typed["properties"]) <= every
        assert {"id", "type", "needs", "labels"} <= set(typed["properties"])
        if kind != "task":
            assert kind in typed["properties"]
            assert typed["required"] == [kind]


def _timeout_codes(value: str) -> list[tuple[str, str]]:
    text = f"name: x\nsteps:\n  - {{id: a, type: task, timeout: {value!r}}}\n"
    return [(f.code, f.path) for f, _ in validate(parse_source(text.encode())).findings]


@pytest.mark.parametrize("value", ["1.5s", "500ms", "2m", "1h", "1h30m", "0s", "10m0.5s"])
def test_durations_accepted(value: str) -> None:
    assert _timeout_codes(value) == []


@pytest.mark.parametrize("value", ["1d", "soon", "1.5", "s", "-1s", "1 h", ".5s", "1.s", ""])
def test_durations_rejected(value: str) -> None:
    assert _timeout_codes(value) == [("SCHEMA_VIOLATION", "/steps/0/timeout")]


def test_a_plain_validator_applies_the_schema_as_editors_do() -> None:
    # The served schema stands alone (the meta-schema it references for
    # embedded JSON Schemas is bundled with every draft 2020-12 validator).
    validator = Draft202012Validator(WORKFLOW_SCHEMA)
    good = {"name": "x", "steps": [{"id": "a", "type": "task", "outputSchema": {"type": "object"}}]}
    assert list(validator.iter_errors(good)) == []
    bad = {
        "name": "x",
        "steps": [{"id": "a", "type": "task", "extra": 1, "outputSchema": {"type": "strin"}}],
    }
    paths = sorted("/".join(map(str, e.absolute_path)) for e in validator.iter_errors(bad))
    assert paths == ["steps/0", "steps/0/outputSchema/type"]


async def test_get_workflow_schema_serves_the_shipped_document() -> None:
    servicer = CompilerServicer(Compiler())
    response = await servicer.GetWorkflowSchema(
        pb.GetWorkflowSchemaRequest(),
        None,  # type: ignore[arg-type]
    )
    assert response.schema_id == SCHEMA_ID
    assert json.loads(response.schema_json) == WORKFLOW_SCHEMA
