"""``maestro dev-token``: a bearer token that a dev-mode gateway accepts.

The token is signed with the dev key in the gateway's data dir
(``<data_dir>/dev-jwt-key.pem``, created on first use), the same file the
gateway verifies with, so ``curl -H "Authorization: Bearer $(maestro dev-token
...)"`` acts as whoever the options name. Development only: a gateway in ``jwt``
mode trusts only its configured issuer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.devkey import DevClaims, issue_dev_token, load_or_create_dev_key
from maestro.services.gateway.identity import ClaimError, principal_from_claims

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_ttl(text: str) -> int:
    """Seconds in ``90``, ``90s``, ``30m``, ``1h`` or ``7d``.

    Raises:
        typer.BadParameter: anything else, or zero.
    """
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(f"expected a duration such as 90s, 30m, 1h or 7d, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def _roles(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))


def dev_token(
    *,
    tenant: Annotated[str, typer.Option(help="Tenant (claim maestro/tenant).")] = "default",
    subject: Annotated[str, typer.Option(help="Subject (claim sub).")] = "local-admin",
    roles: Annotated[str, typer.Option(help="Comma-separated roles (claim roles).")] = "admin",
    clearance: Annotated[
        str, typer.Option(help="Clearance, e.g. CONFIDENTIAL (claim clearance).")
    ] = "",
    purpose: Annotated[str, typer.Option(help="Purpose of the access (claim purpose).")] = "",
    legal_basis: Annotated[
        str, typer.Option("--legal-basis", help="Legal basis (claim legal_basis).")
    ] = "",
    reason: Annotated[str, typer.Option(help="Reason for access (claim reason_for_access).")] = "",
    ttl: Annotated[
        str, typer.Option(help="Lifetime: 90s, 30m, 1h, 7d (a bare number is seconds).")
    ] = "1h",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The gateway's data dir, where the dev key lives (default: "
            "MAESTRO_GATEWAY_DATA_DIR, else .maestro as for `maestro up`).",
        ),
    ] = None,
) -> None:
    """Print a bearer token for a gateway in dev mode (auth_mode=dev).

    The token (EdDSA, 1 hour by default) is signed with the dev key in the
    gateway's data dir, created there on first use. Use it as
    `Authorization: Bearer <token>`.
    """
    seconds = parse_ttl(ttl)
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        Console(stderr=True).print(f"invalid MAESTRO_GATEWAY_* settings: {exc}", markup=False)
        raise typer.Exit(2) from exc
    claims = DevClaims(
        tenant=tenant,
        subject=subject,
        roles=_roles(roles),
        clearance=clearance,
        purpose=purpose,
        legal_basis=legal_basis,
        reason_for_access=reason,
    )
    try:  # the gateway would refuse a token naming no usable identity: say so now
        principal_from_claims(
            {
                "sub": subject,
                "tenant": tenant,
                "roles": list(claims.roles),
                "clearance": clearance,
                "purpose": purpose,
                "legal_basis": legal_basis,
                "reason_for_access": reason,
            }
        )
    except ClaimError as exc:
        raise typer.BadParameter(str(exc)) from exc
    key = load_or_create_dev_key(data_dir if data_dir is not None else settings.data_dir)
    token = issue_dev_token(key, claims, audience=settings.jwt_audience, ttl_seconds=seconds)
    typer.echo(token)
