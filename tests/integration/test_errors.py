"""Domain errors reach clients as the right canonical code with ErrorInfo and
typed details, through real servers (registry -> compiler on loopback)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from maestro.common.v1 import source_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.registry.v1 import registry_service_pb2_grpc as pb_grpc
from maestro.runtime.errors import (
    InvalidArgumentError,
    InvalidDefinitionError,
    NotFoundError,
    UnavailableError,
)
from maestro.runtime.status import STATUS_DETAILS_KEY, from_rpc_error
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.conftest import AuthoringMesh, free_port, start_policy

pytestmark = pytest.mark.integration

VALID = b"""
name: hello
steps:
  - id: fetch
    type: task
  - id: summarise
    type: task
    needs: [fetch]
"""
INVALID = b"""
name: broken
steps:
  - id: a
    type: task
    needs: [c]
  - id: b
    type: task
    needs: [a]
  - id: c
    type: task
    needs: [b]
  - id: a
    type: task
  - id: d
    type: task
    needs: [ghost]
"""


def _rich_status(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError("no grpc-status-details-bin trailer")


def _error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo detail")


async def test_not_found_carries_error_info_on_the_wire(authoring_mesh: AuthoringMesh) -> None:
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetWorkflow(pb.GetWorkflowRequest(name="workflows/no-such-flow"), timeout=5)
    exc = caught.value
    assert exc.code() == grpc.StatusCode.NOT_FOUND
    status = _rich_status(exc)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = _error_info(status)
    assert info.reason == "WORKFLOW_NOT_FOUND"
    assert info.domain == "maestro.dev"
    assert dict(info.metadata) == {"name": "workflows/no-such-flow"}

    typed = from_rpc_error(exc)
    assert isinstance(typed, NotFoundError)
    assert typed.reason == "WORKFLOW_NOT_FOUND"
    assert typed.metadata["name"] == "workflows/no-such-flow"


async def test_bad_name_is_invalid_argument_with_field_violation(
    authoring_mesh: AuthoringMesh,
) -> None:
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetWorkflow(pb.GetWorkflowRequest(name="flows/x"), timeout=5)
    typed = from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(typed, InvalidArgumentError)
    assert typed.reason == "INVALID_ARGUMENT"
    assert [v.field for v in typed.field_violations] == ["name"]


async def test_invalid_definition_reports_every_diagnostic(authoring_mesh: AuthoringMesh) -> None:
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateWorkflow(
                pb.CreateWorkflowRequest(source=source_pb2.WorkflowSource(content=INVALID)),
                timeout=5,
            )
    typed = from_rpc_error(caught.value)
    assert isinstance(typed, InvalidDefinitionError)
    assert typed.reason == "INVALID_DEFINITION"
    found = {(v.reason, v.field) for v in typed.field_violations}
    assert ("DUPLICATE_STEP_ID", "/steps/3/id") in found
    assert ("UNKNOWN_STEP_REF", "/steps/4/needs/0") in found
    assert ("CYCLE", "/steps/0/needs") in found
    assert typed.metadata["errors"] == str(len(typed.field_violations))


async def test_create_then_get_and_idempotent_retry(authoring_mesh: AuthoringMesh) -> None:
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        request = pb.CreateWorkflowRequest(
            source=source_pb2.WorkflowSource(content=VALID), request_id="req-1"
        )
        first = await stub.CreateWorkflow(request, timeout=5)
        again = await stub.CreateWorkflow(request, timeout=5)
        got = await stub.GetWorkflow(pb.GetWorkflowRequest(name=first.workflow.name), timeout=5)
    assert first.workflow.name == again.workflow.name
    assert got.workflow.draft.version == "0.1.0-draft"
    assert got.workflow.display_name == "hello"
    assert [s.id for s in got.workflow.draft.definition.steps] == ["fetch", "summarise"]
    assert len(got.workflow.draft.digest) == 64


async def test_peer_down_is_a_typed_unavailable(tmp_path: object) -> None:
    # A registry whose compiler is not running: creating must fail cleanly as
    # UNAVAILABLE/DEPENDENCY_UNAVAILABLE, not INTERNAL.
    policy = await start_policy(tmp_path)  # type: ignore[arg-type]
    compiler_address = f"127.0.0.1:{free_port()}"
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path,  # type: ignore[arg-type]
            compiler_address=compiler_address,
            policy_address=f"127.0.0.1:{policy.port}",
            client_timeout_seconds=2,
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{registry.port}") as channel:
            stub = pb_grpc.RegistryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateWorkflow(
                    pb.CreateWorkflowRequest(source=source_pb2.WorkflowSource(content=VALID)),
                    timeout=10,
                )
        typed = from_rpc_error(caught.value)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert isinstance(typed, UnavailableError)
        assert typed.reason == "DEPENDENCY_UNAVAILABLE"
        # The compiler is the peer that failed (policy, which answers first, is up).
        assert typed.metadata["peer"] == compiler_address
    finally:
        await registry.stop(0)
        await policy.stop(0)


async def test_caller_identity_from_metadata_scopes_the_tenant(
    authoring_mesh: AuthoringMesh,
) -> None:
    acme = (
        ("x-maestro-tenant", "acme"),
        ("x-maestro-subject", "ana"),
        ("x-maestro-roles", "author"),
    )
    globex = (
        ("x-maestro-tenant", "globex"),
        ("x-maestro-subject", "bob"),
        ("x-maestro-roles", "author"),
    )
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        created = await stub.CreateWorkflow(
            pb.CreateWorkflowRequest(source=source_pb2.WorkflowSource(content=VALID)),
            metadata=acme,
            timeout=5,
        )
        assert created.workflow.tenant == "acme"
        assert created.workflow.owner == "ana"
        name = created.workflow.name
        found = await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), metadata=acme, timeout=5)
        assert found.workflow.name == name
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetWorkflow(pb.GetWorkflowRequest(name=name), metadata=globex, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_syntax_errors_are_diagnostics_in_validate_and_errors_in_create(
    authoring_mesh: AuthoringMesh,
) -> None:
    from maestro.compiler.v1 import compiler_service_pb2 as cpb
    from maestro.compiler.v1 import compiler_service_pb2_grpc as cpb_grpc

    bad = b"name: x\nsteps:\n  - id: a\n   type: task\n"
    async with grpc.aio.insecure_channel(authoring_mesh.compiler_address) as channel:
        reply = await cpb_grpc.CompilerServiceStub(channel).ValidateWorkflow(
            cpb.ValidateWorkflowRequest(source=source_pb2.WorkflowSource(content=bad)), timeout=5
        )
    assert not reply.valid
    [diagnostic] = reply.diagnostics
    assert diagnostic.code == "SYNTAX_ERROR"
    # PyYAML marks the offending token: `type` at line 4, column 4.
    assert (diagnostic.position.line, diagnostic.position.column) == (4, 4)
    async with grpc.aio.insecure_channel(authoring_mesh.registry_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.RegistryServiceStub(channel).CreateWorkflow(
                pb.CreateWorkflowRequest(source=source_pb2.WorkflowSource(content=bad)), timeout=5
            )
    typed = from_rpc_error(caught.value)
    assert isinstance(typed, InvalidArgumentError)
    assert typed.reason == "SOURCE_SYNTAX_ERROR"
    assert typed.metadata == {"line": "4", "column": "4"}
