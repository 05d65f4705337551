"""The decision log through a real server: every decision written (secrets
redacted) before it is returned, idempotent by request id, readable with
GetDecision and ListDecisions (tenant-scoped, filtered, paged, policy-checked),
and written on shutdown in the non-durable mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from maestro.policy.v1 import bundle_pb2, policy_service_pb2_grpc
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from maestro.runtime.policy import decision_from_error
from maestro.runtime.status import from_rpc_error
from tests.unit.policy.support import (
    ADMIN,
    AUDITOR,
    PolicyMesh,
    policy_mesh,
    principal,
    question,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[PolicyMesh]:
    async with policy_mesh(tmp_path) as mesh:
        yield mesh


async def test_a_decision_is_logged_with_its_secrets_redacted(mesh: PolicyMesh) -> None:
    request = question(
        principal("author"),
        "workflow.publish",
        extra={
            "source_ip": "10.0.0.1",
            "headers": {"Authorization": "Bearer abc.def.ghi", "x-trace": "t-1"},
            "db": {"password": "hunter2", "url": "secret://vault/db"},
            "note": "token follows: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJl",
            "export": True,
        },
    )
    decided = (await mesh.client.decide(request)).decision
    with mesh.as_(ADMIN):
        logged = (await mesh.client.get_decision(pb.GetDecisionRequest(name=decided.name))).decision
    assert logged == decided
    context_logged = dict(logged.context)
    assert context_logged["source_ip"] == "10.0.0.1"
    assert context_logged["export"] is True
    assert dict(logged.context["headers"]) == {"Authorization": "[REDACTED]", "x-trace": "t-1"}
    # secret:// references are names, not secrets.
    assert dict(logged.context["db"]) == {"password": "[REDACTED]", "url": "secret://vault/db"}
    assert logged.context["note"] == "[REDACTED]"
    assert sorted(logged.redacted_paths) == ["/db/password", "/headers/Authorization", "/note"]


async def test_a_retried_request_id_returns_the_first_decision(mesh: PolicyMesh) -> None:
    request = question(principal("viewer"), "workflow.read", request_id="retry-1")
    first = (await mesh.client.decide(request)).decision
    again = (await mesh.client.decide(request)).decision
    assert again == first
    other = question(principal("viewer"), "workflow.delete", request_id="retry-1")
    with pytest.raises(AlreadyExistsError) as caught:
        await mesh.client.decide(other)
    assert caught.value.metadata["request_id"] == "retry-1"
    with mesh.as_(ADMIN):
        listed = await mesh.client.list_decisions(
            pb.ListDecisionsRequest(filter='enforcer = "tests"')
        )
    assert [d.name for d in listed.decisions] == [first.name]


async def test_a_request_id_logged_before_a_restart_is_found_in_the_log(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    async with policy_mesh(tmp_path) as mesh:
        first = (
            await mesh.client.decide(
                question(principal("viewer"), "workflow.read", request_id="r-9")
            )
        ).decision
    # A new server (empty memory): the log's unique request id finds the first answer.
    async with policy_mesh(tmp_path, bundle=bundle) as mesh:
        again = (
            await mesh.client.decide(
                question(principal("viewer"), "workflow.read", request_id="r-9")
            )
        ).decision
        assert again == first
        with pytest.raises(AlreadyExistsError):
            await mesh.client.decide(
                question(principal("admin"), "workflow.read", request_id="r-9")
            )


async def test_list_decisions_filters_pages_and_stays_in_the_tenant(mesh: PolicyMesh) -> None:
    made = []
    for _ in range(5):
        made.append(
            (await mesh.client.decide(question(principal("viewer"), "workflow.read"))).decision
        )
    denied = (await mesh.client.decide(question(principal("viewer"), "workflow.delete"))).decision
    cross = (
        await mesh.client.decide(
            question(principal("admin", tenant="globex", subject="gus"), "workflow.read")
        )
    ).decision
    elsewhere = (
        await mesh.client.decide(
            question(principal("admin", tenant="globex"), "workflow.read", tenant="globex")
        )
    ).decision

    async def names(**fields: object) -> list[str]:
        pages: list[str] = []
        token = ""
        while True:
            response = await mesh.client.list_decisions(
                pb.ListDecisionsRequest(page_token=token, **fields)  # type: ignore[arg-type]
            )
            pages.extend(d.name for d in response.decisions)
            token = response.next_page_token
            if not token:
                return pages

    with mesh.as_(AUDITOR):
        everything = await names(filter='enforcer = "tests"', page_size=2)
        # Newest first; globex's own decisions are not acme's business, but a
        # globex principal's attempt on an acme resource is.
        assert everything == [d.name for d in reversed([*made, denied, cross])]
        oldest_first = await names(filter='enforcer = "tests"', order_by="create_time asc")
        assert oldest_first == [d.name for d in [*made, denied, cross]]
        assert await names(filter='allow = false AND resource.tenant = "acme"') == [
            cross.name,
            denied.name,
        ]
        assert await names(filter='principal.tenant = "globex"') == [cross.name]
        assert await names(filter='action = "workflow.delete"') == [denied.name]
        since = made[2].create_time.ToJsonString()
        assert await names(filter=f'enforcer = "tests" AND create_time >= "{since}"') == [
            d.name for d in reversed([made[2], made[3], made[4], denied, cross])
        ]
        with pytest.raises(NotFoundError) as missing:
            await mesh.client.get_decision(pb.GetDecisionRequest(name=elsewhere.name))
        assert missing.value.reason == "DECISION_NOT_FOUND"
        for bad in (
            pb.ListDecisionsRequest(filter="colour = blue"),
            pb.ListDecisionsRequest(order_by="action"),
            pb.ListDecisionsRequest(page_size=-1),
            pb.ListDecisionsRequest(page_token="bogus"),
        ):
            with pytest.raises(InvalidArgumentError):
                await mesh.client.list_decisions(bad)
        with pytest.raises(InvalidArgumentError):
            await mesh.client.get_decision(pb.GetDecisionRequest(name="decisions/nope"))


async def test_reading_the_log_is_itself_decided_and_logged(mesh: PolicyMesh) -> None:
    with mesh.as_(principal("viewer")), pytest.raises(PermissionDeniedError) as caught:
        await mesh.client.list_decisions(pb.ListDecisionsRequest())
    denial = decision_from_error(caught.value)
    assert denial is not None
    assert [r.code for r in denial.reasons] == ["ROLE_REQUIRED"]
    assert caught.value.metadata["action"] == "decision.read"
    with mesh.as_(AUDITOR):
        logged = (
            await mesh.client.get_decision(
                pb.GetDecisionRequest(name=f"decisions/{denial.decision_id}")
            )
        ).decision
        assert (logged.enforcer, logged.action, logged.allow) == ("policy", "decision.read", False)
        own = await mesh.client.list_decisions(
            pb.ListDecisionsRequest(filter='enforcer = "policy"')
        )
        # The denial, this list's own allow, and the GetDecision's allow.
        assert [d.allow for d in own.decisions] == [True, True, False]


async def test_decide_is_for_services_and_validates_questions(mesh: PolicyMesh) -> None:
    # A caller that names no service (no mTLS identity, no x-maestro-caller).
    async with grpc.aio.insecure_channel(mesh.address) as channel:
        stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.Decide(question(principal("viewer"), "workflow.read"))
        assert isinstance(from_rpc_error(raw.value), UnauthenticatedError)
    with pytest.raises(InvalidArgumentError) as caught:
        await mesh.client.decide(pb.DecideRequest())
    assert {v.field for v in caught.value.field_violations} == {
        "principal",
        "action",
        "resource",
        "request_id",
    }
    big = question(principal("viewer"), "workflow.read", extra={"blob": "x" * 70_000})
    with pytest.raises(InvalidArgumentError, match="context"):
        await mesh.client.decide(big)


async def test_without_a_valid_bundle_every_decision_fails_closed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rego"
    broken.write_text("package maestro.authz\n\nimport rego.v1\n\ndecision := {\n")
    async with policy_mesh(tmp_path, bundle=broken) as mesh:
        with pytest.raises(FailedPreconditionError) as caught:
            await mesh.client.decide(question(principal("admin"), "workflow.read"))
        assert caught.value.reason == "POLICY_BUNDLE_INVALID"
        with context.bind(context.CallContext(principal=principal())):
            status = (await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())).bundle
        assert status.state == bundle_pb2.BUNDLE_STATE_NOT_LOADED
        assert status.last_error.file == "broken.rego"
        assert status.last_error.line == 5
        assert not mesh.server.readiness.ready


async def test_non_durable_mode_writes_queued_decisions_on_shutdown(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    async with policy_mesh(tmp_path, decision_log_durable=False) as mesh:
        made = [
            (await mesh.client.decide(question(principal("viewer"), "workflow.read"))).decision
            for _ in range(20)
        ]
        # Readable at once, from the queue or the log.
        with mesh.as_(ADMIN):
            got = await mesh.client.get_decision(pb.GetDecisionRequest(name=made[-1].name))
        assert got.decision == made[-1]
    async with policy_mesh(tmp_path, bundle=bundle) as mesh:
        listed = await _list_as(mesh, ADMIN, 'enforcer = "tests"')
    assert {d.name for d in listed.decisions} == {d.name for d in made}


async def _list_as(
    mesh: PolicyMesh, who: context.Principal, query: str
) -> pb.ListDecisionsResponse:
    with mesh.as_(who):
        return await mesh.client.list_decisions(
            pb.ListDecisionsRequest(filter=query, page_size=100)
        )
