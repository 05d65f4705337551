"""Canonical form and digest of a workflow definition.

The canonical form is RFC 8785 (JSON Canonicalization Scheme) applied to the
normal form of the document (``normalize.py``), so key order, whitespace, YAML
vs JSON and alternative spellings (durations, order of ``needs``) do not change
it, while any change of a value does. rfc8785 is Trail of Bits' maintained
implementation of the scheme, including its number serialisation rules.

``canonical_json`` has a fast path that writes strings with the standard
library's C JSON string encoder (RFC 8785 escapes exactly the same characters)
and sorts keys by code point when no key holds a character at or above U+D800
(where code point and UTF-16 order agree); floats still go through rfc8785.
Anything unusual (a key outside that range, an integer outside the I-JSON
domain, a non-JSON type, a lone surrogate) takes rfc8785 itself, so the bytes
and the errors are always rfc8785's: tests check the two agree on arbitrary
JSON values.
"""

from __future__ import annotations

import hashlib
import re
from json.encoder import encode_basestring
from typing import Any

import rfc8785

from maestro.runtime.errors import FieldViolation, InvalidArgumentError

_SAFE_INT = 2**53 - 1
_HIGH_KEY = re.compile("[\ud800-\U0010ffff]")


class _UnusualValueError(Exception):
    """The fast path does not handle this value; rfc8785 decides."""


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return str(encode_basestring(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int and -_SAFE_INT <= value <= _SAFE_INT:
        return str(value)
    if type(value) is float:
        return rfc8785.dumps(value).decode()
    raise _UnusualValueError


def _write(value: Any, out: list[str]) -> None:
    if type(value) is dict:
        keys = list(value)
        if any(type(k) is not str or _HIGH_KEY.search(k) for k in keys):
            raise _UnusualValueError
        keys.sort()
        out.append("{")
        for i, key in enumerate(keys):
            out.append(("," if i else "") + encode_basestring(key) + ":")
            _write(value[key], out)
        out.append("}")
    elif type(value) is list:
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append(_scalar(value))


def _fast_canonical(document: Any) -> bytes | None:
    out: list[str] = []
    try:
        _write(document, out)
        return "".join(out).encode("utf-8")
    except (_UnusualValueError, UnicodeEncodeError, rfc8785.CanonicalizationError):
        return None


def canonical_json(document: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a JSON-compatible value.

    Raises:
        InvalidArgumentError: a number outside the I-JSON domain RFC 8785 requires
            (NaN, Infinity, integers beyond 2**53).
    """
    fast = _fast_canonical(document)
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


def sha256_hex(canonical: bytes) -> str:
    """Lowercase hex SHA-256 of canonical JSON bytes."""
    return hashlib.sha256(canonical).hexdigest()


def digest(document: Any) -> str:
    """Lowercase hex SHA-256 of the canonical form of ``document`` (callers
    pass the normal form; see ``normalize.normalize``)."""
    return sha256_hex(canonical_json(document))
