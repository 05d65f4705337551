"""The allow/deny table of the shipped bundle, asked through a real policy server
(Decide and BatchDecide on port 0): tenant isolation on every action, the role
matrix, clearance, purpose and legal basis, reason for access, and every
denial with its reasons and appeal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime.errors import InvalidArgumentError
from maestro.runtime.policy import Action
from maestro.services.policy.config import DEFAULT_BUNDLE
from tests.unit.policy.support import CATALOG, PolicyMesh, policy_mesh, principal, question

# One server for the module: these tests only ask questions.
pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="module")]

CATALOG_DATA = json.loads((DEFAULT_BUNDLE / CATALOG).read_text())
ROLES = sorted(CATALOG_DATA["roles"])
APPEAL_PATH = "https://access.example.com/maestro/requests"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PolicyMesh]:
    async with policy_mesh(tmp_path_factory.mktemp("policy")) as mesh:
        yield mesh


async def decide_all(
    mesh: PolicyMesh, questions: Sequence[pb.DecideRequest]
) -> list[decision_pb2.Decision]:
    decisions: list[decision_pb2.Decision] = []
    for start in range(0, len(questions), 100):
        batch = pb.BatchDecideRequest(requests=questions[start : start + 100])
        decisions.extend((await mesh.client.batch_decide(batch)).decisions)
    return decisions


def codes(decision: decision_pb2.Decision) -> list[str]:
    return [r.code for r in decision.reasons]


async def test_cross_tenant_is_denied_on_every_action_whatever_the_roles(
    mesh: PolicyMesh,
) -> None:
    everyone = principal(*ROLES, clearance="secret", purpose="audit", legal_basis="contract")
    questions = [question(everyone, action, tenant="globex") for action in Action]
    for action, decision in zip(Action, await decide_all(mesh, questions), strict=True):
        assert not decision.allow, action
        assert codes(decision) == ["TENANT_MISMATCH"], action
        assert decision.reasons[0].message == (
            'tenant "acme" may not access resources of tenant "globex"'
        )
        assert decision.reasons[0].rule == "maestro.authz.tenant_denials"
        # Nobody can grant cross-tenant access: the appeal names no grantor.
        assert decision.appeal.path == ""
        assert list(decision.appeal.grantable_by_roles) == []
        assert "never granted" in decision.appeal.instructions


async def test_the_role_matrix_is_the_catalog(mesh: PolicyMesh) -> None:
    cells = [(role, action) for role in ROLES for action in Action]
    decisions = await decide_all(mesh, [question(principal(r), a) for r, a in cells])
    for (role, action), decision in zip(cells, decisions, strict=True):
        allowed = CATALOG_DATA["actions"][action]["roles"]
        assert decision.allow == (role in allowed), (role, action)
        if decision.allow:
            assert codes(decision) == ["ROLE_GRANTED"]
            assert not decision.HasField("appeal")
        else:
            assert codes(decision) == ["ROLE_REQUIRED"], (role, action)
            assert decision.reasons[0].message == (
                f"{action} needs one of the roles {', '.join(sorted(allowed))}; "
                f"the caller has {role}"
            )
            assert list(decision.appeal.grantable_by_roles) == ["admin"]
            assert decision.appeal.path == APPEAL_PATH
            assert decision.appeal.instructions == (
                f"ask a tenant admin for one of the roles {', '.join(sorted(allowed))}"
            )


@pytest.mark.parametrize(
    ("clearance", "level", "label", "expected"),
    [
        ("", "", "", []),
        ("", "public", "", []),
        ("", "internal", "", ["CLEARANCE_TOO_LOW"]),
        ("internal", "internal", "", []),
        ("public", "internal", "", ["CLEARANCE_TOO_LOW"]),
        ("restricted", "internal", "", []),
        ("internal", "internal", "restricted", ["CLEARANCE_TOO_LOW"]),
        ("secret", "", "cosmic", []),
        ("restricted", "", "cosmic", ["CLEARANCE_TOO_LOW"]),
    ],
)
async def test_clearance_against_classification(
    mesh: PolicyMesh, clearance: str, level: str, label: str, expected: list[str]
) -> None:
    # Operators starting executions: not a read, and internal data is not
    # sensitive, so only clearance is in play below confidential.
    labels = {"classification": label} if label else {}
    who = principal("operator", clearance=clearance, purpose="audit", legal_basis="contract")
    request = question(who, "execution.start", level=level, labels=labels)
    decision = (await mesh.client.decide(request)).decision
    assert codes(decision) == (expected or ["ROLE_GRANTED"])
    if expected:
        assert list(decision.appeal.grantable_by_roles) == ["admin"]
        assert decision.appeal.instructions.startswith("request clearance ")


async def test_sensitive_data_needs_purpose_legal_basis_and_for_reads_a_reason(
    mesh: PolicyMesh,
) -> None:
    cleared = {"clearance": "restricted"}
    cases = [
        # (principal attributes, action, level, labels, expected codes)
        (cleared, "execution.start", "confidential", {}, [
            "PURPOSE_REQUIRED", "LEGAL_BASIS_REQUIRED",
        ]),
        (
            {**cleared, "purpose": "curiosity", "legal_basis": "because"},
            "execution.start",
            "restricted",
            {},
            ["PURPOSE_NOT_ALLOWED", "LEGAL_BASIS_NOT_ALLOWED"],
        ),
        (
            {**cleared, "purpose": "incident-response", "legal_basis": "contract"},
            "execution.start",
            "restricted",
            {},
            [],
        ),
        (
            {**cleared, "purpose": "audit", "legal_basis": "legal-obligation"},
            "execution.read",
            "confidential",
            {},
            ["REASON_FOR_ACCESS_REQUIRED"],
        ),
        (
            {**cleared, "purpose": "audit", "legal_basis": "legal-obligation", "reason": "T-42"},
            "execution.read",
            "confidential",
            {},
            [],
        ),
        # Personal data is sensitive whatever its classification.
        ({}, "receipt.read", "", {"pii": "true"}, [
            "PURPOSE_REQUIRED", "LEGAL_BASIS_REQUIRED", "REASON_FOR_ACCESS_REQUIRED",
        ]),
        # Internal data is not sensitive: no purpose, basis or reason needed.
        ({"clearance": "internal"}, "execution.read", "internal", {}, []),
    ]  # fmt: skip
    questions = [
        question(principal("operator", "viewer", **who), action, level=level, labels=labels)
        for who, action, level, labels, _ in cases
    ]
    for case, decision in zip(cases, await decide_all(mesh, questions), strict=True):
        expected = case[-1]
        if not expected:
            assert decision.allow and set(codes(decision)) == {"ROLE_GRANTED"}, case
        else:
            assert codes(decision) == expected, case
            # The caller fixes these alone: nobody to ask, no path.
            assert list(decision.appeal.grantable_by_roles) == []
            assert decision.appeal.path == ""
            assert len(decision.appeal.instructions.split("; ")) == len(expected)


async def test_every_denial_is_listed_in_order_with_one_appeal(mesh: PolicyMesh) -> None:
    decision = (
        await mesh.client.decide(question(principal(), "workflow.read", level="restricted"))
    ).decision
    assert not decision.allow
    assert codes(decision) == [
        "ROLE_REQUIRED",
        "CLEARANCE_TOO_LOW",
        "PURPOSE_REQUIRED",
        "LEGAL_BASIS_REQUIRED",
        "REASON_FOR_ACCESS_REQUIRED",
    ]
    assert decision.reasons[0].message.endswith("; the caller has no roles")
    assert decision.reasons[1].message == (
        "the resource is classified restricted; the caller's clearance is none"
    )
    assert list(decision.appeal.grantable_by_roles) == ["admin"]
    assert decision.appeal.path == APPEAL_PATH
    assert decision.appeal.instructions.split("; ")[:2] == [
        "ask a tenant admin for one of the roles admin, approver, auditor, author, "
        "operator, publisher, viewer",
        "request clearance restricted from a tenant admin",
    ]


async def test_unknown_actions_and_anonymous_callers_are_denied(mesh: PolicyMesh) -> None:
    unknown, anonymous, tenantless = await decide_all(
        mesh,
        [
            question(principal("admin"), "workflow.teleport"),
            question(principal("admin", subject=""), "workflow.read"),
            question(principal("admin", tenant=""), "workflow.read", tenant=""),
        ],
    )
    assert codes(unknown) == ["NO_MATCHING_RULE"]
    assert codes(anonymous) == ["SUBJECT_REQUIRED"]
    assert codes(tenantless) == ["TENANT_REQUIRED"]
    for decision in (unknown, anonymous, tenantless):
        assert decision.appeal.path == "" and list(decision.appeal.grantable_by_roles) == []


async def test_a_decision_says_who_asked_what_and_with_which_bundle(mesh: PolicyMesh) -> None:
    request = question(principal("viewer"), "workflow.read", labels={"team": "pay"})
    decision = (await mesh.client.decide(request)).decision
    assert decision.name.startswith("decisions/") and len(decision.name) == len("decisions/") + 26
    assert decision.bundle_revision.startswith("sha256:")
    assert decision.enforcer == "tests"
    assert decision.principal == request.principal
    assert decision.resource == request.resource
    assert decision.action == "workflow.read"
    assert decision.HasField("create_time") and decision.HasField("evaluation_duration")
    assert not decision.cached
    # The same question again is evaluated from the revision's cache, and logged anew.
    request = question(principal("viewer"), "workflow.read", labels={"team": "pay"})
    again = (await mesh.client.decide(request)).decision
    assert again.cached and again.name != decision.name
    assert again.allow and list(again.reasons) == list(decision.reasons)


async def test_batch_decide_validates_everything_first(mesh: PolicyMesh) -> None:
    good = question(principal("viewer"), "workflow.read")
    bad = pb.DecideRequest(action="workflow.read")
    with pytest.raises(InvalidArgumentError) as caught:
        await mesh.client.batch_decide(pb.BatchDecideRequest(requests=[good, bad]))
    fields = {v.field for v in caught.value.field_violations}
    assert fields == {"requests[1].principal", "requests[1].resource", "requests[1].request_id"}
    with pytest.raises(InvalidArgumentError, match="at most 100"):
        await mesh.client.batch_decide(pb.BatchDecideRequest(requests=[good] * 101))
