"""The signer's domain without gRPC, on SQLite: signing and its validation,
idempotency, group commit, verification, verify-on-read, listing, checkpoints
and proofs, rotation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from maestro.runtime import context, provenance
from maestro.runtime.errors import (
    AlreadyExistsError,
    Code,
    InvalidArgumentError,
    MaestroError,
    NotFoundError,
)
from maestro.services.signer import log as signer_log
from maestro.services.signer.service import Signer
from maestro.signer.v1 import key_pb2, receipt_pb2, transparency_pb2
from maestro.signer.v1 import signer_service_pb2 as pb
from tests.unit.signer.support import (
    ANA,
    ORIGIN,
    TENANT,
    execution_statement,
    sign_request,
    signer_over,
    version_statement,
)

pytestmark = pytest.mark.timeout(30)

EXECUTION = "executions/01J00000000000000000000000"


@pytest.fixture(autouse=True)
def identity() -> Iterator[None]:
    with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
        yield


@pytest.fixture
async def signer(tmp_path: Path) -> AsyncIterator[Signer]:
    async with signer_over(f"sqlite+aiosqlite:///{tmp_path / 'signer.db'}") as s:
        yield s


async def _sign(signer: Signer, i: int, **kwargs: object) -> pb.SignReceiptResponse:
    execution = f"executions/01J{i:023d}"
    return await signer.sign_receipt(
        sign_request(execution_statement(execution), execution, f"req-{i}", **kwargs)  # type: ignore[arg-type]
    )


async def test_sign_receipt_returns_a_verifiable_receipt(signer: Signer) -> None:
    response = await _sign(signer, 0)
    receipt, proof, checkpoint = response.receipt, response.inclusion_proof, response.checkpoint
    assert receipt.name.startswith("receipts/") and receipt.tenant == TENANT
    assert (receipt.kind, receipt.subject, receipt.log_index) == (
        receipt_pb2.RECEIPT_KIND_EXECUTION,
        EXECUTION,
        0,
    )
    assert receipt.verified and receipt.envelope.payload_type == provenance.PAYLOAD_TYPE
    assert receipt.statement_digest == provenance.sha256_hex(receipt.envelope.payload)
    assert receipt.leaf_hash == provenance.receipt_leaf_hash(receipt.envelope)
    assert (checkpoint.origin, checkpoint.tree_size, proof.tree_size) == (ORIGIN, 1, 1)
    keys = signer.log.public_keys
    assert [
        o.status for o in provenance.verify_envelope(receipt.envelope, keys, proof, checkpoint)
    ] == ["PASSED"] * 4
    assert provenance.check_checkpoint_signature(checkpoint, keys, ORIGIN).passed
    # The statement bytes are signed verbatim.
    assert receipt.envelope.payload == provenance.canonical_json(execution_statement())


async def test_structured_statements_are_signed_in_rfc_8785_form(signer: Signer) -> None:
    response = await _sign(signer, 0, structured=True)
    payload = response.receipt.envelope.payload
    assert payload == provenance.canonical_json(json.loads(payload))
    assert json.loads(payload)["predicate"]["cacheHits"] == 1


async def test_request_ids_make_signing_idempotent(signer: Signer) -> None:
    first = await _sign(signer, 0)
    again = await _sign(signer, 0)
    assert again == first
    other = sign_request(execution_statement(state="FAILED"), EXECUTION, "req-0")
    with pytest.raises(AlreadyExistsError, match="was used for another receipt"):
        await signer.sign_receipt(other)
    assert signer.log.size == 1


async def test_concurrent_signs_are_group_committed_into_one_consistent_log(
    signer: Signer,
) -> None:
    responses = await asyncio.gather(*(_sign(signer, i) for i in range(40)))
    assert sorted(r.receipt.log_index for r in responses) == list(range(40))
    keys = signer.log.public_keys
    for r in responses:
        assert r.checkpoint.tree_size == r.receipt.log_index + 1
        assert provenance.check_inclusion(
            r.receipt.leaf_hash, r.inclusion_proof, r.checkpoint
        ).passed
        assert provenance.check_checkpoint_signature(r.checkpoint, keys, ORIGIN).passed
    latest = (await signer.get_checkpoint(pb.GetCheckpointRequest())).checkpoint
    assert latest.tree_size == 40
    for size in (1, 17, 39):
        proof = await signer.get_consistency_proof(pb.GetConsistencyProofRequest(first_size=size))
        old = (await signer.get_checkpoint(pb.GetCheckpointRequest(tree_size=size))).checkpoint
        provenance.verify_consistency(
            size, 40, old.root_hash, latest.root_hash, proof.consistency_proof.hashes
        )


async def test_group_commit_splits_a_long_queue_into_bounded_batches(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signer_log, "MAX_BATCH", 3)
    responses = await asyncio.gather(
        *(_sign(signer, i) for i in range(10)), _sign(signer, 0), _sign(signer, 4)
    )
    assert sorted(r.receipt.log_index for r in responses[:10]) == list(range(10))
    assert responses[10] == responses[0]  # replays, in a batch or after it
    assert responses[11] == responses[4]
    assert signer.log.size == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: setattr(r, "request_id", ""), "request_id"),
        (
            lambda r: setattr(r, "kind", receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST),
            "statement_json.predicateType",
        ),
        (lambda r: setattr(r, "subject", "executions/other"), "statement_json.subject"),
        (lambda r: setattr(r, "statement_json", b"{"), "statement_json"),
        (lambda r: setattr(r, "statement_json", b'{"_type": "x"}'), "statement_json"),
        (lambda r: r.ClearField("statement_json"), "statement_json"),
        (
            lambda r: setattr(
                r, "statement_json", provenance.canonical_json(execution_statement(tenant="other"))
            ),
            "statement_json.predicate.startedBy.tenant",
        ),
        (
            lambda r: setattr(
                r,
                "statement_json",
                provenance.canonical_json(
                    {
                        **execution_statement(),
                        "subject": [{"name": EXECUTION, "digest": {"sha256": "x"}}],
                    }
                ),
            ),
            "statement_json.subject[0].digest.sha256",
        ),
        (
            lambda r: setattr(
                r, "statement_json", provenance.canonical_json(execution_statement(extra=1))
            ),
            "statement_json.predicate",
        ),
        (lambda r: setattr(r, "statement_json", b" " * (1024 * 1024 + 1)), "statement_json"),
    ],
    ids=[
        "request-id",
        "kind",
        "subject",
        "json",
        "type",
        "missing",
        "tenant",
        "digest",
        "unknown-field",
        "size",
    ],
)
async def test_sign_receipt_validation(signer: Signer, change: object, field: str) -> None:
    request = sign_request(execution_statement(), EXECUTION, "req")
    change(request)  # type: ignore[operator]
    with pytest.raises(InvalidArgumentError) as raised:
        await signer.sign_receipt(request)
    assert field in [v.field for v in raised.value.field_violations], raised.value
    assert signer.log.size == 0


async def test_verify_receipt_reports_every_check(signer: Signer) -> None:
    signed = await _sign(signer, 0)
    await _sign(signer, 1)
    envelope = signed.receipt.envelope
    result = await signer.verify_receipt(pb.VerifyReceiptRequest(envelope=envelope))
    assert result.verified and result.receipt == signed.receipt.name
    assert [c.status for c in result.checks] == [pb.CHECK_STATUS_PASSED] * 4 + [
        pb.CHECK_STATUS_SKIPPED
    ] * 2
    assert result.checkpoint.tree_size == 2
    # The bundle's evidence: proof and checkpoint at size 1.
    result = await signer.verify_receipt(
        pb.VerifyReceiptRequest(
            envelope=envelope, inclusion_proof=signed.inclusion_proof, checkpoint=signed.checkpoint
        )
    )
    assert result.verified and all(c.status == pb.CHECK_STATUS_PASSED for c in result.checks)
    forked = transparency_pb2.Checkpoint()
    forked.CopyFrom(signed.checkpoint)
    forked.root_hash = bytes(32)
    result = await signer.verify_receipt(
        pb.VerifyReceiptRequest(envelope=envelope, checkpoint=forked)
    )
    by_check = {pb.VerificationCheck.Name(c.check): c for c in result.checks}
    assert not result.verified
    assert by_check["VERIFICATION_CHECK_LOG_INCLUSION"].message.startswith("leaf 0: computed root")
    assert (
        "does not verify over the body"
        in by_check["VERIFICATION_CHECK_CHECKPOINT_SIGNATURE"].message
    )
    assert "computed second root" in by_check["VERIFICATION_CHECK_CONSISTENCY"].message
    tampered = receipt_pb2.Envelope()
    tampered.CopyFrom(envelope)
    tampered.payload = tampered.payload.replace(b"SUCCEEDED", b"CANCELLED")
    result = await signer.verify_receipt(pb.VerifyReceiptRequest(envelope=tampered))
    statuses = [c.status for c in result.checks]
    assert not result.verified and result.receipt == ""
    assert statuses[2:4] == [pb.CHECK_STATUS_FAILED, pb.CHECK_STATUS_FAILED]
    assert "is not in the log" in result.checks[3].message
    with pytest.raises(InvalidArgumentError):
        await signer.verify_receipt(pb.VerifyReceiptRequest())
    with pytest.raises(InvalidArgumentError, match=r"differs from checkpoint\.tree_size"):
        await signer.verify_receipt(
            pb.VerifyReceiptRequest(
                envelope=envelope,
                inclusion_proof=signed.inclusion_proof,
                checkpoint=result.checkpoint,
            )
        )


async def test_get_receipt_verifies_on_read_and_caches(signer: Signer) -> None:
    signed = await _sign(signer, 0)
    name = signed.receipt.name
    got = await signer.get_receipt(pb.GetReceiptRequest(name=name))
    assert got.receipt.verified and got.receipt.envelope == signed.receipt.envelope
    assert got.receipt.verify_time == signed.receipt.verify_time  # cached, fresh
    await _sign(signer, 1)
    got = await signer.get_receipt(pb.GetReceiptRequest(name=name))
    assert (got.checkpoint.tree_size, got.inclusion_proof.tree_size) == (2, 2)
    with pytest.raises(NotFoundError) as missing:
        await signer.get_receipt(pb.GetReceiptRequest(name="receipts/01J00000000000000000000000"))
    assert missing.value.reason == "RECEIPT_NOT_FOUND"
    other_tenant = context.CallContext(principal=context.Principal(tenant="globex"))
    with context.bind(other_tenant), pytest.raises(NotFoundError):
        await signer.get_receipt(pb.GetReceiptRequest(name=name))
    with pytest.raises(InvalidArgumentError):
        await signer.get_receipt(pb.GetReceiptRequest(name="receipt/x"))


async def test_get_receipt_reverifies_after_rotation(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'signer.db'}"
    async with signer_over(url, verify_cache_seconds=3600) as signer:
        signed = await _sign(signer, 0)
        await signer.rotate_key(pb.RotateKeyRequest(reason="scheduled", request_id="rot-1"))
        got = await signer.get_receipt(pb.GetReceiptRequest(name=signed.receipt.name))
        assert got.receipt.verified
        assert got.receipt.verify_time.ToDatetime() > signed.receipt.verify_time.ToDatetime()


async def test_list_receipts_filters_orders_and_pages(signer: Signer) -> None:
    for i in range(5):
        await _sign(signer, i)
    await signer.sign_receipt(
        sign_request(version_statement(), "workflows/payroll/versions/1.0.0", "v-1")
    )

    async def names(**kwargs: object) -> list[int]:
        result = await signer.list_receipts(pb.ListReceiptsRequest(**kwargs))  # type: ignore[arg-type]
        return [r.log_index for r in result.receipts]

    assert await names() == [5, 4, 3, 2, 1, 0]
    assert await names(order_by="log_index asc") == [0, 1, 2, 3, 4, 5]
    assert await names(filter="kind = VERSION_MANIFEST") == [5]
    assert await names(filter='subject = "workflows/payroll/versions/*"') == [5]
    assert await names(filter='subject = "executions/*" AND log_index >= 3') == [4, 3]
    assert await names(filter="verified = true AND tenant = acme", order_by="log_index asc") == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    seen: list[int] = []
    token = ""
    while True:
        page = await signer.list_receipts(
            pb.ListReceiptsRequest(page_size=2, page_token=token, order_by="create_time asc")
        )
        seen += [r.log_index for r in page.receipts]
        token = page.next_page_token
        if not token:
            break
    assert seen == [0, 1, 2, 3, 4, 5]
    with context.bind(context.CallContext(principal=context.Principal(tenant="globex"))):
        assert await names() == []
    with pytest.raises(InvalidArgumentError) as bad:
        await names(filter="bogus = 1")
    assert bad.value.reason == "INVALID_FILTER"
    with pytest.raises(InvalidArgumentError):
        await names(order_by="subject")
    with pytest.raises(InvalidArgumentError) as bad:
        await names(page_token=token or "x", filter="kind = EXECUTION")
    assert bad.value.reason == "INVALID_PAGE_TOKEN"


async def test_checkpoints_and_proofs(signer: Signer) -> None:
    empty = (await signer.get_checkpoint(pb.GetCheckpointRequest())).checkpoint
    assert (empty.tree_size, empty.root_hash) == (0, provenance.EMPTY_ROOT)
    signed = [await _sign(signer, i) for i in range(6)]
    with pytest.raises(MaestroError) as beyond:
        await signer.get_checkpoint(pb.GetCheckpointRequest(tree_size=7))
    assert (beyond.value.code, beyond.value.reason, beyond.value.metadata) == (
        Code.OUT_OF_RANGE,
        "TREE_SIZE_OUT_OF_RANGE",
        {"tree_size": "6"},
    )
    by_hash = await signer.get_inclusion_proof(
        pb.GetInclusionProofRequest(leaf_hash=signed[2].receipt.leaf_hash, tree_size=4)
    )
    by_index = await signer.get_inclusion_proof(pb.GetInclusionProofRequest(log_index=2))
    assert by_hash.inclusion_proof.leaf_index == 2 and by_hash.checkpoint.tree_size == 4
    assert provenance.check_inclusion(
        signed[2].receipt.leaf_hash, by_hash.inclusion_proof, by_hash.checkpoint
    ).passed
    assert by_index.checkpoint.tree_size == 6
    for bad in (
        pb.GetInclusionProofRequest(),
        pb.GetInclusionProofRequest(leaf_hash=b"short"),
        pb.GetInclusionProofRequest(log_index=3, tree_size=3),
        pb.GetInclusionProofRequest(log_index=0, tree_size=9),
        pb.GetConsistencyProofRequest(first_size=0),
        pb.GetConsistencyProofRequest(first_size=5, second_size=4),
        pb.GetConsistencyProofRequest(first_size=1, second_size=9),
    ):
        call = (
            signer.get_inclusion_proof
            if isinstance(bad, pb.GetInclusionProofRequest)
            else signer.get_consistency_proof
        )
        with pytest.raises(InvalidArgumentError):
            await call(bad)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await signer.get_inclusion_proof(pb.GetInclusionProofRequest(leaf_hash=bytes(32)))


async def test_rotation_keeps_old_receipts_verifying(signer: Signer) -> None:
    before = await _sign(signer, 0)
    first_key = signer.log.active_signer.key_id
    rotated = await signer.rotate_key(pb.RotateKeyRequest(reason="scheduled", request_id="r-1"))
    assert rotated.retired_key.key_id == first_key
    assert rotated.retired_key.state == key_pb2.SIGNING_KEY_STATE_RETIRED
    assert rotated.retired_key.HasField("rotate_time")
    assert rotated.active_key.state == key_pb2.SIGNING_KEY_STATE_ACTIVE
    assert (
        await signer.rotate_key(pb.RotateKeyRequest(reason="scheduled", request_id="r-1"))
        == rotated
    )
    with pytest.raises(AlreadyExistsError):
        await signer.rotate_key(pb.RotateKeyRequest(reason="other", request_id="r-1"))
    with pytest.raises(InvalidArgumentError):
        await signer.rotate_key(pb.RotateKeyRequest(reason=" ", request_id="r-2"))
    after = await _sign(signer, 1)
    assert after.receipt.envelope.signatures[0].keyid == rotated.active_key.key_id
    assert after.checkpoint.signatures[0].keyid == rotated.active_key.key_id
    keys = signer.list_public_keys()
    assert [k.key_id for k in keys.keys] == [rotated.active_key.key_id, first_key]
    jwks = json.loads(keys.jwks_json)
    assert [k["kid"] for k in jwks["keys"]] == [rotated.active_key.key_id, first_key]
    assert provenance.parse_jwks(keys.jwks_json) == signer.log.public_keys
    for name in (before.receipt.name, after.receipt.name):
        got = await signer.get_receipt(pb.GetReceiptRequest(name=name))
        assert got.receipt.verified
    result = await signer.verify_receipt(
        pb.VerifyReceiptRequest(envelope=before.receipt.envelope, checkpoint=before.checkpoint)
    )
    assert result.verified
    assert result.checks[2].key_id == first_key


async def test_evidence_bundle_of_the_signers_receipts(signer: Signer) -> None:
    names = [(await _sign(signer, i)).receipt.name for i in range(3)]
    await signer.rotate_key(pb.RotateKeyRequest(reason="scheduled", request_id="r-1"))
    names.append((await _sign(signer, 3)).receipt.name)
    exported = await signer.export_evidence_bundle(pb.ExportEvidenceBundleRequest(receipts=names))
    report = provenance.verify_bundle(exported.bundle, signer.list_public_keys().jwks_json)
    assert report.ok, [str(f) for f in report.failures]
    assert report.receipts == names
    assert list(exported.receipts) == names
    assert exported.bundle_digest == provenance.sha256_hex(exported.bundle)
    assert exported.checkpoint.tree_size == 4


async def test_evidence_bundle_follows_an_execution_to_its_version_receipt(
    signer: Signer,
) -> None:
    version = "workflows/payroll/versions/1.0.0"
    version_receipt = (
        await signer.sign_receipt(sign_request(version_statement(version), version, "req-v"))
    ).receipt.name
    execution = "executions/01J00000000000000000000042"
    statement = execution_statement(execution, versionReceipt=version_receipt)
    execution_receipt = (
        await signer.sign_receipt(sign_request(statement, execution, "req-e"))
    ).receipt.name
    request = pb.ExportEvidenceBundleRequest(receipts=[execution_receipt], include_linked=True)
    exported = await signer.export_evidence_bundle(request)
    assert list(exported.receipts) == [execution_receipt, version_receipt]
    report = provenance.verify_bundle(exported.bundle, signer.list_public_keys().jwks_json)
    assert report.ok and report.receipts == [execution_receipt, version_receipt]
    # Without include_linked, only what was asked; naming both keeps each once.
    alone = await signer.export_evidence_bundle(
        pb.ExportEvidenceBundleRequest(receipts=[execution_receipt])
    )
    assert list(alone.receipts) == [execution_receipt]
    both = await signer.export_evidence_bundle(
        pb.ExportEvidenceBundleRequest(
            receipts=[version_receipt, execution_receipt], include_linked=True
        )
    )
    assert list(both.receipts) == [version_receipt, execution_receipt]


@pytest.mark.parametrize(
    ("receipts", "field"),
    [
        ([], "receipts"),
        (["receipts/01J00000000000000000000000"] * 2, "receipts[1]"),
        (["receipts/01J00000000000000000000000", "executions/01J0"], "receipts[1]"),
        ([f"receipts/01J{i:023d}" for i in range(101)], "receipts"),
    ],
)
async def test_evidence_bundle_refuses_bad_receipt_lists(
    signer: Signer, receipts: list[str], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await signer.export_evidence_bundle(pb.ExportEvidenceBundleRequest(receipts=receipts))
    assert [v.field for v in raised.value.field_violations] == [field]


async def test_evidence_bundle_of_another_tenants_receipt_is_not_found(signer: Signer) -> None:
    name = (await _sign(signer, 0)).receipt.name
    other = context.CallContext(principal=context.Principal(tenant="globex", subject="eve"))
    with context.bind(other), pytest.raises(NotFoundError) as raised:
        await signer.export_evidence_bundle(pb.ExportEvidenceBundleRequest(receipts=[name]))
    assert raised.value.reason == "RECEIPT_NOT_FOUND"
