import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BundleState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUNDLE_STATE_UNSPECIFIED: _ClassVar[BundleState]
    BUNDLE_STATE_NOT_LOADED: _ClassVar[BundleState]
    BUNDLE_STATE_ACTIVE: _ClassVar[BundleState]
    BUNDLE_STATE_STALE: _ClassVar[BundleState]
BUNDLE_STATE_UNSPECIFIED: BundleState
BUNDLE_STATE_NOT_LOADED: BundleState
BUNDLE_STATE_ACTIVE: BundleState
BUNDLE_STATE_STALE: BundleState

class PolicyBundle(_message.Message):
    __slots__ = ("state", "revision", "source", "load_time", "check_time", "modules", "tests", "last_error")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    state: BundleState
    revision: str
    source: str
    load_time: _timestamp_pb2.Timestamp
    check_time: _timestamp_pb2.Timestamp
    modules: _containers.RepeatedScalarFieldContainer[str]
    tests: BundleTestSummary
    last_error: BundleError
    def __init__(self, state: _Optional[_Union[BundleState, str]] = ..., revision: _Optional[str] = ..., source: _Optional[str] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modules: _Optional[_Iterable[str]] = ..., tests: _Optional[_Union[BundleTestSummary, _Mapping]] = ..., last_error: _Optional[_Union[BundleError, _Mapping]] = ...) -> None: ...

class BundleTestSummary(_message.Message):
    __slots__ = ("passed", "failed", "skipped", "failed_tests", "duration")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_TESTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    passed: int
    failed: int
    skipped: int
    failed_tests: _containers.RepeatedScalarFieldContainer[str]
    duration: _duration_pb2.Duration
    def __init__(self, passed: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., failed_tests: _Optional[_Iterable[str]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class BundleError(_message.Message):
    __slots__ = ("revision", "time", "message", "file", "line", "tests")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    revision: str
    time: _timestamp_pb2.Timestamp
    message: str
    file: str
    line: int
    tests: BundleTestSummary
    def __init__(self, revision: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., file: _Optional[str] = ..., line: _Optional[int] = ..., tests: _Optional[_Union[BundleTestSummary, _Mapping]] = ...) -> None: ...
