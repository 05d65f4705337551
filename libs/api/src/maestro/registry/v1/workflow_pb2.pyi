import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from maestro.common.v1 import diagnostic_pb2 as _diagnostic_pb2
from maestro.common.v1 import diff_pb2 as _diff_pb2
from maestro.common.v1 import plan_pb2 as _plan_pb2
from maestro.common.v1 import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_STATE_UNSPECIFIED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_DRAFT: _ClassVar[WorkflowState]
    WORKFLOW_STATE_PUBLISHED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_DELETED: _ClassVar[WorkflowState]

class TemplatePattern(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_PATTERN_UNSPECIFIED: _ClassVar[TemplatePattern]
    TEMPLATE_PATTERN_ROUTING: _ClassVar[TemplatePattern]
    TEMPLATE_PATTERN_RAG: _ClassVar[TemplatePattern]
    TEMPLATE_PATTERN_ETL: _ClassVar[TemplatePattern]
    TEMPLATE_PATTERN_APPROVAL: _ClassVar[TemplatePattern]
WORKFLOW_STATE_UNSPECIFIED: WorkflowState
WORKFLOW_STATE_DRAFT: WorkflowState
WORKFLOW_STATE_PUBLISHED: WorkflowState
WORKFLOW_STATE_DELETED: WorkflowState
TEMPLATE_PATTERN_UNSPECIFIED: TemplatePattern
TEMPLATE_PATTERN_ROUTING: TemplatePattern
TEMPLATE_PATTERN_RAG: TemplatePattern
TEMPLATE_PATTERN_ETL: TemplatePattern
TEMPLATE_PATTERN_APPROVAL: TemplatePattern

class Workflow(_message.Message):
    __slots__ = ("name", "tenant", "owner", "state", "draft", "latest_version", "aliases", "frozen", "frozen_reason", "etag", "create_time", "update_time", "delete_time", "display_name", "description", "tags")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    FROZEN_REASON_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    tenant: str
    owner: str
    state: WorkflowState
    draft: WorkflowDraft
    latest_version: WorkflowVersion
    aliases: _containers.ScalarMap[str, str]
    frozen: bool
    frozen_reason: str
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    delete_time: _timestamp_pb2.Timestamp
    display_name: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., tenant: _Optional[str] = ..., owner: _Optional[str] = ..., state: _Optional[_Union[WorkflowState, str]] = ..., draft: _Optional[_Union[WorkflowDraft, _Mapping]] = ..., latest_version: _Optional[_Union[WorkflowVersion, _Mapping]] = ..., aliases: _Optional[_Mapping[str, str]] = ..., frozen: _Optional[bool] = ..., frozen_reason: _Optional[str] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkflowDraft(_message.Message):
    __slots__ = ("version", "definition", "source", "digest", "diagnostics", "update_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: str
    definition: _workflow_pb2.WorkflowDefinition
    source: bytes
    digest: str
    diagnostics: _containers.RepeatedCompositeFieldContainer[_diagnostic_pb2.Diagnostic]
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ..., source: _Optional[bytes] = ..., digest: _Optional[str] = ..., diagnostics: _Optional[_Iterable[_Union[_diagnostic_pb2.Diagnostic, _Mapping]]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkflowVersion(_message.Message):
    __slots__ = ("name", "version", "definition", "plan", "digest", "receipt", "published_by", "publish_time", "changelog", "diff_from_previous")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    CHANGELOG_FIELD_NUMBER: _ClassVar[int]
    DIFF_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    definition: _workflow_pb2.WorkflowDefinition
    plan: _plan_pb2.CompiledPlan
    digest: str
    receipt: str
    published_by: str
    publish_time: _timestamp_pb2.Timestamp
    changelog: str
    diff_from_previous: _diff_pb2.WorkflowDiff
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ..., plan: _Optional[_Union[_plan_pb2.CompiledPlan, _Mapping]] = ..., digest: _Optional[str] = ..., receipt: _Optional[str] = ..., published_by: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., changelog: _Optional[str] = ..., diff_from_previous: _Optional[_Union[_diff_pb2.WorkflowDiff, _Mapping]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "display_name", "description", "pattern", "definition")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    pattern: TemplatePattern
    definition: _workflow_pb2.WorkflowDefinition
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., pattern: _Optional[_Union[TemplatePattern, str]] = ..., definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ...) -> None: ...
