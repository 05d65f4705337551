import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from maestro.common.v1 import workflow_pb2 as _workflow_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATE_UNSPECIFIED: _ClassVar[ExecutionState]
    EXECUTION_STATE_PENDING: _ClassVar[ExecutionState]
    EXECUTION_STATE_RUNNING: _ClassVar[ExecutionState]
    EXECUTION_STATE_SUCCEEDED: _ClassVar[ExecutionState]
    EXECUTION_STATE_FAILED: _ClassVar[ExecutionState]
    EXECUTION_STATE_CANCELLING: _ClassVar[ExecutionState]
    EXECUTION_STATE_CANCELLED: _ClassVar[ExecutionState]
    EXECUTION_STATE_TIMED_OUT: _ClassVar[ExecutionState]
    EXECUTION_STATE_COMPENSATING: _ClassVar[ExecutionState]
    EXECUTION_STATE_COMPENSATED: _ClassVar[ExecutionState]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_SCHEDULED: _ClassVar[StepState]
    STEP_STATE_RUNNING: _ClassVar[StepState]
    STEP_STATE_RETRYING: _ClassVar[StepState]
    STEP_STATE_WAITING: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_TIMED_OUT: _ClassVar[StepState]
    STEP_STATE_CANCELLED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]
    STEP_STATE_COMPENSATING: _ClassVar[StepState]
    STEP_STATE_COMPENSATED: _ClassVar[StepState]
    STEP_STATE_COMPENSATION_FAILED: _ClassVar[StepState]

class AttemptState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_STATE_UNSPECIFIED: _ClassVar[AttemptState]
    ATTEMPT_STATE_SCHEDULED: _ClassVar[AttemptState]
    ATTEMPT_STATE_RUNNING: _ClassVar[AttemptState]
    ATTEMPT_STATE_SUCCEEDED: _ClassVar[AttemptState]
    ATTEMPT_STATE_FAILED: _ClassVar[AttemptState]
    ATTEMPT_STATE_TIMED_OUT: _ClassVar[AttemptState]
    ATTEMPT_STATE_CANCELLED: _ClassVar[AttemptState]

class ExecutionView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_VIEW_UNSPECIFIED: _ClassVar[ExecutionView]
    EXECUTION_VIEW_BASIC: _ClassVar[ExecutionView]
    EXECUTION_VIEW_FULL: _ClassVar[ExecutionView]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_STARTED: _ClassVar[EventType]
    EVENT_TYPE_STEP_SCHEDULED: _ClassVar[EventType]
    EVENT_TYPE_STEP_STARTED: _ClassVar[EventType]
    EVENT_TYPE_STEP_SUCCEEDED: _ClassVar[EventType]
    EVENT_TYPE_STEP_FAILED: _ClassVar[EventType]
    EVENT_TYPE_STEP_RETRYING: _ClassVar[EventType]
    EVENT_TYPE_STEP_TIMED_OUT: _ClassVar[EventType]
    EVENT_TYPE_STEP_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_STEP_SKIPPED: _ClassVar[EventType]
    EVENT_TYPE_HUMAN_TASK_CREATED: _ClassVar[EventType]
    EVENT_TYPE_HUMAN_TASK_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_TIMER_STARTED: _ClassVar[EventType]
    EVENT_TYPE_TIMER_FIRED: _ClassVar[EventType]
    EVENT_TYPE_COMPENSATION_STARTED: _ClassVar[EventType]
    EVENT_TYPE_STEP_COMPENSATED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_SUCCEEDED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_FAILED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_CANCEL_REQUESTED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_TIMED_OUT: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_RETRIED: _ClassVar[EventType]
    EVENT_TYPE_EXECUTION_COMPENSATED: _ClassVar[EventType]

class HumanTaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HUMAN_TASK_STATE_UNSPECIFIED: _ClassVar[HumanTaskState]
    HUMAN_TASK_STATE_OPEN: _ClassVar[HumanTaskState]
    HUMAN_TASK_STATE_ESCALATED: _ClassVar[HumanTaskState]
    HUMAN_TASK_STATE_COMPLETED: _ClassVar[HumanTaskState]
    HUMAN_TASK_STATE_CANCELLED: _ClassVar[HumanTaskState]
