"""Domain errors <-> google.rpc.Status, both directions."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from maestro.runtime import errors, status
from maestro.runtime.errors import (
    ERROR_CLASSES,
    ERROR_DOMAIN,
    Code,
    FieldViolation,
    InvalidDefinitionError,
    MaestroError,
    NotFoundError,
    QuotaViolation,
    ResourceExhaustedError,
    UnavailableError,
)


@dataclass
class FakeRpcError(grpc.RpcError):
    """What a failed call looks like to a client (code, details, trailers)."""

    status_code: grpc.StatusCode
    text: str = ""
    trailers: tuple[tuple[str, str | bytes], ...] = field(default_factory=tuple)

    def code(self) -> grpc.StatusCode:
        return self.status_code

    def details(self) -> str:
        return self.text

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.trailers


def as_rpc_error(error: MaestroError) -> FakeRpcError:
    return FakeRpcError(
        status.grpc_code(error.code), error.message, status.trailing_metadata(error)
    )


def unpack(detail: any_pb2.Any, cls: type) -> object:
    message = cls()
    assert detail.Unpack(message), f"detail is not a {cls.__name__}"
    return message


def test_unknown_reason_is_rejected() -> None:
    with pytest.raises(ValueError, match="NO_SUCH_REASON"):
        NotFoundError("gone", reason="NO_SUCH_REASON")


def test_known_reasons_have_no_prefix_and_no_unspecified() -> None:
    reasons = errors.known_reasons()
    assert {"INTERNAL", "WORKFLOW_NOT_FOUND", "DEPENDENCY_UNAVAILABLE"} <= reasons
    assert not any(r.startswith("ERROR_REASON_") for r in reasons)
    assert "UNSPECIFIED" not in reasons


def test_every_class_default_reason_is_known() -> None:
    for cls in ERROR_CLASSES.values():
        assert cls.default_reason in errors.known_reasons(), cls
        assert cls("x").reason == cls.default_reason


def test_metadata_values_become_strings() -> None:
    error = NotFoundError("gone", metadata={"attempt": 3})  # type: ignore[dict-item]
    assert error.metadata == {"attempt": "3"}


def test_to_status_packs_error_info_and_typed_details() -> None:
    error = ResourceExhaustedError(
        "slow down",
        metadata={"tenant": "acme"},
        field_violations=[FieldViolation("steps[0].id", "too long", "TOO_LONG")],
        quota_violations=[QuotaViolation("tenant:acme", "100 executions/min")],
        retry_after_seconds=1.5,
    )
    result = status.to_status(error)
    assert result.code == Code.RESOURCE_EXHAUSTED == 8
    assert result.message == "slow down"
    assert len(result.details) == 4

    info = unpack(result.details[0], error_details_pb2.ErrorInfo)
    assert info.reason == "QUOTA_EXCEEDED"
    assert info.domain == ERROR_DOMAIN == "maestro.dev"
    assert dict(info.metadata) == {"tenant": "acme"}

    bad = unpack(result.details[1], error_details_pb2.BadRequest)
    assert [(v.field, v.description, v.reason) for v in bad.field_violations] == [
        ("steps[0].id", "too long", "TOO_LONG")
    ]
    quota = unpack(result.details[2], error_details_pb2.QuotaFailure)
    assert [(v.subject, v.description) for v in quota.violations] == [
        ("tenant:acme", "100 executions/min")
    ]
    retry = unpack(result.details[3], error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 1
    assert retry.retry_delay.nanos == 500_000_000


def test_to_status_has_only_error_info_for_a_plain_error() -> None:
    result = status.to_status(NotFoundError("no such workflow"))
    assert len(result.details) == 1
    assert result.details[0].Is(error_details_pb2.ErrorInfo.DESCRIPTOR)


def test_trailing_metadata_carries_the_serialized_status() -> None:
    error = UnavailableError("db down")
    ((key, value),) = status.trailing_metadata(error)
    assert key == "grpc-status-details-bin"
    assert status_pb2.Status.FromString(value) == status.to_status(error)


def test_round_trip_keeps_class_reason_metadata_violations_and_delay() -> None:
    original = InvalidDefinitionError(
        "the definition has 2 error(s)",
        metadata={"errors": "2"},
        field_violations=[
            FieldViolation("/steps/0/id", "duplicate", "DUPLICATE_STEP_ID"),
            FieldViolation("/name", "required", "MISSING_FIELD"),
        ],
        quota_violations=[QuotaViolation("tenant:t1", "too many")],
        retry_after_seconds=0.25,
    )
    back = status.from_rpc_error(as_rpc_error(original))
    # The reason has a more specific class than INVALID_ARGUMENT's.
    assert type(back) is InvalidDefinitionError
    assert back.reason == "INVALID_DEFINITION"
    assert back.message == original.message
    assert back.metadata == {"errors": "2"}
    assert back.field_violations == original.field_violations
    assert back.quota_violations == original.quota_violations
    assert back.retry_after_seconds == pytest.approx(0.25)


@pytest.mark.parametrize("cls", list(ERROR_CLASSES.values()), ids=lambda c: c.__name__)
def test_round_trip_keeps_the_class(cls: type[MaestroError]) -> None:
    back = status.from_rpc_error(as_rpc_error(cls("boom", metadata={"k": "v"})))
    assert type(back) is cls
    assert back.reason == cls.default_reason
    assert back.metadata == {"k": "v"}
    assert back.message == "boom"


@pytest.mark.parametrize("code", list(ERROR_CLASSES), ids=lambda c: c.name)
def test_every_code_maps_back_to_its_class(code: Code) -> None:
    grpc_status = status.grpc_code(code)
    assert grpc_status.value[0] == int(code)
    back = status.from_rpc_error(FakeRpcError(grpc_status, "x"))
    assert type(back) is ERROR_CLASSES[code]
    assert back.code == code


def test_without_trailers_the_code_decides() -> None:
    back = status.from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect"), peer="10.0.0.1:50051"
    )
    assert isinstance(back, UnavailableError)
    assert back.reason == "DEPENDENCY_UNAVAILABLE"
    assert back.message == "failed to connect"
    assert back.metadata == {"peer": "10.0.0.1:50051"}


def test_without_details_the_message_is_the_code_name() -> None:
    back = status.from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert isinstance(back, errors.DeadlineExceededError)
    assert back.message == "DEADLINE_EXCEEDED"


def test_unmapped_code_becomes_internal() -> None:
    back = status.from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, "bits flipped"))
    assert type(back) is errors.InternalError
    assert back.reason == "INTERNAL"


def test_unknown_reason_in_trailers_falls_back_to_class_default() -> None:
    foreign = status_pb2.Status(code=5, message="nope")
    packed = foreign.details.add()
    packed.Pack(error_details_pb2.ErrorInfo(reason="SOMEONE_ELSES_REASON", domain="x.com"))
    exc = FakeRpcError(
        grpc.StatusCode.NOT_FOUND,
        "nope",
        (("grpc-status-details-bin", foreign.SerializeToString()),),
    )
    back = status.from_rpc_error(exc)
    assert isinstance(back, NotFoundError)
    assert back.reason == NotFoundError.default_reason


def test_reason_class_applies_only_when_the_code_matches() -> None:
    assert errors.REASON_CLASSES["INVALID_DEFINITION"] is InvalidDefinitionError
    mismatched = NotFoundError("odd", reason="INVALID_DEFINITION")
    back = status.from_rpc_error(as_rpc_error(mismatched))
    assert type(back) is NotFoundError
    assert back.reason == "INVALID_DEFINITION"


def test_unrecognised_details_are_kept_raw() -> None:
    extra = error_details_pb2.DebugInfo(detail="trace")
    error = NotFoundError("gone", details=[extra])
    back = status.from_rpc_error(as_rpc_error(error))
    (raw,) = back.raw_details  # type: ignore[attr-defined]
    assert unpack(raw, error_details_pb2.DebugInfo) == extra


def test_unexpected_error_leaks_nothing() -> None:
    error = status.unexpected_error()
    assert isinstance(error, errors.InternalError)
    assert error.reason == "INTERNAL"
    assert "request id" in error.message
