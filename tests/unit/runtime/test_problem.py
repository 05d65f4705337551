"""RFC 9457 problem details."""

from __future__ import annotations

import pytest

from maestro.runtime import errors
from maestro.runtime.errors import Code, FieldViolation
from maestro.runtime.problem import HTTP_STATUS, PROBLEM_CONTENT_TYPE, problem


@pytest.mark.parametrize(
    ("code", "http"),
    [
        (Code.INVALID_ARGUMENT, 400),
        (Code.UNAUTHENTICATED, 401),
        (Code.PERMISSION_DENIED, 403),
        (Code.NOT_FOUND, 404),
        (Code.ALREADY_EXISTS, 409),
        (Code.ABORTED, 409),
        (Code.RESOURCE_EXHAUSTED, 429),
        (Code.CANCELLED, 499),
        (Code.INTERNAL, 500),
        (Code.UNIMPLEMENTED, 501),
        (Code.UNAVAILABLE, 503),
        (Code.DEADLINE_EXCEEDED, 504),
    ],
)
def test_http_status_table(code: Code, http: int) -> None:
    assert HTTP_STATUS[code] == http
    status, body = problem(errors.ERROR_CLASSES[code]("x"))
    assert status == http
    assert body["status"] == http


def test_every_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(Code)


def test_problem_body_has_rfc9457_fields_and_reason() -> None:
    error = errors.InvalidDefinitionError(
        "the definition has 1 error(s)",
        metadata={"errors": "1"},
        field_violations=[FieldViolation("/steps/0/id", "duplicate", "DUPLICATE_STEP_ID")],
        retry_after_seconds=2.0,
    )
    status, body = problem(error, instance="/v1/workflows/x", request_id="rid-1")
    assert PROBLEM_CONTENT_TYPE == "application/problem+json"
    assert status == 400
    assert body["type"] == "https://maestro.dev/problems/invalid-definition"
    assert body["title"] == "Invalid definition"
    assert body["status"] == 400
    assert body["detail"] == "the definition has 1 error(s)"
    assert body["reason"] == "INVALID_DEFINITION"
    assert body["code"] == "INVALID_ARGUMENT"
    assert body["instance"] == "/v1/workflows/x"
    assert body["requestId"] == "rid-1"
    assert body["metadata"] == {"errors": "1"}
    assert body["violations"] == [
        {"field": "/steps/0/id", "description": "duplicate", "reason": "DUPLICATE_STEP_ID"}
    ]
    assert body["retryAfterSeconds"] == 2.0


def test_optional_members_are_left_out() -> None:
    _, body = problem(errors.NotFoundError("no workflow x"))
    assert body["type"] == "https://maestro.dev/problems/workflow-not-found"
    for key in ("instance", "requestId", "metadata", "violations", "retryAfterSeconds"):
        assert key not in body
