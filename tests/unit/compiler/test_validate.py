"""Validation: codes, JSON pointers, positions, related steps."""

from __future__ import annotations

import pytest

from maestro.runtime.errors import InvalidArgumentError
from maestro.services.compiler.service import Compiler, Source
from maestro.services.compiler.source import parse_source
from maestro.services.compiler.validate import Finding, validate


def findings(text: str) -> list[Finding]:
    return [f for f, _ in validate(parse_source(text.encode())).findings]


def codes_at(text: str) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in findings(text)]


VALID = """\
name: order-flow
steps:
  - id: fetch
    type: task
  - id: check
    type: condition
    needs: [fetch]
    condition: {expression: "true", thenSteps: [wait]}
  - id: wait
    type: delay
    needs: [fetch, check]
    delay: {duration: 1m30s}
"""


def test_valid_document_has_no_findings() -> None:
    report = validate(parse_source(VALID.encode()))
    assert report.findings == []
    assert report.valid


def test_duplicate_step_id() -> None:
    text = "name: x\nsteps:\n  - id: a\n    type: task\n  - id: a\n    type: task\n"
    (finding,) = findings(text)
    assert (finding.code, finding.path) == ("DUPLICATE_STEP_ID", "/steps/1/id")
    assert finding.related_steps == ("a",)
    assert "/steps/0" in finding.message
    ((_, position),) = validate(parse_source(text.encode())).findings
    assert position == (5, 9)


def test_unknown_step_reference() -> None:
    text = (
        "name: x\nsteps:\n  - id: a\n    type: task\n    needs: [a2, ghost]\n"
        "  - id: a2\n    type: task\n"
    )
    (finding,) = findings(text)
    assert (finding.code, finding.path) == ("UNKNOWN_STEP_REF", "/steps/0/needs/1")
    assert finding.related_steps == ("a",)
    assert "'ghost'" in finding.message


def test_three_step_cycle() -> None:
    text = """\
name: x
steps:
  - {id: b, type: task, needs: [c]}
  - {id: a, type: task, needs: [b]}
  - {id: c, type: task, needs: [a]}
  - {id: d, type: task, needs: [a]}
"""
    (finding,) = findings(text)
    assert finding.code == "CYCLE"
    assert finding.related_steps == ("a", "b", "c")
    assert finding.path == "/steps/1/needs"  # the needs of the first step on the cycle
    assert "a -> b -> c -> a" in finding.message


def test_cycle_is_rotated_to_start_at_the_smallest_id() -> None:
    # The search enters the cycle at c (through a, which is not on it).
    text = """\
name: x
steps:
  - {id: a, type: task, needs: [c]}
  - {id: b, type: task, needs: [c]}
  - {id: c, type: task, needs: [d]}
  - {id: d, type: task, needs: [b]}
"""
    (finding,) = findings(text)
    assert finding.code == "CYCLE"
    assert finding.related_steps == ("b", "c", "d")
    assert finding.path == "/steps/1/needs"


def test_self_dependency_is_a_cycle() -> None:
    (finding,) = findings("name: x\nsteps:\n  - {id: a, type: task, needs: [a]}\n")
    assert (finding.code, finding.related_steps) == ("CYCLE", ("a",))


def test_separate_cycles_are_each_reported() -> None:
    text = """\
name: x
steps:
  - {id: a, type: task, needs: [b]}
  - {id: b, type: task, needs: [a]}
  - {id: c, type: task, needs: [d]}
  - {id: d, type: task, needs: [c]}
"""
    cycles = [f.related_steps for f in findings(text) if f.code == "CYCLE"]
    assert cycles == [("a", "b"), ("c", "d")]


def test_one_cycle_per_strongly_connected_component() -> None:
    text = """\
name: x
steps:
  - {id: a, type: task, needs: [b]}
  - {id: b, type: task, needs: [a, c]}
  - {id: c, type: task, needs: [b]}
"""
    assert [f.code for f in findings(text)] == ["CYCLE"]


def test_missing_name_and_steps() -> None:
    assert sorted(codes_at("description: nothing\n")) == [
        ("MISSING_FIELD", "/name"),
        ("MISSING_FIELD", "/steps"),
    ]


def test_missing_step_id_and_type() -> None:
    assert sorted(codes_at("name: x\nsteps:\n  - needs: []\n")) == [
        ("MISSING_FIELD", "/steps/0/id"),
        ("MISSING_FIELD", "/steps/0/type"),
    ]


def test_invalid_step_type() -> None:
    (finding,) = findings("name: x\nsteps:\n  - id: a\n    type: taks\n")
    assert (finding.code, finding.path) == ("INVALID_STEP_TYPE", "/steps/0/type")
    assert "task" in finding.message


@pytest.mark.parametrize("name", ["Bad_Name", "1flow", "-flow", "a" * 64, "", "123"])
def test_invalid_name(name: str) -> None:
    text = f"name: '{name}'\nsteps:\n  - {{id: a, type: task}}\n"
    if name == "123":
        text = "name: 123\nsteps:\n  - {id: a, type: task}\n"
    assert codes_at(text) == [("INVALID_NAME", "/name")]


def test_longest_valid_name() -> None:
    assert findings(f"name: {'a' * 63}\nsteps:\n  - {{id: a, type: task}}\n") == []


@pytest.mark.parametrize("steps", ["steps: {a: {type: task}}", "steps: just-text"])
def test_steps_must_be_a_list(steps: str) -> None:
    assert codes_at(f"name: x\n{steps}\n") == [("TYPE_MISMATCH", "/steps")]


