"""List paging (AIP-158): page sizes and opaque page tokens.

A page token is URL-safe base64 of JSON ``{"k": <last sort key>, "q": <query
hash>}``. Listings are keyset-paginated on the sort key, so a page never repeats
or skips an item because something was inserted since the previous page. The
query hash (``query_hash``) binds a token to the query it came from: reusing it
with another filter, parent, tenant or view is INVALID_PAGE_TOKEN.

A service decodes the key with ``decode_page_token`` and checks its shape,
raising ``bad_page_token()`` when it is not what it encoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from maestro.runtime.errors import FieldViolation, InvalidArgumentError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The page size to use: 0 means ``default``, above ``maximum`` is coerced to
    ``maximum``.

    Raises:
        InvalidArgumentError: ``requested`` is negative (a ``page_size`` field
            violation).
    """
    if requested < 0:
        raise InvalidArgumentError(
            f"page_size must not be negative, got {requested}",
            field_violations=[FieldViolation("page_size", "must be >= 0")],
        )
    return min(requested or default, maximum)


def query_hash(*parts: object) -> str:
    """A short digest of everything that must match between pages (values that
    JSON cannot hold, such as dataclasses, count by their ``str``)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(key: Sequence[Any], query: str) -> str:
    """An opaque token for the page after the item whose sort key is ``key``
    (JSON values) in the query hashed to ``query``."""
    raw = json.dumps({"k": list(key), "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> list[Any]:
    """The sort key inside ``token``.

    Raises:
        InvalidArgumentError: INVALID_PAGE_TOKEN when the token is malformed or
            belongs to another query.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise bad_page_token() from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
        raise bad_page_token()
    if payload.get("q") != query:
        raise bad_page_token("page_token belongs to another query: repeat the first call's fields")
    return list(payload["k"])


def bad_page_token(message: str = "page_token is malformed") -> InvalidArgumentError:
    """The INVALID_PAGE_TOKEN error (with a ``page_token`` field violation)."""
    return InvalidArgumentError(
        message,
        reason="INVALID_PAGE_TOKEN",
        field_violations=[FieldViolation("page_token", message)],
    )
