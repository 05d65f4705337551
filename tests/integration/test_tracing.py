"""A trace started by a client continues through a server-to-server call:
client -> registry (server) -> compiler (client call) -> compiler (server), all in
one trace with correct parent/child links (W3C trace context over gRPC metadata)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from maestro.common.v1 import source_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.runtime.clients import RegistryClient, open_channel
from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.conftest import start_policy

pytestmark = pytest.mark.integration


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_mesh(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> AsyncIterator[tuple[TracerProvider, GrpcServer]]:
    # One provider per "process", all exporting to the same in-memory list.
    providers = [TracerProvider() for _ in range(3)]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    client_provider, compiler_provider, registry_provider = providers
    policy = await start_policy(tmp_path)
    compiler = await create_compiler(
        CompilerSettings(port=0, metrics_port=None), tracer_provider=compiler_provider
    )
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path,
            compiler_address=f"127.0.0.1:{compiler.port}",
            policy_address=f"127.0.0.1:{policy.port}",
        ),
        tracer_provider=registry_provider,
    )
    try:
        yield client_provider, registry
    finally:
        await registry.stop(0)
        await compiler.stop(0)
        await policy.stop(0)


def _one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    matches = [s for s in spans if s.name == name and s.kind == kind]
    assert len(matches) == 1, [(s.name, s.kind) for s in spans]
    return matches[0]


async def test_trace_continues_through_server_to_server_call(
    traced_mesh: tuple[TracerProvider, GrpcServer], exporter: InMemorySpanExporter
) -> None:
    client_provider, registry = traced_mesh
    channel = open_channel(
        f"127.0.0.1:{registry.port}", caller="test-client", tracer_provider=client_provider
    )
    tracer = client_provider.get_tracer("test")
    try:
        with tracer.start_as_current_span("author-saves-workflow") as root:
            await RegistryClient(channel, timeout=5).create_workflow(
                pb.CreateWorkflowRequest(
                    source=source_pb2.WorkflowSource(
                        content=b"name: traced\nsteps:\n  - id: a\n    type: task\n"
                    )
                )
            )
    finally:
        await channel.close()

    spans = list(exporter.get_finished_spans())
    create = "/maestro.registry.v1.RegistryService/CreateWorkflow"
    validate = "/maestro.compiler.v1.CompilerService/ValidateWorkflow"
    client_call = _one(spans, create, SpanKind.CLIENT)
    registry_server = _one(spans, create, SpanKind.SERVER)
    registry_to_compiler = _one(spans, validate, SpanKind.CLIENT)
    compiler_server = _one(spans, validate, SpanKind.SERVER)

    trace_id = root.get_span_context().trace_id
    chain = [client_call, registry_server, registry_to_compiler, compiler_server]
    assert {s.context.trace_id for s in chain} == {trace_id}
    parents = [root, *chain]
    for child, parent in zip(chain, parents, strict=False):
        assert child.parent is not None
        assert child.parent.span_id == parent.get_span_context().span_id, child.name
