import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SimulatedStepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIMULATED_STEP_STATUS_UNSPECIFIED: _ClassVar[SimulatedStepStatus]
    SIMULATED_STEP_STATUS_SUCCEEDED: _ClassVar[SimulatedStepStatus]
    SIMULATED_STEP_STATUS_FAILED: _ClassVar[SimulatedStepStatus]
    SIMULATED_STEP_STATUS_SKIPPED: _ClassVar[SimulatedStepStatus]
SIMULATED_STEP_STATUS_UNSPECIFIED: SimulatedStepStatus
SIMULATED_STEP_STATUS_SUCCEEDED: SimulatedStepStatus
SIMULATED_STEP_STATUS_FAILED: SimulatedStepStatus
SIMULATED_STEP_STATUS_SKIPPED: SimulatedStepStatus

class StepMock(_message.Message):
    __slots__ = ("output", "fail", "error_code", "duration", "failures_before_success")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FAIL_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    FAILURES_BEFORE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    output: _struct_pb2.Struct
    fail: bool
    error_code: str
    duration: _duration_pb2.Duration
    failures_before_success: int
    def __init__(self, output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., fail: _Optional[bool] = ..., error_code: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., failures_before_success: _Optional[int] = ...) -> None: ...

class SimulatedStep(_message.Message):
    __slots__ = ("step_id", "status", "start_offset", "duration", "attempts", "iterations", "cost_cents", "output")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    COST_CENTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    status: SimulatedStepStatus
    start_offset: _duration_pb2.Duration
    duration: _duration_pb2.Duration
    attempts: int
    iterations: int
    cost_cents: float
    output: _struct_pb2.Struct
    def __init__(self, step_id: _Optional[str] = ..., status: _Optional[_Union[SimulatedStepStatus, str]] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., attempts: _Optional[int] = ..., iterations: _Optional[int] = ..., cost_cents: _Optional[float] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PathDecision(_message.Message):
    __slots__ = ("step_id", "expression", "result", "taken_steps", "skipped_steps")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TAKEN_STEPS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_STEPS_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    expression: str
    result: bool
    taken_steps: _containers.RepeatedScalarFieldContainer[str]
    skipped_steps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, step_id: _Optional[str] = ..., expression: _Optional[str] = ..., result: _Optional[bool] = ..., taken_steps: _Optional[_Iterable[str]] = ..., skipped_steps: _Optional[_Iterable[str]] = ...) -> None: ...
