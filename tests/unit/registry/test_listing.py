"""Page sizes, page tokens and the ListWorkflows filter language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from maestro.runtime.errors import InvalidArgumentError
from maestro.services.registry import listing
from maestro.services.registry.store import WorkflowQuery


@pytest.mark.parametrize(("requested", "effective"), [(0, 50), (1, 1), (500, 500), (10_000, 500)])
def test_page_size_defaults_and_caps(requested: int, effective: int) -> None:
    assert listing.page_size(requested) == effective


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        listing.page_size(-1)
    assert caught.value.field_violations[0].field == "page_size"


def test_filter_terms_and_their_spellings() -> None:
    query = listing.parse_workflow_filter(
        'owner = "ana" AND tag = "etl" AND tags:rag AND state = WORKFLOW_STATE_PUBLISHED '
        'AND update_time >= "2026-01-01T01:00:00+01:00"',
        show_deleted=True,
    )
    assert query == WorkflowQuery(
        owner="ana",
        tags=("etl", "rag"),
        state="PUBLISHED",
        update_time=((">=", datetime(2026, 1, 1, tzinfo=UTC)),),
        show_deleted=True,
    )


def test_empty_filter_matches_everything() -> None:
    assert listing.parse_workflow_filter("   ") == WorkflowQuery()


def test_quoted_values_may_hold_spaces_and_escapes() -> None:
    query = listing.parse_workflow_filter(r'owner = "ana \"the\" author"')
    assert query.owner == 'ana "the" author'


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('colour = "red"', "unknown field"),
        ('owner > "ana"', "operator"),
        ("state = ARCHIVED", "unknown state"),
        ('update_time > "yesterday"', "RFC 3339"),
        ('update_time > "2026-01-01T00:00:00"', "time zone"),
        ('owner = "ana" OR owner = "bob"', "expected AND"),
        ('owner = "ana" AND', "incomplete"),
        ('owner "ana"', "expected `field operator value`"),
        ('owner = "ana', "cannot parse"),
        ('owner = "ana" AND owner = "bob"', "twice"),
    ],
)
def test_bad_filters_are_invalid_filter(text: str, complaint: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        listing.parse_workflow_filter(text)
    assert caught.value.reason == "INVALID_FILTER"
    assert complaint in caught.value.message
    assert caught.value.field_violations[0].field == "filter"


def test_workflow_token_round_trips_and_is_bound_to_its_query() -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)
    token = listing.encode_page_token([when.isoformat(), "wf-1"], "q1")
    assert "=" not in token
    assert listing.workflow_page_key(token, "q1") == (when, "wf-1")
    assert listing.workflow_page_key("", "q1") is None
    with pytest.raises(InvalidArgumentError) as caught:
        listing.workflow_page_key(token, "q2")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        listing.encode_page_token(["not-a-time", "wf-1"], "q"),
        listing.encode_page_token(["2026-01-01T00:00:00", "wf-1"], "q"),  # naive
        listing.encode_page_token([1], "q"),
        "eyJ4IjogMX0",  # {"x": 1}
    ],
)
def test_malformed_workflow_tokens_are_invalid_page_token(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        listing.workflow_page_key(token, "q")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_version_and_name_tokens() -> None:
    assert listing.version_page_key(listing.encode_page_token([7], "v"), "v") == 7
    for bad in ([True], ["7"], [1, 2]):
        with pytest.raises(InvalidArgumentError):
            listing.version_page_key(listing.encode_page_token(bad, "v"), "v")
    assert listing.name_page_key(listing.encode_page_token(["templates/a"], "t"), "t") == (
        "templates/a"
    )


def test_query_hash_distinguishes_queries() -> None:
    assert listing.query_hash("a", WorkflowQuery(owner="x")) == listing.query_hash(
        "a", WorkflowQuery(owner="x")
    )
    assert listing.query_hash("a", WorkflowQuery(owner="x")) != listing.query_hash(
        "a", WorkflowQuery(owner="y")
    )