EXECUTION_STATE_UNSPECIFIED: ExecutionState
EXECUTION_STATE_PENDING: ExecutionState
EXECUTION_STATE_RUNNING: ExecutionState
EXECUTION_STATE_SUCCEEDED: ExecutionState
EXECUTION_STATE_FAILED: ExecutionState
EXECUTION_STATE_CANCELLING: ExecutionState
EXECUTION_STATE_CANCELLED: ExecutionState
EXECUTION_STATE_TIMED_OUT: ExecutionState
EXECUTION_STATE_COMPENSATING: ExecutionState
EXECUTION_STATE_COMPENSATED: ExecutionState
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_SCHEDULED: StepState
STEP_STATE_RUNNING: StepState
STEP_STATE_RETRYING: StepState
STEP_STATE_WAITING: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_TIMED_OUT: StepState
STEP_STATE_CANCELLED: StepState
STEP_STATE_SKIPPED: StepState
STEP_STATE_COMPENSATING: StepState
STEP_STATE_COMPENSATED: StepState
STEP_STATE_COMPENSATION_FAILED: StepState
ATTEMPT_STATE_UNSPECIFIED: AttemptState
ATTEMPT_STATE_SCHEDULED: AttemptState
ATTEMPT_STATE_RUNNING: AttemptState
ATTEMPT_STATE_SUCCEEDED: AttemptState
ATTEMPT_STATE_FAILED: AttemptState
ATTEMPT_STATE_TIMED_OUT: AttemptState
ATTEMPT_STATE_CANCELLED: AttemptState
EXECUTION_VIEW_UNSPECIFIED: ExecutionView
EXECUTION_VIEW_BASIC: ExecutionView
EXECUTION_VIEW_FULL: ExecutionView
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_EXECUTION_STARTED: EventType
EVENT_TYPE_STEP_SCHEDULED: EventType
EVENT_TYPE_STEP_STARTED: EventType
EVENT_TYPE_STEP_SUCCEEDED: EventType
EVENT_TYPE_STEP_FAILED: EventType
EVENT_TYPE_STEP_RETRYING: EventType
EVENT_TYPE_STEP_TIMED_OUT: EventType
EVENT_TYPE_STEP_CANCELLED: EventType
EVENT_TYPE_STEP_SKIPPED: EventType
EVENT_TYPE_HUMAN_TASK_CREATED: EventType
EVENT_TYPE_HUMAN_TASK_COMPLETED: EventType
EVENT_TYPE_TIMER_STARTED: EventType
EVENT_TYPE_TIMER_FIRED: EventType
EVENT_TYPE_COMPENSATION_STARTED: EventType
EVENT_TYPE_STEP_COMPENSATED: EventType
EVENT_TYPE_EXECUTION_SUCCEEDED: EventType
EVENT_TYPE_EXECUTION_FAILED: EventType
EVENT_TYPE_EXECUTION_CANCEL_REQUESTED: EventType
EVENT_TYPE_EXECUTION_CANCELLED: EventType
EVENT_TYPE_EXECUTION_TIMED_OUT: EventType
EVENT_TYPE_EXECUTION_RETRIED: EventType
EVENT_TYPE_EXECUTION_COMPENSATED: EventType
HUMAN_TASK_STATE_UNSPECIFIED: HumanTaskState
HUMAN_TASK_STATE_OPEN: HumanTaskState
HUMAN_TASK_STATE_ESCALATED: HumanTaskState
HUMAN_TASK_STATE_COMPLETED: HumanTaskState
HUMAN_TASK_STATE_CANCELLED: HumanTaskState

class Execution(_message.Message):
    __slots__ = ("name", "workflow", "version", "alias", "definition_digest", "tenant", "creator", "state", "inputs", "outputs", "error", "create_time", "start_time", "end_time", "update_time", "expire_time", "request_id", "correlation_id", "parent_execution", "parent_step_id", "steps", "last_event_sequence", "etag", "labels", "receipt")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    PARENT_STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    workflow: str
    version: str
    alias: str
    definition_digest: str
    tenant: str
    creator: str
    state: ExecutionState
    inputs: _struct_pb2.Struct
    outputs: _struct_pb2.Struct
    error: ExecutionError
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    request_id: str
    correlation_id: str
    parent_execution: str
    parent_step_id: str
    steps: _containers.RepeatedCompositeFieldContainer[StepRun]
    last_event_sequence: int
    etag: str
    labels: _containers.ScalarMap[str, str]
    receipt: str
    def __init__(self, name: _Optional[str] = ..., workflow: _Optional[str] = ..., version: _Optional[str] = ..., alias: _Optional[str] = ..., definition_digest: _Optional[str] = ..., tenant: _Optional[str] = ..., creator: _Optional[str] = ..., state: _Optional[_Union[ExecutionState, str]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., parent_execution: _Optional[str] = ..., parent_step_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepRun, _Mapping]]] = ..., last_event_sequence: _Optional[int] = ..., etag: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., receipt: _Optional[str] = ...) -> None: ...

