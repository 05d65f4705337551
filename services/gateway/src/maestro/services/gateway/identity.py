"""Who is calling: the principal of an HTTP request.

For now the gateway trusts the ``x-maestro-tenant``/``x-maestro-subject``/
``x-maestro-roles`` (and the other ``x-maestro-*`` identity) request headers, the
same keys the services read from gRPC metadata, and fills what is missing from
settings (tenant ``default``, subject ``local-admin``). This is a development
identity: JWT verification replaces it in the governance work, and in
production only Envoy may set these headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from maestro.runtime import context
from maestro.runtime.context import Principal


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
    return Principal(
        tenant=given.tenant or default_tenant,
        subject=given.subject or default_subject,
        roles=given.roles if roles_header is not None else tuple(default_roles),
        clearance=given.clearance,
        purpose=given.purpose,
        legal_basis=given.legal_basis,
        reason_for_access=given.reason_for_access,
    )
