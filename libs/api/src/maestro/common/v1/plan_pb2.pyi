import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from maestro.common.v1 import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompiledPlan(_message.Message):
    __slots__ = ("definition_digest", "plan_version", "steps", "levels", "terminal_steps", "critical_path_timeout", "max_fanout", "compiler_version")
    DEFINITION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_FANOUT_FIELD_NUMBER: _ClassVar[int]
    COMPILER_VERSION_FIELD_NUMBER: _ClassVar[int]
    definition_digest: str
    plan_version: int
    steps: _containers.RepeatedCompositeFieldContainer[PlannedStep]
    levels: _containers.RepeatedCompositeFieldContainer[PlanLevel]
    terminal_steps: _containers.RepeatedScalarFieldContainer[str]
    critical_path_timeout: _duration_pb2.Duration
    max_fanout: int
    compiler_version: str
    def __init__(self, definition_digest: _Optional[str] = ..., plan_version: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[PlannedStep, _Mapping]]] = ..., levels: _Optional[_Iterable[_Union[PlanLevel, _Mapping]]] = ..., terminal_steps: _Optional[_Iterable[str]] = ..., critical_path_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_fanout: _Optional[int] = ..., compiler_version: _Optional[str] = ...) -> None: ...

class PlanLevel(_message.Message):
    __slots__ = ("step_ids",)
    STEP_IDS_FIELD_NUMBER: _ClassVar[int]
    step_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, step_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PlannedStep(_message.Message):
    __slots__ = ("step", "order", "level", "dependents", "config_digest", "reads")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    DEPENDENTS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    step: _workflow_pb2.Step
    order: int
    level: int
    dependents: _containers.RepeatedScalarFieldContainer[str]
    config_digest: str
    reads: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, step: _Optional[_Union[_workflow_pb2.Step, _Mapping]] = ..., order: _Optional[int] = ..., level: _Optional[int] = ..., dependents: _Optional[_Iterable[str]] = ..., config_digest: _Optional[str] = ..., reads: _Optional[_Iterable[str]] = ...) -> None: ...
