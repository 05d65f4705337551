"""The development JWT signing key: one Ed25519 key in the data dir.

``maestro dev-token`` signs tokens with it and a dev-mode gateway verifies them
with its public half, so the CLI and the gateway agree without any
configuration beyond a shared data dir. The key is created once
(``<data_dir>/dev-jwt-key.pem``, PKCS#8 PEM, mode 0600) by whoever needs it
first; concurrent creators end up with the same key (the first file linked into
place wins). It is a development convenience only: production runs the gateway
in ``jwt`` mode against a real issuer.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

DEV_KEY_FILE = "dev-jwt-key.pem"
DEV_ISSUER = "maestro-dev"
"""``iss`` of dev tokens; a dev-mode gateway accepts no other issuer."""
DEV_ALGORITHM = "EdDSA"


def dev_key_path(data_dir: Path) -> Path:
    """Where the dev signing key of ``data_dir`` lives."""
    return data_dir / DEV_KEY_FILE


def dev_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    """The dev signing key in PEM ``data``.

    Raises:
        ValueError: ``data`` is not an unencrypted Ed25519 private key in PEM.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_dev_key(path: Path) -> Ed25519PrivateKey:
    """The dev signing key stored at ``path``.

    Raises:
        FileNotFoundError: there is none.
        ValueError: the file is not an Ed25519 private key in PEM.
    """
    try:
        return dev_key_from_pem(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_or_create_dev_key(data_dir: Path) -> Ed25519PrivateKey:
    """The dev signing key of ``data_dir``, generated (0600) on first use."""
    path = dev_key_path(data_dir)
    with contextlib.suppress(FileNotFoundError):
        return load_dev_key(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written completely under a private name, then linked into place: readers
    # never see half a key, and a concurrent creator's key is kept, not replaced.
    staging = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return load_dev_key(path)


def public_jwk(key: Ed25519PublicKey) -> dict[str, Any]:
    """The public JWK of ``key``, its ``kid`` the RFC 7638 thumbprint."""
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key, as_dict=True)
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk.update(alg=DEV_ALGORITHM, use="sig")
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url) of an OKP key."""
    members = {name: jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class DevClaims:
    """The identity a dev token carries (the claims the gateway maps)."""

    tenant: str
    subject: str
    roles: Sequence[str] = ()
    clearance: str = ""
    purpose: str = ""
    legal_basis: str = ""
    reason_for_access: str = ""


def issue_dev_token(
    key: Ed25519PrivateKey,
    claims: DevClaims,
    *,
    audience: str,
    ttl_seconds: float,
    now: float | None = None,
) -> str:
    """A dev token (EdDSA, ``iss`` maestro-dev) for ``claims``, valid ``ttl_seconds``."""
    issued = int(now if now is not None else time.time())
    payload: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": audience,
        "sub": claims.subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl_seconds),
        "maestro/tenant": claims.tenant,
        "roles": list(claims.roles),
    }
    optional = {
        "clearance": claims.clearance,
        "purpose": claims.purpose,
        "legal_basis": claims.legal_basis,
        "reason_for_access": claims.reason_for_access,
    }
    payload.update({name: value for name, value in optional.items() if value})
    kid = public_jwk(key.public_key())["kid"]
    return jwt.encode(payload, key, algorithm=DEV_ALGORITHM, headers={"kid": kid})
