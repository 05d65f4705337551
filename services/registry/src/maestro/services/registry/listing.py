"""List requests: page sizes, opaque page tokens (AIP-158) and the workflow
filter language (a subset of AIP-160).

A page token is URL-safe base64 of JSON ``{"k": <last sort key>, "q": <query
hash>}``. Listings are keyset-paginated on the sort key, so a page never repeats
or skips an item because something was inserted since the previous page. The
query hash binds a token to the query it came from: reusing it with another
filter (or another parent, tenant or ``show_deleted``) is INVALID_PAGE_TOKEN.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.services.registry.store import WorkflowQuery

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_STATES = {
    "DRAFT": "DRAFT",
    "PUBLISHED": "PUBLISHED",
    "DELETED": "DELETED",
    "WORKFLOW_STATE_DRAFT": "DRAFT",
    "WORKFLOW_STATE_PUBLISHED": "PUBLISHED",
    "WORKFLOW_STATE_DELETED": "DELETED",
}
_TIME_OPERATORS = frozenset({">", ">=", "<", "<="})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>>=|<=|!=|=|>|<|:)
      | (?P<word>[A-Za-z0-9_][A-Za-z0-9_.-]*)
    )""",
    re.VERBOSE,
)


def page_size(requested: int) -> int:
    """0 means the default (50); above 500 is coerced to 500; negative is an error."""
    if requested < 0:
        raise InvalidArgumentError(
            f"page_size must not be negative, got {requested}",
            field_violations=[FieldViolation("page_size", "must be >= 0")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def query_hash(*parts: object) -> str:
    """A short digest of everything that must match between pages."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(key: Sequence[Any], query: str) -> str:
    """An opaque token for the page after the item whose sort key is ``key``."""
    raw = json.dumps({"k": list(key), "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> list[Any]:
    """The sort key inside ``token``; INVALID_PAGE_TOKEN when the token is
    malformed or belongs to another query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise _bad_token("page_token is malformed") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
        raise _bad_token("page_token is malformed")
    if payload.get("q") != query:
        raise _bad_token("page_token belongs to another query: repeat the first call's fields")
    return list(payload["k"])


def workflow_page_key(token: str, query: str) -> tuple[datetime, str] | None:
    """The ``(update_time, workflow_id)`` key of a ListWorkflows token."""
    if not token:
        return None
    key = decode_page_token(token, query)
    try:
        when, workflow_id = key
        parsed = datetime.fromisoformat(when)
    except (TypeError, ValueError) as exc:
        raise _bad_token("page_token is malformed") from exc
    if parsed.tzinfo is None or not isinstance(workflow_id, str):
        raise _bad_token("page_token is malformed")
    return parsed, workflow_id


def version_page_key(token: str, query: str) -> int | None:
    """The ``seq`` key of a ListWorkflowVersions token."""
    if not token:
        return None
    key = decode_page_token(token, query)
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise _bad_token("page_token is malformed")
    return int(key[0])


def name_page_key(token: str, query: str) -> str | None:
    """The name key of a token over a fixed, name-sorted list (templates)."""
    if not token:
        return None
    key = decode_page_token(token, query)
    if len(key) != 1 or not isinstance(key[0], str):
        raise _bad_token("page_token is malformed")
    return str(key[0])


def _bad_token(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        message,
        reason="INVALID_PAGE_TOKEN",
        field_violations=[FieldViolation("page_token", message)],
    )


@dataclass(frozen=True, slots=True)
class _Term:
    field: str
    operator: str
    value: str


def parse_workflow_filter(text: str, *, show_deleted: bool = False) -> WorkflowQuery:
    """Parses a ListWorkflows filter: terms joined by ``AND``, each one of

    - ``owner = "ana"``
    - ``tag = "etl"`` (also ``tags : "etl"``; several tag terms must all hold)
    - ``state = DRAFT`` (``PUBLISHED``, ``DELETED``; quoted or not)
    - ``update_time > "2026-01-01T00:00:00Z"`` (``>``, ``>=``, ``<``, ``<=``; quoted
      RFC 3339 with an offset)

    Raises:
        InvalidArgumentError: INVALID_FILTER, saying what is wrong where.
    """
    owner: str | None = None
    tags: list[str] = []
    state: str | None = None
    times: list[tuple[str, datetime]] = []
    for term in _terms(text):
        if term.field == "owner" and term.operator == "=":
            if owner is not None and owner != term.value:
                raise _bad_filter("`owner` is given twice with different values")
            owner = term.value
        elif term.field in ("tag", "tags") and term.operator in ("=", ":"):
            tags.append(term.value)
        elif term.field == "state" and term.operator == "=":
            if term.value not in _STATES:
                raise _bad_filter(
                    f"unknown state {term.value!r}; expected DRAFT, PUBLISHED or DELETED"
                )
            state = _STATES[term.value]
        elif term.field == "update_time" and term.operator in _TIME_OPERATORS:
            times.append((term.operator, _timestamp(term.value)))
        elif term.field in ("owner", "tag", "tags", "state", "update_time"):
            raise _bad_filter(f"operator {term.operator!r} is not supported on `{term.field}`")
        else:
            raise _bad_filter(
                f"unknown field {term.field!r}; filter on owner, tag, state or update_time"
            )
    return WorkflowQuery(
        owner=owner,
        tags=tuple(sorted(set(tags))),
        state=state,
        update_time=tuple(sorted(times)),
        show_deleted=show_deleted,
    )


def _terms(text: str) -> list[_Term]:
    tokens = _tokenize(text)
    terms: list[_Term] = []
    i = 0
    while i < len(tokens):
        if terms:
            kind, value = tokens[i]
            if (kind, value) != ("word", "AND"):
                raise _bad_filter(f"expected AND between terms, got {value!r}")
            i += 1
        if i + 3 > len(tokens):
            raise _bad_filter("incomplete term: expected `field operator value`")
        (field_kind, field_name), (op_kind, operator), (value_kind, value) = tokens[i : i + 3]
        if field_kind != "word" or op_kind != "op" or value_kind == "op":
            raise _bad_filter(f"expected `field operator value`, got {field_name!r} {operator!r}")
        literal = _unquote(value) if value_kind == "string" else value
        terms.append(_Term(field_name, operator, literal))
        i += 3
    return terms


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _bad_filter(f"cannot parse the filter at character {position + 1}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    try:
        value = json.loads(literal)
    except ValueError as exc:
        raise _bad_filter(f"bad string literal {literal}") from exc
    return str(value)


def _timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad_filter(f"update_time needs an RFC 3339 timestamp, got {value!r}") from exc
    if parsed.tzinfo is None:
        raise _bad_filter(f"update_time {value!r} needs a time zone offset, for example `Z`")
    return parsed.astimezone(UTC)


def _bad_filter(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid filter: {message}",
        reason="INVALID_FILTER",
        field_violations=[FieldViolation("filter", message)],
    )
