"""RFC 8785 (JSON Canonicalization Scheme) bytes, fast for plain values.

rfc8785 (Trail of Bits' maintained implementation) defines the bytes; it is
written in Python and costs about 1 ms per 10 kB. Most values Maestro
canonicalises (workflow definitions in normal form, receipt statements) are
*plain*: dicts with string keys, lists, strings, booleans, null and integers
within +/-(2**53 - 1), no floats. For those, orjson with sorted keys writes
exactly RFC 8785's bytes, about ten times faster: it escapes exactly the
characters RFC 8785 escapes, in the same spelling (``\\n``, ``\\u001f``), writes
the rest as UTF-8, and prints integers alike; its keys sort by code point,
which is RFC 8785's UTF-16 order unless a key holds a character at or above
U+E000 (a lone surrogate is an error in both). Values with floats are
written member by member, each float by rfc8785 (RFC 8785 and Python print
some floats differently). Anything else (a key at or above U+E000, an integer
outside the I-JSON domain, a non-JSON type, a lone surrogate) takes rfc8785
itself, so the bytes and the errors are always rfc8785's; tests check the two
agree on arbitrary JSON values.

orjson was chosen over the standard library's encoder (the previous fast
path): the same bytes for plain values, 10x faster, and a maintained, widely
used library.
"""

from __future__ import annotations

import re
from json.encoder import encode_basestring
from typing import Any

import orjson
import rfc8785

__all__ = ["SAFE_INT", "canonical_json", "fast_canonical", "plain", "plain_bytes"]

SAFE_INT = 2**53 - 1
_SCALARS = frozenset({str, bool, type(None)})
_HIGH = re.compile(rb"[\xee-\xf4]")
"""A lead byte of a UTF-8 character at or above U+E000 (orjson refuses
surrogates), where code point and UTF-16 order may disagree."""
_HIGH_KEY = re.compile("[\ud800-\U0010ffff]")
"""A key character where the member-by-member path leaves the order to rfc8785."""


def plain(value: Any) -> bool:
    """Whether ``value`` is plain: only dicts with str keys, lists, strings,
    booleans, null and integers within +/-(2**53 - 1) (exact types)."""
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
                if not -SAFE_INT <= member <= SAFE_INT:
                    return False
            elif member_kind not in _SCALARS:
                return False
    return True


def plain_bytes(value: Any) -> bytes | None:
    """RFC 8785 bytes of a value known to be ``plain``; None where orjson's
    bytes may differ (a key at or above U+E000) or it fails (a lone
    surrogate): the caller asks rfc8785."""
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    if data.isascii() or _HIGH.search(data) is None:
        return data
    return None


class _UnusualValueError(Exception):
    """The member-by-member path does not handle this value; rfc8785 decides."""


def _scalar(value: Any) -> str:
    if type(value) is str:
        return str(encode_basestring(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int and -SAFE_INT <= value <= SAFE_INT:
        return str(value)
    if type(value) is float:
        return bytes(rfc8785.dumps(value)).decode()
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


def fast_canonical(value: Any) -> bytes | None:
    """``canonical_json(value)`` without rfc8785's own encoder: None where
    only rfc8785 decides (its bytes or its error)."""
    if plain(value):
        data = plain_bytes(value)
        if data is not None:
            return data
    out: list[str] = []
    try:
        _write(value, out)
        return "".join(out).encode("utf-8")
    except (_UnusualValueError, UnicodeEncodeError, rfc8785.CanonicalizationError):
        return None


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value.

    Raises:
        rfc8785.CanonicalizationError: a number outside the I-JSON domain.
        UnicodeError: a lone surrogate in a key.
    """
    fast = fast_canonical(value)
    return fast if fast is not None else bytes(rfc8785.dumps(value))
