"""One conformance suite for both Rego engines (regopy, the default, and regorus):
the same questions on the shipped bundle give identical verdicts (allow, every
reason's code, message and rule, the appeal), the bundle's own Rego tests give
the same results, and broken bundles are refused by both with file and line.

The question table is generated from the bundle's catalog and config, so a new
action, role, level, purpose or legal basis is covered without editing it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.services.policy.bundle import BundleFiles, BundleLoadError, read_source
from maestro.services.policy.config import DEFAULT_BUNDLE
from maestro.services.policy.engine import (
    ENGINE_NAMES,
    CompiledPolicy,
    EngineName,
    PolicyEngine,
    Verdict,
    create_engine,
)
from tests.unit.policy.support import (
    AUTHZ,
    CATALOG,
    copy_bundle,
    edit,
    policy_mesh,
    principal,
    question,
)

pytestmark = pytest.mark.timeout(60)

CATALOG_DATA = json.loads((DEFAULT_BUNDLE / CATALOG).read_text())
CONFIG_DATA = json.loads((DEFAULT_BUNDLE / "maestro/config/data.json").read_text())
ACTIONS: list[str] = sorted(CATALOG_DATA["actions"])
ROLES: list[str] = sorted(CATALOG_DATA["roles"])
READ_ACTIONS = [a for a in ACTIONS if CATALOG_DATA["actions"][a]["read"]]
WRITE_ACTIONS = [a for a in ACTIONS if not CATALOG_DATA["actions"][a]["read"]]
LEVELS: list[str] = sorted(
    CONFIG_DATA["classification_levels"], key=lambda n: CONFIG_DATA["classification_levels"][n]
)
PURPOSES: list[str] = CONFIG_DATA["purposes"]
LEGAL_BASES: list[str] = CONFIG_DATA["legal_bases"]
REASON_CODES = {
    "SUBJECT_REQUIRED",
    "TENANT_REQUIRED",
    "TENANT_MISMATCH",
    "NO_MATCHING_RULE",
    "ROLE_REQUIRED",
    "CLEARANCE_TOO_LOW",
    "PURPOSE_REQUIRED",
    "PURPOSE_NOT_ALLOWED",
    "LEGAL_BASIS_REQUIRED",
    "LEGAL_BASIS_NOT_ALLOWED",
    "REASON_FOR_ACCESS_REQUIRED",
    "ROLE_GRANTED",
}


def ask(
    action: Any = "workflow.read",
    *,
    roles: Any = ("viewer",),
    tenant: Any = "acme",
    subject: Any = "ana",
    clearance: Any = "",
    purpose: Any = "",
    legal_basis: Any = "",
    reason: Any = "",
    resource_tenant: Any = "acme",
    classification: Any = "",
    labels: Any = None,
) -> dict[str, Any]:
    """An input document as the service builds it (README: "The input")."""
    return {
        "principal": {
            "tenant": tenant,
            "subject": subject,
            "roles": list(roles) if isinstance(roles, tuple) else roles,
            "clearance": clearance,
            "purpose": purpose,
            "legal_basis": legal_basis,
            "reason_for_access": reason,
        },
        "action": action,
        "resource": {
            "type": action.partition(".")[0] if isinstance(action, str) else "",
            "name": "workflows/payroll",
            "tenant": resource_tenant,
            "classification": classification,
            "labels": {} if labels is None else labels,
        },
        "context": {},
        "enforcer": "registry",
    }


Case = tuple[str, Any]
SENSITIVITIES: list[tuple[str, dict[str, Any]]] = [
    ("pii", {"labels": {"pii": "true"}}),
    ("confidential", {"classification": "confidential", "clearance": "secret"}),
    ("pii=false", {"labels": {"pii": "false"}}),
    ("plain", {}),
]


def _matrix() -> Iterator[Case]:
    """Every action (and some that are not) x each role set."""
    unknown = ["workflow.run", "workflow", "", "WORKFLOW.READ", "admin", "workflow.read "]
    role_sets: list[tuple[str, ...]] = [
        (),
        *[(r,) for r in ROLES],
        ("viewer", "operator"),
        ("author", "publisher"),
        tuple(ROLES),
        ("superuser",),
        ("Admin",),
    ]
    for action in [*ACTIONS, *unknown]:
        for roles in role_sets:
            yield f"matrix {action!r} {'+'.join(roles) or 'no roles'}", ask(action, roles=roles)


def _tenants() -> Iterator[Case]:
    """Cross-tenant, or a tenant missing on either side, whatever the roles."""
    pairs = [("acme", "globex"), ("", "acme"), ("acme", ""), ("", "")]
    for action in ACTIONS:
        for roles in [("admin",), ("viewer",), ()]:
            for tenant, resource_tenant in pairs:
                yield (
                    f"tenant {tenant or '-'}->{resource_tenant or '-'} {action} {roles}",
                    ask(action, roles=roles, tenant=tenant, resource_tenant=resource_tenant),
                )


def _clearances() -> Iterator[Case]:
    """Clearance vs classification (on the resource and as a label)."""
    clearances = ["", *LEVELS, "top-secret", "SECRET", " internal "]
    classifications = ["", *LEVELS, "ultra", "Confidential"]
    # Purpose, legal basis and reason given, so that only the levels decide.
    full = {"purpose": PURPOSES[0], "legal_basis": LEGAL_BASES[0], "reason": "TICKET-1"}
    for clearance in clearances:
        for level in classifications:
            yield (
                f"clearance {clearance!r} vs classification {level!r}",
                ask(clearance=clearance, classification=level, **full),
            )
            yield (
                f"clearance {clearance!r} vs label {level!r}",
                ask(
                    "execution.start",
                    roles=("operator",),
                    clearance=clearance,
                    labels={"classification": level},
                ),
            )
    for resource_level, label_level in [
        ("internal", "secret"),
        ("secret", "internal"),
        ("public", "ultra"),
    ]:
        yield (
            f"classification {resource_level} and label {label_level}",
            ask(
                clearance="restricted",
                classification=resource_level,
                labels={"classification": label_level},
                **full,
            ),
        )


def _purposes() -> Iterator[Case]:
    """Purpose and legal basis on sensitive data and on data that is not."""
    for name, sensitivity in SENSITIVITIES:
        for purpose in ["", *PURPOSES, "marketing", " audit "]:
            for legal_basis in ["", *LEGAL_BASES, "because"]:
                yield (
                    f"{name} purpose {purpose!r} legal basis {legal_basis!r}",
                    ask(
                        "workflow.update",
                        roles=("author",),
                        purpose=purpose,
                        legal_basis=legal_basis,
                        **sensitivity,
                    ),
                )


def _reasons_for_access() -> Iterator[Case]:
    """A reason for access on sensitive reads (and writes, which need none)."""
    for action in [*READ_ACTIONS, *WRITE_ACTIONS]:
        for name, sensitivity in SENSITIVITIES:
            for reason in ["", "TICKET-42", "   "]:
                yield (
                    f"reason {reason!r} {action} {name}",
                    ask(
                        action,
                        roles=("admin",),
                        purpose="audit",
                        legal_basis="contract",
                        reason=reason,
                        **sensitivity,
                    ),
                )


def _identities() -> Iterator[Case]:
    """Anonymous and partial identities, and odd but well-typed values."""
    for subject in ["", "  ", "ana"]:
        for tenant in ["", "acme"]:
            for roles in [(), ("admin",)]:
                for action in ["workflow.read", "bundle.reload", "nope"]:
                    yield (
                        f"identity {subject!r}@{tenant!r} {roles} {action}",
                        ask(action, roles=roles, subject=subject, tenant=tenant),
                    )
    yield (
        "everything denied at once",
        ask(
            "workflow.publish",
            roles=("viewer",),
            resource_tenant="globex",
            classification="secret",
            labels={"pii": "true"},
            purpose="marketing",
            legal_basis="because",
        ),
    )
    yield "empty input", {}
    yield "no principal", {"action": "workflow.read", "resource": {"tenant": "acme"}}
    yield (
        "no resource",
        {
            "principal": {"tenant": "acme", "subject": "ana", "roles": ["viewer"]},
            "action": "workflow.read",
        },
    )
    yield "roles repeated", ask(roles=["viewer", "viewer", "admin"])
    yield (
        "unicode everywhere",
        ask(subject="Zoë 東京", purpose="audit ✓", labels={"pii": "true", "ключ": "значение"}),
    )
    yield "long strings", ask(subject="x" * 10_000, resource_tenant="acme" * 1000)
    yield (
        "extra fields",
        {**ask(), "extra": {"nested": [1, {"a": None}]}, "context": {"k": [1.5, -2]}},
    )
    yield "floats and big numbers", {**ask(), "context": {"n": 1e300, "m": -0.0, "i": 2**53}}


CASES: list[Case] = [
    *_matrix(),
    *_tenants(),
    *_clearances(),
    *_purposes(),
    *_reasons_for_access(),
    *_identities(),
]
"""Well-typed inputs: every input the service can build from a DecideRequest
has this shape (strings, a list of role strings, a string map of labels)."""

MALFORMED: list[tuple[str, Any]] = [
    ("null input", None),
    ("input is a list", [1, 2]),
    ("input is a string", "workflow.read"),
    ("principal is a list", {**ask(), "principal": ["ana"]}),
    ("resource is a string", {**ask(), "resource": "workflows/payroll"}),
    ("subject is a number", ask(subject=42)),
    ("tenant is a list", ask(tenant=["acme"])),
    ("clearance is a number", ask(clearance=5, classification="secret")),
    ("roles is a string", ask(roles="admin")),
    ("roles is null", ask(roles=None)),
    ("roles is an object", ask(roles={"admin": True})),
    ("roles hold numbers", ask(roles=[1, 2.5, None, True])),
    ("action is a number", ask(7)),
    ("action is null", {**ask(), "action": None}),
    ("classification is a number", ask(classification=3)),
    ("labels is a list", ask(labels=["pii"])),
    ("pii label is a bool", ask(labels={"pii": True})),
]
"""Ill-typed inputs the service never sends (Decide builds typed documents).
The shipped policy checks the input's shape before deciding, so both engines
deny each one the same way, with INPUT_INVALID: without that check, a check
whose expression is undefined on rego-cpp (as on OPA) would read as "no
denial" and allow, while regorus raises a type error."""


