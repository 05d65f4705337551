"""`maestro certs`: a development CA and per-identity certificates that carry
the names Envoy and the servers check (DNS and SPIFFE URI SANs)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from maestro.cli.certs import identity_files, make_certs
from maestro.cli.main import app
from tests.conftest import REPO


def test_each_identity_gets_a_certificate_signed_by_the_ca(tmp_path: Path) -> None:
    files = make_certs(tmp_path, ["registry"])["registry"]
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://maestro.local/registry"
    ]
    assert "registry.maestro.local" in sans.get_values_for_type(x509.DNSName)
    assert "registry.maestro.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert files.ca.read_bytes() == (tmp_path / "ca.crt").read_bytes()
    assert files.key.stat().st_mode & 0o077 == 0
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_running_again_keeps_what_exists_and_fills_in_the_rest(tmp_path: Path) -> None:
    make_certs(tmp_path, ["registry"])
    ca_before = (tmp_path / "ca.crt").read_bytes()
    registry_before = identity_files(tmp_path, "registry").cert.read_bytes()
    make_certs(tmp_path, ["registry", "compiler"])
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert identity_files(tmp_path, "registry").cert.read_bytes() == registry_before
    assert identity_files(tmp_path, "compiler").cert.exists()
    make_certs(tmp_path, ["registry"], overwrite=True)
    assert identity_files(tmp_path, "registry").cert.read_bytes() != registry_before


def test_the_cli_makes_one_per_service_and_client(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["certs", "--out", str(tmp_path), "--topology", str(REPO / "deploy/mesh/topology.yaml")],
    )
    assert result.exit_code == 0, result.output
    made = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert made == sorted(
        ["compiler", "registry", "scheduler", "executor", "policy", "signer", "gateway", "operator"]
    )
