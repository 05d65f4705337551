import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HandlerSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANDLER_SOURCE_UNSPECIFIED: _ClassVar[HandlerSource]
    HANDLER_SOURCE_BUILTIN: _ClassVar[HandlerSource]
    HANDLER_SOURCE_ENTRY_POINT: _ClassVar[HandlerSource]
HANDLER_SOURCE_UNSPECIFIED: HandlerSource
HANDLER_SOURCE_BUILTIN: HandlerSource
HANDLER_SOURCE_ENTRY_POINT: HandlerSource

class Handler(_message.Message):
    __slots__ = ("name", "description", "source", "entry_point", "distribution", "config_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_POINT_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    source: HandlerSource
    entry_point: str
    distribution: str
    config_schema: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[_Union[HandlerSource, str]] = ..., entry_point: _Optional[str] = ..., distribution: _Optional[str] = ..., config_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class InFlightTask(_message.Message):
    __slots__ = ("task_id", "execution", "step_id", "attempt", "handler", "task_queue", "start_time", "lease_expire_time", "cancel_requested")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    execution: str
    step_id: str
    attempt: int
    handler: str
    task_queue: str
    start_time: _timestamp_pb2.Timestamp
    lease_expire_time: _timestamp_pb2.Timestamp
    cancel_requested: bool
    def __init__(self, task_id: _Optional[str] = ..., execution: _Optional[str] = ..., step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., handler: _Optional[str] = ..., task_queue: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("identity", "version", "task_queues", "concurrency_limit", "in_flight_tasks", "completed_total", "failed_total", "lease_lost_total", "draining", "start_time", "drain_time")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUES_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_TASKS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FAILED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LEASE_LOST_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DRAIN_TIME_FIELD_NUMBER: _ClassVar[int]
    identity: str
    version: str
    task_queues: _containers.RepeatedScalarFieldContainer[str]
    concurrency_limit: int
    in_flight_tasks: _containers.RepeatedCompositeFieldContainer[InFlightTask]
    completed_total: int
    failed_total: int
    lease_lost_total: int
    draining: bool
    start_time: _timestamp_pb2.Timestamp
    drain_time: _timestamp_pb2.Timestamp
    def __init__(self, identity: _Optional[str] = ..., version: _Optional[str] = ..., task_queues: _Optional[_Iterable[str]] = ..., concurrency_limit: _Optional[int] = ..., in_flight_tasks: _Optional[_Iterable[_Union[InFlightTask, _Mapping]]] = ..., completed_total: _Optional[int] = ..., failed_total: _Optional[int] = ..., lease_lost_total: _Optional[int] = ..., draining: _Optional[bool] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., drain_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
