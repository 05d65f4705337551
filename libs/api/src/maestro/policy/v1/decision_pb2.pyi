import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from maestro.common.v1 import principal_pb2 as _principal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(_message.Message):
    __slots__ = ("name", "allow", "reasons", "bundle_revision", "appeal", "principal", "action", "resource", "context", "redacted_paths", "create_time", "cached", "evaluation_duration", "enforcer")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_REVISION_FIELD_NUMBER: _ClassVar[int]
    APPEAL_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REDACTED_PATHS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_DURATION_FIELD_NUMBER: _ClassVar[int]
    ENFORCER_FIELD_NUMBER: _ClassVar[int]
    name: str
    allow: bool
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    bundle_revision: str
    appeal: Appeal
    principal: _principal_pb2.Principal
    action: str
    resource: Resource
    context: _struct_pb2.Struct
    redacted_paths: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    cached: bool
    evaluation_duration: _duration_pb2.Duration
    enforcer: str
    def __init__(self, name: _Optional[str] = ..., allow: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., bundle_revision: _Optional[str] = ..., appeal: _Optional[_Union[Appeal, _Mapping]] = ..., principal: _Optional[_Union[_principal_pb2.Principal, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[Resource, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., redacted_paths: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cached: _Optional[bool] = ..., evaluation_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., enforcer: _Optional[str] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("type", "name", "tenant", "classification", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    tenant: str
    classification: _principal_pb2.Classification
    labels: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., tenant: _Optional[str] = ..., classification: _Optional[_Union[_principal_pb2.Classification, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "message", "rule")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    rule: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class Appeal(_message.Message):
    __slots__ = ("path", "grantable_by_roles", "grantable_by_subjects", "instructions")
    PATH_FIELD_NUMBER: _ClassVar[int]
    GRANTABLE_BY_ROLES_FIELD_NUMBER: _ClassVar[int]
    GRANTABLE_BY_SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    path: str
    grantable_by_roles: _containers.RepeatedScalarFieldContainer[str]
    grantable_by_subjects: _containers.RepeatedScalarFieldContainer[str]
    instructions: str
    def __init__(self, path: _Optional[str] = ..., grantable_by_roles: _Optional[_Iterable[str]] = ..., grantable_by_subjects: _Optional[_Iterable[str]] = ..., instructions: _Optional[str] = ...) -> None: ...