class ExecutionError(_message.Message):
    __slots__ = ("code", "message", "step_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    step_id: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., step_id: _Optional[str] = ...) -> None: ...

class StepError(_message.Message):
    __slots__ = ("code", "message", "details", "non_retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    NON_RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    details: _struct_pb2.Struct
    non_retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., non_retryable: _Optional[bool] = ...) -> None: ...

class StepRun(_message.Message):
    __slots__ = ("step_id", "type", "state", "input", "output", "error", "start_time", "end_time", "next_attempt_time", "cache_hit", "attempts", "compensation_attempts", "human_task", "child_execution", "timer_fire_time")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    HUMAN_TASK_FIELD_NUMBER: _ClassVar[int]
    CHILD_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    TIMER_FIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    type: _workflow_pb2.StepType
    state: StepState
    input: _struct_pb2.Struct
    output: _struct_pb2.Struct
    error: StepError
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    cache_hit: bool
    attempts: _containers.RepeatedCompositeFieldContainer[StepAttempt]
    compensation_attempts: _containers.RepeatedCompositeFieldContainer[StepAttempt]
    human_task: str
    child_execution: str
    timer_fire_time: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., type: _Optional[_Union[_workflow_pb2.StepType, str]] = ..., state: _Optional[_Union[StepState, str]] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[StepError, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., attempts: _Optional[_Iterable[_Union[StepAttempt, _Mapping]]] = ..., compensation_attempts: _Optional[_Iterable[_Union[StepAttempt, _Mapping]]] = ..., human_task: _Optional[str] = ..., child_execution: _Optional[str] = ..., timer_fire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepAttempt(_message.Message):
    __slots__ = ("attempt", "state", "worker_identity", "deliveries", "schedule_time", "start_time", "end_time", "error", "idempotency_key", "progress")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    state: AttemptState
    worker_identity: str
    deliveries: int
    schedule_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    error: StepError
    idempotency_key: str
    progress: _struct_pb2.Struct
    def __init__(self, attempt: _Optional[int] = ..., state: _Optional[_Union[AttemptState, str]] = ..., worker_identity: _Optional[str] = ..., deliveries: _Optional[int] = ..., schedule_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[StepError, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., progress: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ("id", "sequence", "type", "source", "subject", "time", "execution", "attempt", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    sequence: int
    type: EventType
    source: str
    subject: str
    time: _timestamp_pb2.Timestamp
    execution: str
    attempt: int
    data: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., sequence: _Optional[int] = ..., type: _Optional[_Union[EventType, str]] = ..., source: _Optional[str] = ..., subject: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., execution: _Optional[str] = ..., attempt: _Optional[int] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class HumanTask(_message.Message):
    __slots__ = ("name", "execution", "step_id", "tenant", "assignees", "form_schema", "instructions", "state", "due_time", "result", "completed_by", "create_time", "update_time", "close_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEES_FIELD_NUMBER: _ClassVar[int]
    FORM_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    execution: str
    step_id: str
    tenant: str
    assignees: _containers.RepeatedScalarFieldContainer[str]
    form_schema: _struct_pb2.Struct
    instructions: str
    state: HumanTaskState
    due_time: _timestamp_pb2.Timestamp
    result: _struct_pb2.Struct
    completed_by: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., execution: _Optional[str] = ..., step_id: _Optional[str] = ..., tenant: _Optional[str] = ..., assignees: _Optional[_Iterable[str]] = ..., form_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., instructions: _Optional[str] = ..., state: _Optional[_Union[HumanTaskState, str]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., completed_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
