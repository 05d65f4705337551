"""Typed-client calls on an ``open_channel`` channel: cancelling the caller
cancels the RPC on the server; identity, request id, caller and trace context
travel on unary and streaming calls; each call is one client span."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from maestro.runtime import context
from maestro.runtime.clients import ServiceClient, open_channel
from maestro.runtime.errors import NotFoundError

_METHOD = "/test.Slow/Wait"
_STREAM = "/test.Slow/Stream"
_MISSING = "/test.Slow/Missing"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    seen: dict[str, object] = {"cancelled": asyncio.Event()}

    async def wait(request: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
        seen["unary_metadata"] = dict(ctx.invocation_metadata() or ())
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen["cancelled"].set()  # type: ignore[attr-defined]
            raise
        return b""

    async def stream(request: bytes, ctx: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        seen["stream_metadata"] = dict(ctx.invocation_metadata() or ())
        yield b"x"

    async def missing(request: bytes, ctx: grpc.aio.ServicerContext) -> bytes:
        await ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b""

    handlers = grpc.method_handlers_generic_handler(
        "test.Slow",
        {
            "Wait": grpc.unary_unary_rpc_method_handler(wait),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Missing": grpc.unary_unary_rpc_method_handler(missing),
        },
    )
    srv = grpc.aio.server()
    srv.add_generic_rpc_handlers((handlers,))
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        await srv.stop(0)


@pytest.fixture
async def channel(server: tuple[str, dict[str, object]]) -> AsyncIterator[grpc.aio.Channel]:
    """A channel from ``open_channel`` to the test server, as service ``tests``."""
    opened = open_channel(server[0], caller="tests")
    try:
        yield opened
    finally:
        await opened.close()


class _Client(ServiceClient):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        super().__init__(channel, timeout=30)

    async def wait(self) -> Any:
        return await self._unary(self._channel.unary_unary(_METHOD), b"")  # type: ignore[arg-type]

    async def missing(self) -> Any:
        return await self._unary(self._channel.unary_unary(_MISSING), b"")  # type: ignore[arg-type]

    async def stream(self) -> list[bytes]:
        return [
            item
            async for item in self._stream(self._channel.unary_stream(_STREAM), b"", timeout=5)  # type: ignore[arg-type]
        ]


async def test_cancelling_the_caller_cancels_the_rpc_on_the_server(
    server: tuple[str, dict[str, object]], channel: grpc.aio.Channel
) -> None:
    seen = server[1]
    task = asyncio.create_task(_Client(channel).wait())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(seen["cancelled"].wait(), 5)  # type: ignore[attr-defined]


async def test_identity_and_trace_context_travel_on_unary_and_streaming_calls(
    server: tuple[str, dict[str, object]],
) -> None:
    address, seen = server
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    channel = open_channel(address, caller="tests", tracer_provider=provider)
    principal = context.Principal(tenant="acme", subject="ana", roles=("ops",))
    try:
        client = _Client(channel)
        with context.bind(context.CallContext(principal=principal, request_id="r-1")):
            assert await client.stream() == [b"x"]
            with pytest.raises(NotFoundError):
                await client.missing()
    finally:
        await channel.close()
    stream_metadata = seen["stream_metadata"]
    assert isinstance(stream_metadata, dict)
    assert stream_metadata["x-maestro-tenant"] == "acme"
    assert stream_metadata["x-maestro-subject"] == "ana"
    assert stream_metadata["x-request-id"] == "r-1"
    assert stream_metadata["x-maestro-caller"] == "tests"
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {_STREAM, _MISSING}
    stream_span, failed = finished[_STREAM], finished[_MISSING]
    assert stream_span.kind == SpanKind.CLIENT
    assert stream_span.attributes is not None
    assert stream_span.attributes["rpc.service"] == "test.Slow"
    assert stream_span.attributes["rpc.method"] == "Stream"
    assert stream_span.attributes["rpc.grpc.status_code"] == 0
    # The server saw this call's span as its parent.
    trace_id = format(stream_span.context.trace_id, "032x")
    span_id = format(stream_span.context.span_id, "016x")
    assert stream_metadata["traceparent"].startswith(f"00-{trace_id}-{span_id}-")
    assert failed.attributes is not None
    assert failed.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert failed.status.status_code == StatusCode.ERROR


async def test_a_raw_stub_on_the_channel_sends_only_what_it_is_given(
    server: tuple[str, dict[str, object]], channel: grpc.aio.Channel
) -> None:
    seen = server[1]
    with context.bind(context.CallContext(request_id="r-2")):
        async for _ in channel.unary_stream(_STREAM)(b"", timeout=5):
            pass
    stream_metadata = seen["stream_metadata"]
    assert isinstance(stream_metadata, dict)
    assert "x-request-id" not in stream_metadata
    assert "x-maestro-caller" not in stream_metadata
