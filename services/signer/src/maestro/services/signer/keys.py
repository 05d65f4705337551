"""Signing keys at rest: envelope encryption under a key-encryption key (KEK).

Each Ed25519 private key is encrypted with its own random 256-bit data key
(AES-256-GCM), and the data key is wrapped with the KEK (AES-256-GCM); both
bind the key id as associated data, so a ciphertext cannot be moved to another
key's row. Only the wrapped form is stored; the KEK never is.

Where the KEK comes from (first match wins):

1. ``MAESTRO_SIGNER_KEK`` (setting ``kek``): base64 of 32 bytes, typically
   injected from a secret store. This is the production expectation: a KMS or
   Vault decrypts it into the pod's environment or a tmpfs file at start-up.
2. ``MAESTRO_SIGNER_KEK_FILE`` (setting ``kek_file``): a file with the same
   text, no access for others (0600, or 0440 as Kubernetes mounts a Secret for
   the pod's fsGroup), for example ``/etc/maestro/signer/keys/kek``.
3. Development only (``generate_dev_kek``, on by default): ``<data_dir>/
   signer.kek``, generated once with mode 0600 next to the database. Whoever
   can read the data directory can then read the keys: never in production.

A KEK that does not decrypt the stored keys stops start-up with a clear error
rather than letting the signer come up unable to sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from maestro.services.signer.config import SignerSettings

DEV_KEK_FILE = "signer.kek"
_MAGIC = b"MSK1"
_NONCE = 12
_SEALED_DEK = 32 + 16
_SEALED_KEY = 32 + 16


class KekError(RuntimeError):
    """The key-encryption key is missing, malformed, or does not decrypt a key."""


def _parse_kek(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KekError(f"{source} is not base64") from exc
    if len(key) != 32:
        raise KekError(f"{source} must hold 32 bytes (base64), got {len(key)}")
    return key


def _read_kek_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise KekError(f"cannot read the key-encryption key file {path}: {exc}") from exc
    # Group read is allowed: Kubernetes mounts Secrets 0440 for the pod's fsGroup.
    if mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP):
        raise KekError(
            f"the key-encryption key file {path} is accessible by others or writable by "
            f"its group (mode {stat.S_IMODE(mode):o}): chmod 600 (or 440) it"
        )
    return _parse_kek(text, f"key-encryption key file {path}")


def _dev_kek(data_dir: Path) -> bytes:
    path = data_dir / DEV_KEK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_kek_file(path)
    except OSError as exc:
        raise KekError(
            f"cannot create the development key-encryption key {path} ({exc.strerror}); "
            "in production set MAESTRO_SIGNER_KEK or MAESTRO_SIGNER_KEK_FILE"
        ) from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    return _read_kek_file(path)


class KeyEncryptionKey:
    """The KEK and the envelope encryption of private keys under it."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KekError("a key-encryption key is 32 bytes")
        self._aead = AESGCM(key)
        self.kek_id = hashlib.sha256(b"maestro-signer-kek\x00" + key).hexdigest()[:16]
        """A fingerprint of the KEK (not secret), stored with each key so that a
        wrong KEK is reported as such."""

    @classmethod
    def from_settings(cls, settings: SignerSettings) -> KeyEncryptionKey:
        """The configured KEK (see the module docstring for the order).

        Raises:
            KekError: none is configured and generating one is off, or the
                configured one is malformed or unreadable.
        """
        if settings.kek is not None:
            return cls(_parse_kek(settings.kek.get_secret_value(), "MAESTRO_SIGNER_KEK"))
        if settings.kek_file is not None:
            return cls(_read_kek_file(settings.kek_file))
        if settings.generate_dev_kek:
            return cls(_dev_kek(settings.data_dir))
        raise KekError(
            "no key-encryption key: set MAESTRO_SIGNER_KEK or MAESTRO_SIGNER_KEK_FILE "
            "(or MAESTRO_SIGNER_GENERATE_DEV_KEK=true for development)"
        )

    def seal(self, key_id: str, private_key: bytes) -> bytes:
        """Encrypts a raw private key for storage under ``key_id``."""
        data_key = AESGCM.generate_key(bit_length=256)
        dek_nonce, key_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
        sealed_dek = self._aead.encrypt(
            dek_nonce, data_key, b"maestro-signer/dek/" + key_id.encode()
        )
        sealed_key = AESGCM(data_key).encrypt(
            key_nonce, private_key, b"maestro-signer/key/" + key_id.encode()
        )
        return _MAGIC + dek_nonce + sealed_dek + key_nonce + sealed_key

    def open(self, key_id: str, sealed: bytes, kek_id: str) -> bytes:
        """Decrypts what :meth:`seal` made for ``key_id``.

        Raises:
            KekError: the blob was sealed under another KEK, or is corrupt.
        """
        if kek_id != self.kek_id:
            raise KekError(
                f"signing key {key_id} is encrypted under key-encryption key {kek_id}, "
                f"but the configured one is {self.kek_id}: wrong MAESTRO_SIGNER_KEK?"
            )
        size = len(_MAGIC) + 2 * _NONCE + _SEALED_DEK + _SEALED_KEY
        if len(sealed) != size or not sealed.startswith(_MAGIC):
            raise KekError(f"signing key {key_id}: stored ciphertext is malformed")
        at = len(_MAGIC)
        dek_nonce, at = sealed[at : at + _NONCE], at + _NONCE
        sealed_dek, at = sealed[at : at + _SEALED_DEK], at + _SEALED_DEK
        key_nonce, at = sealed[at : at + _NONCE], at + _NONCE
        try:
            data_key = self._aead.decrypt(
                dek_nonce, sealed_dek, b"maestro-signer/dek/" + key_id.encode()
            )
            return AESGCM(data_key).decrypt(
                key_nonce, sealed[at:], b"maestro-signer/key/" + key_id.encode()
            )
        except InvalidTag as exc:
            raise KekError(f"signing key {key_id}: ciphertext does not authenticate") from exc
