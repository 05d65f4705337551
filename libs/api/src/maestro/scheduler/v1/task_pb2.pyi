import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    TASK_KIND_RUN: _ClassVar[TaskKind]
    TASK_KIND_COMPENSATE: _ClassVar[TaskKind]
TASK_KIND_UNSPECIFIED: TaskKind
TASK_KIND_RUN: TaskKind
TASK_KIND_COMPENSATE: TaskKind

class StepTask(_message.Message):
    __slots__ = ("task_id", "lease_id", "lease_expire_time", "heartbeat_interval", "kind", "execution", "tenant", "workflow", "version", "step_id", "attempt", "delivery", "idempotency_key", "handler", "config", "input", "step_output", "timeout", "deadline", "task_queue", "traceparent", "tracestate", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    STEP_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    lease_id: str
    lease_expire_time: _timestamp_pb2.Timestamp
    heartbeat_interval: _duration_pb2.Duration
    kind: TaskKind
    execution: str
    tenant: str
    workflow: str
    version: str
    step_id: str
    attempt: int
    delivery: int
    idempotency_key: str
    handler: str
    config: _struct_pb2.Struct
    input: _struct_pb2.Struct
    step_output: _struct_pb2.Struct
    timeout: _duration_pb2.Duration
    deadline: _timestamp_pb2.Timestamp
    task_queue: str
    traceparent: str
    tracestate: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, task_id: _Optional[str] = ..., lease_id: _Optional[str] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., execution: _Optional[str] = ..., tenant: _Optional[str] = ..., workflow: _Optional[str] = ..., version: _Optional[str] = ..., step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., delivery: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., handler: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., step_output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., task_queue: _Optional[str] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
