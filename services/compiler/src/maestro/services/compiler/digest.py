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
import json
import re
from collections.abc import Sequence
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


_SCALARS = frozenset({str, bool, type(None)})
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> bool:
    """Whether ``json.dumps`` (sorted keys, no spaces, no ASCII escaping)
    writes ``value`` as RFC 8785 does, given that the result has no character
    at or above U+D800: only dicts with str keys, lists, strings, booleans,
    null and integers within +/-(2**53 - 1), and no floats (RFC 8785 and Python
    print some differently)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            members: Any = item.values()
        elif kind is list:
            members = item
        else:
            members = (item,)
        for member in members:
            member_kind = type(member)
            if member_kind is dict or member_kind is list:
                stack.append(member)
            elif member_kind is int:
                if not -_SAFE_INT <= member <= _SAFE_INT:
                    return False
            elif member_kind not in _SCALARS:
                return False
    return True


def _fast_canonical(document: Any) -> bytes | None:
    if _plain(document):
        text = _ENCODER.encode(document)
        # Keys are sorted by code point, as RFC 8785 (by UTF-16 unit) does
        # below U+D800; a lone surrogate fails to encode.
        if text.isascii() or not _HIGH_KEY.search(text):
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError:
                return None
    out: list[str] = []
    try:
        _write(document, out)
        return "".join(out).encode("utf-8")
    except (_UnusualValueError, UnicodeEncodeError, rfc8785.CanonicalizationError):
        return None


def _canonical_items(items: list[Any]) -> list[bytes]:
    """``canonical_json`` of each of ``items``: as that, with the fast path's
    check (``_plain``) run once over them all rather than once per item.

    Raises:
        InvalidArgumentError: as ``canonical_json``.
    """
    if not _plain(items):
        return [canonical_json(item) for item in items]
    parts = []
    for item in items:
        text = _ENCODER.encode(item)
        part = _utf8(text) if text.isascii() or not _HIGH_KEY.search(text) else None
        parts.append(canonical_json(item) if part is None else part)  # the rare cases
    return parts


def _utf8(text: str) -> bytes | None:
    """``text`` in UTF-8; None when it holds a lone surrogate."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
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
