from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_ADDED: _ClassVar[ChangeKind]
    CHANGE_KIND_REMOVED: _ClassVar[ChangeKind]
    CHANGE_KIND_CHANGED: _ClassVar[ChangeKind]

class Compatibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPATIBILITY_UNSPECIFIED: _ClassVar[Compatibility]
    COMPATIBILITY_IDENTICAL: _ClassVar[Compatibility]
    COMPATIBILITY_COMPATIBLE: _ClassVar[Compatibility]
    COMPATIBILITY_BREAKING: _ClassVar[Compatibility]

class SemverBump(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEMVER_BUMP_UNSPECIFIED: _ClassVar[SemverBump]
    SEMVER_BUMP_PATCH: _ClassVar[SemverBump]
    SEMVER_BUMP_MINOR: _ClassVar[SemverBump]
    SEMVER_BUMP_MAJOR: _ClassVar[SemverBump]
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_ADDED: ChangeKind
CHANGE_KIND_REMOVED: ChangeKind
CHANGE_KIND_CHANGED: ChangeKind
COMPATIBILITY_UNSPECIFIED: Compatibility
COMPATIBILITY_IDENTICAL: Compatibility
COMPATIBILITY_COMPATIBLE: Compatibility
COMPATIBILITY_BREAKING: Compatibility
SEMVER_BUMP_UNSPECIFIED: SemverBump
SEMVER_BUMP_PATCH: SemverBump
SEMVER_BUMP_MINOR: SemverBump
SEMVER_BUMP_MAJOR: SemverBump

class FieldChange(_message.Message):
    __slots__ = ("path", "kind", "base_value", "target_value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: ChangeKind
    base_value: _struct_pb2.Value
    target_value: _struct_pb2.Value
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., base_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., target_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StepChange(_message.Message):
    __slots__ = ("step_id", "kind", "base_config_digest", "target_config_digest", "field_changes")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASE_CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TARGET_CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FIELD_CHANGES_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    kind: ChangeKind
    base_config_digest: str
    target_config_digest: str
    field_changes: _containers.RepeatedCompositeFieldContainer[FieldChange]
    def __init__(self, step_id: _Optional[str] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., base_config_digest: _Optional[str] = ..., target_config_digest: _Optional[str] = ..., field_changes: _Optional[_Iterable[_Union[FieldChange, _Mapping]]] = ...) -> None: ...

class BreakingChange(_message.Message):
    __slots__ = ("code", "message", "path")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    path: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class WorkflowDiff(_message.Message):
    __slots__ = ("base_digest", "target_digest", "step_changes", "workflow_changes", "compatibility", "breaking_changes", "required_bump")
    BASE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TARGET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STEP_CHANGES_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_CHANGES_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_FIELD_NUMBER: _ClassVar[int]
    BREAKING_CHANGES_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_BUMP_FIELD_NUMBER: _ClassVar[int]
    base_digest: str
    target_digest: str
    step_changes: _containers.RepeatedCompositeFieldContainer[StepChange]
    workflow_changes: _containers.RepeatedCompositeFieldContainer[FieldChange]
    compatibility: Compatibility
    breaking_changes: _containers.RepeatedCompositeFieldContainer[BreakingChange]
    required_bump: SemverBump
    def __init__(self, base_digest: _Optional[str] = ..., target_digest: _Optional[str] = ..., step_changes: _Optional[_Iterable[_Union[StepChange, _Mapping]]] = ..., workflow_changes: _Optional[_Iterable[_Union[FieldChange, _Mapping]]] = ..., compatibility: _Optional[_Union[Compatibility, str]] = ..., breaking_changes: _Optional[_Iterable[_Union[BreakingChange, _Mapping]]] = ..., required_bump: _Optional[_Union[SemverBump, str]] = ...) -> None: ...
