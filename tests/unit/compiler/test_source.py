"""Parsing YAML/JSON sources with positions."""

from __future__ import annotations

import pytest

from maestro.runtime.errors import InvalidArgumentError
from maestro.services.compiler import source
from maestro.services.compiler.source import SourceSyntaxError, parse_source, pointer

YAML_DOC = b"""\
name: flow
steps:
  - id: a
    type: task
  - id: b
    type: task
    needs: [a]
"""


def syntax_error(content: bytes, **kwargs: object) -> SourceSyntaxError:
    with pytest.raises(SourceSyntaxError) as caught:
        parse_source(content, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_bad_yaml_indentation_reports_line_and_column() -> None:
    # Line 3 is indented under a plain scalar: the `:` at column 8 is illegal.
    error = syntax_error(b"name: x\ndescription: y\n  steps: []\n", filename="flow.yaml")
    assert (error.line, error.column) == (3, 8)
    assert error.reason == "SOURCE_SYNTAX_ERROR"
    assert error.message.startswith("flow.yaml:3:8: ")
    assert error.metadata == {"line": "3", "column": "8", "filename": "flow.yaml"}


def test_bad_yaml_dedent_inside_a_sequence() -> None:
    error = syntax_error(b"name: x\nsteps:\n  - id: a\n - id: b\n")
    assert (error.line, error.column) == (4, 2)
    assert error.message.startswith("<source>:4:2: ")


def test_tab_indentation_is_a_syntax_error() -> None:
    error = syntax_error(b"name: x\nsteps:\n\t- id: a\n")
    assert (error.line, error.column) == (3, 1)


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        (b'{\n  "name": "x",\n  "steps": [1,,2]\n}', 3, 15),
        (b'{\n  "name": "x"\n  "steps": []\n}', 3, 3),
    ],
)
def test_bad_json_reports_line_and_column(content: bytes, line: int, column: int) -> None:
    error = syntax_error(content)  # detected as JSON: starts with `{`
    assert (error.line, error.column) == (line, column)
    assert isinstance(error, InvalidArgumentError)


def test_explicit_json_format_is_not_parsed_as_yaml() -> None:
    # Valid YAML, but not JSON.
    error = syntax_error(b"name: x\n", is_json=True)
    assert error.line == 1


@pytest.mark.parametrize("content", [b"   \n\t\n", b"\n"])
def test_empty_source(content: bytes) -> None:
    error = syntax_error(content)
    assert "empty" in error.message
    assert (error.line, error.column) == (0, 0)


def test_non_utf8_source() -> None:
    assert "UTF-8" in syntax_error(b"name: \xff\xfe\n").message


def test_oversized_source_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_source(b"#" * (source.MAX_SOURCE_BYTES + 1))
    assert not isinstance(caught.value, SourceSyntaxError)
    assert caught.value.metadata == {"limit_bytes": str(source.MAX_SOURCE_BYTES)}


def test_yaml_and_json_parse_to_the_same_document() -> None:
    json_doc = (
        b'{"name": "flow", "steps": [{"id": "a", "type": "task"},'
        b' {"id": "b", "type": "task", "needs": ["a"]}]}'
    )
    assert parse_source(YAML_DOC).document == parse_source(json_doc).document


def test_yaml_timestamps_become_strings() -> None:
    doc = parse_source(b"name: x\nsince: 2024-05-01\nat: 2024-05-01T10:00:00Z\n").document
    assert doc["since"] == "2024-05-01"
    assert isinstance(doc["at"], str)
    assert doc["at"].startswith("2024-05-01T10:00:00")


def test_position_of_yaml_pointers() -> None:
    parsed = parse_source(YAML_DOC)
    assert parsed.position("") == (1, 1)
    assert parsed.position("/name") == (1, 7)
    assert parsed.position("/steps") == (3, 3)
    assert parsed.position("/steps/1") == (5, 5)
    assert parsed.position("/steps/1/needs") == (7, 12)
    assert parsed.position("/steps/1/needs/0") == (7, 13)


def test_position_of_a_missing_member_is_its_nearest_parent() -> None:
    parsed = parse_source(YAML_DOC)
    assert parsed.position("/steps/1/timeout") == (5, 5)
    assert parsed.position("/steps/9/id") == (3, 3)
    assert parsed.position("/nope/deeper") == (1, 1)


def test_position_of_json_pointers() -> None:
    parsed = parse_source(
        b'{"name": "x",\n "steps": [\n  {"id": "a", "type": "task"},\n'
        b'  {"id": "b", "needs": ["a"]}]}'
    )
    assert parsed.position("/steps/1/needs/0") == (4, 25)
    assert parsed.position("/steps/0/type") == (3, 23)


def test_pointer_escaping() -> None:
    assert pointer("steps", 2, "needs") == "/steps/2/needs"
    assert pointer("a/b", "c~d") == "/a~1b/c~0d"
    parsed = parse_source(b"labels:\n  team/owner: x\n  a~b: y\n")
    assert parsed.position("/labels/team~1owner") == (2, 15)
    assert parsed.position("/labels/a~0b") == (3, 8)
