"""The gateway's HTTP application (FastAPI).

Cross-cutting behaviour lives here once: request ids, authentication and the
caller's identity (bound for the typed clients to propagate), a server span per
request, RED metrics per route, the body size cap, and errors as RFC 9457
problem+json with the same reason codes as gRPC.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from maestro.runtime import context
from maestro.runtime.context import Principal
from maestro.runtime.errors import Code, FieldViolation, InvalidArgumentError, MaestroError
from maestro.runtime.metrics import LATENCY_BUCKETS
from maestro.runtime.problem import PROBLEM_CONTENT_TYPE
from maestro.runtime.status import unexpected_error
from maestro.services.gateway.auth import (
    Authenticator,
    AuthMetrics,
    is_public,
    www_authenticate,
)
from maestro.services.gateway.backends import BackendMonitor
from maestro.services.gateway.bodies import (
    PAYLOAD_TOO_LARGE,
    BodyLimitMiddleware,
    BodyTooLargeError,
    line_and_column,
    payload_too_large_error,
)
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.executions import executions_router
from maestro.services.gateway.identity import without_identity_headers
from maestro.services.gateway.openapi import install_docs, install_openapi
from maestro.services.gateway.problems import http_problem
from maestro.services.gateway.wellknown import wellknown_router
from maestro.services.gateway.workflows import workflows_router

log = logging.getLogger("maestro.gateway.http")

_HTTP_REASONS = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
# Reasons whose HTTP status is not their canonical code's.
_REASON_STATUS = {"PAYLOAD_TOO_LARGE": PAYLOAD_TOO_LARGE, "RECEIPT_PENDING": 409}


class HttpMetrics:
    """RED metrics of the gateway, by route template."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_server_requests_total",
            "HTTP requests completed, by route template and status code.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "http_server_request_duration_seconds",
            "Time to produce the response, in seconds.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def _problem_response(
    error: MaestroError, request: Request, status: int | None = None
) -> JSONResponse:
    code, body = http_problem(
        error, instance=request.url.path, request_id=context.current().request_id
    )
    status = status or _REASON_STATUS.get(error.reason)
    if status is not None:
        code = body["status"] = status
    headers: dict[str, str] = {}
    if error.code == Code.UNAUTHENTICATED:
        headers["www-authenticate"] = www_authenticate(error)
    if error.retry_after_seconds is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after_seconds)))
    return JSONResponse(body, status_code=code, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


async def authenticate(
    authenticator: Authenticator, request: Request
) -> tuple[Principal, MaestroError | None]:
    """The caller of ``request``, or why it is refused. Public paths need no
    token; a verified identity replaces any x-maestro-* identity headers."""
    if is_public(request.url.path):
        return Principal(), None
    try:
        principal, verified = await authenticator.authenticate(request.headers)
    except MaestroError as exc:  # AuthenticationError, or the issuer's keys unreachable
        return Principal(), exc
    except Exception:
        log.exception("authentication failed unexpectedly")
        return Principal(), unexpected_error()
    if verified:
        request.scope["headers"] = without_identity_headers(request.scope["headers"])
    return principal, None


def _route_template(app: FastAPI, request: Request) -> str:
    """The path template of the route that served ``request``; for a request
    refused before routing (401), of the route it would have reached."""
    route = request.scope.get("route")
    if route is None:
        for candidate in app.router.routes:
            match, _ = candidate.matches(request.scope)
            if match == Match.FULL:
                route = candidate
                break
    return str(getattr(route, "path", "unmatched"))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """A request field path, dotted: ``body.mocks.fetch.fail``, ``query.pageSize``."""
    return ".".join(str(part) for part in loc)


def validation_problem(exc: RequestValidationError) -> InvalidArgumentError:
    """A 400 INVALID_ARGUMENT for FastAPI's request validation errors: malformed
    JSON (with line and column), wrong types and unknown fields."""
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            offset = int(err["loc"][-1]) if err.get("loc") else 0
            text = exc.body if isinstance(exc.body, str) else ""
            line, column = line_and_column(text, offset)
            message = err.get("ctx", {}).get("error", "invalid JSON")
            return InvalidArgumentError(
                f"the request body is not valid JSON: {message} (line {line}, column {column})",
                metadata={"line": str(line), "column": str(column)},
                field_violations=[FieldViolation("body", message, "JSON_INVALID")],
            )
    violations = [
        FieldViolation(
            _field(err.get("loc", ())), err.get("msg", ""), str(err.get("type", "")).upper()
        )
        for err in errors
    ]
    return InvalidArgumentError(
        f"the request is invalid: {len(violations)} problem(s)", field_violations=violations
    )


def _add_operational_routes(
    app: FastAPI, backends: BackendMonitor, registry: CollectorRegistry
) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: every backend reports SERVING over gRPC health.",
        responses={503: {"description": "a backend is not serving"}},
    )
    async def readyz() -> JSONResponse:
        body = {"ready": backends.all_serving, "backends": backends.statuses}
        return JSONResponse(body, status_code=200 if backends.all_serving else 503)

    @app.get("/api/health", tags=["operations"], summary="Health of every backend, probed now.")
    async def api_health() -> dict[str, Any]:
        statuses = await backends.refresh()
        return {
            "ready": backends.all_serving,
            "services": [
                {"service": name, "address": backends.addresses[name], "status": status}
                for name, status in statuses.items()
            ],
        }

    @app.get(
        "/metrics", tags=["operations"], summary="Prometheus metrics.", include_in_schema=False
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    settings: GatewaySettings,
    backends: BackendMonitor,
    registry: CollectorRegistry,
    clients: Clients,
    tracer_provider: TracerProvider,
    *,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """The gateway application; ``authenticator`` defaults to one built from
    ``settings`` (its metrics in ``registry``)."""
    authenticator = authenticator or Authenticator(settings, AuthMetrics(registry))
    app = FastAPI(
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
        title="Maestro API",
        version="v1",
        description="REST gateway to the Maestro workflow orchestration services. Errors "
        "are RFC 9457 `application/problem+json` with the gRPC `reason` codes. Callers "
        "authenticate with a bearer JWT (`Authorization: Bearer <token>`); its claims are "
        "the identity (`sub`; tenant `maestro/tenant` or `tenant`; `roles`, `clearance`, "
        "`purpose`, `legal_basis`, `reason_for_access`). A gateway in dev mode also "
        "accepts requests without a token, as the local admin of tenant `default`.",
    )
    metrics = HttpMetrics(registry)
    tracer = tracer_provider.get_tracer("maestro.gateway")
    # Added first, so it runs inside request_context (request id bound for its 413).
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get(context.REQUEST_ID_KEY) or context.new_request_id()
        started = time.perf_counter()
        call = context.CallContext(
            request_id=request_id,
            caller_service="gateway",
            method=f"{request.method} {request.url.path}",
        )
        with (
            context.bind(call),
            tracer.start_as_current_span(
                f"{request.method} {request.url.path}",
                context=propagate.extract(dict(request.headers)),
                kind=SpanKind.SERVER,
            ) as span,
        ):
            principal, failure = await authenticate(authenticator, request)
            response: Response
            with context.bind(replace(call, principal=principal)):
                if failure is not None:
                    response = _problem_response(failure, request)
                else:
                    try:
                        response = await call_next(request)
                    except Exception:
                        # Anything a handler did not map: INTERNAL, no internals in
                        # the body, the traceback logged under the request id.
                        log.exception("unhandled error in %s %s", request.method, request.url.path)
                        response = _problem_response(unexpected_error(), request)
            if response.status_code >= 500:
                span.set_status(StatusCode.ERROR)
            template = _route_template(app, request)
            span.update_name(f"{request.method} {template}")
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", response.status_code)
            span.set_attribute("maestro.request_id", request_id)
        metrics.requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.latency.labels(request.method, template).observe(time.perf_counter() - started)
        response.headers[context.REQUEST_ID_KEY] = request_id
        return response

    @app.exception_handler(MaestroError)
    async def domain_error(request: Request, exc: MaestroError) -> JSONResponse:
        return _problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLargeError):
            return _problem_response(payload_too_large_error(exc.limit), request)
        reason = _HTTP_REASONS.get(exc.status_code, "INVALID_ARGUMENT")
        return _problem_response(
            InvalidArgumentError(str(exc.detail), reason=reason), request, exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem_response(validation_problem(exc), request)

    _add_operational_routes(app, backends, registry)
    app.include_router(wellknown_router(clients.signer))
    app.include_router(workflows_router(clients))
    app.include_router(
        executions_router(
            clients.scheduler, clients.signer, keepalive_seconds=settings.sse_keepalive_seconds
        )
    )
    install_openapi(app, token_required=settings.auth_mode == "jwt")
    install_docs(app)
    return app
