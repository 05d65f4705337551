"""The server interceptor every Maestro server runs.

For each call it binds the call context (request id, caller identity, caller
service — verified from the client certificate when there is one) from
metadata, records RED metrics, writes one access-log record, and maps errors
once: a :class:`MaestroError` becomes its canonical code with the rich
status in the trailers; any other exception becomes ``INTERNAL`` with no
internals in the message, logged with its traceback under the request id.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc

from maestro.runtime import context
from maestro.runtime.errors import Code, MaestroError, UnimplementedError
from maestro.runtime.metrics import RpcMetrics
from maestro.runtime.status import grpc_code, trailing_metadata, unexpected_error

log = logging.getLogger("maestro.rpc")

# Infrastructure services whose calls are logged at DEBUG, not INFO.
_QUIET_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
# The worker protocol: thousands of polls, heartbeats and reports a second,
# each already journaled by the scheduler; logged at INFO only when they fail.
_QUIET_WHEN_OK = frozenset({"maestro.scheduler.v1.TaskQueueService"})


def is_lean(lean: frozenset[str], service: str, method: str) -> bool:
    """Whether calls of ``service/method`` are served lean (see
    ``ServiceSpec.lean``): the service or the method is listed."""
    return bool(lean) and (service in lean or f"{service}/{method}" in lean)


class UnlessLean(grpc.aio.ServerInterceptor):
    """Runs ``inner`` (the OpenTelemetry interceptor) on every call except the
    lean ones, which get no span: for them it is most of the runtime's cost."""

    def __init__(self, inner: grpc.aio.ServerInterceptor, lean: frozenset[str]) -> None:
        self._inner = inner
        self._lean = lean

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if self._lean and is_lean(self._lean, *_split_method(handler_call_details.method)):
            return await continuation(handler_call_details)
        return await self._inner.intercept_service(continuation, handler_call_details)


def _access_log(level: int, call: context.CallContext, code: Code, elapsed: float) -> None:
    """The access-log record of one call (``call.method`` is ``service/method``)."""
    service, _, method = call.method.partition("/")
    log.log(
        level,
        "rpc %s/%s %s",
        service,
        method,
        code.name,
        extra={
            "grpc_service": service,
            "grpc_method": method,
            "grpc_code": code.name,
            "caller_verified": call.caller_verified,
            "duration_ms": round(elapsed * 1000, 3),
        },
    )


def _split_method(full_method: str) -> tuple[str, str]:
    _, _, rest = full_method.partition("/")
    service, _, method = rest.partition("/")
    return service, method


def _metadata_value(metadata: Any, key: str) -> str:
    for k, v in metadata or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else str(v)
    return ""


