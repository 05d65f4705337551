"""Canonical form and digest of a workflow definition.

The canonical form is RFC 8785 (JSON Canonicalization Scheme) applied to the
normal form of the document (``normalize.py``), so key order, whitespace, YAML
vs JSON and alternative spellings (durations, order of ``needs``) do not change
it, while any change of a value does. rfc8785 is Trail of Bits' maintained
implementation of the scheme, including its number serialisation rules.

``canonical_json`` takes the fast paths of ``maestro.runtime.canonical``
(orjson for plain values, member by member for values with floats) and
rfc8785 itself for anything unusual, so the bytes and the errors are always
rfc8785's: tests check the two agree on arbitrary JSON values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

import rfc8785

from maestro.runtime.canonical import fast_canonical, plain, plain_bytes
from maestro.runtime.errors import FieldViolation, InvalidArgumentError

_HIGH_KEY = re.compile("[\ud800-\U0010ffff]")


def _canonical_items(items: list[Any]) -> list[bytes]:
    """``canonical_json`` of each of ``items``: as that, with the fast path's
    check (``plain``) run once over them all rather than once per item.

    Raises:
        InvalidArgumentError: as ``canonical_json``.
    """
    if not plain(items):
        return [canonical_json(item) for item in items]
    parts = []
    for item in items:
        part = plain_bytes(item)
        parts.append(canonical_json(item) if part is None else part)  # the rare cases
    return parts


def canonical_json(document: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a JSON-compatible value.

    Raises:
        InvalidArgumentError: a number outside the I-JSON domain RFC 8785 requires
            (NaN, Infinity, integers beyond 2**53).
    """
    fast = fast_canonical(document)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise InvalidArgumentError(
            f"the definition cannot be canonicalised (RFC 8785): {exc}; numbers must be "
            "finite and integers within +/-2**53",
            field_violations=[FieldViolation("source.content", str(exc), "NUMBER_OUT_OF_RANGE")],
        ) from exc
    except UnicodeError as exc:  # a lone surrogate (JSON "\udfff") in an object key
        raise InvalidArgumentError(
            "the definition cannot be canonicalised (RFC 8785): it contains a lone UTF-16 "
            "surrogate",
            field_violations=[FieldViolation("source.content", str(exc), "INVALID_UNICODE")],
        ) from exc


def canonical_json_and_steps(
    document: Any, known: Sequence[bytes | None] | None = None
) -> tuple[bytes, list[bytes]]:
    """(``canonical_json(document)``, ``canonical_json`` of each item of its
    ``steps``), the former assembled from the latter, as RFC 8785 composes:
    an object is its members, sorted by key, each written canonically.
    ``known``, when given, holds the canonical JSON of each step where the
    caller has it (None elsewhere).

    Raises:
        InvalidArgumentError: as ``canonical_json``.
    """
    steps = document.get("steps") if type(document) is dict else None
    if type(steps) is not list or any(type(k) is not str or _HIGH_KEY.search(k) for k in document):
        parts = [canonical_json(step) for step in steps] if type(steps) is list else []
        return canonical_json(document), parts
    if known is None or len(known) != len(steps):
        known = [None] * len(steps)
    try:
        missing = [step for step, part in zip(steps, known, strict=True) if part is None]
        computed = iter(_canonical_items(missing))
        parts = [next(computed) if part is None else part for part in known]
        members = [
            encode_basestring(key).encode("utf-8")
            + b":"
            + (b"[" + b",".join(parts) + b"]" if key == "steps" else canonical_json(document[key]))
            for key in sorted(document)
        ]
    except InvalidArgumentError:  # the whole document's error, as canonical_json gives it
        return canonical_json(document), []
    return b"{" + b",".join(members) + b"}", parts


def sha256_hex(canonical: bytes) -> str:
    """Lowercase hex SHA-256 of canonical JSON bytes."""
    return hashlib.sha256(canonical).hexdigest()


def digest(document: Any) -> str:
    """Lowercase hex SHA-256 of the canonical form of ``document`` (callers
    pass the normal form; see ``normalize.normalize``)."""
    return sha256_hex(canonical_json(document))
