"""Client calls made through ``open_channel``: cancelling the caller cancels
the RPC on the server, and identity travels on unary and streaming calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from maestro.runtime import context
from maestro.runtime.clients import open_channel

_METHOD = "/test.Slow/Wait"
_STREAM = "/test.Slow/Stream"


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

    handlers = grpc.method_handlers_generic_handler(
        "test.Slow",
        {
            "Wait": grpc.unary_unary_rpc_method_handler(wait),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
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


async def test_cancelling_the_caller_cancels_the_rpc_on_the_server(
    server: tuple[str, dict[str, object]],
) -> None:
    address, seen = server
    channel = open_channel(address, caller="tests")
    try:
        method = channel.unary_unary(_METHOD)

        async def caller() -> object:
            return await method(b"", timeout=30)

        task = asyncio.create_task(caller())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(seen["cancelled"].wait(), 5)  # type: ignore[attr-defined]
    finally:
        await channel.close()


async def test_identity_travels_on_unary_and_streaming_calls(
    server: tuple[str, dict[str, object]],
) -> None:
    address, seen = server
    channel = open_channel(address, caller="tests")
    principal = context.Principal(tenant="acme", subject="ana", roles=("ops",))
    try:
        with context.bind(context.CallContext(principal=principal, request_id="r-1")):
            async for _ in channel.unary_stream(_STREAM)(b"", timeout=5):
                pass
        stream_metadata = seen["stream_metadata"]
        assert isinstance(stream_metadata, dict)
        assert stream_metadata["x-maestro-tenant"] == "acme"
        assert stream_metadata["x-maestro-subject"] == "ana"
        assert stream_metadata["x-request-id"] == "r-1"
        assert stream_metadata["x-maestro-caller"] == "tests"
    finally:
        await channel.close()
