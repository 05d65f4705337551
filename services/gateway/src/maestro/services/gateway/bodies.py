"""Request bodies: the size cap, workflow definition documents, and the
conversion of JSON body values to proto values.

A definition document is sent as the body itself, JSON or YAML, and forwarded
byte for byte to the registry/compiler (which report syntax errors with line and
column), so what the author wrote is what gets stored and what diagnostics point
into.
"""

from __future__ import annotations

import email.message
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from google.protobuf import duration_pb2, struct_pb2
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maestro.common.v1 import source_pb2
from maestro.runtime import context
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.runtime.problem import PROBLEM_CONTENT_TYPE, problem

PAYLOAD_TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415

JSON_MEDIA_TYPE = "application/json"
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
# Sent by tools that do not say what the bytes are (curl --data-binary without -H,
# editors): the compiler detects the syntax (JSON when it starts with `{`).
UNLABELLED_MEDIA_TYPES = (
    "",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
)


class BodyTooLargeError(HTTPException):
    """The request body exceeds ``max_body_bytes``."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            PAYLOAD_TOO_LARGE, detail=f"the request body exceeds the limit of {limit} bytes"
        )
        self.limit = limit


def payload_too_large_error(limit: int) -> InvalidArgumentError:
    """The domain error a too-large body is reported as (HTTP 413)."""
    return InvalidArgumentError(
        f"the request body exceeds the limit of {limit} bytes",
        reason="PAYLOAD_TOO_LARGE",
        metadata={"limit_bytes": str(limit)},
    )


class BodyLimitMiddleware:
    """Caps request bodies at ``max_body_bytes``.

    A declared ``Content-Length`` over the cap is refused before anything is
    read; otherwise the body stream is counted as the application reads it and
    reading past the cap raises :class:`BodyTooLargeError` (rendered as a 413
    problem by the application's handler).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, body = problem(
            payload_too_large_error(self.max_body_bytes),
            instance=scope.get("path", ""),
            request_id=context.current().request_id,
        )
        body["status"] = PAYLOAD_TOO_LARGE
        # Answered without reading the body; the HTTP server discards the rest of it
        # (without buffering) and keeps the connection, so the client sees the 413.
        response = JSONResponse(
            body, status_code=PAYLOAD_TOO_LARGE, media_type=PROBLEM_CONTENT_TYPE
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def media_type(content_type: str | None) -> str:
    """The lower-case ``type/subtype`` of a Content-Type header ("" when absent)."""
    if not content_type:
        return ""
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_type() if content_type.strip() else ""


def source_format(content_type: str | None) -> source_pb2.SourceFormat:
    """The source format a document body's Content-Type declares.

    Raises:
        HTTPException: 415 for a media type that is neither JSON nor YAML.
    """
    kind = media_type(content_type)
    if kind == JSON_MEDIA_TYPE or kind.endswith("+json"):
        return source_pb2.SOURCE_FORMAT_JSON
    if kind in YAML_MEDIA_TYPES or kind.endswith("+yaml"):
        return source_pb2.SOURCE_FORMAT_YAML
    if kind in UNLABELLED_MEDIA_TYPES:
        return source_pb2.SOURCE_FORMAT_UNSPECIFIED
    raise HTTPException(
        UNSUPPORTED_MEDIA_TYPE,
        detail=f"a workflow definition is sent as {JSON_MEDIA_TYPE} or "
        f"{YAML_MEDIA_TYPES[0]}, not {kind}",
    )


async def read_document(request: Request) -> source_pb2.WorkflowSource:
    """The workflow definition document in the request body.

    Raises:
        HTTPException: 415 for an unsupported media type; 413 (from the body
            limit) for a body over the cap.
        InvalidArgumentError: the body is empty.
    """
    fmt = source_format(request.headers.get("content-type"))
    content = await request.body()
    if not content.strip():
        raise InvalidArgumentError(
            "the request body is empty: send the workflow definition document (JSON or YAML)",
            field_violations=[FieldViolation("body", "must be a workflow definition document")],
        )
    return source_pb2.WorkflowSource(content=content, format=fmt)


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset into ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def duration_value(value: str | None, field: str) -> duration_pb2.Duration | None:
    """A proto JSON duration (``1.5s``) from a body field; None stays None.

    Raises:
        InvalidArgumentError: not a duration; ``field`` names it.
    """
    if value is None:
        return None
    duration = duration_pb2.Duration()
    try:
        duration.FromJsonString(value)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{field} must be a duration such as 1.5s, got {value!r}",
            field_violations=[FieldViolation(field, "expected a duration like `1.5s`")],
        ) from exc
    return duration


def struct_value(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    """A ``google.protobuf.Struct`` from a JSON object; None stays None."""
    if value is None:
        return None
    result = struct_pb2.Struct()
    result.update(value)
    return result
