"""Evidence bundles: built deterministically, verified offline, and any
tampering (a byte of the archive, of any file, with or without a rewritten
manifest, other keys) caught by ``maestro verify`` with a message naming the
file and the check."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maestro.cli.main import app
from maestro.runtime import provenance
from tests.unit.signer.support import (
    OfflineLog,
    digest,
    execution_statement,
    offline_log,
    version_statement,
)

pytestmark = pytest.mark.timeout(30)

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def log() -> OfflineLog:
    return offline_log(3)


@pytest.fixture(scope="module")
def bundle(log: OfflineLog) -> bytes:
    return log.bundle()


def _verify(tmp_path: Path, data: bytes, *args: str) -> tuple[int, str]:
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(data)
    result = RUNNER.invoke(app, ["verify", str(path), *args])
    return result.exit_code, result.output


def test_a_bundle_verifies_offline_and_is_deterministic(log: OfflineLog, bundle: bytes) -> None:
    assert log.bundle() == bundle
    report = provenance.verify_bundle(bundle, log.jwks)
    assert report.ok, [str(f) for f in report.failures]
    assert report.keys_pinned and report.warnings == []
    assert report.receipts == [r.name for r in log.receipts]
    files = provenance.read_bundle(bundle)
    rid = log.receipts[0].name.split("/")[1]
    assert sorted(files) == sorted(
        [
            "checkpoint.note",
            "keys/jwks.json",
            "manifest.dsse.json",
            "manifest.json",
            *(f"receipts/{r.name.split('/')[1]}.dsse.json" for r in log.receipts),
            *(f"proofs/{r.name.split('/')[1]}.inclusion.json" for r in log.receipts),
        ]
    )
    manifest = json.loads(files["manifest.json"])
    assert manifest["predicateType"] == provenance.BUNDLE_PREDICATE_TYPE
    listed = {s["name"]: s["digest"]["sha256"] for s in manifest["subject"]}
    assert listed[f"receipts/{rid}.dsse.json"] == provenance.sha256_hex(
        files[f"receipts/{rid}.dsse.json"]
    )
    # The receipt file is the log's leaf data.
    assert provenance.leaf_hash(files[f"receipts/{rid}.dsse.json"]) == log.receipts[0].leaf_hash


def test_maestro_verify_exit_codes(tmp_path: Path, log: OfflineLog, bundle: bytes) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text(log.jwks)
    code, output = _verify(tmp_path, bundle, "--keys", str(keys))
    assert code == 0, output
    assert "verified: 3 receipt(s) in maestro.dev/receipts/test at tree_size 3" in output
    code, output = _verify(tmp_path, bundle)
    assert code == 0 and "warning: signatures were checked against the bundle's own" in output
    code, output = _verify(tmp_path, bundle, "--output", "json")
    assert code == 0 and json.loads(output)["ok"] is True
    result = RUNNER.invoke(app, ["verify", str(tmp_path / "missing.tar.gz")])
    assert result.exit_code == 2 and "cannot read bundle" in result.output
    keys.write_text('{"keys": [{"kty": "RSA"}]}')
    code, output = _verify(tmp_path, bundle, "--keys", str(keys))
    assert code == 2 and "not an Ed25519 OKP key" in output
    assert RUNNER.invoke(app, ["verify"]).exit_code == 2


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _artifacts(log: OfflineLog) -> list[str]:
    rid = log.receipts[1].name.split("/")[1]
    return [
        "manifest.json",
        "manifest.dsse.json",
        "checkpoint.note",
        "keys/jwks.json",
        f"receipts/{rid}.dsse.json",
        f"proofs/{rid}.inclusion.json",
    ]


ARTIFACT_IDS = ["manifest", "manifest-signature", "checkpoint", "keys", "receipt", "proof"]


@pytest.mark.parametrize("where", [0.0, 0.3, 0.6, 0.95])
@pytest.mark.parametrize("artifact", range(6), ids=ARTIFACT_IDS)
def test_flipping_a_byte_of_any_file_fails_naming_it(
    tmp_path: Path, log: OfflineLog, bundle: bytes, artifact: int, where: float
) -> None:
    path = _artifacts(log)[artifact]
    files = provenance.read_bundle(bundle)
    files[path] = _flip(files[path], int(len(files[path]) * where))
    keys = tmp_path / "jwks.json"
    keys.write_text(log.jwks)
    code, output = _verify(tmp_path, provenance.pack_bundle(files, 0), "--keys", str(keys))
    assert code == 1, output
    report = provenance.verify_bundle(provenance.pack_bundle(files, 0), log.jwks)
    failed = {(f.path, f.check) for f in report.failures}
    assert any(p == path for p, _ in failed), failed
    assert f"FAILED  {path}: " in output


@pytest.mark.parametrize("artifact", [2, 4, 5], ids=["checkpoint", "receipt", "proof"])
def test_tampering_behind_a_rewritten_manifest_is_still_caught(
    log: OfflineLog, bundle: bytes, artifact: int
) -> None:
    """An attacker who also fixes the manifest's digests cannot re-sign it, and
    the artifact's own check fails too."""
    path = _artifacts(log)[artifact]
    files = provenance.read_bundle(bundle)
    files[path] = {
        2: lambda b: b.replace(b"\n3\n", b"\n2\n", 1),
        4: lambda b: b.replace(b'"payload":"ey', b'"payload":"EY', 1),
        5: lambda b: b.replace(b'"leafIndex":"1"', b'"leafIndex":"2"', 1),
    }[artifact](files[path])
    manifest = json.loads(files["manifest.json"])
    for subject in manifest["subject"]:
        subject["digest"]["sha256"] = provenance.sha256_hex(files[subject["name"]])
    files["manifest.json"] = provenance.canonical_json(manifest)
    report = provenance.verify_bundle(provenance.pack_bundle(files, 0), log.jwks)
    failed = {(f.path, f.check) for f in report.failures}
    assert ("manifest.json", "MANIFEST_SIGNATURE") in failed
    expected = {2: "CHECKPOINT_SIGNATURE", 4: "SIGNATURE", 5: "LOG_INCLUSION"}[artifact]
    assert (path, expected) in failed or (_artifacts(log)[5], expected) in failed, failed


