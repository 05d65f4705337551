"""Domain errors: what services raise, independent of gRPC.

Domain code (``service.py``) raises these; the server interceptor maps them to a
``google.rpc.Status`` with one ``ErrorInfo`` (see ``maestro.runtime.status``), and
the client library maps a status back to the same class. Reasons are the names of
``maestro.common.v1.ErrorReason`` without the ``ERROR_REASON_`` prefix; an unknown
reason is a programming error and fails at construction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from google.protobuf.message import Message

from maestro.common.v1 import error_reason_pb2

ERROR_DOMAIN = "maestro.dev"
_REASON_PREFIX = "ERROR_REASON_"


class Code(enum.IntEnum):
    """Canonical status codes (``google.rpc.Code``), without importing grpc."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def known_reasons() -> frozenset[str]:
    """All reason strings the contract defines."""
    return frozenset(
        name.removeprefix(_REASON_PREFIX)
        for name in error_reason_pb2.ErrorReason.keys()  # noqa: SIM118 - an enum wrapper
        if name != "ERROR_REASON_UNSPECIFIED"
    )


_KNOWN_REASONS = known_reasons()


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request (``google.rpc.BadRequest.FieldViolation``)."""

    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class QuotaViolation:
    """One exceeded quota (``google.rpc.QuotaFailure.Violation``)."""

    subject: str
    description: str


class MaestroError(Exception):
    """Base class of every error that crosses a service boundary.

    Args:
        message: human-readable, safe to show to the caller (no secrets, no
            internals).
        reason: an ``ErrorReason`` name such as ``WORKFLOW_NOT_FOUND``; defaults
            to the class's reason.
        metadata: string key/values for ``ErrorInfo.metadata``.
        field_violations: become a ``google.rpc.BadRequest`` detail.
        quota_violations: become a ``google.rpc.QuotaFailure`` detail.
        retry_after_seconds: becomes a ``google.rpc.RetryInfo`` detail.
        details: further protobuf messages packed as ``Any`` details.
    """

    code: ClassVar[Code] = Code.INTERNAL
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        quota_violations: Sequence[QuotaViolation] = (),
        retry_after_seconds: float | None = None,
        details: Sequence[Message] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        if self.reason not in _KNOWN_REASONS:
            raise ValueError(f"unknown error reason {self.reason!r}: add it to ErrorReason")
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}
        self.field_violations = tuple(field_violations)
        self.quota_violations = tuple(quota_violations)
        self.retry_after_seconds = retry_after_seconds
        self.details = tuple(details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class InvalidArgumentError(MaestroError):
    """The request is malformed (``INVALID_ARGUMENT``)."""

    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class InvalidDefinitionError(InvalidArgumentError):
    """A workflow definition parsed but has error diagnostics; each becomes a
    BadRequest field violation (field = JSON Pointer, reason = diagnostic code)."""

    default_reason = "INVALID_DEFINITION"


class NotFoundError(MaestroError):
    """The named resource does not exist (``NOT_FOUND``)."""

    code = Code.NOT_FOUND
    default_reason = "WORKFLOW_NOT_FOUND"


class AlreadyExistsError(MaestroError):
    """The resource to create exists already (``ALREADY_EXISTS``)."""

    code = Code.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPreconditionError(MaestroError):
    """The system is not in a state that allows the operation."""

    code = Code.FAILED_PRECONDITION
    default_reason = "EXECUTION_STATE_CONFLICT"


class AbortedError(MaestroError):
    """A concurrency conflict (for example a stale etag); retry after re-reading."""

    code = Code.ABORTED
    default_reason = "ETAG_MISMATCH"


class PermissionDeniedError(MaestroError):
    """The caller may not do this (``PERMISSION_DENIED``)."""

    code = Code.PERMISSION_DENIED
    default_reason = "POLICY_DENIED"


class UnauthenticatedError(MaestroError):
    """The caller has no valid identity (``UNAUTHENTICATED``)."""

    code = Code.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class ResourceExhaustedError(MaestroError):
    """A quota or rate limit was hit (``RESOURCE_EXHAUSTED``)."""

    code = Code.RESOURCE_EXHAUSTED
    default_reason = "QUOTA_EXCEEDED"


class UnavailableError(MaestroError):
    """A dependency is down; the call may be retried (``UNAVAILABLE``)."""

    code = Code.UNAVAILABLE
    default_reason = "DEPENDENCY_UNAVAILABLE"


class DeadlineExceededError(MaestroError):
    """The deadline passed before the work finished (``DEADLINE_EXCEEDED``)."""

    code = Code.DEADLINE_EXCEEDED
    default_reason = "DEPENDENCY_UNAVAILABLE"


class CancelledError(MaestroError):
    """The caller cancelled the call (``CANCELLED``)."""

    code = Code.CANCELLED
    default_reason = "INTERNAL"


class UnimplementedError(MaestroError):
    """The server does not serve this method (``UNIMPLEMENTED``)."""

    code = Code.UNIMPLEMENTED
    default_reason = "INTERNAL"


class InternalError(MaestroError):
    """An unexpected failure (``INTERNAL``); the message carries no internals."""

    code = Code.INTERNAL
    default_reason = "INTERNAL"


ERROR_CLASSES: Mapping[Code, type[MaestroError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        AbortedError,
        PermissionDeniedError,
        UnauthenticatedError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        CancelledError,
        UnimplementedError,
        InternalError,
    )
}
"""The exception class for each canonical code, used by the client mapping."""

REASON_CLASSES: Mapping[str, type[MaestroError]] = {
    InvalidDefinitionError.default_reason: InvalidDefinitionError,
}
"""Reasons with a more specific class than their code's; the client mapping
prefers these when the code matches."""
