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
from contextlib import asynccontextmanager
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


def _split_method(full_method: str) -> tuple[str, str]:
    _, _, rest = full_method.partition("/")
    service, _, method = rest.partition("/")
    return service, method


def _metadata_value(metadata: Any, key: str) -> str:
    for k, v in metadata or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else str(v)
    return ""


def _verified_caller(ctx: grpc.aio.ServicerContext, metadata: Any) -> str:
    """The calling service proven by a client certificate, or "".

    Native TLS: the peer certificate's SPIFFE id, and then the header is not
    trusted (only a sidecar may set it). Plaintext behind Envoy: the XFCC header
    Envoy sets after verifying the caller's certificate.
    """
    auth = ctx.auth_context() or {}
    if auth.get("transport_security_type") == [b"ssl"]:
        spiffe_ids = auth.get("peer_spiffe_id", ())
        return context.service_from_spiffe_id(spiffe_ids[0].decode()) if spiffe_ids else ""
    return context.service_from_xfcc(_metadata_value(metadata, context.XFCC_KEY))


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Context, metrics, access log and error mapping for one server."""

    def __init__(
        self, service: str, metrics: RpcMetrics, *, anonymous_as_local_admin: bool = False
    ) -> None:
        self._service = service
        self._metrics = metrics
        self._local_admin = anonymous_as_local_admin

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
        scope = self._scope
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
        scope = self._scope
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

    @asynccontextmanager
    async def _scope(
        self, ctx: grpc.aio.ServicerContext, service: str, method: str, kind: str
    ) -> AsyncIterator[None]:
        metadata = ctx.invocation_metadata()
        verified = _verified_caller(ctx, metadata)
        call = context.CallContext(
            request_id=_metadata_value(metadata, context.REQUEST_ID_KEY)
            or context.new_request_id(),
            principal=self._principal(metadata),
            caller_service=verified or _metadata_value(metadata, context.CALLER_SERVICE_KEY),
            caller_verified=bool(verified),
            method=f"{service}/{method}",
        )
        labels = {"grpc_service": service, "grpc_method": method, "grpc_type": kind}
        self._metrics.started.labels(**labels).inc()
        in_flight = self._metrics.in_flight.labels(**labels)
        in_flight.inc()
        started = time.perf_counter()
        recorded = False

        def finish(code: Code) -> None:
            # Recorded before an abort sends the status, so a client that saw
            # the status also sees it counted (metrics and access log).
            nonlocal recorded
            if recorded:
                return
            recorded = True
            elapsed = time.perf_counter() - started
            in_flight.dec()
            self._metrics.handled.labels(**labels, grpc_code=code.name).inc()
            self._metrics.latency.labels(**labels).observe(elapsed)
            log.log(
                logging.DEBUG
                if service in _QUIET_SERVICES or (service in _QUIET_WHEN_OK and code == Code.OK)
                else logging.INFO,
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
