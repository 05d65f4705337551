import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from maestro.common.v1 import principal_pb2 as _principal_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReceiptKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIPT_KIND_UNSPECIFIED: _ClassVar[ReceiptKind]
    RECEIPT_KIND_VERSION_MANIFEST: _ClassVar[ReceiptKind]
    RECEIPT_KIND_EXECUTION: _ClassVar[ReceiptKind]
RECEIPT_KIND_UNSPECIFIED: ReceiptKind
RECEIPT_KIND_VERSION_MANIFEST: ReceiptKind
RECEIPT_KIND_EXECUTION: ReceiptKind

class Envelope(_message.Message):
    __slots__ = ("payload_type", "payload", "signatures")
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    payload_type: str
    payload: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[Signature]
    def __init__(self, payload_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[Signature, _Mapping]]] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("keyid", "sig")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    SIG_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    sig: bytes
    def __init__(self, keyid: _Optional[str] = ..., sig: _Optional[bytes] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("name", "envelope", "statement_digest", "log_index", "leaf_hash", "kind", "subject", "tenant", "create_time", "verified", "verify_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    VERIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    envelope: Envelope
    statement_digest: str
    log_index: int
    leaf_hash: bytes
    kind: ReceiptKind
    subject: str
    tenant: str
    create_time: _timestamp_pb2.Timestamp
    verified: bool
    verify_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., envelope: _Optional[_Union[Envelope, _Mapping]] = ..., statement_digest: _Optional[str] = ..., log_index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., kind: _Optional[_Union[ReceiptKind, str]] = ..., subject: _Optional[str] = ..., tenant: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verified: _Optional[bool] = ..., verify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("type", "subject", "predicate_type", "predicate")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREDICATE_FIELD_NUMBER: _ClassVar[int]
    type: str
    subject: _containers.RepeatedCompositeFieldContainer[ResourceDescriptor]
    predicate_type: str
    predicate: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., subject: _Optional[_Iterable[_Union[ResourceDescriptor, _Mapping]]] = ..., predicate_type: _Optional[str] = ..., predicate: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ResourceDescriptor(_message.Message):
    __slots__ = ("name", "digest")
    class DigestEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[_Mapping[str, str]] = ...) -> None: ...

class VersionPredicate(_message.Message):
    __slots__ = ("workflow", "version", "definition_digest", "plan_digest", "source_digest", "previous_version", "previous_receipt", "published_by", "publish_time", "policy_decision_ids", "policy_bundle_revision", "compiler_version")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PLAN_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    POLICY_DECISION_IDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_BUNDLE_REVISION_FIELD_NUMBER: _ClassVar[int]
    COMPILER_VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow: str
    version: str
    definition_digest: str
    plan_digest: str
    source_digest: str
    previous_version: str
    previous_receipt: str
    published_by: _principal_pb2.Principal
    publish_time: _timestamp_pb2.Timestamp
    policy_decision_ids: _containers.RepeatedScalarFieldContainer[str]
    policy_bundle_revision: str
    compiler_version: str
    def __init__(self, workflow: _Optional[str] = ..., version: _Optional[str] = ..., definition_digest: _Optional[str] = ..., plan_digest: _Optional[str] = ..., source_digest: _Optional[str] = ..., previous_version: _Optional[str] = ..., previous_receipt: _Optional[str] = ..., published_by: _Optional[_Union[_principal_pb2.Principal, _Mapping]] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_decision_ids: _Optional[_Iterable[str]] = ..., policy_bundle_revision: _Optional[str] = ..., compiler_version: _Optional[str] = ...) -> None: ...

class ExecutionPredicate(_message.Message):
    __slots__ = ("execution", "workflow_version", "definition_digest", "version_receipt", "parent_execution", "started_by", "trigger", "inputs_digest", "outputs_digest", "state", "error_code", "steps", "policy_decision_ids", "cache_hits", "create_time", "start_time", "end_time")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VERSION_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    PARENT_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    STARTED_BY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    INPUTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    POLICY_DECISION_IDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    execution: str
    workflow_version: str
    definition_digest: str
    version_receipt: str
    parent_execution: str
    started_by: _principal_pb2.Principal
    trigger: str
    inputs_digest: str
    outputs_digest: str
    state: str
    error_code: str
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    policy_decision_ids: _containers.RepeatedScalarFieldContainer[str]
    cache_hits: int
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, execution: _Optional[str] = ..., workflow_version: _Optional[str] = ..., definition_digest: _Optional[str] = ..., version_receipt: _Optional[str] = ..., parent_execution: _Optional[str] = ..., started_by: _Optional[_Union[_principal_pb2.Principal, _Mapping]] = ..., trigger: _Optional[str] = ..., inputs_digest: _Optional[str] = ..., outputs_digest: _Optional[str] = ..., state: _Optional[str] = ..., error_code: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ..., policy_decision_ids: _Optional[_Iterable[str]] = ..., cache_hits: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("step_id", "handler", "config_digest", "input_digest", "output_digest", "state", "attempts", "cache_hit", "cache_source", "policy_decision_ids", "error_code", "start_time", "end_time")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    INPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    CACHE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_DECISION_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    handler: str
    config_digest: str
    input_digest: str
    output_digest: str
    state: str
    attempts: int
    cache_hit: bool
    cache_source: str
    policy_decision_ids: _containers.RepeatedScalarFieldContainer[str]
    error_code: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., handler: _Optional[str] = ..., config_digest: _Optional[str] = ..., input_digest: _Optional[str] = ..., output_digest: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ..., cache_hit: _Optional[bool] = ..., cache_source: _Optional[str] = ..., policy_decision_ids: _Optional[_Iterable[str]] = ..., error_code: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
