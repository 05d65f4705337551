"""The signer's domain service: receipts, verification, the log's proofs and
checkpoints, and keys. No gRPC here: requests and responses are the contract's
messages, failures are ``MaestroError``s.

Policy: every policy-checked operation asks :meth:`Signer._authorize`, the one
call site of the injected :class:`~maestro.services.signer.policy.PolicyGate`.
Identity (tenant) comes from the call context; the receipts a caller can read
are those of its tenant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy import ColumnElement

from maestro.runtime import context, paging, provenance
from maestro.runtime.errors import (
    Code,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    MaestroError,
    NotFoundError,
)
from maestro.runtime.filtering import Field, compile_filter
from maestro.services.signer.log import Append, Appended, TransparencyLog, now
from maestro.services.signer.policy import PolicyGate
from maestro.services.signer.store import CheckpointRow, KeyRow, ReceiptRow, SignerStore, receipts
from maestro.signer.v1 import key_pb2, receipt_pb2, signer_service_pb2, transparency_pb2

pb = signer_service_pb2
DEFAULT_TENANT = "default"
MAX_STATEMENT_BYTES = 1024 * 1024
MAX_PAGE_SIZE = 1000
MAX_BUNDLE_RECEIPTS = 100
_RECEIPT_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_CHECKS = (
    "ENVELOPE",
    "STATEMENT",
    "SIGNATURE",
    "LOG_INCLUSION",
    "CHECKPOINT_SIGNATURE",
    "CONSISTENCY",
)


class OutOfRangeError(MaestroError):
    """A tree size beyond the log (``OUT_OF_RANGE``)."""

    code = Code.OUT_OF_RANGE
    default_reason = "TREE_SIZE_OUT_OF_RANGE"


def tenant_of() -> str:
    return context.current().principal.tenant or DEFAULT_TENANT


def _invalid(field: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{field}: {message}", field_violations=[FieldViolation(field, message)]
    )


def _require_request_id(request_id: str) -> None:
    if not request_id or len(request_id) > 64:
        raise _invalid("request_id", "required, at most 64 characters")


def parse_receipt_name(name: str, field: str = "name") -> str:
    prefix, _, receipt_id = name.partition("/")
    if prefix != "receipts" or not _RECEIPT_ID.match(receipt_id):
        raise _invalid(field, f"must look like receipts/{{receipt}}, got {name!r}")
    return receipt_id


# -- proto views -------------------------------------------------------------------


def checkpoint_pb(row: CheckpointRow) -> transparency_pb2.Checkpoint:
    checkpoint = transparency_pb2.Checkpoint(
        origin=row.origin,
        tree_size=row.tree_size,
        root_hash=row.root_hash,
        signatures=[receipt_pb2.Signature(keyid=row.key_id, sig=row.signature)],
        note=row.note,
    )
    checkpoint.timestamp.FromSeconds(row.timestamp)
    return checkpoint


def key_pb(row: KeyRow) -> key_pb2.SigningKey:
    key = key_pb2.SigningKey(
        name=f"keys/{row.key_id}",
        key_id=row.key_id,
        algorithm="Ed25519",
        public_key=row.public_key,
        state=key_pb2.SIGNING_KEY_STATE_ACTIVE
        if row.state == "ACTIVE"
        else key_pb2.SIGNING_KEY_STATE_RETIRED,
    )
    key.create_time.FromDatetime(row.create_time)
    if row.rotate_time is not None:
        key.rotate_time.FromDatetime(row.rotate_time)
    return key


def _envelope_of(row: ReceiptRow) -> receipt_pb2.Envelope:
    try:
        return provenance.envelope_from_json(row.leaf_data)
    except provenance.ProvenanceError:
        # Stored data that no longer parses: return it as an empty envelope,
        # which every check then fails; never raise on reading it.
        return receipt_pb2.Envelope()


def receipt_pb(row: ReceiptRow) -> receipt_pb2.Receipt:
    receipt = receipt_pb2.Receipt(
        name=f"receipts/{row.receipt_id}",
        envelope=_envelope_of(row),
        statement_digest=row.statement_digest,
        log_index=row.log_index,
        leaf_hash=provenance.leaf_hash(row.leaf_data),
        kind=cast(receipt_pb2.ReceiptKind, row.kind),
        subject=row.subject,
        tenant=row.tenant,
        verified=row.verified,
    )
    receipt.create_time.FromDatetime(row.create_time)
    if row.verify_time is not None:
        receipt.verify_time.FromDatetime(row.verify_time)
    return receipt


def _proof_pb(
    leaf_index: int, tree_size: int, leaf: bytes, hashes: Sequence[bytes]
) -> transparency_pb2.InclusionProof:
    return transparency_pb2.InclusionProof(
        leaf_index=leaf_index, tree_size=tree_size, leaf_hash=leaf, hashes=list(hashes)
    )


def _check_pb(outcome: provenance.CheckOutcome) -> pb.CheckResult:
    return pb.CheckResult(
        check=cast(
            pb.VerificationCheck,
            pb.VerificationCheck.Value(f"VERIFICATION_CHECK_{outcome.check}"),
        ),
        status=cast(pb.CheckStatus, pb.CheckStatus.Value(f"CHECK_STATUS_{outcome.status}")),
        message=outcome.message,
        key_id=outcome.key_id,
    )


# -- listing ---------------------------------------------------------------------------


def _subject(op: str, value: Any) -> ColumnElement[bool]:
    text = str(value)
    if text.endswith("*"):
        prefix = text[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matched: ColumnElement[bool] = receipts.c.subject.like(prefix + "%", escape="\\")
    else:
        matched = receipts.c.subject == text
    return matched if op == "=" else ~matched


RECEIPT_FIELDS: dict[str, Field] = {
    "kind": Field(
        "enum",
        receipts.c.kind,
        enum_values={
            **{n: v for n, v in receipt_pb2.ReceiptKind.items() if v},
            **{n.removeprefix("RECEIPT_KIND_"): v for n, v in receipt_pb2.ReceiptKind.items() if v},
        },
    ),
    "subject": Field("string", build=_subject),
    "tenant": Field("string", receipts.c.tenant),
    "verified": Field("bool", receipts.c.verified),
    "log_index": Field("int", receipts.c.log_index),
    "create_time": Field("timestamp", receipts.c.create_time),
}
_ORDERS = {
    "": (False, True),
    "create_time desc": (False, True),
    "create_time asc": (False, False),
    "log_index desc": (True, True),
    "log_index asc": (True, False),
}


# -- the service -----------------------------------------------------------------------


class Signer:
    """Every SignerService operation."""

    def __init__(
        self,
        store: SignerStore,
        log: TransparencyLog,
        policy: PolicyGate,
        *,
        verify_cache_seconds: float = 300.0,
        platform_tenant: str = "default",
    ) -> None:
        """``platform_tenant`` owns the signing key (it signs for every
        tenant): only its principals may rotate it."""
        self._store = store
        self._platform_tenant = platform_tenant
        self._log = log
        self._policy = policy
        self._verify_ttl = timedelta(seconds=verify_cache_seconds)

    @property
    def log(self) -> TransparencyLog:
        return self._log

    async def _authorize(self, action: str, *, resource_type: str, name: str, tenant: str) -> None:
        # POLICY CALL SITE: the only place the signer asks policy (SignReceipt
        # receipts.create, GetReceipt receipts.get, ListReceipts receipts.list,
        # RotateKey keys.rotate). The gate is injected by server.create_server.
        await self._policy.authorize(
            action, resource_type=resource_type, resource_name=name, tenant=tenant
        )

    # -- SignReceipt -------------------------------------------------------------------

    async def sign_receipt(self, request: pb.SignReceiptRequest) -> pb.SignReceiptResponse:
        tenant = tenant_of()
        await self._authorize(
            "receipts.create", resource_type="receipt", name="receipts", tenant=tenant
        )
        _require_request_id(request.request_id)
        payload = self._validated_statement(request, tenant)
        request_hash = hashlib.sha256(
            b"%d\x00%b\x00%b" % (request.kind, request.subject.encode(), payload)
        ).hexdigest()
        # A retry is answered by the writer too (it finds the request id).
        result = await self._log.append(
            Append(
                tenant=tenant,
                request_id=request.request_id,
                request_hash=request_hash,
                kind=request.kind,
                subject=request.subject,
                payload=payload,
            )
        )
        return self._signed(result)

    def _signed(self, result: Appended) -> pb.SignReceiptResponse:
        row, size = result.receipt, result.checkpoint.tree_size
        leaf = self._log.leaf_hash(row.log_index)
        return pb.SignReceiptResponse(
            receipt=receipt_pb(row),
            inclusion_proof=_proof_pb(
                row.log_index, size, leaf, self._log.inclusion_proof(row.log_index, size)
            ),
            checkpoint=checkpoint_pb(result.checkpoint),
        )

    def _validated_statement(self, request: pb.SignReceiptRequest, tenant: str) -> bytes:
        """The statement bytes to sign, after every check of the contract."""
        problems: list[FieldViolation] = []
        expected_type = provenance.PREDICATE_TYPE_OF_KIND.get(request.kind)
        if expected_type is None:
            problems.append(FieldViolation("kind", "VERSION_MANIFEST or EXECUTION is required"))
        if not request.subject or len(request.subject) > 512:
            problems.append(FieldViolation("subject", "required, at most 512 characters"))
        where = request.WhichOneof("content") or "statement_json"
        payload, statement = _statement_of(request, problems)
        if statement is not None:
            content_problems, predicate = provenance.validate_statement(statement)
            problems.extend(FieldViolation(f"{where}.{f}", m) for f, m in content_problems)
            predicate_type = statement.get("predicateType")
            if predicate_type in provenance.PREDICATE_TYPES and predicate_type != expected_type:
                problems.append(
                    FieldViolation(f"{where}.predicateType", f"does not match kind {request.kind}")
                )
            subjects = statement.get("subject")
            names = (
                {s.get("name") for s in subjects if isinstance(s, dict)}
                if isinstance(subjects, list)
                else set()
            )
            if request.subject and request.subject not in names:
                problems.append(
                    FieldViolation(f"{where}.subject", f"no subject is named {request.subject!r}")
                )
            if not problems and predicate is not None:
                problems.extend(_tenant_problems(predicate, where, tenant))
        if problems:
            raise InvalidArgumentError(
                "invalid SignReceipt request: "
                + "; ".join(f"{p.field}: {p.description}" for p in problems),
                field_violations=problems,
            )
        return payload

    # -- VerifyReceipt -----------------------------------------------------------------

    async def verify_receipt(self, request: pb.VerifyReceiptRequest) -> pb.VerifyReceiptResponse:
        if not request.HasField("envelope"):
            raise _invalid("envelope", "required")
        given_proof = request.inclusion_proof if request.HasField("inclusion_proof") else None
        given_checkpoint = request.checkpoint if request.HasField("checkpoint") else None
        if (
            given_proof is not None
            and given_checkpoint is not None
            and given_proof.tree_size != given_checkpoint.tree_size
        ):
            raise _invalid(
                "inclusion_proof.tree_size",
                f"{given_proof.tree_size} differs from checkpoint.tree_size "
                f"{given_checkpoint.tree_size}",
            )
        envelope = request.envelope
        keys = self._log.public_keys
        outcomes: list[provenance.CheckOutcome] = []
        envelope_outcome, statement = provenance.check_envelope(envelope)
        outcomes += [
            envelope_outcome,
            provenance.check_statement(statement),
            provenance.check_signature(envelope, keys),
        ]
        leaf = provenance.receipt_leaf_hash(envelope)
        leaf_index = await self._store.read(lambda conn: self._store.leaf_index_of(conn, leaf))
        receipt_id = None
        if leaf_index is not None:
            receipt_id = await self._store.read(
                lambda conn: self._store.receipt_at(conn, leaf_index)
            )
        response = pb.VerifyReceiptResponse(receipt=f"receipts/{receipt_id}" if receipt_id else "")
        inclusion, proof, checkpoint = await self._inclusion(
            leaf, leaf_index, given_proof, given_checkpoint
        )
        outcomes.append(inclusion)
        if proof is not None:
            response.inclusion_proof.CopyFrom(proof)
        if checkpoint is not None:
            response.checkpoint.CopyFrom(checkpoint)
        outcomes += self._checkpoint_checks(given_checkpoint, keys)
        response.checks.extend(_check_pb(o) for o in outcomes)
        response.verified = all(o.passed for o in outcomes[:4]) and not any(
            o.status == "FAILED" for o in outcomes
        )
        return response

    async def _inclusion(
        self,
        leaf: bytes,
        leaf_index: int | None,
        proof: transparency_pb2.InclusionProof | None,
        checkpoint: transparency_pb2.Checkpoint | None,
    ) -> tuple[
        provenance.CheckOutcome,
        transparency_pb2.InclusionProof | None,
        transparency_pb2.Checkpoint | None,
    ]:
        def failed(message: str) -> provenance.CheckOutcome:
            return provenance.CheckOutcome("LOG_INCLUSION", "FAILED", message)

        size = self._log.size
        if checkpoint is None:
            want = proof.tree_size if proof is not None else size
            if not 0 < want <= size:
                return failed(f"no checkpoint at tree_size {want} (the log has {size})"), None, None
            checkpoint = checkpoint_pb(await self._checkpoint_row(want))
        if proof is None:
            if leaf_index is None:
                return failed(f"leaf hash {leaf.hex()} is not in the log"), None, checkpoint
            if not leaf_index < checkpoint.tree_size <= size:
                return (
                    failed(
                        f"leaf {leaf_index} is not in the tree of the checkpoint's size "
                        f"{checkpoint.tree_size} (the log has {size})"
                    ),
                    None,
                    checkpoint,
                )
            proof = _proof_pb(
                leaf_index,
                checkpoint.tree_size,
                leaf,
                self._log.inclusion_proof(leaf_index, checkpoint.tree_size),
            )
        return provenance.check_inclusion(leaf, proof, checkpoint), proof, checkpoint

    def _checkpoint_checks(
        self, checkpoint: transparency_pb2.Checkpoint | None, keys: dict[str, bytes]
    ) -> list[provenance.CheckOutcome]:
        if checkpoint is None:
            reason = "no checkpoint given: the signer's own checkpoint was used"
            return [
                provenance.CheckOutcome("CHECKPOINT_SIGNATURE", "SKIPPED", reason),
                provenance.CheckOutcome("CONSISTENCY", "SKIPPED", reason),
            ]
        signature = provenance.check_checkpoint_signature(checkpoint, keys, self._log.origin)
        latest = self._log.latest
        try:
            if checkpoint.tree_size > latest.tree_size:
                raise provenance.ProofError(
                    f"checkpoint tree_size {checkpoint.tree_size} is beyond the signer's "
                    f"latest {latest.tree_size}"
                )
            hashes = (
                self._log.consistency_proof(checkpoint.tree_size, latest.tree_size)
                if checkpoint.tree_size
                else []
            )
            provenance.verify_consistency(
                checkpoint.tree_size,
                latest.tree_size,
                checkpoint.root_hash,
                latest.root_hash,
                hashes,
            )
            consistency = provenance.CheckOutcome(
                "CONSISTENCY", "PASSED", f"prefix of the tree of size {latest.tree_size}"
            )
        except provenance.ProofError as exc:
            consistency = provenance.CheckOutcome("CONSISTENCY", "FAILED", str(exc))
        return [signature, consistency]

    # -- GetReceipt / ListReceipts -------------------------------------------------------

    async def get_receipt(self, request: pb.GetReceiptRequest) -> pb.GetReceiptResponse:
        receipt_id = parse_receipt_name(request.name)
        tenant = tenant_of()
        row = await self._store.read(lambda conn: self._store.receipt(conn, receipt_id))
        if row is None or row.tenant != tenant:
            raise NotFoundError(
                f"{request.name} not found",
                reason="RECEIPT_NOT_FOUND",
                metadata={"name": request.name},
            )
        await self._authorize(
            "receipts.get", resource_type="receipt", name=request.name, tenant=row.tenant
        )
        latest = self._log.latest
        checkpoint = checkpoint_pb(latest)
        envelope = _envelope_of(row)
        tree_leaf = self._log.leaf_hash(row.log_index)
        proof = _proof_pb(
            row.log_index,
            latest.tree_size,
            tree_leaf,
            self._log.inclusion_proof(row.log_index, latest.tree_size),
        )
        at = now()
        rotated = self._log.last_rotate_time
        fresh = (
            row.verified
            and row.verify_time is not None
            and at - row.verify_time < self._verify_ttl
            and (rotated is None or row.verify_time > rotated)
        )
        if not fresh:
            keys = self._log.public_keys
            outcomes = [
                *provenance.verify_envelope(envelope, keys, proof, checkpoint),
                provenance.check_checkpoint_signature(checkpoint, keys, self._log.origin),
            ]
            failed = next((o for o in outcomes if not o.passed), None)
            await self._store.write(
                lambda conn: self._store.set_verified(conn, receipt_id, failed is None, at)
            )
            if failed is not None:
                raise FailedPreconditionError(
                    f"{request.name} failed verification: {failed.check}: {failed.message}",
                    reason="VERIFICATION_FAILED",
                    metadata={"check": failed.check, "receipt": request.name},
                )
            row = ReceiptRow(**{**_fields(row), "verified": True, "verify_time": at})
        return pb.GetReceiptResponse(
            receipt=receipt_pb(row), inclusion_proof=proof, checkpoint=checkpoint
        )

    async def list_receipts(self, request: pb.ListReceiptsRequest) -> pb.ListReceiptsResponse:
        tenant = tenant_of()
        await self._authorize(
            "receipts.list", resource_type="receipt", name="receipts", tenant=tenant
        )
        size = paging.page_size(request.page_size, default=50, maximum=MAX_PAGE_SIZE)
        order = request.order_by.strip().lower()
        order = re.sub(r"\s+", " ", order)
        if order not in _ORDERS:
            raise InvalidArgumentError(
                f"order_by must be one of {', '.join(repr(o) for o in _ORDERS if o)}",
                field_violations=[FieldViolation("order_by", "unsupported order")],
            )
        by_log_index, descending = _ORDERS[order]
        condition = compile_filter(request.filter, RECEIPT_FIELDS)
        where: ColumnElement[bool] = receipts.c.tenant == tenant
        if condition is not None:
            where = where & condition
        query = paging.query_hash("receipts", tenant, request.filter, by_log_index, descending)
        after: tuple[Any, ...] | None = None
        if request.page_token:
            key = paging.decode_page_token(request.page_token, query)
            try:
                after = (
                    (int(key[0]),)
                    if by_log_index
                    else (datetime.fromisoformat(str(key[0])), int(key[1]))
                )
            except (IndexError, TypeError, ValueError) as exc:
                raise paging.bad_page_token() from exc
        rows = await self._store.read(
            lambda conn: self._store.list_receipts(
                conn,
                where,
                by_log_index=by_log_index,
                descending=descending,
                after=after,
                limit=size + 1,
            )
        )
        response = pb.ListReceiptsResponse(receipts=[receipt_pb(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            key_values: list[Any] = (
                [last.log_index] if by_log_index else [last.create_time.isoformat(), last.log_index]
            )
            response.next_page_token = paging.encode_page_token(key_values, query)
        return response

    # -- keys ------------------------------------------------------------------------

    def list_public_keys(self) -> pb.ListPublicKeysResponse:
        keys = self._log.keys
        return pb.ListPublicKeysResponse(
            keys=[key_pb(k) for k in keys],
            jwks_json=provenance.jwks_json(k.public_key for k in keys),
        )

    async def rotate_key(self, request: pb.RotateKeyRequest) -> pb.RotateKeyResponse:
        await self._authorize(
            "keys.rotate", resource_type="key", name="keys", tenant=self._platform_tenant
        )
        _require_request_id(request.request_id)
        if not request.reason.strip():
            raise _invalid("reason", "required")
        rotation = await self._log.rotate(request.request_id, request.reason)
        return pb.RotateKeyResponse(
            active_key=key_pb(rotation.active_key), retired_key=key_pb(rotation.retired_key)
        )

    # -- checkpoints and proofs ----------------------------------------------------------

    async def _checkpoint_row(self, tree_size: int) -> CheckpointRow:
        latest = self._log.latest
        if tree_size == latest.tree_size:
            return latest
        row = await self._store.read(lambda conn: self._store.checkpoint(conn, tree_size))
        if row is None:  # one is signed for every size: a missing one is a broken log
            raise InternalError(f"no checkpoint at tree size {tree_size}")
        return row

    def _size_at_most_current(self, field: str, tree_size: int) -> int:
        size = self._log.size
        if tree_size < 0 or tree_size > size:
            raise _invalid(field, f"{tree_size} is not in [0, {size}] (the current tree size)")
        return tree_size or size

    async def get_checkpoint(self, request: pb.GetCheckpointRequest) -> pb.GetCheckpointResponse:
        size = self._log.size
        if request.tree_size > size:
            raise OutOfRangeError(
                f"tree_size {request.tree_size} is beyond the current tree size {size}",
                metadata={"tree_size": str(size)},
            )
        if request.tree_size < 0:
            raise _invalid("tree_size", "must not be negative")
        row = await self._checkpoint_row(request.tree_size or size)
        return pb.GetCheckpointResponse(checkpoint=checkpoint_pb(row))

    async def get_inclusion_proof(
        self, request: pb.GetInclusionProofRequest
    ) -> pb.GetInclusionProofResponse:
        size = self._size_at_most_current("tree_size", request.tree_size)
        which = request.WhichOneof("leaf")
        if which is None:
            raise _invalid("log_index", "a leaf (log_index or leaf_hash) is required")
        if which == "leaf_hash":
            if len(request.leaf_hash) != provenance.HASH_SIZE:
                raise _invalid("leaf_hash", "must be 32 bytes")
            found = await self._store.read(
                lambda conn: self._store.leaf_index_of(conn, request.leaf_hash)
            )
            if found is None or found >= self._log.size:
                raise NotFoundError(
                    f"no leaf with hash {request.leaf_hash.hex()}", reason="RECEIPT_NOT_FOUND"
                )
            index = found
        else:
            index = request.log_index
        if not 0 <= index < size:
            raise _invalid("log_index", f"{index} is not below tree_size {size}")
        checkpoint = await self._checkpoint_row(size)
        proof = _proof_pb(
            index, size, self._log.leaf_hash(index), self._log.inclusion_proof(index, size)
        )
        return pb.GetInclusionProofResponse(
            inclusion_proof=proof, checkpoint=checkpoint_pb(checkpoint)
        )

    async def get_consistency_proof(
        self, request: pb.GetConsistencyProofRequest
    ) -> pb.GetConsistencyProofResponse:
        second = self._size_at_most_current("second_size", request.second_size)
        if not 1 <= request.first_size <= second:
            raise _invalid("first_size", f"{request.first_size} is not in [1, {second}]")
        checkpoint = await self._checkpoint_row(second)
        return pb.GetConsistencyProofResponse(
            consistency_proof=transparency_pb2.ConsistencyProof(
                first_size=request.first_size,
                second_size=second,
                hashes=self._log.consistency_proof(request.first_size, second),
            ),
            checkpoint=checkpoint_pb(checkpoint),
        )

    # -- evidence bundles ------------------------------------------------------------------

    async def export_evidence_bundle(
        self, request: pb.ExportEvidenceBundleRequest
    ) -> pb.ExportEvidenceBundleResponse:
        """An evidence bundle of the caller's receipts (and, with
        ``include_linked``, the version receipts they name) at the latest
        checkpoint, its manifest signed by the ACTIVE key. Each receipt is
        verified on read first (GetReceipt semantics and policy).

        Raises:
            InvalidArgumentError: no receipts, too many, malformed or repeated.
            NotFoundError / FailedPreconditionError: as GetReceipt.
        """
        names = list(request.receipts)
        if not 1 <= len(names) <= MAX_BUNDLE_RECEIPTS:
            raise _invalid("receipts", f"between 1 and {MAX_BUNDLE_RECEIPTS} receipts are required")
        for index, name in enumerate(names):
            parse_receipt_name(name, f"receipts[{index}]")
            if name in names[:index]:
                raise _invalid(f"receipts[{index}]", f"{name} is named twice")
        got: list[pb.GetReceiptResponse] = []
        for name in names:
            got.append(await self.get_receipt(pb.GetReceiptRequest(name=name)))
        if request.include_linked:
            for linked in _linked_receipts([g.receipt for g in got]):
                if linked not in names:
                    names.append(linked)
                    got.append(await self.get_receipt(pb.GetReceiptRequest(name=linked)))
        # One checkpoint for the whole bundle: the newest any read used.
        checkpoint = max((g.checkpoint for g in got), key=lambda c: c.tree_size)
        items = []
        for item in got:
            proof = item.inclusion_proof
            if proof.tree_size != checkpoint.tree_size:
                proof = _proof_pb(
                    proof.leaf_index,
                    checkpoint.tree_size,
                    proof.leaf_hash,
                    self._log.inclusion_proof(proof.leaf_index, checkpoint.tree_size),
                )
            items.append(provenance.BundleReceipt(item.receipt, proof))
        bundle = provenance.build_evidence_bundle(
            items,
            checkpoint,
            self.list_public_keys().jwks_json,
            self._log.active_signer,
        )
        return pb.ExportEvidenceBundleResponse(
            bundle=bundle,
            bundle_digest=hashlib.sha256(bundle).hexdigest(),
            receipts=names,
            checkpoint=checkpoint,
        )


def _linked_receipts(receipts: Sequence[receipt_pb2.Receipt]) -> list[str]:
    """The version receipts that EXECUTION receipts name, in order, once each."""
    linked: list[str] = []
    for receipt in receipts:
        if receipt.kind != receipt_pb2.RECEIPT_KIND_EXECUTION:
            continue
        statement = provenance.parse_statement(receipt.envelope.payload)
        name = statement.get("predicate", {}).get("versionReceipt", "")
        if isinstance(name, str) and name and name not in linked:
            linked.append(name)
    return linked


def _tenant_problems(predicate: Message, where: str, tenant: str) -> list[FieldViolation]:
    if isinstance(predicate, receipt_pb2.VersionPredicate):
        field, principal = "publishedBy", predicate.published_by
    else:
        assert isinstance(predicate, receipt_pb2.ExecutionPredicate)
        field, principal = "startedBy", predicate.started_by
    if principal.tenant != tenant:
        return [
            FieldViolation(
                f"{where}.predicate.{field}.tenant",
                f"must be the caller's tenant {tenant!r}, got {principal.tenant!r}",
            )
        ]
    return []


def _statement_of(
    request: pb.SignReceiptRequest, problems: list[FieldViolation]
) -> tuple[bytes, dict[str, Any] | None]:
    """The bytes to sign and the parsed statement (None when it does not
    parse; the problem is appended)."""
    content = request.WhichOneof("content")
    if content is None:
        problems.append(FieldViolation("statement_json", "a statement is required"))
        return b"", None
    if content == "statement_json":
        payload = request.statement_json
    else:
        # Structured: the signer serializes it (RFC 8785) and signs those bytes.
        payload = provenance.canonical_json(json_format.MessageToDict(request.statement))
    if len(payload) > MAX_STATEMENT_BYTES:
        problems.append(FieldViolation(content, "larger than 1 MiB"))
        return payload, None
    try:
        return payload, provenance.parse_statement(payload)
    except provenance.ProvenanceError as exc:
        problems.append(FieldViolation(content, str(exc)))
        return payload, None


def _fields(row: ReceiptRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}
