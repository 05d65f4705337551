from maestro.signer.v1 import key_pb2 as _key_pb2
from maestro.signer.v1 import receipt_pb2 as _receipt_pb2
from maestro.signer.v1 import transparency_pb2 as _transparency_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VerificationCheck(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_CHECK_UNSPECIFIED: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_ENVELOPE: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_STATEMENT: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_SIGNATURE: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_LOG_INCLUSION: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_CHECKPOINT_SIGNATURE: _ClassVar[VerificationCheck]
    VERIFICATION_CHECK_CONSISTENCY: _ClassVar[VerificationCheck]

class CheckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_STATUS_UNSPECIFIED: _ClassVar[CheckStatus]
    CHECK_STATUS_PASSED: _ClassVar[CheckStatus]
    CHECK_STATUS_FAILED: _ClassVar[CheckStatus]
    CHECK_STATUS_SKIPPED: _ClassVar[CheckStatus]
VERIFICATION_CHECK_UNSPECIFIED: VerificationCheck
VERIFICATION_CHECK_ENVELOPE: VerificationCheck
VERIFICATION_CHECK_STATEMENT: VerificationCheck
VERIFICATION_CHECK_SIGNATURE: VerificationCheck
VERIFICATION_CHECK_LOG_INCLUSION: VerificationCheck
VERIFICATION_CHECK_CHECKPOINT_SIGNATURE: VerificationCheck
VERIFICATION_CHECK_CONSISTENCY: VerificationCheck
CHECK_STATUS_UNSPECIFIED: CheckStatus
CHECK_STATUS_PASSED: CheckStatus
CHECK_STATUS_FAILED: CheckStatus
CHECK_STATUS_SKIPPED: CheckStatus

class SignReceiptRequest(_message.Message):
    __slots__ = ("kind", "subject", "statement_json", "statement", "request_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    kind: _receipt_pb2.ReceiptKind
    subject: str
    statement_json: bytes
    statement: _receipt_pb2.Statement
    request_id: str
    def __init__(self, kind: _Optional[_Union[_receipt_pb2.ReceiptKind, str]] = ..., subject: _Optional[str] = ..., statement_json: _Optional[bytes] = ..., statement: _Optional[_Union[_receipt_pb2.Statement, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SignReceiptResponse(_message.Message):
    __slots__ = ("receipt", "inclusion_proof", "checkpoint")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    receipt: _receipt_pb2.Receipt
    inclusion_proof: _transparency_pb2.InclusionProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, receipt: _Optional[_Union[_receipt_pb2.Receipt, _Mapping]] = ..., inclusion_proof: _Optional[_Union[_transparency_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class VerifyReceiptRequest(_message.Message):
    __slots__ = ("envelope", "inclusion_proof", "checkpoint")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    envelope: _receipt_pb2.Envelope
    inclusion_proof: _transparency_pb2.InclusionProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, envelope: _Optional[_Union[_receipt_pb2.Envelope, _Mapping]] = ..., inclusion_proof: _Optional[_Union[_transparency_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class CheckResult(_message.Message):
    __slots__ = ("check", "status", "message", "key_id")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    check: VerificationCheck
    status: CheckStatus
    message: str
    key_id: str
    def __init__(self, check: _Optional[_Union[VerificationCheck, str]] = ..., status: _Optional[_Union[CheckStatus, str]] = ..., message: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class VerifyReceiptResponse(_message.Message):
    __slots__ = ("verified", "checks", "receipt", "inclusion_proof", "checkpoint")
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    verified: bool
    checks: _containers.RepeatedCompositeFieldContainer[CheckResult]
    receipt: str
    inclusion_proof: _transparency_pb2.InclusionProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, verified: _Optional[bool] = ..., checks: _Optional[_Iterable[_Union[CheckResult, _Mapping]]] = ..., receipt: _Optional[str] = ..., inclusion_proof: _Optional[_Union[_transparency_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class GetReceiptRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetReceiptResponse(_message.Message):
    __slots__ = ("receipt", "inclusion_proof", "checkpoint")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    receipt: _receipt_pb2.Receipt
    inclusion_proof: _transparency_pb2.InclusionProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, receipt: _Optional[_Union[_receipt_pb2.Receipt, _Mapping]] = ..., inclusion_proof: _Optional[_Union[_transparency_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class ListReceiptsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListReceiptsResponse(_message.Message):
    __slots__ = ("receipts", "next_page_token")
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_receipt_pb2.Receipt]
    next_page_token: str
    def __init__(self, receipts: _Optional[_Iterable[_Union[_receipt_pb2.Receipt, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPublicKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPublicKeysResponse(_message.Message):
    __slots__ = ("keys", "jwks_json")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_key_pb2.SigningKey]
    jwks_json: str
    def __init__(self, keys: _Optional[_Iterable[_Union[_key_pb2.SigningKey, _Mapping]]] = ..., jwks_json: _Optional[str] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("reason", "request_id")
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    request_id: str
    def __init__(self, reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("active_key", "retired_key")
    ACTIVE_KEY_FIELD_NUMBER: _ClassVar[int]
    RETIRED_KEY_FIELD_NUMBER: _ClassVar[int]
    active_key: _key_pb2.SigningKey
    retired_key: _key_pb2.SigningKey
    def __init__(self, active_key: _Optional[_Union[_key_pb2.SigningKey, _Mapping]] = ..., retired_key: _Optional[_Union[_key_pb2.SigningKey, _Mapping]] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("log_index", "leaf_hash", "tree_size")
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    log_index: int
    leaf_hash: bytes
    tree_size: int
    def __init__(self, log_index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("inclusion_proof", "checkpoint")
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    inclusion_proof: _transparency_pb2.InclusionProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, inclusion_proof: _Optional[_Union[_transparency_pb2.InclusionProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_size", "second_size")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("consistency_proof", "checkpoint")
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    consistency_proof: _transparency_pb2.ConsistencyProof
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, consistency_proof: _Optional[_Union[_transparency_pb2.ConsistencyProof, _Mapping]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...

class ExportEvidenceBundleRequest(_message.Message):
    __slots__ = ("receipts", "include_linked")
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_LINKED_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedScalarFieldContainer[str]
    include_linked: bool
    def __init__(self, receipts: _Optional[_Iterable[str]] = ..., include_linked: _Optional[bool] = ...) -> None: ...

class ExportEvidenceBundleResponse(_message.Message):
    __slots__ = ("bundle", "bundle_digest", "receipts", "checkpoint")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    bundle_digest: str
    receipts: _containers.RepeatedScalarFieldContainer[str]
    checkpoint: _transparency_pb2.Checkpoint
    def __init__(self, bundle: _Optional[bytes] = ..., bundle_digest: _Optional[str] = ..., receipts: _Optional[_Iterable[str]] = ..., checkpoint: _Optional[_Union[_transparency_pb2.Checkpoint, _Mapping]] = ...) -> None: ...
