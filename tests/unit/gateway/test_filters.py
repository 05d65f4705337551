"""The AIP-160 filters the gateway (and CLI) build from friendly parameters,
checked against the registry's own filter parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from maestro.services.gateway.filters import list_filter, rfc3339
from maestro.services.registry.listing import parse_workflow_filter


def test_no_parameters_is_no_filter() -> None:
    assert list_filter() == ""


def test_every_parameter_becomes_one_and_term() -> None:
    text = list_filter(
        owner="ana",
        tag="etl",
        state="published",
        updated_since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert text == (
        'owner = "ana" AND tag = "etl" AND state = PUBLISHED '
        'AND update_time >= "2026-01-02T03:04:05Z"'
    )
    query = parse_workflow_filter(text)
    assert query.owner == "ana"
    assert query.tags == ("etl",)
    assert query.state == "PUBLISHED"
    assert query.update_time == ((">=", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),)


def test_values_are_quoted_so_they_cannot_inject_terms() -> None:
    text = list_filter(owner='ana" AND owner = "bob')
    assert text == r'owner = "ana\" AND owner = \"bob"'
    assert parse_workflow_filter(text).owner == 'ana" AND owner = "bob'


def test_raw_filter_is_anded_last() -> None:
    text = list_filter(tag="a", extra=' tag = "b" ')
    assert text == 'tag = "a" AND tag = "b"'
    assert parse_workflow_filter(text).tags == ("a", "b")
    assert list_filter(extra='owner = "x"') == 'owner = "x"'


def test_timestamps_are_utc_rfc3339() -> None:
    assert rfc3339(datetime(2026, 5, 1, 12, 0)) == "2026-05-01T12:00:00Z"
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 5, 1, 12, 0, tzinfo=plus_two)) == "2026-05-01T10:00:00Z"
