import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from maestro.common.v1 import diagnostic_pb2 as _diagnostic_pb2
from maestro.common.v1 import diff_pb2 as _diff_pb2
from maestro.common.v1 import plan_pb2 as _plan_pb2
from maestro.common.v1 import source_pb2 as _source_pb2
from maestro.common.v1 import workflow_pb2 as _workflow_pb2
from maestro.compiler.v1 import simulation_pb2 as _simulation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValidateWorkflowRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ...) -> None: ...

class ValidateWorkflowResponse(_message.Message):
    __slots__ = ("valid", "diagnostics", "definition", "digest")
    VALID_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    diagnostics: _containers.RepeatedCompositeFieldContainer[_diagnostic_pb2.Diagnostic]
    definition: _workflow_pb2.WorkflowDefinition
    digest: str
    def __init__(self, valid: _Optional[bool] = ..., diagnostics: _Optional[_Iterable[_Union[_diagnostic_pb2.Diagnostic, _Mapping]]] = ..., definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ..., digest: _Optional[str] = ...) -> None: ...

class LintWorkflowRequest(_message.Message):
    __slots__ = ("source", "disabled_rules")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_RULES_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    disabled_rules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ..., disabled_rules: _Optional[_Iterable[str]] = ...) -> None: ...

class LintWorkflowResponse(_message.Message):
    __slots__ = ("valid", "diagnostics")
    VALID_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    diagnostics: _containers.RepeatedCompositeFieldContainer[_diagnostic_pb2.Diagnostic]
    def __init__(self, valid: _Optional[bool] = ..., diagnostics: _Optional[_Iterable[_Union[_diagnostic_pb2.Diagnostic, _Mapping]]] = ...) -> None: ...

class CompileWorkflowRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ...) -> None: ...

class CompileWorkflowResponse(_message.Message):
    __slots__ = ("plan", "definition", "diagnostics")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.CompiledPlan
    definition: _workflow_pb2.WorkflowDefinition
    diagnostics: _containers.RepeatedCompositeFieldContainer[_diagnostic_pb2.Diagnostic]
    def __init__(self, plan: _Optional[_Union[_plan_pb2.CompiledPlan, _Mapping]] = ..., definition: _Optional[_Union[_workflow_pb2.WorkflowDefinition, _Mapping]] = ..., diagnostics: _Optional[_Iterable[_Union[_diagnostic_pb2.Diagnostic, _Mapping]]] = ...) -> None: ...

class DigestWorkflowRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ...) -> None: ...

class DigestWorkflowResponse(_message.Message):
    __slots__ = ("digest", "canonical_json")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    digest: str
    canonical_json: bytes
    def __init__(self, digest: _Optional[str] = ..., canonical_json: _Optional[bytes] = ...) -> None: ...

class DiffWorkflowsRequest(_message.Message):
    __slots__ = ("base", "target")
    BASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    base: _source_pb2.WorkflowSource
    target: _source_pb2.WorkflowSource
    def __init__(self, base: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ..., target: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ...) -> None: ...

class DiffWorkflowsResponse(_message.Message):
    __slots__ = ("diff",)
    DIFF_FIELD_NUMBER: _ClassVar[int]
    diff: _diff_pb2.WorkflowDiff
    def __init__(self, diff: _Optional[_Union[_diff_pb2.WorkflowDiff, _Mapping]] = ...) -> None: ...

class SimulateWorkflowRequest(_message.Message):
    __slots__ = ("source", "inputs", "mocks", "cost_table", "default_task_duration")
    class MocksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _simulation_pb2.StepMock
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_simulation_pb2.StepMock, _Mapping]] = ...) -> None: ...
    class CostTableEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    MOCKS_FIELD_NUMBER: _ClassVar[int]
    COST_TABLE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TASK_DURATION_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.WorkflowSource
    inputs: _struct_pb2.Struct
    mocks: _containers.MessageMap[str, _simulation_pb2.StepMock]
    cost_table: _containers.ScalarMap[str, float]
    default_task_duration: _duration_pb2.Duration
    def __init__(self, source: _Optional[_Union[_source_pb2.WorkflowSource, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mocks: _Optional[_Mapping[str, _simulation_pb2.StepMock]] = ..., cost_table: _Optional[_Mapping[str, float]] = ..., default_task_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SimulateWorkflowResponse(_message.Message):
    __slots__ = ("steps", "path", "critical_path", "total_duration", "total_cost_cents", "succeeded", "outputs")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_CENTS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.SimulatedStep]
    path: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.PathDecision]
    critical_path: _containers.RepeatedScalarFieldContainer[str]
    total_duration: _duration_pb2.Duration
    total_cost_cents: float
    succeeded: bool
    outputs: _struct_pb2.Struct
    def __init__(self, steps: _Optional[_Iterable[_Union[_simulation_pb2.SimulatedStep, _Mapping]]] = ..., path: _Optional[_Iterable[_Union[_simulation_pb2.PathDecision, _Mapping]]] = ..., critical_path: _Optional[_Iterable[str]] = ..., total_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., total_cost_cents: _Optional[float] = ..., succeeded: _Optional[bool] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetWorkflowSchemaRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWorkflowSchemaResponse(_message.Message):
    __slots__ = ("schema_json", "schema_id")
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_ID_FIELD_NUMBER: _ClassVar[int]
    schema_json: bytes
    schema_id: str
    def __init__(self, schema_json: _Optional[bytes] = ..., schema_id: _Optional[str] = ...) -> None: ...