def test_the_table_is_broad() -> None:
    assert len(CASES) >= 500
    names = [name for name, _ in CASES] + [name for name, _ in MALFORMED]
    assert len(set(names)) == len(names), "case names must be unique"


@pytest.fixture(scope="module")
def bundle() -> BundleFiles:
    return read_source(DEFAULT_BUNDLE)


@pytest.fixture(scope="module")
def policies(bundle: BundleFiles) -> dict[EngineName, CompiledPolicy]:
    return {name: create_engine(name).compile(bundle) for name in ENGINE_NAMES}


@pytest.mark.parametrize(("name", "document"), CASES, ids=[name for name, _ in CASES])
def test_both_engines_give_the_same_verdict(
    policies: Mapping[EngineName, CompiledPolicy], name: str, document: Any
) -> None:
    regopy, regorus = (policies[e].evaluate(document) for e in ENGINE_NAMES)
    assert regorus == regopy
    assert all(r.code in REASON_CODES for r in regopy.reasons), regopy  # no POLICY_ERROR


@pytest.mark.parametrize(("name", "document"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_ill_typed_inputs_are_denied_the_same_way(
    policies: Mapping[EngineName, CompiledPolicy], name: str, document: Any
) -> None:
    regopy, regorus = (policies[e].evaluate(document) for e in ENGINE_NAMES)
    assert regorus == regopy
    assert not regopy.allow
    assert [r.code for r in regopy.reasons] == ["INPUT_INVALID"]


def test_the_table_reaches_every_reason_code(
    policies: Mapping[EngineName, CompiledPolicy],
) -> None:
    seen: set[str] = set()
    allowed = denied = appealable = 0
    for _, document in CASES:
        verdict = policies["regopy"].evaluate(document)
        seen.update(r.code for r in verdict.reasons)
        allowed += verdict.allow
        denied += not verdict.allow
        appealable += bool(verdict.appeal and verdict.appeal.grantable_by_roles)
    assert seen == REASON_CODES
    assert min(allowed, denied, appealable) >= 50, (allowed, denied, appealable)


def test_the_matrix_follows_the_catalog(policies: Mapping[EngineName, CompiledPolicy]) -> None:
    for engine in ENGINE_NAMES:
        for action in ACTIONS:
            for role in ROLES:
                verdict = policies[engine].evaluate(ask(action, roles=(role,)))
                assert verdict.allow == (role in CATALOG_DATA["actions"][action]["roles"])


async def test_decide_over_grpc_answers_alike_on_both_engines(tmp_path: Path) -> None:
    # The server wiring (MAESTRO_POLICY_ENGINE): the bundle compiles on a worker
    # thread and decisions are evaluated on the event loop.
    questions = [
        question(principal("viewer"), "workflow.read"),
        question(
            principal("author", clearance="internal", purpose="audit"),
            "workflow.publish",
            level="confidential",
            labels={"pii": "true"},
        ),
        question(principal("admin"), "bundle.reload", tenant="globex"),
        question(principal(), "execution.start", level="secret"),
    ]
    answers: dict[str, list[tuple[bool, list[tuple[str, str, str]], str]]] = {}
    for name in ENGINE_NAMES:
        async with policy_mesh(tmp_path / name, engine=name) as mesh:
            batch = pb.BatchDecideRequest(requests=questions)
            decisions = (await mesh.client.batch_decide(batch)).decisions
            answers[name] = [
                (
                    d.allow,
                    [(r.code, r.message, r.rule) for r in d.reasons],
                    d.appeal.SerializeToString(deterministic=True).hex(),
                )
                for d in decisions
            ]
    assert answers["regorus"] == answers["regopy"]
    assert [allow for allow, _, _ in answers["regopy"]] == [True, False, False, False]


def test_regorus_answers_alike_from_many_threads(
    policies: Mapping[EngineName, CompiledPolicy],
) -> None:
    # regorus engines are bound to their thread: each thread gets its own.
    documents = [document for _, document in CASES[:: max(1, len(CASES) // 60)]]
    documents += [document for _, document in MALFORMED]
    expected = [policies["regorus"].evaluate(d) for d in documents]
    results: dict[int, list[Verdict]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = [policies["regorus"].evaluate(d) for d in documents * 3]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(verdicts == expected * 3 for verdicts in results.values())


# -- the bundle's own tests -----------------------------------------------------------


def test_the_shipped_bundle_tests_pass_on_both_with_the_same_counts(bundle: BundleFiles) -> None:
    summaries = {name: create_engine(name).compile(bundle).run_tests() for name in ENGINE_NAMES}
    assert summaries["regopy"].failed == summaries["regorus"].failed == 0
    assert summaries["regopy"].passed == summaries["regorus"].passed >= 25
    assert summaries["regopy"].skipped == summaries["regorus"].skipped


def test_a_failing_bundle_test_is_named_by_both(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path / "b")
    edit(
        copy / CATALOG,
        '"workflow.update": {"roles": ["admin", "author"]',
        '"workflow.update": {"roles": ["admin", "author", "publisher"]',
    )
    candidate = read_source(copy)
    for name in ENGINE_NAMES:
        summary = create_engine(name).compile(candidate).run_tests()
        assert summary.failed == 1, name
        assert summary.failed_tests == (
            "maestro.authz_test.test_publisher_publishes_and_promotes",
        ), name


def test_todo_tests_are_skipped_and_broken_tests_refused_by_both(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path / "b")
    test_file = copy / "maestro/authz/authz_test.rego"
    test_file.write_text(test_file.read_text() + "\ntodo_test_later if false\n")
    summaries = [create_engine(n).compile(read_source(copy)).run_tests() for n in ENGINE_NAMES]
    assert summaries[0].skipped == summaries[1].skipped == 1
    test_file.write_text(test_file.read_text() + "\ntest_broken if {\n")
    for name in ENGINE_NAMES:
        with pytest.raises(BundleLoadError, match="the bundle tests do not compile") as caught:
            create_engine(name).compile(read_source(copy)).run_tests()
        assert caught.value.file == "maestro/authz/authz_test.rego", name
        assert caught.value.line > 0, name
        assert caught.value.tests is not None and caught.value.tests.failed >= 25, name


# -- broken bundles -------------------------------------------------------------------

BROKEN = [
    # (old, new, whether both report the line of `old`; otherwise each reports
    # where it noticed)
    ("decision := decide(input)", "decision := decide(input))", True),
    ("text(obj, key) := trim_space", "text(obj, key) = = trim_space", True),
    ('final_codes := {\n\t"TENANT_MISMATCH"', 'final_codes := {\n\t"TENANT_MISMATCH" "X"', False),
    ("quoted(s) := concat(", "quoted(s) := conca t(", False),
    # Unclosed brackets: rego-cpp points at the opening, regorus where parsing failed.
    ("decision := decide(input)", "decision := decide(input\n\nbroken :=", False),
    ('f.subject == ""\n]', 'f.subject == ""\n', False),
]


@pytest.mark.parametrize(("old", "new", "same_line"), BROKEN, ids=[new for _, new, _ in BROKEN])
def test_a_broken_bundle_is_refused_by_both_with_file_and_line(
    tmp_path: Path, old: str, new: str, same_line: bool
) -> None:
    copy = copy_bundle(tmp_path / "b")
    text = (copy / AUTHZ).read_text()
    line = text[: text.index(old)].count("\n") + 1
    edit(copy / AUTHZ, old, new)
    candidate = read_source(copy)
    lines = (copy / AUTHZ).read_text().count("\n") + 1
    reported: dict[str, int] = {}
    for name in ENGINE_NAMES:
        with pytest.raises(BundleLoadError) as caught:
            create_engine(name).compile(candidate)
        error = caught.value
        assert error.file == "maestro/authz/authz.rego", name
        assert 0 < error.line <= lines, name
        assert error.message.startswith(f"maestro/authz/authz.rego:{error.line}: "), name
        assert error.revision == candidate.revision, name
        reported[name] = error.line
    if same_line:
        assert reported == {"regopy": line, "regorus": line}


@pytest.mark.parametrize(
    "source",
    [
        "package other\n\nimport rego.v1\n\nx := 1\n",
        "package maestro.authz\n\nimport rego.v1\n\ndecision := null\n",
        'package maestro.authz\n\nimport rego.v1\n\ndecision := {"allow": z}\n',
        'package maestro.authz\n\nimport rego.v1\n\ndecision := {"allow": nofn(1)}\n',
        'package maestro.authz\n\nimport rego.v1\n\ndecision := {"allow": true}\ndecision := 1\n',
    ],
    ids=["no entry point", "null decision", "unsafe variable", "unknown function", "conflict"],
)
def test_a_bundle_without_a_decision_is_refused_by_both(tmp_path: Path, source: str) -> None:
    path = tmp_path / "policy.rego"
    path.write_text(source)
    for name in ENGINE_NAMES:
        with pytest.raises(BundleLoadError, match="does not return a decision document"):
            create_engine(name).compile(read_source(path))


def test_sets_come_back_as_sorted_lists_on_both(tmp_path: Path) -> None:
    path = tmp_path / "sets.rego"
    path.write_text(
        "package maestro.authz\n\nimport rego.v1\n\n"
        "decision := {\n"
        '\t"allow": false,\n'
        '\t"reasons": {{"code": "B", "message": "b"}, {"code": "A", "message": "a"}},\n'
        '\t"appeal": {"path": "p", "grantable_by_roles": {"zed", "admin", "mid"}},\n'
        "}\n"
    )
    verdicts = [create_engine(n).compile(read_source(path)).evaluate({}) for n in ENGINE_NAMES]
    assert verdicts[0] == verdicts[1]
    assert [r.code for r in verdicts[0].reasons] == ["A", "B"]
    assert verdicts[0].appeal is not None
    assert verdicts[0].appeal.grantable_by_roles == ("admin", "mid", "zed")


def test_unknown_engine_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown policy engine"):
        create_engine("opa")  # type: ignore[arg-type]


def test_engines_are_policy_engines() -> None:
    engines: list[PolicyEngine] = [create_engine(n) for n in ENGINE_NAMES]
    assert [e.name for e in engines] == list(ENGINE_NAMES)
