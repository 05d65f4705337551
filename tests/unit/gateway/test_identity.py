"""The principal of an HTTP request: identity headers, defaults for the rest."""

from __future__ import annotations

from maestro.runtime.context import Principal
from maestro.services.gateway.identity import principal_from_headers

DEFAULTS = {"default_tenant": "default", "default_subject": "local-admin"}


def test_no_headers_is_the_local_admin_of_the_default_tenant() -> None:
    principal = principal_from_headers({}, **DEFAULTS, default_roles=("admin",))
    # cleared for every classification, with a purpose and legal basis (LOCAL_ADMIN)
    assert principal == Principal(
        tenant="default",
        subject="local-admin",
        roles=("admin",),
        clearance="restricted",
        purpose="operations",
        legal_basis="legitimate-interests",
        reason_for_access="local development",
    )


def test_headers_win_over_defaults() -> None:
    headers = {
        "x-maestro-tenant": "acme",
        "x-maestro-subject": "ana",
        "x-maestro-roles": "author, reviewer,",
        "x-maestro-purpose": "audit",
        "x-unrelated": "ignored",
    }
    principal = principal_from_headers(headers, **DEFAULTS, default_roles=("admin",))
    assert principal.tenant == "acme"
    assert principal.subject == "ana"
    assert principal.roles == ("author", "reviewer")
    assert principal.purpose == "audit"


def test_partial_identity_keeps_the_other_defaults() -> None:
    principal = principal_from_headers({"x-maestro-subject": "bob"}, **DEFAULTS)
    assert (principal.tenant, principal.subject, principal.roles) == ("default", "bob", ())


def test_an_empty_roles_header_means_no_roles_not_the_default() -> None:
    principal = principal_from_headers(
        {"x-maestro-roles": ""}, **DEFAULTS, default_roles=("admin",)
    )
    assert principal.roles == ()


def test_blank_values_count_as_absent() -> None:
    principal = principal_from_headers({"x-maestro-tenant": "  "}, **DEFAULTS)
    assert principal.tenant == "default"
