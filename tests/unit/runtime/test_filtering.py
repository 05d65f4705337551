"""The AIP-160 filter language, compiled and run against SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    create_engine,
    exists,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from maestro.runtime.errors import InvalidArgumentError
from maestro.runtime.filtering import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    Field,
    MapField,
    Value,
    compile_filter,
)

metadata = MetaData()
executions = Table(
    "executions",
    metadata,
    Column("id", String, primary_key=True),
    Column("state", SmallInteger, nullable=False),
    Column("workflow", String, nullable=False),
    Column("creator", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("pinned", Boolean, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("note", String, nullable=True),
)
labels = Table(
    "labels",
    metadata,
    Column("execution_id", String, nullable=False),
    Column("key", String, nullable=False),
    Column("value", String, nullable=False),
)
assignees = Table(
    "assignees",
    metadata,
    Column("execution_id", String, nullable=False),
    Column("assignee", String, nullable=False),
)

RUNNING, SUCCEEDED, FAILED = 2, 3, 4
STATES = {
    name: number
    for short, number in {"RUNNING": RUNNING, "SUCCEEDED": SUCCEEDED, "FAILED": FAILED}.items()
    for name in (short, f"EXECUTION_STATE_{short}")
}
ROWS = [
    # id, state, workflow, creator, attempts, pinned, start_time (UTC), note
    ("a", RUNNING, "workflows/etl", "ana", 1, True, datetime(2025, 9, 1, tzinfo=UTC), 'say "hi"\n'),
    ("b", FAILED, "workflows/etl", "bob", 3, False, datetime(2025, 9, 2, 12, tzinfo=UTC), None),
    ("c", FAILED, "workflows/ml", "ana", 0, False, None, "back\\slash (x) = y"),
    (
        "d",
        SUCCEEDED,
        "workflows/report",
        "cy",
        -2,
        True,
        datetime(2025, 8, 31, 23, tzinfo=UTC),
        "x",
    ),
]
LABELS = [("a", "team", "data"), ("a", "env", "prod"), ("b", "team", "ml"), ("d", "env", "dev")]
ASSIGNEES = [("a", "role:approver"), ("a", "ana"), ("b", "bob")]


def label_matches(key: str, op: str, value: str) -> ColumnElement[bool]:
    compared = labels.c.value == value if op == "=" else labels.c.value != value
    return exists().where(labels.c.execution_id == executions.c.id, labels.c.key == key, compared)


def has_assignee(op: str, value: Value) -> ColumnElement[bool]:
    assert op == ":"
    return exists().where(
        assignees.c.execution_id == executions.c.id, assignees.c.assignee == value
    )


FIELDS: dict[str, Field | MapField] = {
    "state": Field("enum", executions.c.state, enum_values=STATES),
    "workflow": Field("string", executions.c.workflow),
    "creator": Field("string", executions.c.creator, ops=frozenset({"=", ":"})),
    "attempts": Field("int", executions.c.attempts),
    "pinned": Field("bool", executions.c.pinned),
    "start_time": Field("timestamp", executions.c.start_time),
    "note": Field("string", executions.c.note),
    "assignees": Field("string", build=has_assignee, ops=frozenset({":"})),
    "labels": MapField(build=label_matches),
}


Matching = Callable[[str], set[str]]


def _records(table: Table, rows: Sequence[tuple[object, ...]]) -> list[dict[str, object]]:
    return [dict(zip(table.c.keys(), row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(executions.insert(), _records(executions, ROWS))
        connection.execute(labels.insert(), _records(labels, LABELS))
        connection.execute(assignees.insert(), _records(assignees, ASSIGNEES))
    yield engine
    engine.dispose()


@pytest.fixture
def matching(engine: Engine) -> Matching:
    """The ids of the rows a filter selects."""

    def run(text: str) -> set[str]:
        where = compile_filter(text, FIELDS)
        query = select(executions.c.id)
        if where is not None:
            query = query.where(where)
        with engine.connect() as connection:
            return set(connection.scalars(query))

    return run


def _error(text: str) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as caught:
        compile_filter(text, FIELDS)
    error = caught.value
    assert error.reason == "INVALID_FILTER"
    assert [v.field for v in error.field_violations] == ["filter"]
    assert error.message == f"invalid filter: {error.field_violations[0].description}"
    return error


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_filter_is_none(text: str) -> None:
    assert compile_filter(text, FIELDS) is None


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('workflow = "workflows/etl"', {"a", "b"}),
        ('workflow != "workflows/etl"', {"c", "d"}),
        ("attempts < 1", {"c", "d"}),
        ("attempts <= 1", {"a", "c", "d"}),
        ("attempts > 1", {"b"}),
        ("attempts >= 1", {"a", "b"}),
        ("attempts = -2", {"d"}),
        ("attempts > -1", {"a", "b", "c"}),
        ("creator : ana", {"a", "c"}),
        ('assignees: "role:approver"', {"a"}),
        ("assignees:bob", {"b"}),
        ("pinned = true", {"a", "d"}),
        ("pinned = false", {"b", "c"}),
        ("pinned != true", {"b", "c"}),
    ],
)
def test_each_operator(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        # AIP-160: OR binds tighter than AND.
        ('state = FAILED AND workflow = "workflows/ml" OR attempts = 1', {"c"}),
        ('(state = FAILED AND workflow = "workflows/ml") OR attempts = 1', {"a", "c"}),
        ('attempts = 1 OR state = FAILED AND workflow = "workflows/ml"', {"c"}),
        # Juxtaposition is AND, and OR binds tighter than it too.
        ('state = FAILED workflow = "workflows/ml"', {"c"}),
        ("state = FAILED attempts = 3 OR attempts = 0", {"b", "c"}),
        ("pinned = true\n\tattempts=1", {"a"}),
        # NOT binds tightest.
        ("NOT state = FAILED AND pinned = true", {"a", "d"}),
        ("NOT state = FAILED OR attempts = 3", {"a", "b", "d"}),
        ("-state = FAILED", {"a", "d"}),
        ('NOT (state = FAILED OR workflow = "workflows/report")', {"a"}),
        ('-(state = FAILED OR workflow = "workflows/report")', {"a"}),
        ("NOT NOT pinned = true", {"a", "d"}),
        ("((((pinned = true))))", {"a", "d"}),
    ],
)
def test_precedence_and_grouping(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    "text",
    ["state = FAILED", "state = EXECUTION_STATE_FAILED", 'state = "FAILED"', "state=FAILED"],
)
def test_enum_with_or_without_prefix(matching: Matching, text: str) -> None:
    assert matching(text) == {"b", "c"}


def test_enum_not_equal(matching: Matching) -> None:
    assert matching("state != EXECUTION_STATE_RUNNING") == {"b", "c", "d"}


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('start_time >= "2025-09-01T00:00:00Z"', {"a", "b"}),
        ('start_time = "2025-09-01T02:00:00+02:00"', {"a"}),
        ('start_time < "2025-09-01T02:00:00+02:00"', {"d"}),
        ('start_time <= "2025-08-31T19:00:00-04:00"', {"d"}),
        ('start_time > "2025-09-02t11:59:59.999999999z"', {"b"}),
    ],
)
def test_timestamps_with_offsets(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('start_time != "2025-09-01T00:00:00Z"', {"b", "d"}),
        ('start_time < "2100-01-01T00:00:00Z"', {"a", "b", "d"}),
        ('NOT start_time < "2100-01-01T00:00:00Z"', {"c"}),
        ('note != "x"', {"a", "c"}),
        ('note = "x" OR note != "x"', {"a", "c", "d"}),
    ],
)
def test_null_never_matches_a_comparison(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('labels.team = "data"', {"a"}),
        ("labels.team = ml", {"b"}),
        ('labels.team != "data"', {"b"}),
        ("labels.env = prod OR labels.env = dev", {"a", "d"}),
        ("labels.team = data labels.env = prod", {"a"}),
        ("labels.missing = x", set()),
    ],
)
def test_labels_map_field(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (r'note = "say \"hi\"\n"', {"a"}),
        (r'note = "back\\slash (x) = y"', {"c"}),
        ('note = "x" AND workflow = "workflows/report"', {"d"}),
        (r'note = "AND \t OR"', set()),
    ],
)
def test_quoted_strings_with_escapes(matching: Matching, text: str, ids: set[str]) -> None:
    assert matching(text) == ids


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("state =", "syntax error: expected a value after '=' at the end of the filter"),
        ("state == FAILED", "syntax error: expected a value after '=' at character 8, got '='"),
        (
            "state FAILED",
            "syntax error: expected an operator after 'state' at character 7, got 'FAILED'",
        ),
        ("(state = FAILED", "syntax error: expected AND, OR or ')' at the end of the filter"),
        (
            "state = FAILED)",
            "syntax error: expected AND, OR or the end of the filter at character 15, got ')'",
        ),
        (
            "state = FAILED AND",
            "syntax error: expected a field name, NOT or '(' at the end of the filter",
        ),
        (
            "AND state = FAILED",
            "syntax error: expected a field name, NOT or '(' at character 1, got 'AND'",
        ),
        ("()", "syntax error: expected a field name, NOT or '(' at character 2, got ')'"),
        ("state = AND", "syntax error: expected a value after '=' at character 9, got 'AND'"),
        ("state = - 1", "syntax error: expected a value after '=' at character 9, got '-'"),
        (
            '"state" = FAILED',
            "syntax error: expected a field name, NOT or '(' at character 1, got '\"state\"'",
        ),
        ('state = "FAILED', "syntax error: unterminated string starting at character 9"),
        (
            "state = 'FAILED'",
            'syntax error: unexpected "\'" at character 9; strings take double quotes',
        ),
        ("state = FAILED !", "syntax error: unexpected '!' at character 16"),
        (r'note = "a\qb"', "syntax error: unknown escape '\\q' at character 10"),
        (
            "start_time > 2025-09-01T00:00:00Z",
            "syntax error: expected AND, OR or the end of the filter at character 27, got ':'"
            " (quote values that contain ':', such as timestamps)",
        ),
    ],
)
def test_syntax_errors_say_where(text: str, detail: str) -> None:
    assert _error(text).field_violations[0].description == detail


def test_unknown_field_lists_the_known_ones() -> None:
    assert _error("colour = red").field_violations[0].description == (
        "unknown field 'colour' at character 1; known fields: assignees, attempts, creator, "
        "labels.<key>, note, pinned, start_time, state, workflow"
    )
    assert "unknown field 'state.x' at character 5" in _error("NOT state.x = 1").message


def test_map_field_needs_a_key() -> None:
    assert (
        _error("labels = x").field_violations[0].description == "'labels' needs a key: labels.<key>"
    )
    assert "needs a key" in _error("labels. = x").message


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("state > FAILED", "operator '>' is not supported on 'state'; use !=, ="),
        ("workflow : etl", "operator ':' is not supported on 'workflow'; use !=, ="),
        ("assignees = bob", "operator '=' is not supported on 'assignees'; use :"),
        ("labels.team > a", "operator '>' is not supported on 'labels.team'; use !=, ="),
        ("pinned < true", "operator '<' is not supported on 'pinned'; use !=, ="),
    ],
)
def test_operator_not_allowed_for_the_field(text: str, detail: str) -> None:
    assert _error(text).field_violations[0].description == detail


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "state = ARCHIVED",
            "unknown 'state' value 'ARCHIVED'; expected one of RUNNING, SUCCEEDED, FAILED",
        ),
        (
            "state = failed",
            "unknown 'state' value 'failed'; expected one of RUNNING, SUCCEEDED, FAILED",
        ),
        ("attempts = 1.5", "'attempts' needs an integer, got '1.5'"),
        ('attempts = "1_000"', "'attempts' needs an integer, got '1_000'"),
        ("attempts = +1", "'attempts' needs an integer, got '+1'"),
        ("pinned = True", "'pinned' needs true or false, got 'True'"),
        ("pinned = 1", "'pinned' needs true or false, got '1'"),
    ],
)
def test_bad_values(text: str, detail: str) -> None:
    assert _error(text).field_violations[0].description == detail


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2025-09-01T00:00:00",  # no offset
        "2025-09-01",
        "2025-09-01 00:00:00Z",
        "2025-13-01T00:00:00Z",  # no such month
        "2025-09-01T00:00:00+0200",
    ],
)
def test_bad_timestamps(value: str) -> None:
    assert _error(f'start_time > "{value}"').field_violations[0].description == (
        f"'start_time' needs an RFC 3339 timestamp such as \"2025-09-01T00:00:00Z\", got {value!r}"
    )


def test_length_limit() -> None:
    longest = "pinned = true" + " " * (MAX_FILTER_LENGTH - len("pinned = true"))
    assert compile_filter(longest, FIELDS) is not None
    assert _error(longest + " ").field_violations[0].description == (
        "the filter is 2001 characters long; at most 2000"
    )


@pytest.mark.parametrize(
    ("opening", "closing", "levels_each"),
    [("(", ")", 1), ("NOT ", "", 1), ("-", "", 1), ("NOT (", ")", 2)],
)
def test_depth_limit(matching: Matching, opening: str, closing: str, levels_each: int) -> None:
    def nested(times: int) -> str:
        return opening * times + "pinned = true" + closing * times

    deepest = MAX_FILTER_DEPTH // levels_each
    assert matching(nested(deepest)) == {"a", "d"}
    detail = _error(nested(deepest + 1)).field_violations[0].description
    assert detail.startswith(
        f"the filter nests deeper than {MAX_FILTER_DEPTH} levels at character "
    )


def test_field_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="enum_values"):
        Field("enum", executions.c.state)
    with pytest.raises(ValueError, match="enum_values"):
        Field("int", executions.c.attempts, enum_values={"ONE": 1})
    with pytest.raises(ValueError, match="exactly one of column and build"):
        Field("string")
    with pytest.raises(ValueError, match="exactly one of column and build"):
        Field("string", executions.c.note, build=has_assignee)
    with pytest.raises(ValueError, match="unknown operators"):
        Field("int", executions.c.attempts, ops=frozenset({"~"}))


def test_non_nullable_columns_compare_without_a_null_guard() -> None:
    where = compile_filter('attempts = 1 start_time = "2025-09-01T00:00:00Z"', FIELDS)
    sql = str(where)
    assert sql.count("IS NOT NULL") == 1
    assert "executions.start_time IS NOT NULL" in sql
