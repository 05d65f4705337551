"""CompileWorkflow, DigestWorkflow, DiffWorkflows and SimulateWorkflow through a
real gRPC server on port 0 and the typed client."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maestro.common.v1 import diagnostic_pb2, diff_pb2, source_pb2, workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import simulation_pb2
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.errors import InvalidArgumentError, InvalidDefinitionError
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server

pytestmark = pytest.mark.timeout(30)

HELLO = (Path(__file__).resolve().parents[3] / "samples" / "workflows" / "hello.yaml").read_bytes()
ROUTED = b"""\
name: routed
outputs: {answer: steps.yes.output.answer}
steps:
  - {id: ask, type: task, handler: echo, timeout: 2m}
  - id: check
    type: condition
    needs: [ask]
    condition: {expression: "steps.ask.output.ok", thenSteps: ["yes"], elseSteps: ["no"]}
  - {id: "yes", type: task, handler: echo, needs: [check], timeout: 1s}
  - {id: "no", type: task, handler: echo, needs: [check], timeout: 1s}
"""
INVALID = b"name: Bad Name\nsteps:\n  - {id: a, type: task}\n"


def source(content: bytes) -> source_pb2.WorkflowSource:
    return source_pb2.WorkflowSource(content=content)


@pytest.fixture
async def client() -> AsyncIterator[CompilerClient]:
    server = await create_server(CompilerSettings(port=0, metrics_port=None))
    channel = open_channel(server.address, caller="test", services=CompilerClient.SERVICES)
    try:
        yield CompilerClient(channel, timeout=10, address=server.address)
    finally:
        await channel.close()
        await server.stop(0)


async def test_compile_workflow(client: CompilerClient) -> None:
    response = await client.compile_workflow(pb.CompileWorkflowRequest(source=source(ROUTED)))
    plan = response.plan
    assert [s.step.id for s in plan.steps] == ["ask", "check", "no", "yes"]
    assert plan.steps[0].step.timeout.seconds == 120
    assert plan.critical_path_timeout.seconds == 121
    assert list(plan.terminal_steps) == ["no", "yes"]
    digest = await client.digest_workflow(pb.DigestWorkflowRequest(source=source(ROUTED)))
    assert plan.definition_digest == digest.digest
    assert response.definition.steps[0].timeout.seconds == 120
    assert response.definition.steps[1].type == workflow_pb2.STEP_TYPE_CONDITION
    # Lint warnings come along; a compiled definition has no errors.
    assert [d.code for d in response.diagnostics] == ["MISSING_POLICY_LABEL"]
    assert response.diagnostics[0].severity == diagnostic_pb2.SEVERITY_WARNING
    again = await client.compile_workflow(pb.CompileWorkflowRequest(source=source(ROUTED)))
    assert again.plan.SerializeToString(deterministic=True) == plan.SerializeToString(
        deterministic=True
    )


async def test_compile_refuses_invalid_definitions_and_lint_errors(
    client: CompilerClient,
) -> None:
    with pytest.raises(InvalidDefinitionError):
        await client.compile_workflow(pb.CompileWorkflowRequest(source=source(INVALID)))
    unbounded = ROUTED.replace(b"timeout: 2m}", b"timeout: 2m, retry: {maxAttempts: 0}}")
    with pytest.raises(InvalidDefinitionError) as caught:
        await client.compile_workflow(pb.CompileWorkflowRequest(source=source(unbounded)))
    assert "UNBOUNDED_RETRY" in str(caught.value.field_violations)


async def test_digest_is_of_the_normal_form(client: CompilerClient) -> None:
    response = await client.digest_workflow(pb.DigestWorkflowRequest(source=source(HELLO)))
    assert response.digest == hashlib.sha256(response.canonical_json).hexdigest()
    assert b'"taskQueue":"default"' in response.canonical_json
    respelled = HELLO.replace(b"timeout: 5s", b"timeout: 5000ms")
    other = await client.digest_workflow(pb.DigestWorkflowRequest(source=source(respelled)))
    assert other.digest == response.digest
    validated = await client.validate_workflow(pb.ValidateWorkflowRequest(source=source(HELLO)))
    assert validated.digest == response.digest


async def test_diff_workflows(client: CompilerClient) -> None:
    target = ROUTED.replace(b"outputs: {answer: steps.yes.output.answer}\n", b"")
    response = await client.diff_workflows(
        pb.DiffWorkflowsRequest(base=source(ROUTED), target=source(target))
    )
    diff = response.diff
    assert diff.compatibility == diff_pb2.COMPATIBILITY_BREAKING
    assert diff.required_bump == diff_pb2.SEMVER_BUMP_MAJOR
    assert [b.code for b in diff.breaking_changes] == ["OUTPUT_REMOVED"]
    same = await client.diff_workflows(
        pb.DiffWorkflowsRequest(base=source(ROUTED), target=source(ROUTED))
    )
    assert same.diff.compatibility == diff_pb2.COMPATIBILITY_IDENTICAL
    with pytest.raises(InvalidDefinitionError):
        await client.diff_workflows(
            pb.DiffWorkflowsRequest(base=source(ROUTED), target=source(INVALID))
        )


async def test_simulate_workflow(client: CompilerClient) -> None:
    request = pb.SimulateWorkflowRequest(source=source(ROUTED))
    request.mocks["ask"].output.update({"ok": False})
    request.mocks["no"].failures_before_success = 1
    request.cost_table["echo"] = 2.0
    request.default_task_duration.FromSeconds(1)
    response = await client.simulate_workflow(request)
    statuses = {s.step_id: s.status for s in response.steps}
    assert statuses == {
        "ask": simulation_pb2.SIMULATED_STEP_STATUS_SUCCEEDED,
        "check": simulation_pb2.SIMULATED_STEP_STATUS_SUCCEEDED,
        "no": simulation_pb2.SIMULATED_STEP_STATUS_FAILED,  # no retry policy
        "yes": simulation_pb2.SIMULATED_STEP_STATUS_SKIPPED,
    }
    assert not response.succeeded
    assert [(p.step_id, p.result) for p in response.path] == [("check", False)]
    assert response.total_cost_cents == pytest.approx(4.0)
    assert response.total_duration.seconds == 2

    request.mocks["bogus"].fail = True
    with pytest.raises(InvalidArgumentError):
        await client.simulate_workflow(request)
