"""Canonical form and digest of a workflow definition.

The canonical form is RFC 8785 (JSON Canonicalization Scheme) applied to the
parsed document, so key order, whitespace and YAML vs JSON do not change it,
while any change of a value does. rfc8785 is Trail of Bits' maintained
implementation of the scheme, including its number serialisation rules.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from maestro.runtime.errors import FieldViolation, InvalidArgumentError


def canonical_json(document: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a JSON-compatible value.

    Raises:
        InvalidArgumentError: a number outside the I-JSON domain RFC 8785 requires
            (NaN, Infinity, integers beyond 2**53).
    """
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise InvalidArgumentError(
            f"the definition cannot be canonicalised (RFC 8785): {exc}; numbers must be "
            "finite and integers within +/-2**53",
            field_violations=[FieldViolation("source.content", str(exc), "NUMBER_OUT_OF_RANGE")],
        ) from exc


def digest(document: Any) -> str:
    """Lowercase hex SHA-256 of the canonical form."""
    return hashlib.sha256(canonical_json(document)).hexdigest()
