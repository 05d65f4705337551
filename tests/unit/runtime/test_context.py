"""Call context: identity metadata, binding, outgoing metadata."""

from __future__ import annotations

import uuid

from maestro.runtime import context
from maestro.runtime.context import CallContext, Principal


def test_principal_round_trip_through_metadata() -> None:
    principal = Principal(
        tenant="acme",
        subject="alice",
        roles=("admin", "author"),
        clearance="secret",
        purpose="ops",
        legal_basis="contract",
        reason_for_access="incident-42",
    )
    pairs = principal.to_metadata()
    assert (context.ROLES_KEY, "admin,author") in pairs
    assert all(k in context.IDENTITY_KEYS for k, _ in pairs)
    assert Principal.from_metadata(pairs) == principal


def test_empty_fields_are_omitted() -> None:
    pairs = Principal(subject="bob").to_metadata()
    assert pairs == [(context.SUBJECT_KEY, "bob")]
    assert Principal().to_metadata() == []
    assert Principal().is_anonymous
    assert not Principal(subject="bob").is_anonymous


def test_from_metadata_decodes_bytes_trims_roles_and_ignores_other_keys() -> None:
    principal = Principal.from_metadata(
        [
            (context.TENANT_KEY, b"acme"),
            (context.ROLES_KEY, " admin , ,viewer "),
            ("user-agent", "grpc-python"),
        ]
    )
    assert principal == Principal(tenant="acme", roles=("admin", "viewer"))


def test_bind_nests_and_restores() -> None:
    outside = context.current()
    assert outside == CallContext()
    outer = CallContext(request_id="outer")
    inner = CallContext(request_id="inner")
    with context.bind(outer) as bound:
        assert bound is outer
        assert context.current() is outer
        with context.bind(inner):
            assert context.current() is inner
        assert context.current() is outer
        with context.bind_step("ex-1", "step-a"):
            assert context.current().request_id == "outer"
            assert context.current().execution_id == "ex-1"
            assert context.current().step_id == "step-a"
        assert context.current().execution_id == ""
    assert context.current() == outside


def test_bind_restores_after_an_exception() -> None:
    try:
        with context.bind(CallContext(request_id="r")):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert context.current().request_id == ""


def test_outgoing_metadata_carries_request_id_caller_and_identity() -> None:
    ctx = CallContext(request_id="rid-7", principal=Principal(tenant="acme", subject="alice"))
    with context.bind(ctx):
        pairs = context.outgoing_metadata("gateway")
    assert pairs == [
        (context.REQUEST_ID_KEY, "rid-7"),
        (context.CALLER_SERVICE_KEY, "gateway"),
        (context.TENANT_KEY, "acme"),
        (context.SUBJECT_KEY, "alice"),
    ]


def test_outgoing_metadata_generates_a_request_id_when_missing() -> None:
    first = dict(context.outgoing_metadata("cli"))
    second = dict(context.outgoing_metadata("cli"))
    rid = first[context.REQUEST_ID_KEY]
    assert str(uuid.UUID(rid)) == rid
    assert second[context.REQUEST_ID_KEY] != rid
    assert first[context.CALLER_SERVICE_KEY] == "cli"
    assert set(first) == {context.REQUEST_ID_KEY, context.CALLER_SERVICE_KEY}
