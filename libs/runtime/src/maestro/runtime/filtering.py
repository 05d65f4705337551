"""List filters: a subset of the AIP-160 filter language, compiled to SQLAlchemy.

A List RPC declares the fields it can be filtered on and compiles the request's
``filter`` into a ``WHERE`` clause::

    fields = {
        "state": Field("enum", executions.c.state, enum_values=STATE_NAMES),
        "start_time": Field("timestamp", executions.c.start_time),
        "labels": MapField(build=label_matches),
    }
    where = compile_filter(request.filter, fields)
    query = select(executions) if where is None else select(executions).where(where)

The language (https://google.aip.dev/160):

- a comparison is ``field op value``: ``op`` is one of ``=``, ``!=``, ``<``,
  ``<=``, ``>``, ``>=`` and ``:`` (has); ``field`` is a dotted name
  (``labels.team`` is key ``team`` of map field ``labels``); ``value`` is a
  double-quoted string with backslash escapes or a bare word (``FAILED``,
  ``true``, ``42``). Values that contain spaces, parentheses, quotes or operator
  characters (timestamps do) must be quoted.
- ``NOT x`` and ``-x`` negate; ``x OR y``; ``x AND y``; ``x y`` means ``x AND y``;
  parentheses group. As in AIP-160, ``OR`` binds tighter than ``AND``:
  ``a AND b OR c`` is ``a AND (b OR c)``; ``NOT`` binds tightest.

Comparisons are two-valued: on a NULL column every comparison is false (``!=``
included), so an unset time never matches ``start_time > "..."`` and does match
``NOT start_time > "..."``. Everything wrong with a filter is INVALID_ARGUMENT
with reason INVALID_FILTER and a ``filter`` field violation saying what and
where; positions count characters from 1.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from sqlalchemy import and_, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from maestro.runtime.errors import FieldViolation, InvalidArgumentError

MAX_FILTER_LENGTH = 2000
"""Longest filter accepted, in characters."""
MAX_FILTER_DEPTH = 32
"""Deepest nesting of parentheses and negations accepted."""

FieldKind: TypeAlias = Literal["string", "enum", "timestamp", "int", "bool"]
Value: TypeAlias = str | int | bool | datetime
"""A parsed value: str (string), int (int, and enum as its stored number),
bool or an aware UTC datetime (timestamp)."""

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", ":"})
_ORDERED = frozenset({"=", "!=", "<", "<=", ">", ">="})
_EQUALITY = frozenset({"=", "!="})
DEFAULT_OPS: Mapping[FieldKind, frozenset[str]] = {
    "string": _EQUALITY,
    "enum": _EQUALITY,
    "timestamp": _ORDERED,
    "int": _ORDERED,
    "bool": _EQUALITY,
}
"""Operators a ``Field`` allows when it does not say."""


@dataclass(frozen=True, slots=True)
class Field:
    """A filterable field.

    Args:
        kind: how values are parsed: ``string`` as given; ``enum`` by name
            through ``enum_values``; ``timestamp`` as RFC 3339 with an offset
            (``"2025-09-01T00:00:00Z"``, ``"2025-09-01T02:00:00+02:00"``), compared
            in UTC; ``int`` as optionally negative decimal digits; ``bool`` as
            ``true`` or ``false``.
        column: the column (or any column expression) compared with the value.
            ``:`` on a column is equality.
        enum_values: for ``enum``: accepted name → stored number; give each name
            both with and without its prefix (``EXECUTION_STATE_FAILED`` and
            ``FAILED``).
        ops: allowed operators; ``None`` means ``DEFAULT_OPS[kind]``.
        build: instead of ``column``: ``build(op, value)`` returns the condition
            for a parsed value, for fields a column comparison cannot express (a
            repeated field where ``assignees: "role:approver"`` means "contains").
            It must be false, not NULL, where the field is unset.
    """

    kind: FieldKind
    column: Any = None
    enum_values: Mapping[str, int] | None = None
    ops: frozenset[str] | None = None
    build: Callable[[str, Value], ColumnElement[bool]] | None = None

    def __post_init__(self) -> None:
        if (self.column is None) == (self.build is None):
            raise ValueError("a Field needs exactly one of column and build")
        if (self.kind == "enum") != (self.enum_values is not None):
            raise ValueError("enum_values is required for, and only for, enum fields")
        if not self.allowed_ops <= OPERATORS:
            raise ValueError(f"unknown operators {sorted(self.allowed_ops - OPERATORS)}")

    @property
    def allowed_ops(self) -> frozenset[str]:
        """``ops``, or the kind's defaults."""
        return DEFAULT_OPS[self.kind] if self.ops is None else self.ops


