"""List requests: page sizes and page tokens (AIP-158, shared through
``maestro.runtime.paging``) and the workflow filter language (a subset of
AIP-160).

Registry listings page 50 items by default and at most 500. Each list's token
carries its own sort key, checked here: ``(update_time, workflow_id)`` for
workflows, ``seq`` for versions, the name for templates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from maestro.runtime import paging
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.runtime.paging import decode_page_token, encode_page_token, query_hash
from maestro.services.registry.store import WorkflowQuery

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "decode_page_token",
    "encode_page_token",
    "name_page_key",
    "page_size",
    "parse_workflow_filter",
    "query_hash",
    "version_page_key",
    "workflow_page_key",
]

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
    return paging.page_size(requested, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)


def workflow_page_key(token: str, query: str) -> tuple[datetime, str] | None:
    """The ``(update_time, workflow_id)`` key of a ListWorkflows token."""
    if not token:
        return None
    key = decode_page_token(token, query)
    try:
        when, workflow_id = key
        parsed = datetime.fromisoformat(when)
    except (TypeError, ValueError) as exc:
        raise paging.bad_page_token() from exc
    if parsed.tzinfo is None or not isinstance(workflow_id, str):
        raise paging.bad_page_token()
    return parsed, workflow_id


def version_page_key(token: str, query: str) -> int | None:
    """The ``seq`` key of a ListWorkflowVersions token."""
    if not token:
        return None
    key = decode_page_token(token, query)
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise paging.bad_page_token()
    return int(key[0])


def name_page_key(token: str, query: str) -> str | None:
    """The name key of a token over a fixed, name-sorted list (templates)."""
    if not token:
        return None
    key = decode_page_token(token, query)
    if len(key) != 1 or not isinstance(key[0], str):
        raise paging.bad_page_token()
    return str(key[0])


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
