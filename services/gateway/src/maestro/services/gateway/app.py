"""The gateway's HTTP application (FastAPI).

Cross-cutting behaviour lives here once: request ids, RED metrics per route,
and errors as RFC 9457 problem+json with the same reason codes as gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from maestro.runtime import context
from maestro.runtime.errors import FieldViolation, InvalidArgumentError, MaestroError
from maestro.runtime.metrics import LATENCY_BUCKETS
from maestro.runtime.problem import PROBLEM_CONTENT_TYPE, problem
from maestro.services.gateway.backends import BackendMonitor

_HTTP_REASONS = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


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
    code, body = problem(error, instance=request.url.path, request_id=context.current().request_id)
    if status is not None:
        code = body["status"] = status
    return JSONResponse(body, status_code=code, media_type=PROBLEM_CONTENT_TYPE)


def create_app(backends: BackendMonitor, registry: CollectorRegistry) -> FastAPI:
    """The gateway application."""
    app = FastAPI(
        title="Maestro API",
        version="v1",
        description="REST gateway to the Maestro workflow orchestration services.",
    )
    metrics = HttpMetrics(registry)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get(context.REQUEST_ID_KEY) or context.new_request_id()
        started = time.perf_counter()
        with context.bind(context.CallContext(request_id=request_id, method=request.url.path)):
            response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.latency.labels(request.method, template).observe(time.perf_counter() - started)
        response.headers[context.REQUEST_ID_KEY] = request_id
        return response

    @app.exception_handler(MaestroError)
    async def domain_error(request: Request, exc: MaestroError) -> JSONResponse:
        return _problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = _HTTP_REASONS.get(exc.status_code, "INVALID_ARGUMENT")
        return _problem_response(
            InvalidArgumentError(str(exc.detail), reason=reason), request, exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        violations = [
            FieldViolation(
                "/".join(str(p) for p in err.get("loc", ())),
                err.get("msg", ""),
                err.get("type", ""),
            )
            for err in exc.errors()
        ]
        return _problem_response(
            InvalidArgumentError("the request is invalid", field_violations=violations), request
        )

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

    return app
