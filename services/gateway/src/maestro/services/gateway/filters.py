"""AIP-160 filters from the friendly query parameters of list endpoints.

Kept free of web-framework imports: the CLI builds the same filters from its
flags.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime


def _quote(value: str) -> str:
    return json.dumps(value)


def rfc3339(value: datetime) -> str:
    """A timestamp as RFC 3339 in UTC (``...Z``); a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def list_filter(
    *,
    owner: str | None = None,
    tag: str | None = None,
    state: str | None = None,
    updated_since: datetime | None = None,
    extra: str | None = None,
) -> str:
    """The AIP-160 filter of ``GET /api/workflows``'s query parameters, ANDed
    with a raw ``filter`` if given: strings quoted (JSON escapes), the state an
    enum literal (``state = PUBLISHED``), ``updated_since`` as
    ``update_time >= "<RFC 3339>"``."""
    terms = []
    if owner:
        terms.append(f"owner = {_quote(owner)}")
    if tag:
        terms.append(f"tag = {_quote(tag)}")
    if state:
        terms.append(f"state = {state.upper()}")
    if updated_since is not None:
        terms.append(f"update_time >= {_quote(rfc3339(updated_since))}")
    if extra and extra.strip():
        # No parentheses: AIP-160's OR binds tighter than AND, so appending with
        # AND keeps the raw filter's meaning (and the registry's subset has none).
        terms.append(extra.strip())
    return " AND ".join(terms)
