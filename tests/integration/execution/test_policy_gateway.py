"""Policy decisions through the real gateway and services: callers identified
by dev JWTs (as `maestro dev-token` issues them) act on workflows and
executions; every denial is a 403 problem+json with the policy's reasons, the
decision id and an appeal path, and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maestro.runtime.context import CallContext, Principal, bind
from tests.devgateway import DevGateway
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

SENSITIVE_APPROVAL = """
name: payout
labels: {classification: public, pii: "true"}
steps:
  - {id: ok, type: human, human: {assignees: ["role:approver"]}}
"""


@pytest.fixture
async def api(mesh: Mesh, tmp_path: Path) -> AsyncIterator[DevGateway]:
    async with mesh.gateway(tmp_path / "gateway") as gateway:
        yield gateway


async def execute(api: DevGateway, workflow: str, who: dict[str, str]) -> httpx.Response:
    """POST /api/workflows/{workflow}/execute as ``who``, with a fresh idempotency key."""
    return await api.call(
        "POST",
        f"/api/workflows/{workflow}/execute",
        {**who, "Idempotency-Key": str(uuid.uuid4())},
        json={},
    )


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


async def test_the_role_and_tenant_matrix_through_the_gateway(mesh: Mesh, api: DevGateway) -> None:
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
        assert_denied(await execute(api, "greeter", who), "ROLE_REQUIRED")
    listed = await api.call("GET", "/api/executions", operator)
    assert listed.json()["executions"] == []
    started = await execute(api, "greeter", operator)
    assert started.status_code == 202, started.text
    execution_id = started.json()["executionId"]
    with bind(CallContext(principal=Principal(tenant="acme", subject="olga", roles=("operator",)))):
        done = await mesh.wait(f"executions/{execution_id}")
    assert (done.tenant, done.creator) == ("acme", "olga")

    # Reads: every role may read; no role, or another tenant, may not.
    for who in (viewer, author, operator):
        read = await api.call("GET", f"/api/executions/{execution_id}", who)
        assert read.status_code == 200, read.text
    nobody = api.token("acme", "nora")
    for read in (
        f"/api/executions/{execution_id}",
        f"/api/executions/{execution_id}/events",
        f"/api/executions/{execution_id}/stream",
        "/api/executions",
        "/api/human-tasks",
        "/api/workflows",
        "/api/workflows/greeter",
        "/api/workflows/greeter/versions",
        "/api/workflows/greeter/versions/latest",
    ):
        assert_denied(await api.call("GET", read, nobody), "ROLE_REQUIRED")
    events = await api.call("GET", f"/api/executions/{execution_id}/events", viewer)
    assert events.status_code == 200 and events.json()["events"], events.text
    assert (await api.call("GET", f"/api/executions/{execution_id}", intruder)).status_code == 404

    # Cancel/retry of someone else's tenant: not found; a viewer: denied.
    assert (
        await api.call("POST", f"/api/executions/{execution_id}/retry", intruder, json={})
    ).status_code == 404
    assert_denied(
        await api.call("POST", f"/api/executions/{execution_id}/cancel", viewer, json={}),
        "ROLE_REQUIRED",
    )


async def test_clearance_purpose_and_legal_basis_for_confidential_workflows(
    api: DevGateway,
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
    sensitive = {"clearance": "confidential", "purpose": "operations", "legal_basis": "contract"}
    proper = api.token("acme", "ada", "admin", **sensitive)
    published = await api.call("POST", "/api/workflows/payroll/publish", proper, json={})
    assert published.status_code == 201, published.text

    # Reading it is a read of sensitive data: the same, plus a reason for access.
    assert_denied(
        await api.call("GET", "/api/workflows/payroll", proper), "REASON_FOR_ACCESS_REQUIRED"
    )
    assert_denied(
        await api.call("GET", "/api/workflows/payroll", admin),
        "CLEARANCE_TOO_LOW",
        "REASON_FOR_ACCESS_REQUIRED",
    )
    reading = api.token("acme", "ada", "admin", **sensitive, reason_for_access="TICKET-42")
    read = await api.call("GET", "/api/workflows/payroll", reading)
    assert read.status_code == 200, read.text
    # A list shows it only to whoever may read it.
    for who, expected in ((proper, []), (reading, ["payroll"])):
        listed = await api.call("GET", "/api/workflows", who)
        assert listed.status_code == 200, listed.text
        assert [w["id"] for w in listed.json()["workflows"]] == expected

    # Starting it is not a read: no reason for access is needed, and the
    # scheduler reads the version it runs on its own authority.
    started = await execute(api, "payroll", proper)
    assert started.status_code == 202, started.text
    # Reading the execution of a sensitive workflow needs the reason, too.
    execution = f"/api/executions/{started.json()['executionId']}"
    assert_denied(await api.call("GET", execution, proper), "REASON_FOR_ACCESS_REQUIRED")
    assert (await api.call("GET", execution, reading)).status_code == 200
    listed = await api.call("GET", "/api/executions", proper)
    assert listed.status_code == 200 and listed.json()["executions"] == []


async def test_human_tasks_are_read_as_part_of_their_execution(mesh: Mesh, api: DevGateway) -> None:
    """A task of a workflow labelled as personal data (sensitive) is listed and
    read only with a reason for access, like its execution."""
    yaml = {"content-type": "application/yaml"}
    sensitive = {"purpose": "operations", "legal_basis": "contract"}
    admin = api.token("acme", "ada", "admin", **sensitive)
    reader = api.token("acme", "ada", "admin", **sensitive, reason_for_access="TICKET-7")
    created = await api.call(
        "POST", "/api/workflows?workflowId=payout", {**admin, **yaml}, content=SENSITIVE_APPROVAL
    )
    assert created.status_code == 201, created.text
    published = await api.call("POST", "/api/workflows/payout/publish", admin, json={})
    assert published.status_code == 201, published.text
    started = await execute(api, "payout", admin)
    assert started.status_code == 202, started.text
    execution_id = started.json()["executionId"]
    params = {"executionId": execution_id}
    tasks: list[dict[str, Any]] = []
    for _ in range(100):  # the human step opens its task right after the start
        listed = await api.call("GET", "/api/human-tasks", reader, params=params)
        assert listed.status_code == 200, listed.text
        tasks = listed.json()["humanTasks"]
        if tasks:
            break
        await asyncio.sleep(0.05)
    assert len(tasks) == 1
    hidden = await api.call("GET", "/api/human-tasks", admin, params=params)
    assert hidden.status_code == 200 and hidden.json()["humanTasks"] == []
    task = f"/api/human-tasks/{tasks[0]['humanTaskId']}"
    assert_denied(await api.call("GET", task, admin), "REASON_FOR_ACCESS_REQUIRED")
    assert (await api.call("GET", task, reader)).status_code == 200
