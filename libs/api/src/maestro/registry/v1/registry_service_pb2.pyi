from google.protobuf import struct_pb2 as _struct_pb2
from maestro.common.v1 import diagnostic_pb2 as _diagnostic_pb2
from maestro.common.v1 import diff_pb2 as _diff_pb2
from maestro.common.v1 import source_pb2 as _source_pb2
from maestro.common.v1 import workflow_pb2 as _workflow_pb2
from maestro.registry.v1 import workflow_pb2 as _workflow_pb2_1
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateWorkflowRequest(_message.Message):
    __slots__ = ("source", "workflow_id", "request_id")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    workflow_id: str
    request_id: str
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ..., workflow_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("name", "show_deleted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    name: str
    show_deleted: bool
    def __init__(self, name: _Optional[str] = ..., show_deleted: _Optional[bool] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "show_deleted")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    show_deleted: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., show_deleted: _Optional[bool] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows", "next_page_token")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_workflow_pb2_1.Workflow]
    next_page_token: str
    def __init__(self, workflows: _Optional[_Iterable[_Union[_workflow_pb2_1.Workflow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateWorkflowRequest(_message.Message):
    __slots__ = ("name", "source", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: _source_pb2.WorkflowSource
    etag: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class UpdateWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class DeleteWorkflowRequest(_message.Message):
    __slots__ = ("name", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class PublishWorkflowRequest(_message.Message):
    __slots__ = ("name", "bump", "version", "changelog", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUMP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGELOG_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    bump: _diff_pb2.SemverBump
    version: str
    changelog: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., bump: _Optional[_Union[_diff_pb2.SemverBump, str]] = ..., version: _Optional[str] = ..., changelog: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PublishWorkflowResponse(_message.Message):
    __slots__ = ("version", "workflow")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    version: _workflow_pb2_1.WorkflowVersion
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, version: _Optional[_Union[_workflow_pb2_1.WorkflowVersion, _Mapping]] = ..., workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class CloneWorkflowRequest(_message.Message):
    __slots__ = ("name", "version", "new_workflow_id", "new_definition_name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    new_workflow_id: str
    new_definition_name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., new_workflow_id: _Optional[str] = ..., new_definition_name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CloneWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class GetWorkflowVersionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetWorkflowVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _workflow_pb2_1.WorkflowVersion
    def __init__(self, version: _Optional[_Union[_workflow_pb2_1.WorkflowVersion, _Mapping]] = ...) -> None: ...

class ListWorkflowVersionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkflowVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_workflow_pb2_1.WorkflowVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[_workflow_pb2_1.WorkflowVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DiffWorkflowVersionsRequest(_message.Message):
    __slots__ = ("name", "base_version", "target_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_version: str
    target_version: str
    def __init__(self, name: _Optional[str] = ..., base_version: _Optional[str] = ..., target_version: _Optional[str] = ...) -> None: ...

class DiffWorkflowVersionsResponse(_message.Message):
    __slots__ = ("diff",)
    DIFF_FIELD_NUMBER: _ClassVar[int]
    diff: _diff_pb2.WorkflowDiff
    def __init__(self, diff: _Optional[_Union[_diff_pb2.WorkflowDiff, _Mapping]] = ...) -> None: ...

class PromoteWorkflowVersionRequest(_message.Message):
    __slots__ = ("name", "alias")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class PromoteWorkflowVersionResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class FreezeWorkflowRequest(_message.Message):
    __slots__ = ("name", "frozen", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    frozen: bool
    reason: str
    def __init__(self, name: _Optional[str] = ..., frozen: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class FreezeWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[_workflow_pb2_1.Template]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[_workflow_pb2_1.Template, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateWorkflowFromTemplateRequest(_message.Message):
    __slots__ = ("template", "definition_name", "workflow_id", "request_id")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    template: str
    definition_name: str
    workflow_id: str
    request_id: str
    def __init__(self, template: _Optional[str] = ..., definition_name: _Optional[str] = ..., workflow_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateWorkflowFromTemplateResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflow_pb2_1.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflow_pb2_1.Workflow, _Mapping]] = ...) -> None: ...

class BuildWorkflowRequest(_message.Message):
    __slots__ = ("pattern", "definition_name", "parameters")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    pattern: _workflow_pb2_1.TemplatePattern
    definition_name: str
    parameters: _struct_pb2.Struct
    def __init__(self, pattern: _Optional[_Union[_workflow_pb2_1.TemplatePattern, str]] = ..., definition_name: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class BuildWorkflowResponse(_message.Message):
    __slots__ = ("definition", "source", "diagnostics", "format")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    definition: _workflow_pb2.WorkflowDefinition
    source: bytes
    diagnostics: _containers.RepeatedCompositeFieldContainer[_diagnostic_pb2.Diagnostic]
    format: _source_pb2.SourceFormat
    def __init__(self, definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ..., source: _Optional[bytes] = ..., diagnostics: _Optional[_Iterable[_Union[_diagnostic_pb2.Diagnostic, _Mapping]]] = ..., format: _Optional[_Union[_source_pb2.SourceFormat, str]] = ...) -> None: ...
