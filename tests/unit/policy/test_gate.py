"""The enforcement client (``maestro.runtime.policy``) against a real policy
server: the question built from the call's principal, the TTL cache, the
denial error's layout, and failing closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.errors import PermissionDeniedError, UnavailableError
from maestro.runtime.policy import (
    Action,
    PolicyAppeal,
    PolicyDecision,
    decision_from_error,
    denial_error,
    open_policy_gate,
    reasons_of,
)
from tests.conftest import free_port
from tests.unit.policy.support import ADMIN, PolicyMesh, policy_mesh, principal, sample

# One server for the module; each test has gates of its own.
pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PolicyMesh]:
    async with policy_mesh(tmp_path_factory.mktemp("policy")) as mesh:
        yield mesh


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_check_asks_about_the_calls_principal_and_returns_the_allow(
    mesh: PolicyMesh,
) -> None:
    gate = mesh.gate(ttl_seconds=0)
    who = principal(
        "viewer", clearance="CONFIDENTIAL", purpose="audit", legal_basis="contract", reason="T-7"
    )
    with mesh.as_(who):
        decision = await gate.check(
            Action.EXECUTION_READ,
            resource="executions/e-1",
            classification="confidential",
            labels={"team": "pay"},
            context={"reason": "dashboard"},
        )
    assert decision.allow and not decision.cached
    with mesh.as_(ADMIN):
        logged = (
            await mesh.client.get_decision(pb.GetDecisionRequest(name=decision.name))
        ).decision
    # The question as the gate built it: principal from the call, resource type
    # from the action, tenant from the principal.
    assert logged.principal.subject == "ana" and logged.principal.clearance == 3
    assert list(logged.principal.roles) == ["viewer"]
    assert (logged.resource.type, logged.resource.name, logged.resource.tenant) == (
        "execution",
        "executions/e-1",
        "acme",
    )
    assert logged.resource.classification == 3
    assert dict(logged.resource.labels) == {"team": "pay"}
    assert dict(logged.context) == {"reason": "dashboard"}
    assert logged.principal.reason_for_access == "T-7"
    assert [r.code for r in decision.reasons] == ["ROLE_GRANTED"]


async def test_a_denial_raises_with_the_decision_reasons_and_appeal(mesh: PolicyMesh) -> None:
    gate = mesh.gate()
    with mesh.as_(principal("author")), pytest.raises(PermissionDeniedError) as caught:
        await gate.check(Action.WORKFLOW_PUBLISH, resource="workflows/payroll")
    error = caught.value
    assert error.reason == "POLICY_DENIED"
    assert set(error.metadata) == {"decision_id", "action", "bundle_revision", "reasons", "appeal"}
    assert error.metadata["action"] == "workflow.publish"
    assert json.loads(error.metadata["reasons"]) == [
        {
            "code": "ROLE_REQUIRED",
            "message": "workflow.publish needs one of the roles admin, publisher; "
            "the caller has author",
        }
    ]
    assert json.loads(error.metadata["appeal"]) == {
        "path": "https://access.example.com/maestro/requests",
        "grantableByRoles": ["admin"],
        "grantableBySubjects": [],
        "instructions": "ask a tenant admin for one of the roles admin, publisher",
    }
    assert str(error) == (
        "workflow.publish denied by policy: workflow.publish needs one of the roles "
        "admin, publisher; the caller has author"
    )
    denial = decision_from_error(error)
    assert denial is not None and not denial.allow
    assert denial.decision_id == error.metadata["decision_id"]
    assert denial.appeal == PolicyAppeal(
        path="https://access.example.com/maestro/requests",
        grantable_by_roles=("admin",),
        instructions="ask a tenant admin for one of the roles admin, publisher",
    )
    # The same as typed details: Reason messages and one Appeal.
    assert [r.code for r in error.details if isinstance(r, decision_pb2.Reason)] == [
        "ROLE_REQUIRED"
    ]
    assert [type(d).__name__ for d in error.details] == ["Reason", "Appeal"]


async def test_the_denial_details_survive_the_wire(mesh: PolicyMesh) -> None:
    # A service raising the gate's error to its own caller: the status carries
    # the metadata and the typed details across.
    denial = PolicyDecision(
        decision_id="01J0000000000000000000000Z",
        allow=False,
        reasons=(),
        bundle_revision="sha256:x",
    )
    error = denial_error(denial, action="workflow.read")
    assert error.metadata["reasons"] == "[]" and "appeal" not in error.metadata
    assert str(error) == "workflow.read denied by policy: no rule allows it"
    with mesh.as_(principal("viewer")), pytest.raises(PermissionDeniedError) as caught:
        await mesh.client.list_decisions(pb.ListDecisionsRequest())
    raw = getattr(caught.value, "raw_details", ())
    assert [r.code for r in reasons_of(raw)] == ["ROLE_REQUIRED"]
    assert decision_from_error(caught.value) is not None


async def test_answers_are_cached_for_the_ttl_allows_and_denials_alike(
    mesh: PolicyMesh,
) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    gate = mesh.gate(ttl_seconds=5, clock=clock, registry=registry)
    with mesh.as_(principal("viewer")):
        first = await gate.check("workflow.read", resource="workflows/a")
        cached = await gate.check("workflow.read", resource="workflows/a")
        other = await gate.check("workflow.read", resource="workflows/b")
        denied = []
        for _ in range(2):
            with pytest.raises(PermissionDeniedError) as caught:
                await gate.check("workflow.delete", resource="workflows/a")
            denied.append(caught.value.metadata["decision_id"])
        clock.now += 5.1
        expired = await gate.check("workflow.read", resource="workflows/a")
        # Another principal asks another question.
        with context.bind(context.CallContext(principal=principal("admin"))):
            admins = await gate.check("workflow.read", resource="workflows/a")
    assert cached.cached and cached.decision_id == first.decision_id
    assert not other.cached and other.decision_id != first.decision_id
    assert denied[0] == denied[1]
    assert not expired.cached and expired.decision_id != first.decision_id
    assert admins.decision_id not in (first.decision_id, expired.decision_id)
    assert sample(registry, "maestro_policy_client_cache_total", result="hit") == 2
    assert sample(registry, "maestro_policy_client_cache_total", result="miss") == 5
    assert sample(registry, "maestro_policy_client_checks_total", result="allow") == 4
    assert sample(registry, "maestro_policy_client_checks_total", result="deny") == 1
    assert len(gate) == 4


async def test_concurrent_identical_checks_ask_once(mesh: PolicyMesh) -> None:
    gate = mesh.gate(ttl_seconds=5)
    with mesh.as_(principal("viewer")):
        decisions = await asyncio.gather(
            *(gate.check("receipt.read", resource="receipts/r-1") for _ in range(20))
        )
    assert len({d.decision_id for d in decisions}) == 1
    # No other test of this module reads receipts.
    metrics, name = mesh.server.registry, "maestro_policy_decisions_total"
    assert sample(metrics, name, action="receipt.read", result="allow") == 1


async def test_readable_keeps_what_the_caller_may_read_asking_once_per_label_set(
    mesh: PolicyMesh,
) -> None:
    gate = mesh.gate(ttl_seconds=0)  # no cache: each question reaches the server

    def asked() -> float:
        metrics, name = mesh.server.registry, "maestro_policy_decisions_total"
        return sum(
            sample(metrics, name, action="workflow.read", result=r) or 0 for r in ("allow", "deny")
        )

    before = asked()
    items = [
        ("a", {}),
        ("b", {"classification": "internal"}),
        ("c", {}),
        ("d", {"classification": "restricted"}),
        ("e", {"classification": "internal"}),
    ]
    with mesh.as_(principal("viewer", clearance="INTERNAL")):
        kept = await gate.readable(Action.WORKFLOW_READ, "workflows/-", items, lambda item: item[1])
    assert [name for name, _ in kept] == ["a", "b", "c", "e"]  # restricted is above INTERNAL
    assert asked() - before == 3  # one question per distinct label set
    with mesh.as_(principal()):  # no role: nothing is readable
        assert await gate.readable(Action.WORKFLOW_READ, "workflows/-", items, lambda i: i[1]) == []


async def test_resource_tenant_and_principal_can_be_given(mesh: PolicyMesh) -> None:
    gate = mesh.gate(ttl_seconds=0)
    with mesh.as_(principal("admin")):
        with pytest.raises(PermissionDeniedError) as caught:
            await gate.check("workflow.read", resource="workflows/a", tenant="globex")
        assert "TENANT_MISMATCH" in caught.value.metadata["reasons"]
        # An explicit principal (a service acting for a stored owner, say).
        with pytest.raises(PermissionDeniedError):
            await gate.check(
                "workflow.delete", resource="workflows/a", principal=principal("viewer")
            )


async def test_the_policy_service_unreachable_fails_closed() -> None:
    gate = open_policy_gate(f"127.0.0.1:{free_port()}", caller="tests", timeout=0.5)
    try:
        with (
            context.bind(context.CallContext(principal=principal("admin"))),
            pytest.raises(UnavailableError) as caught,
        ):
            await gate.check("workflow.read", resource="workflows/a")
    finally:
        await gate.close()
    assert caught.value.reason == "DEPENDENCY_UNAVAILABLE"
    assert caught.value.metadata["dependency"] == "policy"


async def test_no_valid_bundle_fails_closed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rego"
    broken.write_text("package maestro.authz\n")
    async with policy_mesh(tmp_path, bundle=broken) as mesh:
        with mesh.as_(principal("admin")), pytest.raises(UnavailableError) as caught:
            await mesh.gate().check("workflow.read")
    assert caught.value.metadata == {"dependency": "policy", "cause": "POLICY_BUNDLE_INVALID"}
