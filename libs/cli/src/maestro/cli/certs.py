"""``maestro certs``: a development CA and one certificate per mesh identity.

Layout (the same as a Kubernetes TLS secret mounted at /etc/maestro/tls)::

    DIR/ca.crt  DIR/ca.key
    DIR/<identity>/tls.crt  DIR/<identity>/tls.key  DIR/<identity>/ca.crt

Each leaf certificate names its identity as DNS SANs ``<identity>.maestro.local``,
``<identity>.<namespace>.svc.cluster.local`` and ``<identity>``, and as the
SPIFFE-style URI SAN ``spiffe://maestro.local/<identity>`` (what Envoy and the
servers authorise callers by); it is valid for both server and client auth.
ECDSA P-256 keys: fast to make, and every TLS stack here accepts them.
Development only: the CA key sits next to the certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from maestro.runtime.context import TRUST_DOMAIN, spiffe_id

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CERT = "tls.crt"
KEY = "tls.key"


@dataclass(frozen=True)
class IdentityFiles:
    """The files of one identity, as Envoy and native TLS use them."""

    cert: Path
    key: Path
    ca: Path


def identity_files(certs_dir: Path, identity: str) -> IdentityFiles:
    """Where ``maestro certs`` put (or puts) the files of ``identity``."""
    folder = certs_dir / identity
    return IdentityFiles(folder / CERT, folder / KEY, folder / CA_CERT)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _load_or_make_ca(
    certs_dir: Path, now: datetime.datetime, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = certs_dir / CA_CERT, certs_dir / CA_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Maestro development"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{TRUST_DOMAIN} development CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _pem_key(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    identity: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    namespace: str,
    now: datetime.datetime,
    days: int,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName(f"{identity}.{TRUST_DOMAIN}"),
        x509.DNSName(f"{identity}.{namespace}.svc.cluster.local"),
        x509.DNSName(identity),
        x509.UniformResourceIdentifier(spiffe_id(identity)),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Maestro development"),
                    x509.NameAttribute(NameOID.COMMON_NAME, identity),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def make_certs(
    certs_dir: Path,
    identities: Iterable[str],
    *,
    namespace: str = "maestro",
    days: int = 365,
    overwrite: bool = False,
) -> dict[str, IdentityFiles]:
    """Makes (or reuses) the CA in ``certs_dir`` and a certificate per identity.

    An identity whose files already exist, signed by this CA, is kept unless
    ``overwrite``; so running this again only fills in what is missing.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_cert, ca_key = _load_or_make_ca(certs_dir, now, days)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    result: dict[str, IdentityFiles] = {}
    for identity in identities:
        files = identity_files(certs_dir, identity)
        if overwrite or not _signed_by(files, ca_pem):
            cert_pem, key_pem = _issue(
                identity, ca_cert, ca_key, namespace=namespace, now=now, days=days
            )
            _write(files.key, key_pem, private=True)
            _write(files.cert, cert_pem)
            _write(files.ca, ca_pem)
        result[identity] = files
    return result


def _signed_by(files: IdentityFiles, ca_pem: bytes) -> bool:
    if not (files.cert.exists() and files.key.exists() and files.ca.exists()):
        return False
    return files.ca.read_bytes() == ca_pem
