"""The AIP-160 filters the gateway (and CLI) build from friendly parameters,
checked against the registry's and the scheduler's own filter parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from maestro.runtime.errors import InvalidArgumentError
from maestro.runtime.filtering import compile_filter
from maestro.services.gateway.filters import (
    execution_filter,
    human_task_filter,
    list_filter,
    rfc3339,
)
from maestro.services.registry.listing import parse_workflow_filter
from maestro.services.scheduler.listing import EXECUTION_FIELDS, HUMAN_TASK_FIELDS


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


# --- executions and human tasks (checked against the scheduler's filter parser) ---


def test_execution_filter_terms() -> None:
    text = execution_filter(
        states=["running", "FAILED,EXECUTION_STATE_PENDING", "RUNNING"],
        workflow="workflows/hello",
        started_after=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        tenant='ac"me',
        extra='labels.team = "data" OR correlation_id = "x"',
    )
    assert text == (
        "(state = RUNNING OR state = FAILED OR state = PENDING)"
        ' AND workflow = "workflows/hello"'
        ' AND start_time >= "2026-01-02T01:04:05Z"'
        ' AND tenant = "ac\\"me"'
        ' AND (labels.team = "data" OR correlation_id = "x")'
    )
    assert compile_filter(text, EXECUTION_FIELDS) is not None
    assert execution_filter(states=["succeeded"], workflow="hello") == (
        'state = SUCCEEDED AND workflow = "workflows/hello"'
    )
    assert execution_filter() == ""
    assert execution_filter(states=["", " , "], workflow=" ") == ""


def test_unknown_states_name_the_parameter() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        execution_filter(states=["RUNNING,SLEEPING"], states_field="query.status")
    assert caught.value.field_violations[0].field == "query.status"
    assert "SLEEPING" in caught.value.message
    # Unquoted enum literals are checked, so nothing can be injected through them.
    with pytest.raises(InvalidArgumentError):
        execution_filter(states=["RUNNING OR tenant != x"])
    with pytest.raises(InvalidArgumentError):
        human_task_filter(states=["UNSPECIFIED"])


ULID = "01J9Z8Q4T6K3M5N7P9R1S3T5V7"


def test_human_task_filter_terms() -> None:
    text = human_task_filter(
        states=["open", "escalated"],
        execution=ULID,
        step_id="approve",
        assignee="role:approver",
    )
    assert text == (
        "(state = OPEN OR state = ESCALATED)"
        f' AND execution = "executions/{ULID}"'
        ' AND step_id = "approve" AND assignees: "role:approver"'
    )
    assert compile_filter(text, HUMAN_TASK_FIELDS) is not None
    assert human_task_filter(execution="executions/live") == 'execution = "executions/live"'
