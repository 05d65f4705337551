"""The gateway application without backends: errors that never reach a
backend, a backend that is down, and unexpected failures — all problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from maestro.services.gateway.app import create_app
from maestro.services.gateway.backends import BackendMonitor
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.config import GatewaySettings
from tests.conftest import free_port

PROBLEM = "application/problem+json"


@pytest.fixture
async def app_and_clients() -> AsyncIterator[tuple[httpx.AsyncClient, Clients]]:
    settings = GatewaySettings(
        registry_address=f"127.0.0.1:{free_port()}",
        compiler_address=f"127.0.0.1:{free_port()}",
        client_timeout_seconds=2,
    )
    clients = Clients.open(settings, TracerProvider())
    backends = BackendMonitor({}, timeout=1, interval=60)
    app = create_app(settings, backends, CollectorRegistry(), clients, TracerProvider())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http, clients
    finally:
        await clients.close()
        await backends.stop()


async def test_malformed_json_body_is_400_with_line_and_column(
    app_and_clients: tuple[httpx.AsyncClient, Clients],
) -> None:
    http, _ = app_and_clients
    response = await http.post(
        "/api/workflows/w-1/promote",
        content=b'{\n  "alias": "stable"\n  "version": "1.0.0"}',
        headers={"content-type": "application/json", "x-request-id": "req-42"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "req-42"
    body = response.json()
    assert body["reason"] == "INVALID_ARGUMENT"
    assert body["metadata"] == {"line": "3", "column": "3"}
    assert body["requestId"] == "req-42"
    assert body["instance"] == "/api/workflows/w-1/promote"


async def test_missing_required_fields_are_violations(
    app_and_clients: tuple[httpx.AsyncClient, Clients],
) -> None:
    http, _ = app_and_clients
    response = await http.post("/api/workflow-builder", json={"pattern": "kanban"})
    assert response.status_code == 400
    violations = {v["field"]: v["reason"] for v in response.json()["violations"]}
    assert violations == {"body.pattern": "LITERAL_ERROR", "body.name": "MISSING"}


async def test_a_backend_that_is_down_is_503(
    app_and_clients: tuple[httpx.AsyncClient, Clients],
) -> None:
    http, _ = app_and_clients
    response = await http.get("/api/workflows/some-flow")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["reason"] == "DEPENDENCY_UNAVAILABLE"
    assert response.json()["code"] == "UNAVAILABLE"


async def test_unexpected_failures_are_500_without_internals(
    app_and_clients: tuple[httpx.AsyncClient, Clients], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, clients = app_and_clients

    async def explode(request: Any) -> Any:
        raise RuntimeError("secret stack detail")

    monkeypatch.setattr(clients.registry, "get_workflow", explode)
    response = await http.get("/api/workflows/some-flow")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["reason"] == "INTERNAL"
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == response.json()["requestId"]


async def test_unknown_routes_and_methods(
    app_and_clients: tuple[httpx.AsyncClient, Clients],
) -> None:
    http, _ = app_and_clients
    missing = await http.get("/api/nope")
    assert (missing.status_code, missing.json()["reason"]) == (404, "ROUTE_NOT_FOUND")
    wrong = await http.patch("/api/workflows/validate")
    assert (wrong.status_code, wrong.json()["reason"]) == (405, "METHOD_NOT_ALLOWED")
