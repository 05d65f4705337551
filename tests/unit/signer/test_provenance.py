"""DSSE, keys, checkpoints and statement checks of maestro.runtime.provenance,
including verification of Maestro envelopes by a third-party DSSE
implementation (securesystemslib) that knows only the JWKS."""

from __future__ import annotations

import json

import pytest
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from maestro.runtime import provenance
from maestro.signer.v1 import receipt_pb2
from tests.unit.signer.support import ORIGIN, execution_statement, offline_log, version_statement

pytestmark = pytest.mark.timeout(30)


def test_pae_is_the_dsse_encoding() -> None:
    # The DSSE protocol's own example.
    assert (
        provenance.pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_key_id_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.2 public key and A.3 thumbprint.
    public = provenance.b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "x")
    assert provenance.key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    jwk = provenance.public_jwk(public)
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "alg": "EdDSA",
        "use": "sig",
    }


def _sslib_keys(jwks: str) -> list[SSlibKey]:
    """The JWKS as securesystemslib keys: only public data, nothing of ours."""
    keys = []
    for jwk in json.loads(jwks)["keys"]:
        assert (jwk["kty"], jwk["crv"], jwk["use"]) == ("OKP", "Ed25519", "sig")
        public = provenance.b64url_decode(jwk["x"], "x").hex()
        keys.append(SSlibKey(jwk["kid"], "ed25519", "ed25519", {"public": public}))
    return keys


def test_receipts_verify_with_securesystemslib_using_only_the_jwks() -> None:
    log = offline_log(2)
    envelope_json = provenance.envelope_json(log.receipts[1].envelope)
    envelope = SslibEnvelope.from_dict(json.loads(envelope_json))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    accepted = envelope.verify(_sslib_keys(log.jwks), 1)
    assert list(accepted) == [log.signer.key_id]
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    # ... and a changed payload does not.
    forged = SslibEnvelope.from_dict(json.loads(envelope_json))
    forged.payload = envelope.payload.replace(b"SUCCEEDED", b"FAILED")
    with pytest.raises(VerificationError):
        forged.verify(_sslib_keys(log.jwks), 1)


def test_envelope_json_round_trips_strictly() -> None:
    envelope = offline_log(1).receipts[0].envelope
    data = provenance.envelope_json(envelope)
    assert provenance.envelope_from_json(data) == envelope
    value = json.loads(data)
    value["signatures"][0]["sig"] = value["signatures"][0]["sig"].rstrip("=")
    with pytest.raises(provenance.ProvenanceError, match="base64"):
        provenance.envelope_from_json(json.dumps(value))
    with pytest.raises(provenance.ProvenanceError, match="duplicate"):
        provenance.envelope_from_json(
            b'{"payload":"","payload":"","payloadType":"x","signatures":[]}'
        )
    with pytest.raises(provenance.ProvenanceError, match="unknown members"):
        provenance.envelope_from_json(json.dumps({**json.loads(data), "extra": 1}))


def test_checks_report_precise_failures() -> None:
    log = offline_log(2)
    receipt = log.receipts[0]
    keys = {log.signer.key_id: log.signer.public_key}
    proof, checkpoint = log.proof(receipt), log.checkpoint()
    outcomes = provenance.verify_envelope(receipt.envelope, keys, proof, checkpoint)
    assert [(o.check, o.status) for o in outcomes] == [
        ("ENVELOPE", "PASSED"),
        ("STATEMENT", "PASSED"),
        ("SIGNATURE", "PASSED"),
        ("LOG_INCLUSION", "PASSED"),
    ]
    tampered = receipt_pb2.Envelope()
    tampered.CopyFrom(receipt.envelope)
    tampered.payload = tampered.payload.replace(b"SUCCEEDED", b"FAILED!!!")
    outcomes = provenance.verify_envelope(tampered, keys, proof, checkpoint)
    signature, inclusion = outcomes[2], outcomes[3]
    assert signature.status == "FAILED"
    assert signature.message == f"signature by keyid {log.signer.key_id} does not verify over PAE"
    assert inclusion.status == "FAILED"
    assert "proof leaf hash" in inclusion.message
    other = provenance.Ed25519Signer.generate()
    assert provenance.check_signature(
        receipt.envelope, {other.key_id: other.public_key}
    ).message == (f"keyid {log.signer.key_id!r} is not a published key")


def test_statement_problems_name_the_field() -> None:
    statement = execution_statement()
    assert provenance.statement_problems(statement) == []
    assert provenance.statement_problems(version_statement()) == []
    statement["subject"][0]["digest"]["sha256"] = "ABC"
    statement["predicate"]["bogus"] = 1
    problems = dict(provenance.statement_problems(statement))
    assert problems["subject[0].digest.sha256"] == "must be 64 lowercase hex digits"
    assert 'has no field named "bogus"' in problems["predicate"]
    unknown = {**execution_statement(), "predicateType": "https://example.com/x"}
    assert "unknown predicate type" in dict(provenance.statement_problems(unknown))["predicateType"]


def test_checkpoint_note_is_a_c2sp_signed_note() -> None:
    log = offline_log(3)
    checkpoint = log.checkpoint()
    body, _, signatures = checkpoint.note.partition("\n\n")
    assert body.split("\n") == [ORIGIN, "3", provenance.b64encode(log.tree.root(3)), "1756720800"]
    assert signatures.startswith(f"\u2014 {ORIGIN} ")
    keys = {log.signer.key_id: log.signer.public_key}
    parsed = provenance.parse_checkpoint_note(checkpoint.note, keys)
    assert parsed == checkpoint
    assert provenance.check_checkpoint_signature(parsed, keys, ORIGIN).passed
    forged = checkpoint.note.replace("\n3\n", "\n4\n")
    outcome = provenance.check_checkpoint_signature(
        provenance.parse_checkpoint_note(forged, keys), keys, ORIGIN
    )
    assert outcome.status == "FAILED" and "does not verify over the body" in outcome.message
    other_origin = provenance.check_checkpoint_signature(parsed, keys, "elsewhere")
    assert other_origin.message == f"origin {ORIGIN!r} is not 'elsewhere'"


def test_jwks_kid_must_be_the_thumbprint() -> None:
    log = offline_log(1)
    jwks = json.loads(log.jwks)
    assert provenance.parse_jwks(jwks) == {log.signer.key_id: log.signer.public_key}
    jwks["keys"][0]["kid"] = "someone-else"
    with pytest.raises(provenance.ProvenanceError, match="not the RFC 7638 thumbprint"):
        provenance.parse_jwks(jwks)
    with pytest.raises(provenance.ProvenanceError, match="OKP"):
        provenance.parse_jwks({"keys": [{"kty": "EC"}]})
