"""Builders shared by the signer tests: statements, receipts signed and
logged offline, and evidence bundles made from them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from maestro.runtime import db, provenance
from maestro.runtime.context import Principal
from maestro.services.signer.keys import KeyEncryptionKey
from maestro.services.signer.log import TransparencyLog
from maestro.services.signer.merkle import MerkleTree
from maestro.services.signer.policy import PolicyGate
from maestro.services.signer.service import Signer
from maestro.services.signer.store import SignerStore
from maestro.signer.v1 import receipt_pb2, signer_service_pb2, transparency_pb2

ORIGIN = "maestro.dev/receipts/test"
TENANT = "acme"
ANA = Principal(tenant=TENANT, subject="ana", roles=("admin",))


class AllowAll:
    """A policy gate that allows everything: unit tests only."""

    async def authorize(
        self, action: str, *, resource_type: str, resource_name: str, tenant: str
    ) -> None:
        return None


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def execution_statement(
    execution: str = "executions/01J00000000000000000000000",
    *,
    tenant: str = TENANT,
    **predicate: Any,
) -> dict[str, Any]:
    """An EXECUTION statement (proto3 JSON, camelCase) for ``execution``."""
    body: dict[str, Any] = {
        "execution": execution,
        "workflowVersion": "workflows/payroll/versions/1.0.0",
        "definitionDigest": digest("definition"),
        "startedBy": {"tenant": tenant, "subject": "ana", "roles": ["operator"]},
        "trigger": "api",
        "inputsDigest": digest("inputs"),
        "outputsDigest": digest("outputs"),
        "state": "SUCCEEDED",
        "steps": [
            {
                "stepId": "fetch",
                "handler": "http",
                "state": "SUCCEEDED",
                "attempts": 1,
                "inputDigest": digest("in"),
                "outputDigest": digest("out"),
            },
            {
                "stepId": "store",
                "state": "SUCCEEDED",
                "cacheHit": True,
                "cacheSource": "executions/01J00000000000000000000001",
            },
        ],
        "policyDecisionIds": ["d-1", "d-2"],
        "cacheHits": 1,
        "createTime": "2025-09-01T10:00:00Z",
        "startTime": "2025-09-01T10:00:01Z",
        "endTime": "2025-09-01T10:00:05Z",
    }
    body.update(predicate)
    return {
        "_type": provenance.STATEMENT_TYPE,
        "subject": [{"name": execution, "digest": {"sha256": digest("outputs")}}],
        "predicateType": provenance.EXECUTION_PREDICATE_TYPE,
        "predicate": body,
    }


def version_statement(
    version: str = "workflows/payroll/versions/1.0.0", *, tenant: str = TENANT
) -> dict[str, Any]:
    """A VERSION_MANIFEST statement for ``version``."""
    return {
        "_type": provenance.STATEMENT_TYPE,
        "subject": [{"name": version, "digest": {"sha256": digest("definition")}}],
        "predicateType": provenance.VERSION_PREDICATE_TYPE,
        "predicate": {
            "workflow": "workflows/payroll",
            "version": version.rsplit("/", 1)[1],
            "definitionDigest": digest("definition"),
            "planDigest": digest("plan"),
            "sourceDigest": digest("source"),
            "publishedBy": {"tenant": tenant, "subject": "ana"},
            "publishTime": "2025-09-01T09:00:00Z",
            "policyDecisionIds": ["d-0"],
            "policyBundleRevision": "r1",
            "compilerVersion": "0.1.0",
        },
    }


@dataclass
class OfflineLog:
    """A log kept in memory with one key: receipts signed, logged and
    checkpointed the way the signer does it, without a server."""

    signer: provenance.Ed25519Signer = field(default_factory=provenance.Ed25519Signer.generate)
    tree: MerkleTree = field(default_factory=MerkleTree)
    receipts: list[receipt_pb2.Receipt] = field(default_factory=list)

    def sign(self, statement: dict[str, Any], subject: str) -> receipt_pb2.Receipt:
        payload = provenance.canonical_json(statement)
        envelope = provenance.sign_envelope(payload, self.signer)
        leaf = provenance.receipt_leaf_hash(envelope)
        index = self.tree.append(leaf)
        receipt = receipt_pb2.Receipt(
            name=f"receipts/01J{index:023d}",
            envelope=envelope,
            statement_digest=provenance.sha256_hex(payload),
            log_index=index,
            leaf_hash=leaf,
            kind=receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST
            if statement["predicateType"] == provenance.VERSION_PREDICATE_TYPE
            else receipt_pb2.RECEIPT_KIND_EXECUTION,
            subject=subject,
            tenant=TENANT,
        )
        self.receipts.append(receipt)
        return receipt

    def checkpoint(self, size: int | None = None) -> transparency_pb2.Checkpoint:
        size = self.tree.size if size is None else size
        return provenance.sign_checkpoint(
            ORIGIN, size, self.tree.root(size), 1_756_720_800, self.signer
        )

    def proof(
        self, receipt: receipt_pb2.Receipt, size: int | None = None
    ) -> transparency_pb2.InclusionProof:
        size = self.tree.size if size is None else size
        return transparency_pb2.InclusionProof(
            leaf_index=receipt.log_index,
            tree_size=size,
            leaf_hash=receipt.leaf_hash,
            hashes=self.tree.inclusion_proof(receipt.log_index, size),
        )

    @property
    def jwks(self) -> str:
        return provenance.jwks_json([self.signer.public_key])

    def bundle(self) -> bytes:
        return provenance.build_evidence_bundle(
            [provenance.BundleReceipt(r, self.proof(r)) for r in self.receipts],
            self.checkpoint(),
            self.jwks,
            self.signer,
        )


def offline_log(count: int = 3) -> OfflineLog:
    log = OfflineLog()
    for i in range(count):
        execution = f"executions/01J{i:023d}"
        log.sign(execution_statement(execution), execution)
    return log


KEK = KeyEncryptionKey(bytes(range(32)))


@asynccontextmanager
async def signer_over(
    url: str,
    *,
    kek: KeyEncryptionKey = KEK,
    origin: str = ORIGIN,
    policy: PolicyGate | None = None,
    verify_cache_seconds: float = 300.0,
) -> AsyncIterator[Signer]:
    """The signer's domain over a database URL, without gRPC."""
    store = SignerStore(db.create_sync_engine(url))
    await asyncio.to_thread(store.migrate)
    log = TransparencyLog(store, kek, origin)
    try:
        await log.open()
        yield Signer(store, log, policy or AllowAll(), verify_cache_seconds=verify_cache_seconds)
    finally:
        await log.close()
        await store.close()


def sign_request(
    statement: dict[str, Any], subject: str, request_id: str, *, structured: bool = False
) -> signer_service_pb2.SignReceiptRequest:
    kind = (
        receipt_pb2.RECEIPT_KIND_EXECUTION
        if statement["predicateType"] == provenance.EXECUTION_PREDICATE_TYPE
        else receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST
    )
    request = signer_service_pb2.SignReceiptRequest(
        kind=kind, subject=subject, request_id=request_id
    )
    if structured:
        from google.protobuf import json_format

        json_format.ParseDict(statement, request.statement)
    else:
        request.statement_json = provenance.canonical_json(statement)
    return request