@dataclass(frozen=True, slots=True)
class MapField:
    """A string-keyed map of strings: registered as ``"labels"``, it is filtered
    as ``labels.<key> op value``.

    Args:
        build: ``build(key, op, value)`` returns the condition; it must be false,
            not NULL, where the key is absent (``!=`` included). ``key`` is
            whatever the caller typed after the dot: bind it as a parameter.
        ops: allowed operators.
    """

    build: Callable[[str, str, str], ColumnElement[bool]]
    ops: frozenset[str] = _EQUALITY


def compile_filter(text: str, fields: Mapping[str, Field | MapField]) -> ColumnElement[bool] | None:
    """Compiles an AIP-160 filter over ``fields`` (name → field) into a SQLAlchemy
    condition; ``None`` when ``text`` is blank (everything matches).

    Raises:
        InvalidArgumentError: INVALID_FILTER: a syntax error, an unknown field,
            an operator the field does not allow, a value that does not parse as
            the field's kind, more than ``MAX_FILTER_LENGTH`` characters or
            nesting deeper than ``MAX_FILTER_DEPTH``.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise _invalid(f"the filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH}")
    if not text.strip():
        return None
    return _compile(_Parser(text).parse(), fields)


_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>>=|<=|!=|=|>|<|:)
      | (?P<paren>[()])
      | (?P<minus>-)
      | (?P<word>[^\s()"'=!<>:]+)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {'"': '"', "\\": "\\", "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_INT = re.compile(r"-?\d+", re.ASCII)
_COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    ":": operator.eq,  # a scalar "has" exactly its own value
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "string", "op", "paren", "minus", "word", "keyword" or "end"
    text: str
    position: int  # 0-based index into the filter


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] == '"':
                raise _syntax(f"unterminated string starting at character {position + 1}")
            hint = "; strings take double quotes" if text[position] == "'" else ""
            raise _syntax(f"unexpected {text[position]!r} at character {position + 1}{hint}")
        kind = match.lastgroup or ""
        if kind != "space":
            word = match.group()
            if kind == "word" and word in _KEYWORDS:
                kind = "keyword"
            tokens.append(_Token(kind, word, position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


@dataclass(frozen=True, slots=True)
class _Restriction:
    name: _Token
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class _Junction:
    keyword: Literal["AND", "OR"]
    parts: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    part: _Node


_Node: TypeAlias = "_Restriction | _Junction | _Not"


class _Parser:
    """Recursive descent over the AIP-160 grammar:

    expression := sequence {"AND" sequence}
    sequence   := factor {factor}             (implicit AND)
    factor     := term {"OR" term}
    term       := ("NOT" | "-") term | "(" expression ")" | field op value
    """

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._index = 0
        self._depth = 0

    def parse(self) -> _Node:
        node = self._expression()
        if self._peek().kind != "end":
            raise self._unexpected("AND, OR or the end of the filter")
        return node

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _take(self) -> _Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _at_keyword(self, keyword: str) -> bool:
        token = self._peek()
        return token.kind == "keyword" and token.text == keyword

    def _expression(self) -> _Node:
        parts = [self._sequence()]
        while self._at_keyword("AND"):
            self._take()
            parts.append(self._sequence())
        return parts[0] if len(parts) == 1 else _Junction("AND", tuple(parts))

    def _sequence(self) -> _Node:
        parts = [self._factor()]
        while (
            self._peek().kind in ("word", "minus")
            or self._peek().text == "("
            or self._at_keyword("NOT")
        ):
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else _Junction("AND", tuple(parts))

    def _factor(self) -> _Node:
        parts = [self._term()]
        while self._at_keyword("OR"):
            self._take()
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else _Junction("OR", tuple(parts))

    def _term(self) -> _Node:
        token = self._peek()
        if self._at_keyword("NOT") or token.kind == "minus":
            self._take()
            with self._nested(token):
                return _Not(self._term())
        if token.text == "(":
            self._take()
            with self._nested(token):
                node = self._expression()
            if self._peek().text != ")":
                raise self._unexpected("AND, OR or ')'")
            self._take()
            return node
        if token.kind != "word":
            raise self._unexpected("a field name, NOT or '('")
        self._take()
        if self._peek().kind != "op":
            raise self._unexpected(f"an operator after {token.text!r}")
        op = self._take().text
        return _Restriction(token, op, self._value(op))

    def _value(self, op: str) -> str:
        token, following = self._peek(), self._peek(1)
        if token.kind == "string":
            self._take()
            return _unquote(token)
        if token.kind == "word":
            self._take()
            return token.text
        if (
            token.kind == "minus"
            and following.kind == "word"
            and following.position == token.position + 1
        ):
            self._take()
            self._take()
            return "-" + following.text
        raise self._unexpected(f"a value after {op!r}")

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        self._depth += 1
        if self._depth > MAX_FILTER_DEPTH:
            raise _invalid(
                f"the filter nests deeper than {MAX_FILTER_DEPTH} levels "
                f"at character {token.position + 1}"
            )
        try:
            yield
        finally:
            self._depth -= 1

    def _unexpected(self, expected: str) -> InvalidArgumentError:
        token = self._peek()
        if token.kind == "end":
            return _syntax(f"expected {expected} at the end of the filter")
        hint = " (quote values that contain ':', such as timestamps)" if token.text == ":" else ""
        return _syntax(
            f"expected {expected} at character {token.position + 1}, got {token.text!r}{hint}"
        )


def _compile(node: _Node, fields: Mapping[str, Field | MapField]) -> ColumnElement[bool]:
    if isinstance(node, _Not):
        return not_(_compile(node.part, fields))
    if isinstance(node, _Junction):
        parts = [_compile(part, fields) for part in node.parts]
        return and_(*parts) if node.keyword == "AND" else or_(*parts)
    return _restriction(node, fields)


def _restriction(
    restriction: _Restriction, fields: Mapping[str, Field | MapField]
) -> ColumnElement[bool]:
    name, op, raw = restriction.name, restriction.op, restriction.value
    field = fields.get(name.text)
    if isinstance(field, Field):
        _check_op(name.text, op, field.allowed_ops)
        value = _parse_value(name.text, field, raw)
        return field.build(op, value) if field.build else _compare(field.column, op, value)
    head, _, key = name.text.partition(".")
    map_field = fields.get(head)
    if isinstance(map_field, MapField):
        if not key:
            raise _invalid(f"{head!r} needs a key: {head}.<key>")
        _check_op(name.text, op, map_field.ops)
        return map_field.build(key, op, raw)
    known = ", ".join(
        sorted(f"{n}.<key>" if isinstance(f, MapField) else n for n, f in fields.items())
    )
    raise _invalid(
        f"unknown field {name.text!r} at character {name.position + 1}; known fields: {known}"
    )


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            escaped = body[i + 1]
            if escaped not in _ESCAPES:
                at = token.position + i + 2
                raise _syntax(f"unknown escape '\\{escaped}' at character {at}")
            out.append(_ESCAPES[escaped])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _check_op(name: str, op: str, allowed: frozenset[str]) -> None:
    if op not in allowed:
        raise _invalid(
            f"operator {op!r} is not supported on {name!r}; use {', '.join(sorted(allowed))}"
        )


def _parse_value(name: str, field: Field, raw: str) -> Value:
    if field.kind == "string":
        return raw
    if field.kind == "enum":
        names = field.enum_values or {}
        if raw in names:
            return names[raw]
        shortest: dict[int, str] = {}
        for enum_name, number in names.items():
            if number not in shortest or len(enum_name) < len(shortest[number]):
                shortest[number] = enum_name
        allowed = ", ".join(shortest[number] for number in sorted(shortest))
        raise _invalid(f"unknown {name!r} value {raw!r}; expected one of {allowed}")
    if field.kind == "int":
        if _INT.fullmatch(raw):
            return int(raw)
        raise _invalid(f"{name!r} needs an integer, got {raw!r}")
    if field.kind == "bool":
        if raw in ("true", "false"):
            return raw == "true"
        raise _invalid(f"{name!r} needs true or false, got {raw!r}")
    if _RFC3339.fullmatch(raw):
        try:
            return datetime.fromisoformat(raw.upper()).astimezone(UTC)
        except ValueError:
            pass  # well-formed but out of range, such as month 13
    raise _invalid(
        f'{name!r} needs an RFC 3339 timestamp such as "2025-09-01T00:00:00Z", got {raw!r}'
    )


def _compare(column: Any, op: str, value: Value) -> ColumnElement[bool]:
    comparison: ColumnElement[bool] = _COMPARISONS[op](column, value)
    if getattr(column, "nullable", True):
        # Two-valued: NULL makes the comparison false rather than unknown, so
        # NOT and != read as the caller means them.
        return and_(column.is_not(None), comparison)
    return comparison


def _invalid(detail: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid filter: {detail}",
        reason="INVALID_FILTER",
        field_violations=[FieldViolation("filter", detail)],
    )


def _syntax(detail: str) -> InvalidArgumentError:
    return _invalid(f"syntax error: {detail}")