def test_flipping_any_byte_of_the_archive_fails(
    tmp_path: Path, log: OfflineLog, bundle: bytes
) -> None:
    positions = sorted(
        {
            *range(10),
            *range(len(bundle) - 8, len(bundle)),
            *range(10, len(bundle) - 8, max(1, len(bundle) // 400)),
        }
    )
    for position in positions:
        report = provenance.verify_bundle(_flip(bundle, position), log.jwks)
        assert not report.ok, f"flip at byte {position} went unnoticed"
        assert report.failures[0].path == "bundle", (position, report.failures[0])
        assert report.failures[0].check == "ARCHIVE"
    code, output = _verify(tmp_path, _flip(bundle, 5))
    assert code == 1 and "gzip header" in output


def test_self_consistent_forgery_fails_only_against_trusted_keys(log: OfflineLog) -> None:
    forger = offline_log(3)  # same statements, the forger's own key and log
    forged = forger.bundle()
    assert provenance.verify_bundle(forged).ok  # consistent with itself...
    report = provenance.verify_bundle(forged, log.jwks)  # ...not with the signer's keys
    failed = {(f.path, f.check) for f in report.failures}
    assert ("keys/jwks.json", "KEYS") in failed
    assert ("manifest.dsse.json", "MANIFEST_SIGNATURE") in failed
    assert ("checkpoint.note", "CHECKPOINT_SIGNATURE") in failed
    assert any(check == "SIGNATURE" for _, check in failed)


def test_receipts_of_a_rotated_key_still_verify() -> None:
    log = offline_log(2)
    old = log.signer
    log.signer = provenance.Ed25519Signer.generate()  # rotation: new key signs from now on
    log.sign(
        execution_statement("executions/01J99999999999999999999999"),
        "executions/01J99999999999999999999999",
    )
    jwks = provenance.jwks_json([log.signer.public_key, old.public_key])
    bundle = provenance.build_evidence_bundle(
        [provenance.BundleReceipt(r, log.proof(r)) for r in log.receipts],
        log.checkpoint(),
        jwks,
        log.signer,
    )
    report = provenance.verify_bundle(bundle, jwks)
    assert report.ok, [str(f) for f in report.failures]
    signed_by = {f.message for f in report.findings if f.check == "SIGNATURE"}
    assert signed_by == {f"keyid {old.key_id}", f"keyid {log.signer.key_id}"}
    # Dropping the retired key from the JWKS breaks exactly the old receipts.
    only_new = provenance.jwks_json([log.signer.public_key])
    report = provenance.verify_bundle(bundle, only_new)
    assert sum(f.check == "SIGNATURE" for f in report.failures) == 2


VERSION = "workflows/payroll/versions/1.0.0"
RAN = "executions/01J00000000000000000000077"


def _linked_log(**execution: Any) -> tuple[OfflineLog, str]:
    """A version receipt, then an execution receipt naming it."""
    linked = OfflineLog()
    version_receipt = linked.sign(version_statement(VERSION), VERSION).name
    statement = execution_statement(RAN, versionReceipt=version_receipt, **execution)
    return linked, linked.sign(statement, RAN).name


def test_an_execution_is_linked_to_the_version_that_ran() -> None:
    linked, execution_receipt = _linked_log()
    report = provenance.verify_bundle(linked.bundle(), linked.jwks)
    assert report.ok, [str(f) for f in report.failures]
    (link,) = [f for f in report.findings if f.check == "LINK"]
    assert link.status == "PASSED" and VERSION in link.message
    assert report.receipts[-1] == execution_receipt


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"workflowVersion": "workflows/payroll/versions/2.0.0"},
            "ran 'workflows/payroll/versions/2.0.0'",
        ),
        ({"definitionDigest": digest("another definition")}, "differs from the version's"),
    ],
)
def test_a_link_to_another_version_fails(change: dict[str, object], expected: str) -> None:
    linked, _ = _linked_log(**change)
    report = provenance.verify_bundle(linked.bundle(), linked.jwks)
    assert not report.ok
    (failure,) = report.failures
    assert failure.check == "LINK" and expected in failure.message