def test_steps_must_not_be_empty() -> None:
    (finding,) = findings("name: x\nsteps: []\n")
    assert (finding.code, finding.path) == ("SCHEMA_VIOLATION", "/steps")
    assert "at least 1" in finding.message


def test_not_a_mapping() -> None:
    (finding,) = findings("- just\n- a list\n")
    assert (finding.code, finding.path) == ("TYPE_MISMATCH", "")
    assert "must be a mapping" in finding.message


def test_all_problems_are_reported_sorted_by_position() -> None:
    text = """\
name: Bad_Name
steps:
  - id: a
    type: taks
    needs: [ghost]
  - id: a
  - 7
  - id: 1abc
    type: task
    needs: oops
"""
    report = validate(parse_source(text.encode()))
    assert [(f.code, f.path) for f, _ in report.findings] == [
        ("INVALID_NAME", "/name"),
        ("INVALID_STEP_TYPE", "/steps/0/type"),
        ("UNKNOWN_STEP_REF", "/steps/0/needs/0"),
        ("MISSING_FIELD", "/steps/1/type"),
        ("DUPLICATE_STEP_ID", "/steps/1/id"),
        ("TYPE_MISMATCH", "/steps/2"),
        ("INVALID_STEP_ID", "/steps/3/id"),
        ("TYPE_MISMATCH", "/steps/3/needs"),
    ]
    positions = [pos for _, pos in report.findings]
    assert positions == sorted(positions)
    assert positions[0] == (1, 7)
    assert not report.valid


def test_require_valid_raises_with_one_violation_per_error() -> None:
    source = Source(b"name: Bad\nsteps:\n  - {id: a, type: nope}\n")
    with pytest.raises(InvalidArgumentError) as caught:
        Compiler().require_valid(source)
    error = caught.value
    assert error.reason == "INVALID_DEFINITION"
    assert error.metadata == {"errors": "2"}
    assert [(v.field, v.reason) for v in error.field_violations] == [
        ("/name", "INVALID_NAME"),
        ("/steps/0/type", "INVALID_STEP_TYPE"),
    ]


def test_empty_content_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        Compiler().validate(Source(b""))
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert caught.value.field_violations[0].field == "source.content"


@pytest.mark.parametrize("value", [".nan", ".inf", "9007199254740993"])
def test_out_of_domain_numbers_are_an_invalid_argument(value: str) -> None:
    source = Source(
        f"name: x\nsteps:\n  - {{id: a, type: task, config: {{n: {value}}}}}\n".encode()
    )
    with pytest.raises(InvalidArgumentError):
        Compiler().validate(source)


SCOPES = """\
name: scopes
inputSchema: {type: object, properties: {n: {type: integer}}}
outputs: {last: steps.c.output.v, first: steps.a.output.v}
steps:
  - {id: a, type: task, outputSchema: {type: object, properties: {v: {type: integer}}}}
  - {id: fetch-all, type: task, needs: [a]}
  - {id: b, type: task, needs: [fetch-all], input: {x: 'steps["fetch-all"].output.rows'}}
  - id: c
    type: loop
    needs: [b]
    loop:
      items: "[1, 2, 3]"
      body: {type: task, input: {v: "steps.a.output.v + index + inputs.n", item: item}}
"""


def test_expressions_see_inputs_transitive_upstream_steps_and_loop_variables() -> None:
    assert findings(SCOPES) == []


def test_reading_a_step_that_is_not_upstream_says_what_to_add() -> None:
    text = SCOPES.replace("input: {x:", "input: {late: steps.c.output, x:")
    (finding,) = findings(text)
    assert (finding.code, finding.path) == ("UNKNOWN_STEP_REF", "/steps/2/input/late")
    assert finding.related_steps == ("b", "c")
    assert "not upstream" in finding.message
    assert finding.hint == "add 'c' to `needs`"


def test_a_dashed_id_read_with_a_dot_points_to_the_bracket_form() -> None:
    text = SCOPES.replace("""'steps["fetch-all"].output.rows'""", "steps.fetch-all.output.rows")
    (finding,) = findings(text)
    assert (finding.code, finding.path) == ("UNKNOWN_STEP_REF", "/steps/2/input/x")
    assert finding.hint == 'read it as `steps["fetch-all"].output`'


def test_type_errors_name_the_operands_and_column() -> None:
    text = SCOPES.replace('"steps.a.output.v + index + inputs.n"', """'steps.a.output.v + "x"'""")
    (finding,) = findings(text)
    assert (finding.code, finding.path) == ("TYPE_MISMATCH", "/steps/3/loop/body/input/v")
    assert "(int, string)" in finding.message
    assert "column 18" in finding.message


def test_unknown_keys_are_reported_one_by_one_with_a_suggestion() -> None:
    text = "name: x\nsteps:\n  - {id: a, type: task, handler: echo, tiemout: 5s, colour: red}\n"
    found = findings(text)
    assert [(f.code, f.path) for f in found] == [
        ("SCHEMA_VIOLATION", "/steps/0/tiemout"),
        ("SCHEMA_VIOLATION", "/steps/0/colour"),
    ]
    assert found[0].hint == "did you mean `timeout`?"


def test_a_key_of_another_step_type_names_the_types_it_belongs_to() -> None:
    (finding,) = findings(
        "name: x\nsteps:\n  - {id: a, type: delay, delay: {duration: 1s}, handler: echo}\n"
    )
    assert (finding.code, finding.path) == ("SCHEMA_VIOLATION", "/steps/0/handler")
    assert "not allowed on a delay step" in finding.message
    assert finding.hint == "`handler` applies to task steps"
