"""Policy decisions through the real gateway and services: callers identified
by dev JWTs (as `maestro dev-token` issues them) act on workflows and
executions; every denial is a 403 problem+json with the policy's reasons, the
decision id and an appeal path, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from maestro.runtime.context import CallContext, Principal, bind
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.devkey import DevClaims, issue_dev_token, load_or_create_dev_key
from maestro.services.gateway.server import GatewayServer, create_server
from tests.conftest import free_port
from tests.integration.execution.support import Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PUBLIC = """
name: greeter
labels: {classification: public}
steps:
  - {id: hi, type: task, handler: echo, timeout: 5s, input: {who: '"you"'}}
"""
CONFIDENTIAL = """
name: payroll
labels: {classification: confidential}
steps:
  - {id: pay, type: task, handler: noop, timeout: 5s}
"""


@dataclass
class Api:
    http: httpx.AsyncClient
    data_dir: Path

    def token(self, tenant: str, subject: str, *roles: str, **extra: str) -> dict[str, str]:
        key = load_or_create_dev_key(self.data_dir)
        claims = DevClaims(tenant=tenant, subject=subject, roles=roles, **extra)
        token = issue_dev_token(key, claims, audience="maestro", ttl_seconds=600)
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, who: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, path, headers=who, **kwargs)


@pytest.fixture
async def api(mesh: Mesh, tmp_path: Path) -> AsyncIterator[Api]:
    data_dir = tmp_path / "gateway"
    data_dir.mkdir()
    load_or_create_dev_key(data_dir)  # what `maestro dev-token` does first
    policy = mesh.scheduler_options["policy_address"]
    server: GatewayServer = await create_server(
        GatewaySettings(
            port=0,
            data_dir=data_dir,
            compiler_address=f"127.0.0.1:{mesh.compiler.port}",
            registry_address=f"127.0.0.1:{mesh.registry.port}",
            scheduler_address=mesh.scheduler_address,
            executor_address=f"127.0.0.1:{mesh.executors[0].port}",
            policy_address=policy,
            signer_address=f"127.0.0.1:{free_port()}",
        ),
        tracer_provider=TracerProvider(),
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=20
        ) as http:
            yield Api(http, data_dir)
    finally:
        await server.stop()


def assert_denied(response: httpx.Response, *codes: str) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["reason"] == "POLICY_DENIED"
    assert len(problem["decisionId"]) == 26
    found = {r["code"] for r in problem["reasons"]}
    assert set(codes) <= found, (codes, problem["reasons"])
    assert all(r["message"] for r in problem["reasons"])
    return problem


async def test_the_role_and_tenant_matrix_through_the_gateway(mesh: Mesh, api: Api) -> None:
    author = api.token("acme", "ana", "author")
    publisher = api.token("acme", "pete", "publisher")
    operator = api.token("acme", "olga", "operator")
    viewer = api.token("acme", "vic", "viewer")
    intruder = api.token("globex", "eve", "admin")
    yaml = {"content-type": "application/yaml"}

    # Create: authors may, viewers may not.
    denied = await api.call(
        "POST", "/api/workflows?workflowId=greeter", {**viewer, **yaml}, content=PUBLIC
    )
    problem = assert_denied(denied, "ROLE_REQUIRED")
    assert problem["appeal"]["path"]
    created = await api.call(
        "POST", "/api/workflows?workflowId=greeter", {**author, **yaml}, content=PUBLIC
    )
    assert created.status_code == 201, created.text

    # Publish: publishers may, authors may not; another tenant never sees it.
    assert_denied(
        await api.call("POST", "/api/workflows/greeter/publish", author, json={}),
        "ROLE_REQUIRED",
    )
    other_tenant = await api.call("POST", "/api/workflows/greeter/publish", intruder, json={})
    assert other_tenant.status_code == 404, other_tenant.text  # tenant-scoped: invisible
    published = await api.call("POST", "/api/workflows/greeter/publish", publisher, json={})
    assert published.status_code == 201, published.text

    # Execute: operators may; viewers and authors may not; nothing is created.
    for who in (viewer, author):
        assert_denied(
            await api.call(
                "POST",
                "/api/workflows/greeter/execute",
                {**who, "Idempotency-Key": str(uuid.uuid4())},
                json={},
            ),
            "ROLE_REQUIRED",
        )
    listed = await api.call("GET", "/api/executions", operator)
    assert listed.json()["executions"] == []
    started = await api.call(
        "POST",
        "/api/workflows/greeter/execute",
        {**operator, "Idempotency-Key": str(uuid.uuid4())},
        json={},
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["executionId"]
    with bind(CallContext(principal=Principal(tenant="acme", subject="olga"))):
        done = await mesh.wait(f"executions/{execution_id}")
    assert (done.tenant, done.creator) == ("acme", "olga")

    # Cancel/retry of someone else's tenant: not found; a viewer: denied.
    assert (
        await api.call("POST", f"/api/executions/{execution_id}/retry", intruder, json={})
    ).status_code == 404
    assert_denied(
        await api.call("POST", f"/api/executions/{execution_id}/cancel", viewer, json={}),
        "ROLE_REQUIRED",
    )


async def test_clearance_purpose_and_legal_basis_for_confidential_workflows(
    api: Api,
) -> None:
    yaml = {"content-type": "application/yaml"}
    admin = api.token("acme", "ada", "admin")
    created = await api.call(
        "POST", "/api/workflows?workflowId=payroll", {**admin, **yaml}, content=CONFIDENTIAL
    )
    assert created.status_code == 201, created.text
    # An admin without clearance, purpose or legal basis may not publish it.
    problem = assert_denied(
        await api.call("POST", "/api/workflows/payroll/publish", admin, json={}),
        "CLEARANCE_TOO_LOW",
        "PURPOSE_REQUIRED",
        "LEGAL_BASIS_REQUIRED",
    )
    assert len(problem["reasons"]) >= 3
    # Cleared but with an unlisted purpose: still denied, for that reason only.
    cleared = api.token(
        "acme",
        "ada",
        "admin",
        clearance="confidential",
        purpose="curiosity",
        legal_basis="contract",
    )
    assert_denied(
        await api.call("POST", "/api/workflows/payroll/publish", cleared, json={}),
        "PURPOSE_NOT_ALLOWED",
    )
    proper = api.token(
        "acme",
        "ada",
        "admin",
        clearance="confidential",
        purpose="operations",
        legal_basis="contract",
    )
    published = await api.call("POST", "/api/workflows/payroll/publish", proper, json={})
    assert published.status_code == 201, published.text