def test_a_version_receipt_left_out_is_a_warning() -> None:
    linked, execution_receipt = _linked_log()
    linked.receipts = [r for r in linked.receipts if r.name == execution_receipt]
    report = provenance.verify_bundle(linked.bundle(), linked.jwks)
    assert report.ok
    assert any("not in the bundle" in w for w in report.warnings)


def test_a_rewritten_archive_with_a_changed_padding_byte_fails(
    log: OfflineLog, bundle: bytes
) -> None:
    # An attacker who re-encodes the archive (valid gzip, right CRC) after
    # changing a byte the tar reader ignores (padding after a file's data, an
    # unused header field) still fails: the tar is not the canonical one of
    # its files.
    raw = bytearray(gzip.decompress(bundle))
    files = provenance.read_bundle(bundle)
    first = sorted(files)[0]
    padding_at = 512 + len(files[first])  # after the first member's data
    assert len(files[first]) % 512 and raw[padding_at] == 0
    raw[padding_at] = 0x20
    forged = provenance._gzip(bytes(raw))
    report = provenance.verify_bundle(forged, log.jwks)
    assert not report.ok
    failure = report.failures[0]
    assert (failure.path, failure.check) == ("bundle", "ARCHIVE")
    assert f"tar byte {padding_at} differs" in failure.message


def test_a_byte_of_the_encoding_that_leaves_the_content_alone_fails(bundle: bytes) -> None:
    # Stored blocks have one encoding per content: the bits after a block
    # header's type (ignored by gzip readers) are checked too.
    header_at = 10  # the first stored block's header byte, after the gzip header
    assert bundle[header_at] in (0, 1)
    altered = bundle[:header_at] + bytes([bundle[header_at] | 0x80]) + bundle[header_at + 1 :]
    assert gzip.decompress(altered) == gzip.decompress(bundle)  # same content
    report = provenance.verify_bundle(altered, offline_log(0).jwks)
    assert [(f.path, f.check) for f in report.failures[:1]] == [("bundle", "ARCHIVE")]
    assert (
        f"byte {header_at} differs from the canonical gzip encoding" in report.failures[0].message
    )
