"""Mapping between domain errors and ``google.rpc.Status``, both directions.

Server side: :func:`to_status` turns a :class:`MaestroError` into a status with
one ``ErrorInfo`` and typed details (BadRequest, QuotaFailure, RetryInfo, ...).
Client side: :func:`from_rpc_error` turns a failed call back into the same
exception class, so no caller inspects a raw ``grpc.RpcError``.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from maestro.runtime.errors import (
    ERROR_CLASSES,
    ERROR_DOMAIN,
    REASON_CLASSES,
    Code,
    FieldViolation,
    InternalError,
    MaestroError,
    QuotaViolation,
    known_reasons,
)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_REASONS = known_reasons()


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: MaestroError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for a domain error."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    ]
    if error.field_violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in error.field_violations
                    ]
                )
            )
        )
    if error.quota_violations:
        details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=v.subject, description=v.description
                        )
                        for v in error.quota_violations
                    ]
                )
            )
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    details.extend(_pack(d) for d in error.details)
    return status_pb2.Status(code=int(error.code), message=error.message, details=details)


def grpc_code(code: Code) -> grpc.StatusCode:
    """The grpc enum member for a canonical code."""
    for member in grpc.StatusCode:
        if member.value[0] == int(code):
            return member
    return grpc.StatusCode.UNKNOWN


def trailing_metadata(error: MaestroError) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata that carries the rich status of ``error``."""
    return ((STATUS_DETAILS_KEY, to_status(error).SerializeToString()),)


def _status_from_trailers(
    trailers: Iterable[tuple[str, str | bytes]] | None,
) -> status_pb2.Status | None:
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def from_rpc_error(exc: grpc.RpcError, *, peer: str = "") -> MaestroError:
    """The typed domain error for a failed call (``grpc.aio.AioRpcError`` or sync).

    The rich status in the trailers wins; without one (a proxy, a deadline, a
    connection failure) the canonical code decides the class and the reason is
    the class default (``DEPENDENCY_UNAVAILABLE`` for transport failures).
    """
    code_enum = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details_text = exc.details() if hasattr(exc, "details") else str(exc)
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    code = Code(code_enum.value[0]) if code_enum is not None else Code.UNKNOWN
    status = _status_from_trailers(trailers)
    cls = ERROR_CLASSES.get(code, InternalError)
    if status is None:
        metadata = {"peer": peer} if peer else {}
        return cls(details_text or code.name, metadata=metadata)

    reason, metadata = cls.default_reason, {}
    field_violations: list[FieldViolation] = []
    quota_violations: list[QuotaViolation] = []
    retry_after: float | None = None
    extra = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason in _REASONS:
                reason = info.reason
            metadata = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            field_violations.extend(
                FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            )
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            quota_violations.extend(
                QuotaViolation(v.subject, v.description) for v in quota.violations
            )
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry_after = info_retry.retry_delay.ToNanoseconds() / 1e9
        else:
            extra.append(detail)
    specific = REASON_CLASSES.get(reason)
    if specific is not None and specific.code == code:
        cls = specific
    error = cls(
        status.message,
        reason=reason,
        metadata=metadata,
        field_violations=field_violations,
        quota_violations=quota_violations,
        retry_after_seconds=retry_after,
    )
    error.raw_details = tuple(extra)  # type: ignore[attr-defined]
    return error


def unexpected_error() -> InternalError:
    """The error a caller sees for an unhandled exception: no internals leak."""
    return InternalError("internal error; see server logs for the request id")
