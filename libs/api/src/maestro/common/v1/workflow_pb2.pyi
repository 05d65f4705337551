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

class StepType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_TYPE_UNSPECIFIED: _ClassVar[StepType]
    STEP_TYPE_TASK: _ClassVar[StepType]
    STEP_TYPE_CONDITION: _ClassVar[StepType]
    STEP_TYPE_LOOP: _ClassVar[StepType]
    STEP_TYPE_HUMAN: _ClassVar[StepType]
    STEP_TYPE_SUBWORKFLOW: _ClassVar[StepType]
    STEP_TYPE_DELAY: _ClassVar[StepType]

class TriggerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIGGER_TYPE_UNSPECIFIED: _ClassVar[TriggerType]
    TRIGGER_TYPE_EVENT: _ClassVar[TriggerType]
    TRIGGER_TYPE_WEBHOOK: _ClassVar[TriggerType]
    TRIGGER_TYPE_SCHEDULE: _ClassVar[TriggerType]
STEP_TYPE_UNSPECIFIED: StepType
STEP_TYPE_TASK: StepType
STEP_TYPE_CONDITION: StepType
STEP_TYPE_LOOP: StepType
STEP_TYPE_HUMAN: StepType
STEP_TYPE_SUBWORKFLOW: StepType
STEP_TYPE_DELAY: StepType
TRIGGER_TYPE_UNSPECIFIED: TriggerType
TRIGGER_TYPE_EVENT: TriggerType
TRIGGER_TYPE_WEBHOOK: TriggerType
TRIGGER_TYPE_SCHEDULE: TriggerType

class WorkflowDefinition(_message.Message):
    __slots__ = ("name", "description", "tags", "triggers", "input_schema", "output_schema", "steps", "outputs", "labels")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    input_schema: _struct_pb2.Struct
    output_schema: _struct_pb2.Struct
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    outputs: _containers.ScalarMap[str, str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("type", "event", "path", "cron", "timezone", "input")
    class InputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    type: TriggerType
    event: str
    path: str
    cron: str
    timezone: str
    input: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[_Union[TriggerType, str]] = ..., event: _Optional[str] = ..., path: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., input: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("id", "type", "needs", "handler", "config", "input", "timeout", "retry", "compensate", "cache", "resources", "labels", "task_queue", "condition", "loop", "human", "subworkflow", "delay", "output_schema")
    class InputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    COMPENSATE_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    HUMAN_FIELD_NUMBER: _ClassVar[int]
    SUBWORKFLOW_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: StepType
    needs: _containers.RepeatedScalarFieldContainer[str]
    handler: str
    config: _struct_pb2.Struct
    input: _containers.ScalarMap[str, str]
    timeout: _duration_pb2.Duration
    retry: RetryPolicy
    compensate: str
    cache: CachePolicy
    resources: ResourceHints
    labels: _containers.ScalarMap[str, str]
    task_queue: str
    condition: ConditionSpec
    loop: LoopSpec
    human: HumanSpec
    subworkflow: SubworkflowSpec
    delay: DelaySpec
    output_schema: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., type: _Optional[_Union[StepType, str]] = ..., needs: _Optional[_Iterable[str]] = ..., handler: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input: _Optional[_Mapping[str, str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., compensate: _Optional[str] = ..., cache: _Optional[_Union[CachePolicy, _Mapping]] = ..., resources: _Optional[_Union[ResourceHints, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., task_queue: _Optional[str] = ..., condition: _Optional[_Union[ConditionSpec, _Mapping]] = ..., loop: _Optional[_Union[LoopSpec, _Mapping]] = ..., human: _Optional[_Union[HumanSpec, _Mapping]] = ..., subworkflow: _Optional[_Union[SubworkflowSpec, _Mapping]] = ..., delay: _Optional[_Union[DelaySpec, _Mapping]] = ..., output_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("max_attempts", "initial_backoff", "multiplier", "max_backoff", "jitter", "non_retryable_errors")
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    NON_RETRYABLE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    initial_backoff: _duration_pb2.Duration
    multiplier: float
    max_backoff: _duration_pb2.Duration
    jitter: float
    non_retryable_errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, max_attempts: _Optional[int] = ..., initial_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., multiplier: _Optional[float] = ..., max_backoff: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., jitter: _Optional[float] = ..., non_retryable_errors: _Optional[_Iterable[str]] = ...) -> None: ...

class CachePolicy(_message.Message):
    __slots__ = ("enabled", "ttl")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    ttl: _duration_pb2.Duration
    def __init__(self, enabled: _Optional[bool] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ResourceHints(_message.Message):
    __slots__ = ("cpu_millis", "memory_mib", "quota", "quota_units")
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    QUOTA_UNITS_FIELD_NUMBER: _ClassVar[int]
    cpu_millis: int
    memory_mib: int
    quota: str
    quota_units: int
    def __init__(self, cpu_millis: _Optional[int] = ..., memory_mib: _Optional[int] = ..., quota: _Optional[str] = ..., quota_units: _Optional[int] = ...) -> None: ...

class ConditionSpec(_message.Message):
    __slots__ = ("expression", "then_steps", "else_steps")
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    THEN_STEPS_FIELD_NUMBER: _ClassVar[int]
    ELSE_STEPS_FIELD_NUMBER: _ClassVar[int]
    expression: str
    then_steps: _containers.RepeatedScalarFieldContainer[str]
    else_steps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, expression: _Optional[str] = ..., then_steps: _Optional[_Iterable[str]] = ..., else_steps: _Optional[_Iterable[str]] = ...) -> None: ...

class LoopSpec(_message.Message):
    __slots__ = ("items", "parallelism", "body")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    items: str
    parallelism: int
    body: Step
    def __init__(self, items: _Optional[str] = ..., parallelism: _Optional[int] = ..., body: _Optional[_Union[Step, _Mapping]] = ...) -> None: ...

class HumanSpec(_message.Message):
    __slots__ = ("assignees", "form_schema", "due", "instructions")
    ASSIGNEES_FIELD_NUMBER: _ClassVar[int]
    FORM_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DUE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    assignees: _containers.RepeatedScalarFieldContainer[str]
    form_schema: _struct_pb2.Struct
    due: _duration_pb2.Duration
    instructions: str
    def __init__(self, assignees: _Optional[_Iterable[str]] = ..., form_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., due: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., instructions: _Optional[str] = ...) -> None: ...

class SubworkflowSpec(_message.Message):
    __slots__ = ("workflow", "version")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    version: str
    def __init__(self, workflow: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DelaySpec(_message.Message):
    __slots__ = ("duration", "until")
    DURATION_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    duration: _duration_pb2.Duration
    until: str
    def __init__(self, duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., until: _Optional[str] = ...) -> None: ...
