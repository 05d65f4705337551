"""A fast, exact test that an embedded JSON Schema satisfies the draft 2020-12
meta-schema, for the keywords workflow documents commonly use.

``plainly_valid`` returns True only when the schema uses nothing but the
keywords below and each satisfies what the meta-schema requires of it; any
other keyword, or any value it does not recognise as valid, makes it return
False, and the caller then runs ``jsonschema``'s meta-validation, which
describes the problems (or finds none). So True is always right, and False
only means "ask jsonschema"; tests check both against ``meta_validator``.

The meta-schema's requirements, by keyword (``format`` is an annotation, as
``meta_validator`` does not assert formats):

* ``type``: one of the seven JSON types, or a non-empty list of them without
  repeats;
* ``properties``: an object of schemas; ``items``, ``additionalProperties``:
  a schema (an object, or true/false);
* ``required``: a list of strings without repeats; ``enum``, ``examples``:
  lists (``enum`` must also be non-empty here, stricter than the
  meta-schema); ``const``, ``default``: anything;
* ``description``, ``title``, ``$comment``, ``format``, ``pattern``: strings
  (``pattern`` must also compile, stricter than the meta-schema);
* ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``:
  numbers; ``multipleOf``: a number above 0;
* ``minLength``, ``maxLength``, ``minItems``, ``maxItems``: non-negative
  integers (written as integers; ``1.0`` is left to jsonschema).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
MAX_DEPTH = 32
"""Deeper schemas are left to jsonschema."""


def plainly_valid(schema: Any) -> bool:
    """True when ``schema`` (an object) certainly satisfies the meta-schema; see
    the module doc."""
    return isinstance(schema, dict) and _valid_object(schema, 0)


def _valid_object(schema: dict[str, Any], depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    for keyword, value in schema.items():
        check = _CHECKS.get(keyword)
        if check is None or not check(value, depth):
            return False
    return True


def _schema(value: Any, depth: int) -> bool:
    return (
        value is True
        or value is False
        or (isinstance(value, dict) and _valid_object(value, depth + 1))
    )


def _type(value: Any, _depth: int) -> bool:
    if isinstance(value, str):
        return value in SIMPLE_TYPES
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v in SIMPLE_TYPES for v in value)
        and len(set(value)) == len(value)
    )


def _properties(value: Any, depth: int) -> bool:
    return isinstance(value, dict) and all(_schema(v, depth) for v in value.values())


def _unique_strings(value: Any, _depth: int) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and len(set(value)) == len(value)
    )


def _non_empty_list(value: Any, _depth: int) -> bool:
    return isinstance(value, list) and bool(value)


def _list(value: Any, _depth: int) -> bool:
    return isinstance(value, list)


def _anything(_value: Any, _depth: int) -> bool:
    return True


def _string(value: Any, _depth: int) -> bool:
    return isinstance(value, str)


def _number(value: Any, _depth: int) -> bool:
    return type(value) is int or type(value) is float


def _positive_number(value: Any, depth: int) -> bool:
    return _number(value, depth) and value > 0


def _non_negative_integer(value: Any, _depth: int) -> bool:
    return type(value) is int and value >= 0


def _pattern(value: Any, _depth: int) -> bool:
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError):
        return False
    return True


_CHECKS: dict[str, Callable[[Any, int], bool]] = {
    "type": _type,
    "properties": _properties,
    "items": _schema,
    "additionalProperties": _schema,
    "required": _unique_strings,
    "enum": _non_empty_list,
    "examples": _list,
    "const": _anything,
    "default": _anything,
    "description": _string,
    "title": _string,
    "$comment": _string,
    "format": _string,
    "pattern": _pattern,
    "minimum": _number,
    "maximum": _number,
    "exclusiveMinimum": _number,
    "exclusiveMaximum": _number,
    "multipleOf": _positive_number,
    "minLength": _non_negative_integer,
    "maxLength": _non_negative_integer,
    "minItems": _non_negative_integer,
    "maxItems": _non_negative_integer,
}
