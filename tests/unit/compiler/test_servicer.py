"""Proto mapping of the compiler servicer."""

from __future__ import annotations

from maestro.common.v1 import diagnostic_pb2, source_pb2, workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.services.compiler.service import Compiler
from maestro.services.compiler.servicer import (
    CompilerServicer,
    definition_to_proto,
    source_from_proto,
)


def test_definition_to_proto_maps_types_and_durations() -> None:
    definition = definition_to_proto(
        {
            "name": "order-flow",
            "steps": [
                {
                    "id": "charge",
                    "type": "task",
                    "handler": "echo",
                    "timeout": "30s",
                    "taskQueue": "payments",
                    "retry": {"maxAttempts": 3, "initialBackoff": "1.5s"},
                    "config": {"amount": 12},
                    "someFutureField": True,
                },
                {"id": "wait", "type": "delay", "needs": ["charge"], "delay": {"duration": "90s"}},
            ],
            "triggers": [{"type": "schedule", "cron": "0 * * * *"}],
            "labels": {"team": "billing"},
        }
    )
    assert definition is not None
    charge, wait = definition.steps
    assert charge.type == workflow_pb2.STEP_TYPE_TASK
    assert charge.timeout.seconds == 30
    assert charge.timeout.nanos == 0
    assert charge.task_queue == "payments"
    assert charge.retry.max_attempts == 3
    assert (charge.retry.initial_backoff.seconds, charge.retry.initial_backoff.nanos) == (
        1,
        500_000_000,
    )
    assert charge.config.fields["amount"].number_value == 12
    assert wait.type == workflow_pb2.STEP_TYPE_DELAY
    assert list(wait.needs) == ["charge"]
    assert wait.delay.duration.seconds == 90
    assert definition.triggers[0].type == workflow_pb2.TRIGGER_TYPE_SCHEDULE
    assert dict(definition.labels) == {"team": "billing"}


def test_definition_to_proto_rejects_non_mappings_and_bad_values() -> None:
    assert definition_to_proto(["not", "a", "mapping"]) is None
    # Unknown enum words are dropped (validation rejects them before this point).
    unknown = definition_to_proto({"name": "x", "steps": [{"id": "a", "type": "bogus"}]})
    assert unknown is not None
    assert unknown.steps[0].type == workflow_pb2.STEP_TYPE_UNSPECIFIED
    assert definition_to_proto({"name": "x", "steps": [{"id": "a", "timeout": "soon"}]}) is None


def test_source_from_proto_formats() -> None:
    make = source_pb2.WorkflowSource
    assert source_from_proto(make(content=b"{}", format=source_pb2.SOURCE_FORMAT_JSON)).is_json
    assert (
        source_from_proto(make(content=b"a", format=source_pb2.SOURCE_FORMAT_YAML)).is_json is False
    )
    unlabelled = source_from_proto(make(content=b"a: 1", filename="f.yaml"))
    assert unlabelled.is_json is None
    assert unlabelled.filename == "f.yaml"


async def test_validate_workflow_response() -> None:
    servicer = CompilerServicer(Compiler())
    good = await servicer.ValidateWorkflow(
        pb.ValidateWorkflowRequest(
            source=source_pb2.WorkflowSource(
                content=b"name: x\nsteps:\n  - {id: a, type: task, timeout: 30s}\n"
            )
        ),
        None,  # type: ignore[arg-type]
    )
    assert good.valid
    assert good.definition.steps[0].type == workflow_pb2.STEP_TYPE_TASK
    assert good.definition.steps[0].timeout.seconds == 30
    assert len(good.digest) == 64

    bad = await servicer.ValidateWorkflow(
        pb.ValidateWorkflowRequest(
            source=source_pb2.WorkflowSource(content=b"name: x\nsteps:\n  - {id: a, type: x}\n")
        ),
        None,  # type: ignore[arg-type]
    )
    assert not bad.valid
    assert not bad.HasField("definition")
    (diagnostic,) = bad.diagnostics
    assert diagnostic.code == "INVALID_STEP_TYPE"
    assert diagnostic.severity == diagnostic_pb2.SEVERITY_ERROR
    assert diagnostic.path == "/steps/0/type"
    assert (diagnostic.position.line, diagnostic.position.column) == (3, 19)
