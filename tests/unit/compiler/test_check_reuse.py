"""Type-check results are reused only across expressions that provably check
alike: the same text but for step ids, reading fields of the same types."""

from __future__ import annotations

from maestro.services.compiler.service import Compiler, Source

DOC = """\
name: reuse
labels: {classification: internal}
steps:
  - id: a
    type: task
    handler: echo
    timeout: 5s
    outputSchema: {type: object, properties: {value: {type: number}}}
  - id: b
    type: task
    handler: echo
    timeout: 5s
    outputSchema: {type: object, properties: {value: {type: string}}}
  - id: c
    type: task
    handler: echo
    timeout: 5s
    outputSchema: {type: object, properties: {value: {type: number}}}
  - id: d
    type: task
    handler: echo
    timeout: 5s
    needs: [a, b, c]
    input:
      x: steps.a.output.value * 2.0
      y: steps.b.output.value * 2.0
      z: steps.c.output.value * 2.0
"""


def codes_by_path(text: str) -> dict[str, str]:
    result = Compiler().validate(Source(text.encode()))
    return {f.path: f.code for f, _ in result.report.findings if f.severity == "error"}


def test_same_shape_with_a_differently_typed_field_still_fails() -> None:
    # x and z share a shape (number * double): z reuses x's success; y reads a
    # string and must be reported even though its text has the same shape.
    assert codes_by_path(DOC) == {"/steps/3/input/y": "TYPE_MISMATCH"}


def test_same_shape_with_an_undeclared_field_is_not_reused() -> None:
    # `other` is not declared on c: dyn * double checks, but differently from
    # x's declared number; both must simply pass as the checker says.
    doc = DOC.replace("z: steps.c.output.value", "z: steps.c.output.other")
    assert codes_by_path(doc) == {"/steps/3/input/y": "TYPE_MISMATCH"}
