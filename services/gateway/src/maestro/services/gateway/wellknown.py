"""``/.well-known/jwks.json``: the signer's public keys, for verifying receipts.

The document is the signer's ``ListPublicKeys`` JWKS (ACTIVE key first, then the
RETIRED ones), served to anyone: public keys are public, and a third party needs
them to verify provenance offline. It is not the dev JWT key, nor the keys that
verify callers' tokens.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from maestro.runtime.clients import SignerClient
from maestro.runtime.errors import (
    DeadlineExceededError,
    UnavailableError,
    UnimplementedError,
)
from maestro.runtime.status import unexpected_error
from maestro.services.gateway.openapi import problems
from maestro.signer.v1 import signer_service_pb2 as signer_pb

log = logging.getLogger("maestro.gateway.wellknown")

JWKS_PATH = "/.well-known/jwks.json"
_CACHE_CONTROL = "public, max-age=60"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks_document(response: signer_pb.ListPublicKeysResponse) -> dict[str, Any]:
    """The JWKS of a ``ListPublicKeys`` answer: its ``jwks_json``, or one built
    from its keys when that is empty.

    Raises:
        ValueError: ``jwks_json`` is not a JWKS document.
    """
    if response.jwks_json:
        document = json.loads(response.jwks_json)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("jwks_json is not a JWKS document")
        return document
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64url(key.public_key),
                "kid": key.key_id,
                "alg": "EdDSA",
                "use": "sig",
            }
            for key in response.keys
        ]
    }


def wellknown_router(signer: SignerClient) -> APIRouter:
    """The public well-known documents."""
    router = APIRouter()

    @router.get(
        JWKS_PATH,
        tags=["operations"],
        summary="The signer's public keys (JWKS, RFC 7517), to verify receipts offline.",
        responses={
            200: {
                "description": "A JWKS document: one Ed25519 JWK per signing key, the "
                "ACTIVE key first.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **problems(503),
        },
    )
    async def jwks() -> JSONResponse:
        try:
            response = await signer.list_public_keys()
        except (UnavailableError, UnimplementedError, DeadlineExceededError) as exc:
            raise UnavailableError(
                "the signer cannot list its public keys right now; retry later",
                reason="DEPENDENCY_UNAVAILABLE",
            ) from exc
        try:
            document = jwks_document(response)
        except ValueError:
            log.exception("the signer answered an unusable JWKS")
            raise unexpected_error() from None
        return JSONResponse(document, headers={"cache-control": _CACHE_CONTROL})

    return router
