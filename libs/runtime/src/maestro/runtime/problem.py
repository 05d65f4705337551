"""RFC 9457 problem details for REST, carrying the same reasons as gRPC."""

from __future__ import annotations

from typing import Any

from maestro.runtime.errors import ERROR_DOMAIN, Code, MaestroError

PROBLEM_CONTENT_TYPE = "application/problem+json"

# The HTTP status of each canonical code (as in google.rpc.Code's documentation).
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def problem(
    error: MaestroError, *, instance: str = "", request_id: str = ""
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, problem+json body) for a domain error."""
    status = HTTP_STATUS.get(error.code, 500)
    body: dict[str, Any] = {
        "type": f"https://{ERROR_DOMAIN}/problems/{error.reason.lower().replace('_', '-')}",
        "title": error.reason.replace("_", " ").capitalize(),
        "status": status,
        "detail": error.message,
        "reason": error.reason,
        "code": error.code.name,
        "domain": ERROR_DOMAIN,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["requestId"] = request_id
    if error.metadata:
        body["metadata"] = error.metadata
    if error.field_violations:
        body["violations"] = [
            {"field": v.field, "description": v.description, "reason": v.reason}
            for v in error.field_violations
        ]
    if error.retry_after_seconds is not None:
        body["retryAfterSeconds"] = error.retry_after_seconds
    return status, body
