"""CLI output: exit codes by error kind, diagnostics as file:line:col."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from maestro.cli.render import (
    ExitCode,
    diagnostic_text,
    error_json,
    exit_code,
    print_diagnostics,
    print_error,
    strip_location,
)
from maestro.common.v1 import diagnostic_pb2, source_pb2
from maestro.runtime.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    InvalidDefinitionError,
    MaestroError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidDefinitionError("bad"), ExitCode.FAILED),
        (InvalidArgumentError("bad", reason="SOURCE_SYNTAX_ERROR"), ExitCode.FAILED),
        (InvalidArgumentError("bad id"), ExitCode.USAGE),
        (InvalidArgumentError("bad", reason="INVALID_PAGE_TOKEN"), ExitCode.USAGE),
        (NotFoundError("gone"), ExitCode.NOT_FOUND),
        (NotFoundError("gone", reason="VERSION_NOT_FOUND"), ExitCode.NOT_FOUND),
        (AlreadyExistsError("taken"), ExitCode.CONFLICT),
        (AbortedError("stale"), ExitCode.CONFLICT),
        (FailedPreconditionError("frozen", reason="WORKFLOW_FROZEN"), ExitCode.CONFLICT),
        (UnavailableError("down"), ExitCode.UNAVAILABLE),
        (DeadlineExceededError("slow"), ExitCode.UNAVAILABLE),
        (PermissionDeniedError("no"), ExitCode.FAILED),
        (InternalError("boom"), ExitCode.FAILED),
    ],
)
def test_exit_codes(error: MaestroError, code: ExitCode) -> None:
    assert exit_code(error) == code


def _render(print_fn: object, *args: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    print_fn(console, *args)  # type: ignore[operator]
    return out.getvalue()


def test_diagnostics_print_as_file_line_col_code_message() -> None:
    diagnostic = diagnostic_pb2.Diagnostic(
        code="UNKNOWN_STEP_REF",
        severity=diagnostic_pb2.SEVERITY_ERROR,
        message="step 'a' needs unknown step 'zz'",
        hint="add the step or fix the id",
        path="/steps/0/needs/0",
        position=source_pb2.SourcePosition(line=5, column=13),
    )
    warning = diagnostic_pb2.Diagnostic(
        code="MISSING_TIMEOUT", severity=diagnostic_pb2.SEVERITY_WARNING, message="no timeout"
    )
    assert diagnostic_text("flow.yaml", diagnostic).plain == (
        "flow.yaml:5:13: UNKNOWN_STEP_REF step 'a' needs unknown step 'zz'  "
        "(error at /steps/0/needs/0; hint: add the step or fix the id)"
    )
    out = io.StringIO()
    counts = print_diagnostics(
        Console(file=out, width=200, color_system=None), "f.yaml", [diagnostic, warning]
    )
    assert counts == (1, 1)
    assert out.getvalue().splitlines()[1] == "f.yaml: MISSING_TIMEOUT no timeout  (warning at /)"


def test_locations_inside_messages_are_not_repeated() -> None:
    assert strip_location("flow.yaml:2:12: Expecting value") == "Expecting value"
    assert strip_location("<source>:1:1: x") == "x"
    assert strip_location("step 'a': 1:2: odd") == "step 'a': 1:2: odd"


def test_syntax_errors_print_at_their_position() -> None:
    error = InvalidArgumentError(
        "<source>:2:12: Expecting value",
        reason="SOURCE_SYNTAX_ERROR",
        metadata={"line": "2", "column": "12"},
    )
    assert _render(print_error, error, "flow.json").strip() == (
        "flow.json:2:12: SOURCE_SYNTAX_ERROR Expecting value"
    )


def test_other_errors_print_reason_and_violations() -> None:
    error = InvalidDefinitionError(
        "the definition has 1 error(s)",
        field_violations=[FieldViolation("/steps/0/id", "bad id", "INVALID_STEP_ID")],
    )
    assert _render(print_error, error, "f.yaml").splitlines() == [
        "error: INVALID_DEFINITION the definition has 1 error(s)",
        "  f.yaml: /steps/0/id: INVALID_STEP_ID bad id",
    ]


def test_json_errors_are_the_rest_problem() -> None:
    body = error_json(NotFoundError("workflow x not found", metadata={"name": "workflows/x"}))
    assert body["status"] == 404
    assert body["reason"] == "WORKFLOW_NOT_FOUND"
    assert body["metadata"] == {"name": "workflows/x"}
