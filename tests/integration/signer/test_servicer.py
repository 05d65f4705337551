"""Every SignerService RPC through a real gRPC server on SQLite and PostgreSQL,
with the default (interim) policy gate, typed errors, and receipts checked by
a third-party DSSE implementation from the RPCs' own JSON forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey
from typer.testing import CliRunner

from maestro.cli.main import app
from maestro.runtime import context, provenance
from maestro.runtime.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    MaestroError,
    NotFoundError,
    PermissionDeniedError,
)
from maestro.runtime.server import GrpcServer
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.server import create_server as create_signer
from maestro.signer.v1 import signer_service_pb2 as pb
from tests.conftest import start_policy
from tests.integration.signer.conftest import SignerTestClient, signer_client
from tests.unit.signer.support import ORIGIN, execution_statement, sign_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _request(i: int) -> pb.SignReceiptRequest:
    execution = f"executions/01J{i:023d}"
    return sign_request(execution_statement(execution), execution, f"req-{i}")


async def test_every_rpc_round_trips(client: SignerTestClient, server: GrpcServer) -> None:
    signed = [await client.SignReceipt(_request(i)) for i in range(4)]
    assert [s.receipt.log_index for s in signed] == [0, 1, 2, 3]
    assert (await client.SignReceipt(_request(1))).receipt == signed[1].receipt
    with pytest.raises(AlreadyExistsError):
        other = _request(1)
        other.statement_json = provenance.canonical_json(execution_statement(state="FAILED"))
        other.subject = "executions/01J00000000000000000000000"
        await client.SignReceipt(other)
    with pytest.raises(InvalidArgumentError) as invalid:
        await client.SignReceipt(pb.SignReceiptRequest(request_id="x"))
    assert {v.field for v in invalid.value.field_violations} >= {"kind", "subject"}

    got = await client.GetReceipt(pb.GetReceiptRequest(name=signed[0].receipt.name))
    assert got.receipt.verified and got.checkpoint.tree_size == 4
    with pytest.raises(NotFoundError) as missing:
        await client.GetReceipt(pb.GetReceiptRequest(name="receipts/01J00000000000000000000000"))
    assert missing.value.reason == "RECEIPT_NOT_FOUND"

    listed = await client.ListReceipts(pb.ListReceiptsRequest(page_size=3))
    assert [r.log_index for r in listed.receipts] == [3, 2, 1] and listed.next_page_token

    verified = await client.VerifyReceipt(
        pb.VerifyReceiptRequest(
            envelope=signed[0].receipt.envelope,
            inclusion_proof=signed[0].inclusion_proof,
            checkpoint=signed[0].checkpoint,
        )
    )
    assert verified.verified and verified.receipt == signed[0].receipt.name
    assert len(verified.checks) == 6

    checkpoint = (await client.GetCheckpoint(pb.GetCheckpointRequest())).checkpoint
    assert (checkpoint.origin, checkpoint.tree_size) == (ORIGIN, 4)
    with pytest.raises(MaestroError) as beyond:
        await client.GetCheckpoint(pb.GetCheckpointRequest(tree_size=5))
    assert (beyond.value.reason, beyond.value.metadata["tree_size"]) == (
        "TREE_SIZE_OUT_OF_RANGE",
        "4",
    )
    inclusion = await client.GetInclusionProof(
        pb.GetInclusionProofRequest(leaf_hash=signed[1].receipt.leaf_hash)
    )
    assert provenance.check_inclusion(
        signed[1].receipt.leaf_hash, inclusion.inclusion_proof, inclusion.checkpoint
    ).passed
    consistency = await client.GetConsistencyProof(pb.GetConsistencyProofRequest(first_size=2))
    provenance.verify_consistency(
        2,
        4,
        signed[1].checkpoint.root_hash,
        checkpoint.root_hash,
        consistency.consistency_proof.hashes,
    )

    rotated = await client.RotateKey(pb.RotateKeyRequest(reason="test", request_id="rot-1"))
    keys = await client.ListPublicKeys(pb.ListPublicKeysRequest())
    assert [k.key_id for k in keys.keys] == [rotated.active_key.key_id, rotated.retired_key.key_id]
    after = await client.GetReceipt(pb.GetReceiptRequest(name=signed[0].receipt.name))
    assert after.receipt.verified  # signed by the retired key


async def test_policy_gate_guards_creation_and_rotation(server: GrpcServer) -> None:
    viewer = context.Principal(tenant="acme", subject="val", roles=("viewer",))
    async with signer_client(server, caller="gateway") as client:
        with context.bind(context.CallContext(principal=viewer)):
            with pytest.raises(PermissionDeniedError) as denied:
                await client.SignReceipt(_request(0))
            assert denied.value.reason == "POLICY_DENIED"
            with pytest.raises(PermissionDeniedError):
                await client.RotateKey(pb.RotateKeyRequest(reason="x", request_id="r"))
            # Public: no identity needed, not policy-checked.
            assert (await client.ListPublicKeys(pb.ListPublicKeysRequest())).jwks_json


async def test_rpc_receipts_verify_with_securesystemslib(client: SignerTestClient) -> None:
    signed = await client.SignReceipt(_request(0))
    jwks = json.loads((await client.ListPublicKeys(pb.ListPublicKeysRequest())).jwks_json)
    keys = [
        SSlibKey(
            k["kid"], "ed25519", "ed25519", {"public": provenance.b64url_decode(k["x"], "x").hex()}
        )
        for k in jwks["keys"]
    ]
    # The contract: the Envelope's proto3 JSON form is the DSSE JSON envelope.
    dsse = json_format.MessageToDict(signed.receipt.envelope)
    assert set(dsse) == {"payloadType", "payload", "signatures"}
    accepted = SslibEnvelope.from_dict(dsse).verify(keys, 1)
    assert list(accepted) == [signed.receipt.envelope.signatures[0].keyid]


async def test_bundle_of_rpc_receipts_passes_maestro_verify(
    client: SignerTestClient, tmp_path: Path
) -> None:
    names = [(await client.SignReceipt(_request(i))).receipt.name for i in range(3)]
    exported = await client.ExportEvidenceBundle(pb.ExportEvidenceBundleRequest(receipts=names))
    assert list(exported.receipts) == names
    (tmp_path / "evidence.tar.gz").write_bytes(exported.bundle)
    jwks = (await client.ListPublicKeys(pb.ListPublicKeysRequest())).jwks_json
    (tmp_path / "jwks.json").write_text(jwks)
    result = CliRunner().invoke(
        app, ["verify", str(tmp_path / "evidence.tar.gz"), "--keys", str(tmp_path / "jwks.json")]
    )
    assert result.exit_code == 0, result.output
    assert "verified: 3 receipt(s)" in result.output


async def test_with_the_policy_service_only_services_sign_and_only_the_platform_rotates(
    tmp_path: Path,
) -> None:
    """Through the real policy service: no person signs a receipt (an admin
    would forge provenance), and the signing key, which signs for every
    tenant, is rotated by the platform tenant's admin only."""
    policy = await start_policy(tmp_path / "policy")
    signer = await create_signer(
        SignerSettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path / "signer",
            policy_address=f"127.0.0.1:{policy.port}",
            platform_tenant="ops",
        )
    )
    acme_admin = context.Principal(tenant="acme", subject="ana", roles=("admin",))
    ops_admin = context.Principal(tenant="ops", subject="root", roles=("admin",))
    rotate = pb.RotateKeyRequest(reason="scheduled", request_id="rot-1")
    try:
        async with signer_client(signer, caller="gateway") as client:
            with context.bind(context.CallContext(principal=acme_admin)):
                with pytest.raises(PermissionDeniedError):
                    await client.SignReceipt(_request(0))
                with pytest.raises(PermissionDeniedError) as denied:
                    await client.RotateKey(rotate)
                assert "TENANT_MISMATCH" in denied.value.metadata["reasons"]
            with context.bind(context.CallContext(principal=ops_admin)):
                rotated = await client.RotateKey(rotate)
                assert rotated.retired_key.key_id != rotated.active_key.key_id
        async with signer_client(signer, caller="scheduler") as client:
            with context.bind(context.CallContext(principal=acme_admin)):
                assert (await client.SignReceipt(_request(0))).receipt.name
    finally:
        await signer.stop(0)
        await policy.stop(0)
