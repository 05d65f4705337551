"""Who is calling: the principal of an HTTP request.

In ``jwt`` mode (and in ``dev`` mode for a request that carries a token) the
principal comes only from the claims of a verified token
(:func:`principal_from_claims`). A dev-mode request without a token is a
development identity: its ``x-maestro-*`` headers, the same keys the services
read from gRPC metadata, with defaults from settings for what is missing
(:func:`principal_from_headers`). Either way the principal is bound as the
request's ``CallContext`` and forwarded to the backends as those metadata keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maestro.runtime import context
from maestro.runtime.context import Principal

TENANT_CLAIMS = ("maestro/tenant", "tenant")
"""Where a token names the tenant, first match wins (namespaced claim first)."""
_CLAIMS: dict[str, tuple[str, ...]] = {
    "roles": ("maestro/roles", "roles"),
    "clearance": ("maestro/clearance", "clearance"),
    "purpose": ("maestro/purpose", "purpose"),
    "legal_basis": ("maestro/legal_basis", "legal_basis", "maestro/legalBasis", "legalBasis"),
    "reason_for_access": (
        "maestro/reason_for_access",
        "reason_for_access",
        "maestro/reasonForAccess",
        "reasonForAccess",
    ),
}
# Identity travels as gRPC metadata: printable ASCII only, and bounded.
_METADATA_TEXT = re.compile(r"^[\x20-\x7e]{1,256}$")
_ROLE = re.compile(r"^[\x21-\x2b\x2d-\x7e]{1,128}$")  # printable, no space, no comma
_ROLE_SEPARATORS = re.compile(r"[,\s]+")


class ClaimError(ValueError):
    """A verified token whose claims name no usable identity."""


def principal_from_headers(
    headers: Mapping[str, str],
    *,
    default_tenant: str,
    default_subject: str,
    default_roles: Sequence[str] = (),
) -> Principal:
    """The caller's principal from identity headers, defaults filling the gaps.

    ``headers`` must be case-insensitive (as Starlette's are) or lower-case.
    """
    given = Principal.from_metadata(
        (key, value) for key in context.IDENTITY_KEYS if (value := headers.get(key, "").strip())
    )
    roles_header = headers.get(context.ROLES_KEY)
    local = context.LOCAL_ADMIN if not given.subject else Principal()
    return Principal(
        tenant=given.tenant or default_tenant,
        subject=given.subject or default_subject,
        roles=given.roles if roles_header is not None else tuple(default_roles),
        clearance=given.clearance or local.clearance,
        purpose=given.purpose or local.purpose,
        legal_basis=given.legal_basis or local.legal_basis,
        reason_for_access=given.reason_for_access or local.reason_for_access,
    )


def _first(claims: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = claims.get(name)
        if value is not None and value != "":
            return value
    return None


def _text(claims: Mapping[str, Any], names: Sequence[str], *, required: bool = False) -> str:
    label = names[1] if len(names) > 1 else names[0]
    value = _first(claims, names)
    if value is None:
        if required:
            raise ClaimError(f"the token has no {label} claim")
        return ""
    if not isinstance(value, str) or not _METADATA_TEXT.match(value):
        raise ClaimError(f"the {label} claim is not printable ASCII of at most 256 characters")
    return value


def _roles(claims: Mapping[str, Any]) -> tuple[str, ...]:
    value = _first(claims, _CLAIMS["roles"])
    if value is None:
        return ()
    items = _ROLE_SEPARATORS.split(value.strip()) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ClaimError("the roles claim is neither a list nor a string")
    roles = []
    for role in items:
        if not isinstance(role, str) or not _ROLE.match(role):
            raise ClaimError("a role is not printable ASCII without spaces or commas")
        if role not in roles:
            roles.append(role)
    return tuple(roles)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal named by the claims of a verified token.

    ``sub`` is the subject; the tenant is ``maestro/tenant`` or ``tenant``
    (required); ``roles`` is a list (or a space- or comma-separated string);
    ``clearance``, ``purpose``, ``legal_basis`` (or ``legalBasis``) and
    ``reason_for_access`` (or ``reasonForAccess``) are strings. Each may also
    be namespaced ``maestro/<claim>``, which wins.

    Raises:
        ClaimError: a required claim is missing, or a value cannot travel as
            metadata (not printable ASCII; a role with a comma).
    """
    return Principal(
        tenant=_text(claims, TENANT_CLAIMS, required=True),
        subject=_text(claims, ("sub",), required=True),
        roles=_roles(claims),
        clearance=_text(claims, _CLAIMS["clearance"]),
        purpose=_text(claims, _CLAIMS["purpose"]),
        legal_basis=_text(claims, _CLAIMS["legal_basis"]),
        reason_for_access=_text(claims, _CLAIMS["reason_for_access"]),
    )


def without_identity_headers(
    raw_headers: Sequence[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """ASGI headers less the ``x-maestro-*`` identity ones, so no handler can
    mistake a client's claim for the verified identity."""
    identity = {key.encode("latin-1") for key in context.IDENTITY_KEYS}
    return [(k, v) for k, v in raw_headers if k.lower() not in identity]