def _verified_caller(ctx: grpc.aio.ServicerContext, metadata: Any, *, tls: bool = True) -> str:
    """The calling service proven by a client certificate, or "".

    Native TLS: the peer certificate's SPIFFE id, and then the header is not
    trusted (only a sidecar may set it). Plaintext behind Envoy: the XFCC header
    Envoy sets after verifying the caller's certificate. ``tls`` False (a
    server with no TLS port) skips asking grpc for the auth context, which is
    then never TLS and costs a few percent of a busy server's CPU.
    """
    auth = (ctx.auth_context() or {}) if tls else {}
    if auth.get("transport_security_type") == [b"ssl"]:
        spiffe_ids = auth.get("peer_spiffe_id", ())
        return context.service_from_spiffe_id(spiffe_ids[0].decode()) if spiffe_ids else ""
    return context.service_from_xfcc(_metadata_value(metadata, context.XFCC_KEY))


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Context, metrics, access log and error mapping for one server."""

    def __init__(
        self,
        service: str,
        metrics: RpcMetrics,
        *,
        anonymous_as_local_admin: bool = False,
        lean: frozenset[str] = frozenset(),
        tls: bool = True,
    ) -> None:
        """``lean``: services and ``service/method``s served lean (see
        ``ServiceSpec.lean``); ``tls``: whether the server has a TLS port."""
        self._service = service
        self._metrics = metrics
        self._local_admin = anonymous_as_local_admin
        self._lean = lean
        self._tls = tls

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        service, method = _split_method(handler_call_details.method)
        return self._wrap(handler, service, method)

    def _wrap(
        self, handler: grpc.RpcMethodHandler, service: str, method: str
    ) -> grpc.RpcMethodHandler:
        scope = self._lean_scope if is_lean(self._lean, service, method) else self._scope
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                async with scope(ctx, service, method, "unary"):
                    return await inner_uu(request, ctx)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
        if handler.stream_unary:
            inner_su = handler.stream_unary

            async def stream_unary(requests: Any, ctx: grpc.aio.ServicerContext) -> Any:
                async with scope(ctx, service, method, "client_stream"):
                    return await inner_su(requests, ctx)

            return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_streaming(handler.unary_stream, service, method, "server_stream"),
                **codec,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_streaming(handler.stream_stream, service, method, "bidi_stream"), **codec
        )

    def _wrap_streaming(
        self, inner: Callable[..., Any], service: str, method: str, kind: str
    ) -> Callable[..., Any]:
        scope = self._lean_scope if is_lean(self._lean, service, method) else self._scope
        if inspect.isasyncgenfunction(inner):

            async def generator(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async with scope(ctx, service, method, kind):
                    async for item in inner(request, ctx):
                        yield item

            return generator

        # A handler that writes with ``context.write`` and returns None.
        async def writer(request: Any, ctx: grpc.aio.ServicerContext) -> None:
            async with scope(ctx, service, method, kind):
                await inner(request, ctx)

        return writer

    def _principal(self, metadata: Any) -> context.Principal:
        principal = context.Principal.from_metadata(
            (k, v) for k, v in (metadata or ()) if k in context.IDENTITY_KEYS
        )
        if principal.is_anonymous and self._local_admin:
            return replace(context.LOCAL_ADMIN, tenant=principal.tenant or "default")
        return principal

    def _call_context(
        self, ctx: grpc.aio.ServicerContext, service: str, method: str
    ) -> context.CallContext:
        metadata = ctx.invocation_metadata()
        verified = _verified_caller(ctx, metadata, tls=self._tls)
        return context.CallContext(
            request_id=_metadata_value(metadata, context.REQUEST_ID_KEY)
            or context.new_request_id(),
            principal=self._principal(metadata),
            caller_service=verified or _metadata_value(metadata, context.CALLER_SERVICE_KEY),
            caller_verified=bool(verified),
            method=f"{service}/{method}",
        )

    def _scope(
        self, ctx: grpc.aio.ServicerContext, service: str, method: str, kind: str
    ) -> AbstractAsyncContextManager[None]:
        call = self._call_context(ctx, service, method)
        labels = {"grpc_service": service, "grpc_method": method, "grpc_type": kind}
        self._metrics.started.labels(**labels).inc()
        in_flight = self._metrics.in_flight.labels(**labels)
        in_flight.inc()
        started = time.perf_counter()

        def finish(code: Code) -> None:
            elapsed = time.perf_counter() - started
            in_flight.dec()
            self._metrics.handled.labels(**labels, grpc_code=code.name).inc()
            self._metrics.latency.labels(**labels).observe(elapsed)
            quiet = service in _QUIET_SERVICES or (service in _QUIET_WHEN_OK and code == Code.OK)
            _access_log(logging.DEBUG if quiet else logging.INFO, call, code, elapsed)

        return self._guard(ctx, call, service, method, finish)

    def _lean_scope(
        self, ctx: grpc.aio.ServicerContext, service: str, method: str, kind: str
    ) -> AbstractAsyncContextManager[None]:
        """``_scope`` without the latency histogram, in-flight gauge and
        started counter, and with an access-log record only for failures."""
        call = self._call_context(ctx, service, method)
        started = time.perf_counter()

        def finish(code: Code) -> None:
            self._metrics.handled.labels(service, method, kind, code.name).inc()
            if code != Code.OK:
                _access_log(logging.INFO, call, code, time.perf_counter() - started)

        return self._guard(ctx, call, service, method, finish)

    @asynccontextmanager
    async def _guard(
        self,
        ctx: grpc.aio.ServicerContext,
        call: context.CallContext,
        service: str,
        method: str,
        record: Callable[[Code], None],
    ) -> AsyncIterator[None]:
        """Binds the call context and maps errors once; ``record`` sees the
        call's code exactly once."""
        recorded = False

        def finish(code: Code) -> None:
            # Recorded before an abort sends the status, so a client that saw
            # the status also sees it counted (metrics and access log).
            nonlocal recorded
            if recorded:
                return
            recorded = True
            record(code)

        async def fail(error: MaestroError) -> None:
            finish(error.code)
            await ctx.abort(grpc_code(error.code), error.message, trailing_metadata(error))

        with context.bind(call):
            try:
                yield
            except MaestroError as err:
                await fail(err)
            except grpc.aio.AbortError:
                finish(_context_code(ctx))
                raise
            except asyncio.CancelledError:
                finish(Code.CANCELLED)
                raise
            except NotImplementedError:
                # The generated base servicer's answer for a method not built yet.
                await fail(
                    UnimplementedError(f"{service}/{method} is not implemented by this server")
                )
            except Exception:
                log.exception("unhandled error in %s/%s", service, method)
                await fail(unexpected_error())
            finally:
                finish(Code.OK)


def _context_code(ctx: grpc.aio.ServicerContext) -> Code:
    code = ctx.code() if hasattr(ctx, "code") else None
    if isinstance(code, grpc.StatusCode):
        return Code(code.value[0])
    if isinstance(code, int):
        return Code(code)
    return Code.UNKNOWN
