"""A real in-process server and client: retries, error mapping, metrics.

The retry contract belongs to the client library: methods the protos declare
idempotent are retried by grpc on UNAVAILABLE, others are not.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime import context
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.errors import InternalError, NotFoundError, UnavailableError
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.runtime.status import from_rpc_error
from maestro.scheduler.v1 import scheduler_service_pb2 as scheduler_pb
from maestro.scheduler.v1 import scheduler_service_pb2_grpc as scheduler_grpc
from maestro.services.compiler.config import CompilerSettings

COMPILER = compiler_pb.DESCRIPTOR.services_by_name["CompilerService"]
TASK_QUEUE = scheduler_pb.DESCRIPTOR.services_by_name["TaskQueueService"]


class FlakyCompiler(compiler_grpc.CompilerServiceServicer):
    def __init__(self) -> None:
        self.digest_calls = 0
        self.validate_calls = 0
        self.seen_metadata: list[dict[str, str]] = []

    async def DigestWorkflow(
        self, request: compiler_pb.DigestWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> compiler_pb.DigestWorkflowResponse:
        self.digest_calls += 1
        self.seen_metadata.append(
            {k: v for k, v in ctx.invocation_metadata() or () if isinstance(v, str)}
        )
        if self.digest_calls <= 2:
            raise UnavailableError(f"warming up ({self.digest_calls})")
        return compiler_pb.DigestWorkflowResponse(
            digest="ab" * 32, canonical_json=context.current().request_id.encode()
        )

    async def ValidateWorkflow(
        self, request: compiler_pb.ValidateWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> compiler_pb.ValidateWorkflowResponse:
        self.validate_calls += 1
        return compiler_pb.ValidateWorkflowResponse(valid=bool(1 // 0))

    async def LintWorkflow(
        self, request: compiler_pb.LintWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> compiler_pb.LintWorkflowResponse:
        raise NotFoundError("no such rule", reason="WORKFLOW_NOT_FOUND", metadata={"rule": "x"})


class FlakyTaskQueue(scheduler_grpc.TaskQueueServiceServicer):
    def __init__(self) -> None:
        self.poll_calls = 0

    async def PollTasks(
        self, request: scheduler_pb.PollTasksRequest, ctx: grpc.aio.ServicerContext
    ) -> scheduler_pb.PollTasksResponse:
        self.poll_calls += 1
        if self.poll_calls == 1:
            raise UnavailableError("queue store down")
        return scheduler_pb.PollTasksResponse()


@pytest.fixture
async def mesh() -> AsyncIterator[tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue]]:
    compiler, queue = FlakyCompiler(), FlakyTaskQueue()
    spec = ServiceSpec(
        name="test",
        servicers=[
            (compiler_grpc.add_CompilerServiceServicer_to_server, compiler),
            (scheduler_grpc.add_TaskQueueServiceServicer_to_server, queue),
        ],
        service_names=[COMPILER.full_name, TASK_QUEUE.full_name],
    )
    server = GrpcServer(spec, CompilerSettings(port=0, metrics_port=None))
    try:
        await server.start()
        yield server, compiler, queue
    finally:
        await server.stop(0)


@pytest.fixture
async def channel(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue],
) -> AsyncIterator[grpc.aio.Channel]:
    server = mesh[0]
    chan = open_channel(server.address, caller="test", services=[COMPILER, TASK_QUEUE])
    try:
        yield chan
    finally:
        await chan.close()


def handled(registry: CollectorRegistry, service: str, method: str, code: str) -> float:
    value = registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_service": service,
            "grpc_method": method,
            "grpc_type": "unary",
            "grpc_code": code,
        },
    )
    return value or 0.0


async def test_idempotent_call_is_retried_until_it_succeeds(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue], channel: grpc.aio.Channel
) -> None:
    server, compiler, _ = mesh
    client = CompilerClient(channel, timeout=5.0, address=server.address)
    with context.bind(context.CallContext(request_id="rid-retry")):
        response = await client.digest_workflow(compiler_pb.DigestWorkflowRequest())
    assert response.digest == "ab" * 32
    assert compiler.digest_calls == 3
    # The request id and caller travel on every attempt and bind on the server.
    assert response.canonical_json == b"rid-retry"
    assert [m.get(context.REQUEST_ID_KEY) for m in compiler.seen_metadata] == ["rid-retry"] * 3
    assert all(m.get(context.CALLER_SERVICE_KEY) == "test" for m in compiler.seen_metadata)

    service = COMPILER.full_name
    assert handled(server.registry, service, "DigestWorkflow", "UNAVAILABLE") == 2
    assert handled(server.registry, service, "DigestWorkflow", "OK") == 1


async def test_non_idempotent_call_is_not_retried(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue], channel: grpc.aio.Channel
) -> None:
    server, _, queue = mesh
    stub = scheduler_grpc.TaskQueueServiceStub(channel)
    with pytest.raises(UnavailableError) as caught:
        try:
            await stub.PollTasks(scheduler_pb.PollTasksRequest(worker_identity="w"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
    assert queue.poll_calls == 1
    assert caught.value.reason == "DEPENDENCY_UNAVAILABLE"
    assert caught.value.message == "queue store down"
    assert handled(server.registry, TASK_QUEUE.full_name, "PollTasks", "UNAVAILABLE") == 1
    assert handled(server.registry, TASK_QUEUE.full_name, "PollTasks", "OK") == 0


async def test_unhandled_exception_reaches_the_client_as_internal(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue], channel: grpc.aio.Channel
) -> None:
    server, compiler, _ = mesh
    client = CompilerClient(channel, timeout=5.0, address=server.address)
    with pytest.raises(InternalError) as caught:
        await client.validate_workflow(compiler_pb.ValidateWorkflowRequest())
    assert compiler.validate_calls == 1  # INTERNAL is not a retryable code
    assert caught.value.reason == "INTERNAL"
    assert "ZeroDivision" not in caught.value.message
    assert "division" not in caught.value.message
    assert handled(server.registry, COMPILER.full_name, "ValidateWorkflow", "INTERNAL") == 1


async def test_domain_error_keeps_reason_and_metadata_across_the_wire(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue], channel: grpc.aio.Channel
) -> None:
    server, _, _ = mesh
    stub = compiler_grpc.CompilerServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LintWorkflow(compiler_pb.LintWorkflowRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    error = from_rpc_error(caught.value)
    assert isinstance(error, NotFoundError)
    assert error.reason == "WORKFLOW_NOT_FOUND"
    assert error.metadata == {"rule": "x"}
    assert handled(server.registry, COMPILER.full_name, "LintWorkflow", "NOT_FOUND") == 1


async def test_unimplemented_method_maps_to_unimplemented(
    mesh: tuple[GrpcServer, FlakyCompiler, FlakyTaskQueue], channel: grpc.aio.Channel
) -> None:
    stub = scheduler_grpc.TaskQueueServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.FailTask(scheduler_pb.FailTaskRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_lean_services_get_no_span_and_log_only_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    compiler, queue = FlakyCompiler(), FlakyTaskQueue()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    spec = ServiceSpec(
        name="test",
        servicers=[
            (compiler_grpc.add_CompilerServiceServicer_to_server, compiler),
            (scheduler_grpc.add_TaskQueueServiceServicer_to_server, queue),
        ],
        service_names=[COMPILER.full_name, TASK_QUEUE.full_name],
        lean=[TASK_QUEUE.full_name],
    )
    server = GrpcServer(spec, CompilerSettings(port=0, metrics_port=None), provider)
    await server.start()
    channel = open_channel(server.address, caller="test", services=[COMPILER, TASK_QUEUE])
    try:
        stub = scheduler_grpc.TaskQueueServiceStub(channel)
        with caplog.at_level(logging.DEBUG, logger="maestro.rpc"):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.PollTasks(scheduler_pb.PollTasksRequest(), timeout=5)
            await stub.PollTasks(scheduler_pb.PollTasksRequest(), timeout=5)
            await CompilerClient(channel, timeout=5).digest_workflow(
                compiler_pb.DigestWorkflowRequest()
            )
    finally:
        await channel.close()
        await server.stop(0)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    # Lean: counted, the failure logged with its code, but no span and no
    # record of the successful call.
    registry = server.registry
    assert handled(registry, TASK_QUEUE.full_name, "PollTasks", "UNAVAILABLE") == 1
    assert handled(registry, TASK_QUEUE.full_name, "PollTasks", "OK") == 1
    assert handled(registry, COMPILER.full_name, "DigestWorkflow", "OK") == 1
    polls = [r for r in caplog.records if getattr(r, "grpc_method", "") == "PollTasks"]
    assert [r.grpc_code for r in polls] == ["UNAVAILABLE"]  # type: ignore[attr-defined]
    names = [span.name for span in spans.get_finished_spans()]
    assert not [n for n in names if "TaskQueueService" in n], names
    assert any("CompilerService/DigestWorkflow" in n for n in names), names
