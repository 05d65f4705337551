"""Maestro provenance, verifiable offline: DSSE envelopes over in-toto
statements, Ed25519 keys as JWKS, the RFC 6962 transparency log (hashes,
inclusion and consistency proofs, signed checkpoints as C2SP signed notes) and
evidence bundles.

Everything here is pure (no gRPC, no database, no clock unless given), so the
signer service, ``maestro verify`` and the tests share one implementation of
every check. The evidence bundle format is documented in
``docs/provenance.md``; in short, a deterministic ``.tar.gz`` holding::

    manifest.json              in-toto Statement v1 (RFC 8785 JSON): one subject
                               per other file with its sha256; predicate = the
                               bundle's receipts, checkpoint and keys
    manifest.dsse.json         DSSE envelope whose payload is manifest.json
    checkpoint.note            the signed checkpoint (C2SP signed note)
    keys/jwks.json             the public keys (RFC 7517 JWKS, Ed25519 OKP)
    receipts/<id>.dsse.json    each receipt's DSSE envelope (RFC 8785 JSON =
                               the transparency-log leaf data)
    proofs/<id>.inclusion.json each receipt's inclusion proof at the checkpoint

:func:`verify_bundle` checks all of it and reports every check with the file
it concerns, so a failure says exactly what is wrong where.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import re
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from google.protobuf import json_format
from google.protobuf.message import Message

from maestro.runtime import canonical
from maestro.signer.v1 import receipt_pb2, transparency_pb2

PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE payload type of every Maestro envelope (receipts and bundle manifests)."""
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
VERSION_PREDICATE_TYPE = "https://maestro.dev/attestations/version/v1"
EXECUTION_PREDICATE_TYPE = "https://maestro.dev/attestations/execution/v1"
BUNDLE_PREDICATE_TYPE = "https://maestro.dev/attestations/evidence-bundle/v1"
BUNDLE_FORMAT = "maestro-evidence-bundle/v1"

PREDICATE_TYPES: Mapping[str, type[Message]] = {
    VERSION_PREDICATE_TYPE: receipt_pb2.VersionPredicate,
    EXECUTION_PREDICATE_TYPE: receipt_pb2.ExecutionPredicate,
}
"""Receipt predicate types and the typed predicate each must parse as."""
PREDICATE_TYPE_OF_KIND: Mapping[int, str] = {
    receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST: VERSION_PREDICATE_TYPE,
    receipt_pb2.RECEIPT_KIND_EXECUTION: EXECUTION_PREDICATE_TYPE,
}

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 6962 root hash of the empty tree."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_LOWER_HEX = re.compile(r"^[0-9a-f]+$")
_STATEMENT_KEYS = frozenset({"_type", "subject", "predicateType", "predicate"})
_DESCRIPTOR_KEYS = frozenset({"name", "digest"})

CheckStatus = Literal["PASSED", "FAILED", "SKIPPED"]


class ProvenanceError(ValueError):
    """Malformed provenance data (JSON, base64, JWKS, note, proof shape)."""


class ProofError(ValueError):
    """A Merkle proof does not verify; the message says how it failed."""


# -- encoding -----------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialization of a JSON value (``maestro.runtime.canonical``)."""
    return canonical.canonical_json(value)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (DSSE, proto3 JSON bytes, signed notes)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Any, what: str) -> bytes:
    """Strict standard base64: the text must be exactly what :func:`b64encode`
    makes of the bytes it decodes to (so no two texts mean the same bytes).

    Raises:
        ProvenanceError: naming ``what``.
    """
    if not isinstance(text, str):
        raise ProvenanceError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProvenanceError(f"{what} is not valid base64") from exc
    if b64encode(data) != text:
        raise ProvenanceError(f"{what} is not canonical base64")
    return data


def b64url_encode(data: bytes) -> str:
    """base64url without padding (JWK members, RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str, what: str) -> bytes:
    """Strict base64url without padding.

    Raises:
        ProvenanceError: naming ``what``.
    """
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ProvenanceError(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ProvenanceError(f"{what} is not base64url") from exc
    if b64url_encode(data) != text:
        raise ProvenanceError(f"{what} is not canonical base64url")
    return data


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProvenanceError(f"duplicate JSON member {key!r}")
        result[key] = value
    return result


def parse_json(data: bytes | str, what: str) -> Any:
    """Strict JSON: UTF-8, no duplicate members, no NaN/Infinity.

    Raises:
        ProvenanceError: naming ``what``.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ProvenanceError(f"{what} is not UTF-8 (byte {exc.start})") from exc

    def no_constants(name: str) -> Any:
        raise ProvenanceError(f"{what}: {name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise ProvenanceError(
            f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ProvenanceError as exc:
        raise ProvenanceError(f"{what}: {exc}") from exc


# -- keys ---------------------------------------------------------------------


def key_id(public_key: bytes) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: base64url (no padding)
    of SHA-256 of ``{"crv":"Ed25519","kty":"OKP","x":"..."}``."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public_key)}
    return b64url_encode(hashlib.sha256(canonical_json(members)).digest())


def public_jwk(public_key: bytes) -> dict[str, str]:
    """The JWK (RFC 8037 OKP) of an Ed25519 public key, ``kid`` = :func:`key_id`."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(public_key),
        "kid": key_id(public_key),
        "alg": "EdDSA",
        "use": "sig",
    }


def jwks_json(public_keys: Iterable[bytes]) -> str:
    """A JWKS document (compact JSON) of raw Ed25519 public keys, in order."""
    return json.dumps({"keys": [public_jwk(k) for k in public_keys]}, separators=(",", ":"))


def parse_jwks(document: str | bytes | Mapping[str, Any]) -> dict[str, bytes]:
    """The Ed25519 keys of a JWKS document: ``kid`` → raw public key.

    Every key must be ``kty`` OKP, ``crv`` Ed25519, a 32-byte ``x``, ``use``
    ``sig`` (when present), and its ``kid`` must be the RFC 7638 thumbprint of
    ``x`` (so a ``kid`` cannot be attached to another key).

    Raises:
        ProvenanceError: what is wrong, naming the key by position.
    """
    data = parse_json(document, "JWKS") if isinstance(document, str | bytes) else document
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise ProvenanceError('JWKS must be an object with a "keys" array')
    keys: dict[str, bytes] = {}
    for position, jwk in enumerate(data["keys"]):
        where = f"JWKS key {position}"
        if not isinstance(jwk, Mapping):
            raise ProvenanceError(f"{where} is not an object")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ProvenanceError(f"{where} is not an Ed25519 OKP key (kty/crv)")
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA":
            raise ProvenanceError(f"{where} is not an EdDSA signature key (use/alg)")
        public = b64url_decode(jwk.get("x", ""), f"{where} x")
        if len(public) != 32:
            raise ProvenanceError(f"{where} x is {len(public)} bytes, not 32")
        kid = jwk.get("kid")
        expected = key_id(public)
        if kid != expected:
            raise ProvenanceError(
                f"{where}: kid {kid!r} is not the RFC 7638 thumbprint {expected} of its key"
            )
        keys[expected] = public
    return keys


def verify_ed25519(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


class Signer(Protocol):
    """Something that signs with one Ed25519 key (the signer's ACTIVE key)."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class Ed25519Signer:
    """A :class:`Signer` over an in-memory Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self._key_id = key_id(self._public_key)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (to be encrypted before storing)."""
        return self._private_key.private_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)


# -- DSSE ---------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding:
    ``DSSEv1 <len(type)> <type> <len(payload)> <payload>``."""
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(encoded_type), encoded_type, len(payload), payload)


def sign_envelope(
    payload: bytes, signer: Signer, payload_type: str = PAYLOAD_TYPE
) -> receipt_pb2.Envelope:
    """A DSSE envelope with one signature by ``signer`` over PAE."""
    signature = signer.sign(pae(payload_type, payload))
    return receipt_pb2.Envelope(
        payload_type=payload_type,
        payload=payload,
        signatures=[receipt_pb2.Signature(keyid=signer.key_id, sig=signature)],
    )


def envelope_dict(envelope: receipt_pb2.Envelope) -> dict[str, Any]:
    """The DSSE JSON envelope (``payloadType``, ``payload`` and ``sig`` as
    standard base64, ``keyid`` always present)."""
    return {
        "payload": b64encode(envelope.payload),
        "payloadType": envelope.payload_type,
        "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in envelope.signatures],
    }


def envelope_json(envelope: receipt_pb2.Envelope) -> bytes:
    """RFC 8785 JSON of the DSSE envelope: the receipt's transparency-log leaf data."""
    return canonical_json(envelope_dict(envelope))


def envelope_from_json(data: bytes | str) -> receipt_pb2.Envelope:
    """Parses a DSSE JSON envelope strictly (known members only, canonical base64).

    Raises:
        ProvenanceError: what is wrong.
    """
    value = parse_json(data, "envelope")
    if not isinstance(value, dict):
        raise ProvenanceError("envelope is not a JSON object")
    unknown = set(value) - {"payload", "payloadType", "signatures"}
    if unknown:
        raise ProvenanceError(f"envelope has unknown members {sorted(unknown)}")
    payload_type = value.get("payloadType")
    if not isinstance(payload_type, str):
        raise ProvenanceError('envelope "payloadType" must be a string')
    payload = b64decode(value.get("payload"), 'envelope "payload"')
    signatures = value.get("signatures")
    if not isinstance(signatures, list):
        raise ProvenanceError('envelope "signatures" must be an array')
    envelope = receipt_pb2.Envelope(payload_type=payload_type, payload=payload)
    for position, item in enumerate(signatures):
        if not isinstance(item, dict) or set(item) - {"keyid", "sig"}:
            raise ProvenanceError(f"envelope signature {position} must hold only keyid and sig")
        keyid = item.get("keyid", "")
        if not isinstance(keyid, str):
            raise ProvenanceError(f"envelope signature {position} keyid must be a string")
        sig = b64decode(item.get("sig"), f"envelope signature {position} sig")
        envelope.signatures.add(keyid=keyid, sig=sig)
    return envelope


def receipt_leaf_hash(envelope: receipt_pb2.Envelope) -> bytes:
    """RFC 6962 leaf hash of a receipt: SHA-256(0x00 || RFC 8785 DSSE JSON)."""
    return leaf_hash(envelope_json(envelope))


# -- RFC 6962 Merkle tree -----------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes (the reference definition; O(n))."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = _split(len(leaf_hashes))
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for position, item in enumerate(hashes):
        if len(item) != HASH_SIZE:
            raise ProofError(f"{what} hash {position} is {len(item)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf: bytes, hashes: Sequence[bytes]
) -> bytes:
    """The root hash an inclusion proof leads to (RFC 9162 section 2.1.3.2).

    Raises:
        ProofError: the index is out of range or the proof has the wrong length.
    """
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is not below tree size {tree_size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes(hashes, "inclusion proof")
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in hashes:
        if sn == 0:
            raise ProofError(
                f"inclusion proof has {len(hashes)} hashes: too many for leaf {leaf_index} "
                f"of a tree of {tree_size}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"inclusion proof has {len(hashes)} hashes: too few for leaf {leaf_index} "
            f"of a tree of {tree_size}"
        )
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, hashes: Sequence[bytes], root: bytes
) -> None:
    """Checks that ``leaf`` is at ``leaf_index`` in the tree of ``tree_size``
    whose root is ``root``.

    Raises:
        ProofError: with the computed and expected roots when they differ.
    """
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf, hashes)
    if computed != root:
        raise ProofError(
            f"computed root {computed.hex()} != checkpoint root {root.hex()} "
            f"at tree_size {tree_size}"
        )


def _verify_trivial_consistency(
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    hashes: Sequence[bytes],
) -> None:
    """Equal sizes, or the empty tree first: the proof is empty."""
    if hashes:
        raise ProofError(
            f"consistency proof from tree_size {first_size} to {second_size} must be empty"
        )
    if first_size == 0 and first_root != EMPTY_ROOT:
        raise ProofError("root of the empty tree is not SHA-256 of the empty string")
    if first_size == second_size and first_root != second_root:
        raise ProofError(
            f"roots differ at the same tree_size {first_size}: "
            f"{first_root.hex()} != {second_root.hex()}"
        )


def verify_consistency(  # noqa: PLR0912 - RFC 9162 2.1.4.2, step by step
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    hashes: Sequence[bytes],
) -> None:
    """Checks that the tree of ``first_size`` (root ``first_root``) is a prefix
    of the tree of ``second_size`` (root ``second_root``), RFC 9162 2.1.4.2.

    Raises:
        ProofError: what does not hold.
    """
    if not 0 <= first_size <= second_size:
        raise ProofError(f"first size {first_size} is not in [0, {second_size}]")
    _check_hashes(hashes, "consistency proof")
    if first_size in (0, second_size):
        _verify_trivial_consistency(first_size, second_size, first_root, second_root, hashes)
        return
    if not hashes:
        raise ProofError("consistency proof is empty")
    path = list(hashes)
    if first_size & (first_size - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof has too many hashes ({len(hashes)})")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof has too few hashes ({len(hashes)})")
    if fr != first_root:
        raise ProofError(
            f"computed first root {fr.hex()} != {first_root.hex()} at tree_size {first_size}"
        )
    if sr != second_root:
        raise ProofError(
            f"computed second root {sr.hex()} != {second_root.hex()} at tree_size {second_size}"
        )


# -- checkpoints (C2SP signed notes) -------------------------------------------


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
    """The signed checkpoint body:
    ``<origin>\\n<tree_size>\\n<base64 root>\\n<Unix seconds>\\n``."""
    return f"{origin}\n{tree_size}\n{b64encode(root_hash)}\n{timestamp}\n".encode()


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key hash of an Ed25519 key: the first 4 bytes of
    SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


def sign_checkpoint(
    origin: str, tree_size: int, root_hash: bytes, timestamp: int, signer: Signer
) -> transparency_pb2.Checkpoint:
    """A checkpoint signed by ``signer``, with its signed-note form in ``note``
    (the note's key name is the origin)."""
    body = checkpoint_body(origin, tree_size, root_hash, timestamp)
    signature = signer.sign(body)
    line = b64encode(note_key_hash(origin, signer.public_key) + signature)
    checkpoint = transparency_pb2.Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root_hash=root_hash,
        note=f"{body.decode()}\n\u2014 {origin} {line}\n",
        signatures=[receipt_pb2.Signature(keyid=signer.key_id, sig=signature)],
    )
    checkpoint.timestamp.FromSeconds(timestamp)
    return checkpoint


def parse_checkpoint_note(note: str, keys: Mapping[str, bytes]) -> transparency_pb2.Checkpoint:
    """A checkpoint from its signed-note text. Signature lines by a key of
    ``keys`` (``kid`` → public key; matched by note key hash, name = origin)
    become ``signatures`` with that ``keyid``; others are ignored, as the
    signed-note format asks. Signatures are not verified here.

    Raises:
        ProvenanceError: the note is malformed.
    """
    body_text, separator, signature_text = note.partition("\n\n")
    if not separator:
        raise ProvenanceError("checkpoint note has no blank line before its signatures")
    lines = body_text.split("\n")
    if len(lines) < 4:
        raise ProvenanceError("checkpoint body needs origin, size, root hash and timestamp lines")
    origin, size_text, root_text, time_text = lines[:4]
    if not origin or not size_text.isdigit() or not time_text.isdigit():
        raise ProvenanceError("checkpoint body lines are malformed (origin, size, timestamp)")
    if size_text != str(int(size_text)) or time_text != str(int(time_text)):
        raise ProvenanceError("checkpoint size and timestamp must be decimal without zeros")
    root_hash = b64decode(root_text, "checkpoint root hash")
    if len(root_hash) != HASH_SIZE:
        raise ProvenanceError(f"checkpoint root hash is {len(root_hash)} bytes, not {HASH_SIZE}")
    checkpoint = transparency_pb2.Checkpoint(
        origin=origin, tree_size=int(size_text), root_hash=root_hash, note=note
    )
    checkpoint.timestamp.FromSeconds(int(time_text))
    body = checkpoint_body(origin, checkpoint.tree_size, root_hash, int(time_text))
    if f"{body_text}\n".encode() != body:
        raise ProvenanceError("checkpoint body has extra lines")
    if not signature_text.endswith("\n"):
        raise ProvenanceError("checkpoint note must end with a newline")
    by_hash = {note_key_hash(origin, public): kid for kid, public in keys.items()}
    for line in signature_text[:-1].split("\n"):
        match = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if match is None:
            raise ProvenanceError(f"checkpoint signature line is malformed: {line[:60]!r}")
        raw = b64decode(match.group(2), "checkpoint signature")
        if len(raw) != 4 + 64:
            raise ProvenanceError("checkpoint signature is not an Ed25519 note signature")
        kid = by_hash.get(raw[:4])
        if match.group(1) == origin and kid is not None:
            checkpoint.signatures.add(keyid=kid, sig=raw[4:])
    return checkpoint


# -- checks shared by VerifyReceipt and the offline verifier -------------------


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The outcome of one check (mirrors ``maestro.signer.v1.CheckResult``)."""

    check: str
    status: CheckStatus
    message: str = ""
    key_id: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "PASSED"


def parse_statement(payload: bytes) -> dict[str, Any]:
    """An in-toto Statement v1 from envelope payload bytes (shape only:
    ``_type`` and the known members).

    Raises:
        ProvenanceError: what is wrong.
    """
    value = parse_json(payload, "payload")
    if not isinstance(value, dict):
        raise ProvenanceError("payload is not a JSON object")
    if value.get("_type") != STATEMENT_TYPE:
        raise ProvenanceError(f'payload "_type" is {value.get("_type")!r}, not {STATEMENT_TYPE}')
    unknown = set(value) - _STATEMENT_KEYS
    if unknown:
        raise ProvenanceError(f"statement has unknown members {sorted(unknown)}")
    return value


def statement_problems(
    statement: Mapping[str, Any], predicate_types: Mapping[str, type[Message]] = PREDICATE_TYPES
) -> list[tuple[str, str]]:
    """Everything wrong with a statement's content, as ``(field, message)``
    pairs (field is a proto3 JSON path such as ``subject[0].digest.sha256``):
    subjects (at least one, each named, with a 64-hex ``sha256``, other
    digests lowercase hex), a known ``predicateType``, and a predicate that
    parses as its typed message (unknown fields rejected)."""
    return validate_statement(statement, predicate_types)[0]


def validate_statement(
    statement: Mapping[str, Any], predicate_types: Mapping[str, type[Message]] = PREDICATE_TYPES
) -> tuple[list[tuple[str, str]], Message | None]:
    """:func:`statement_problems` and the typed predicate (None when it does
    not parse), parsing it once."""
    problems = _subject_problems(statement.get("subject"))
    predicate_type = statement.get("predicateType")
    typed = predicate_types.get(predicate_type) if isinstance(predicate_type, str) else None
    if typed is None:
        expected = ", ".join(sorted(predicate_types))
        problems.append(
            (
                "predicateType",
                f"unknown predicate type {predicate_type!r}; expected one of {expected}",
            )
        )
        return problems, None
    if not isinstance(statement.get("predicate"), dict):
        problems.append(("predicate", "a predicate object is required"))
        return problems, None
    try:
        predicate = json_format.ParseDict(statement["predicate"], typed())
    except json_format.ParseError as exc:
        problems.append(("predicate", f"does not parse as {typed.DESCRIPTOR.name}: {exc}"))
        return problems, None
    return problems, predicate


def _subject_problems(subjects: Any) -> list[tuple[str, str]]:
    if not isinstance(subjects, list) or not subjects:
        return [("subject", "at least one subject is required")]
    problems: list[tuple[str, str]] = []
    for i, subject in enumerate(subjects):
        where = f"subject[{i}]"
        if not isinstance(subject, dict):
            problems.append((where, "must be an object"))
            continue
        if set(subject) - _DESCRIPTOR_KEYS:
            problems.append((where, f"unknown members {sorted(set(subject) - _DESCRIPTOR_KEYS)}"))
        if not isinstance(subject.get("name"), str) or not subject.get("name"):
            problems.append((f"{where}.name", "a name is required"))
        digest = subject.get("digest")
        if not isinstance(digest, dict):
            problems.append((f"{where}.digest", "a digest object is required"))
            continue
        if not isinstance(digest.get("sha256"), str) or not _SHA256_HEX.match(digest["sha256"]):
            problems.append((f"{where}.digest.sha256", "must be 64 lowercase hex digits"))
        for algorithm, value in digest.items():
            if algorithm != "sha256" and (
                not isinstance(value, str) or not _LOWER_HEX.match(value)
            ):
                problems.append((f"{where}.digest.{algorithm}", "must be lowercase hex"))
    return problems


def parse_predicate(statement: Mapping[str, Any]) -> Message:
    """The typed predicate of a statement that passed :func:`statement_problems`."""
    typed = PREDICATE_TYPES[statement["predicateType"]]
    return json_format.ParseDict(statement["predicate"], typed())


def check_envelope(envelope: receipt_pb2.Envelope) -> tuple[CheckOutcome, dict[str, Any] | None]:
    """ENVELOPE: DSSE shape, in-toto payload type, payload is a Statement v1."""
    if envelope.payload_type != PAYLOAD_TYPE:
        return CheckOutcome(
            "ENVELOPE", "FAILED", f"payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE}"
        ), None
    if not envelope.signatures:
        return CheckOutcome("ENVELOPE", "FAILED", "envelope has no signatures"), None
    try:
        statement = parse_statement(envelope.payload)
    except ProvenanceError as exc:
        return CheckOutcome("ENVELOPE", "FAILED", str(exc)), None
    return CheckOutcome("ENVELOPE", "PASSED"), statement


def check_statement(statement: Mapping[str, Any] | None) -> CheckOutcome:
    """STATEMENT: known predicate type, predicate parses, digests well formed."""
    if statement is None:
        return CheckOutcome("STATEMENT", "SKIPPED", "the payload is not a statement (ENVELOPE)")
    problems = statement_problems(statement)
    if problems:
        return CheckOutcome("STATEMENT", "FAILED", "; ".join(f"{f}: {m}" for f, m in problems))
    return CheckOutcome("STATEMENT", "PASSED")


def check_signature(envelope: receipt_pb2.Envelope, keys: Mapping[str, bytes]) -> CheckOutcome:
    """SIGNATURE: a signature by one of ``keys`` verifies over PAE."""
    if not envelope.signatures:
        return CheckOutcome("SIGNATURE", "FAILED", "envelope has no signatures")
    message = pae(envelope.payload_type, envelope.payload)
    failures = []
    for signature in envelope.signatures:
        public = keys.get(signature.keyid)
        if public is None:
            failures.append(f"keyid {signature.keyid!r} is not a published key")
        elif verify_ed25519(public, signature.sig, message):
            return CheckOutcome("SIGNATURE", "PASSED", key_id=signature.keyid)
        else:
            failures.append(f"signature by keyid {signature.keyid} does not verify over PAE")
    key = envelope.signatures[0].keyid
    return CheckOutcome("SIGNATURE", "FAILED", "; ".join(failures), key_id=key)


def check_checkpoint_signature(
    checkpoint: transparency_pb2.Checkpoint, keys: Mapping[str, bytes], origin: str | None = None
) -> CheckOutcome:
    """CHECKPOINT_SIGNATURE: the checkpoint (body rebuilt from its fields) is
    signed by one of ``keys``, and its origin is ``origin`` when given."""
    check = "CHECKPOINT_SIGNATURE"
    if origin is not None and checkpoint.origin != origin:
        return CheckOutcome(check, "FAILED", f"origin {checkpoint.origin!r} is not {origin!r}")
    if len(checkpoint.root_hash) != HASH_SIZE:
        return CheckOutcome(check, "FAILED", "root hash is not 32 bytes")
    body = checkpoint_body(
        checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash, checkpoint.timestamp.seconds
    )
    failures = []
    for signature in checkpoint.signatures:
        public = keys.get(signature.keyid)
        if public is None:
            failures.append(f"keyid {signature.keyid!r} is not a published key")
        elif verify_ed25519(public, signature.sig, body):
            return CheckOutcome(check, "PASSED", key_id=signature.keyid)
        else:
            failures.append(f"signature by keyid {signature.keyid} does not verify over the body")
    if not failures:
        failures.append("no signature by a published key")
    key = checkpoint.signatures[0].keyid if checkpoint.signatures else ""
    return CheckOutcome(check, "FAILED", "; ".join(failures), key_id=key)


def check_inclusion(
    leaf: bytes,
    proof: transparency_pb2.InclusionProof,
    checkpoint: transparency_pb2.Checkpoint,
) -> CheckOutcome:
    """LOG_INCLUSION: ``leaf`` (computed from the envelope) is at
    ``proof.leaf_index`` in the tree under ``checkpoint.root_hash``."""
    check = "LOG_INCLUSION"
    if proof.leaf_hash and proof.leaf_hash != leaf:
        return CheckOutcome(
            check,
            "FAILED",
            f"proof leaf hash {proof.leaf_hash.hex()} != envelope leaf hash {leaf.hex()}",
        )
    if proof.tree_size != checkpoint.tree_size:
        return CheckOutcome(
            check,
            "FAILED",
            f"proof tree_size {proof.tree_size} != checkpoint tree_size {checkpoint.tree_size}",
        )
    try:
        verify_inclusion(
            proof.leaf_index, proof.tree_size, leaf, proof.hashes, checkpoint.root_hash
        )
    except ProofError as exc:
        return CheckOutcome(check, "FAILED", f"leaf {proof.leaf_index}: {exc}")
    return CheckOutcome(check, "PASSED")


def verify_envelope(
    envelope: receipt_pb2.Envelope,
    keys: Mapping[str, bytes],
    proof: transparency_pb2.InclusionProof,
    checkpoint: transparency_pb2.Checkpoint,
) -> list[CheckOutcome]:
    """ENVELOPE, STATEMENT, SIGNATURE and LOG_INCLUSION of one receipt, offline."""
    envelope_outcome, statement = check_envelope(envelope)
    return [
        envelope_outcome,
        check_statement(statement),
        check_signature(envelope, keys),
        check_inclusion(receipt_leaf_hash(envelope), proof, checkpoint),
    ]


# -- proofs as JSON -------------------------------------------------------------


def proof_json(proof: Message) -> bytes:
    """The proto3 JSON of an inclusion or consistency proof, RFC 8785 form."""
    return canonical_json(json_format.MessageToDict(proof))


def inclusion_proof_from_json(data: bytes) -> transparency_pb2.InclusionProof:
    """Parses the proto3 JSON of an InclusionProof.

    Raises:
        ProvenanceError: what is wrong.
    """
    value = parse_json(data, "inclusion proof")
    try:
        return json_format.ParseDict(value, transparency_pb2.InclusionProof())
    except json_format.ParseError as exc:
        raise ProvenanceError(f"inclusion proof does not parse: {exc}") from exc


# -- evidence bundles ----------------------------------------------------------

MANIFEST = "manifest.json"
MANIFEST_ENVELOPE = "manifest.dsse.json"
CHECKPOINT_FILE = "checkpoint.note"
KEYS_FILE = "keys/jwks.json"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
"""Largest bundle (uncompressed) :func:`verify_bundle` reads."""
MAX_BUNDLE_FILES = 20_000
_CANONICAL_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""What :func:`build_evidence_bundle` writes: deflate, no flags, mtime 0, XFL 0,
OS 255."""
_STORED_BLOCK = 0xFFFF
"""Bundles are gzip of stored (uncompressed) deflate blocks of at most this
many bytes: an encoding with exactly one form for a given content, which any
verifier reproduces byte for byte (a compressed stream admits other
encodings of the same content, and zlib builds differ in which they pick).
So the verifier re-encodes what it read and insists on the very same bytes:
no byte of a bundle can change unnoticed, not even one that leaves the
content as it was."""


@dataclass(frozen=True, slots=True)
class BundleReceipt:
    """One receipt of a bundle and its inclusion proof at the bundle's checkpoint."""

    receipt: receipt_pb2.Receipt
    inclusion_proof: transparency_pb2.InclusionProof


def _receipt_id(name: str) -> str:
    prefix, _, rid = name.partition("/")
    if prefix != "receipts" or not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", rid):
        raise ValueError(f"receipt name must look like receipts/{{receipt}}, got {name!r}")
    return rid


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_evidence_bundle(
    receipts: Sequence[BundleReceipt],
    checkpoint: transparency_pb2.Checkpoint,
    jwks: str,
    signer: Signer,
    *,
    create_time: datetime | None = None,
) -> bytes:
    """A deterministic evidence bundle (``.tar.gz`` bytes) of ``receipts``.

    Args:
        receipts: the receipts and their inclusion proofs, every proof at
            ``checkpoint.tree_size``.
        checkpoint: a signed checkpoint with its ``note``.
        jwks: the JWKS document with every key that signed a receipt, the
            checkpoint or the manifest (ListPublicKeys ``jwks_json``).
        signer: signs the manifest (the signer's ACTIVE key).
        create_time: recorded in the manifest and as the files' mtime;
            defaults to the checkpoint's timestamp, so equal inputs give equal
            bytes.

    Raises:
        ValueError: a proof is not at the checkpoint's size, a receipt name is
            malformed or repeated, or the checkpoint has no note.
    """
    if not checkpoint.note:
        raise ValueError("the checkpoint has no signed note")
    moment = create_time or datetime.fromtimestamp(checkpoint.timestamp.seconds, UTC)
    files: dict[str, bytes] = {
        CHECKPOINT_FILE: checkpoint.note.encode(),
        KEYS_FILE: jwks.encode(),
    }
    entries = []
    for item in receipts:
        rid = _receipt_id(item.receipt.name)
        proof = item.inclusion_proof
        if proof.tree_size != checkpoint.tree_size:
            raise ValueError(
                f"{item.receipt.name}: proof at tree_size {proof.tree_size}, "
                f"checkpoint at {checkpoint.tree_size}"
            )
        envelope_path = f"receipts/{rid}.dsse.json"
        proof_path = f"proofs/{rid}.inclusion.json"
        if envelope_path in files:
            raise ValueError(f"{item.receipt.name} is in the bundle twice")
        files[envelope_path] = envelope_json(item.receipt.envelope)
        files[proof_path] = proof_json(proof)
        entries.append(
            {
                "name": item.receipt.name,
                "kind": receipt_pb2.ReceiptKind.Name(item.receipt.kind).removeprefix(
                    "RECEIPT_KIND_"
                ),
                "subject": item.receipt.subject,
                "tenant": item.receipt.tenant,
                "logIndex": proof.leaf_index,
                "statementDigest": item.receipt.statement_digest,
                "envelope": envelope_path,
                "inclusionProof": proof_path,
            }
        )
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": path, "digest": {"sha256": sha256_hex(content)}}
            for path, content in sorted(files.items())
        ],
        "predicateType": BUNDLE_PREDICATE_TYPE,
        "predicate": {
            "format": BUNDLE_FORMAT,
            "createTime": _rfc3339(moment),
            "origin": checkpoint.origin,
            "treeSize": checkpoint.tree_size,
            "rootHash": b64encode(checkpoint.root_hash),
            "checkpoint": CHECKPOINT_FILE,
            "keys": KEYS_FILE,
            "receipts": entries,
        },
    }
    manifest = canonical_json(statement)
    files[MANIFEST] = manifest
    files[MANIFEST_ENVELOPE] = canonical_json(envelope_dict(sign_envelope(manifest, signer)))
    return pack_bundle(files, int(moment.timestamp()))


def pack_bundle(files: Mapping[str, bytes], mtime: int) -> bytes:
    """The deterministic ``.tar.gz`` of ``files`` (path → bytes): USTAR,
    sorted paths, mode 0644, owner 0, the given mtime, canonical gzip."""
    return _gzip(_tar(files, mtime))


def _tar(files: Mapping[str, bytes], mtime: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    return raw.getvalue()


def read_bundle(data: bytes) -> dict[str, bytes]:
    """The files of a bundle (path → bytes), checking only the archive.

    Raises:
        ProvenanceError: what is wrong with the archive.
    """
    try:
        return _untar(_gunzip(data))
    except _CheckFailedError as failed:
        raise ProvenanceError(f"{failed.path}: {failed.message}") from failed


def _gzip(data: bytes) -> bytes:
    """gzip of stored deflate blocks with the canonical header: one encoding
    per content, byte-identical on every platform."""
    blocks = [data[i : i + _STORED_BLOCK] for i in range(0, len(data), _STORED_BLOCK)] or [b""]
    body = bytearray()
    for index, block in enumerate(blocks):
        final = index == len(blocks) - 1
        body += struct.pack("<BHH", 1 if final else 0, len(block), len(block) ^ 0xFFFF)
        body += block
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return _CANONICAL_GZIP_HEADER + bytes(body) + trailer


def _first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@dataclass(frozen=True, slots=True)
class Finding:
    """One check of a bundle: which file (``bundle`` for the archive itself),
    which check, and the outcome."""

    path: str
    check: str
    status: CheckStatus
    message: str = ""

    def __str__(self) -> str:
        text = f"{self.status:<7} {self.path}: {self.check}"
        return f"{text}: {self.message}" if self.message else text


@dataclass
class VerificationReport:
    """Everything :func:`verify_bundle` checked, in order."""

    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
    """Names of the receipts that verified completely."""
    checkpoint: transparency_pb2.Checkpoint | None = None
    keys_pinned: bool = False
    """True when signatures were checked against caller-supplied keys."""

    @property
    def ok(self) -> bool:
        """True when nothing failed and at least one check ran."""
        return bool(self.findings) and not self.failures

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "FAILED"]

    def add(self, path: str, check: str, status: CheckStatus, message: str = "") -> bool:
        self.findings.append(Finding(path, check, status, message))
        return status == "PASSED"


class _CheckFailedError(Exception):
    """One failed check of a bundle; recorded by the caller, ends that branch."""

    def __init__(self, path: str, check: str, message: str) -> None:
        super().__init__(message)
        self.path, self.check, self.message = path, check, message

    def record(self, report: VerificationReport) -> None:
        report.add(self.path, self.check, "FAILED", self.message)


def _gunzip(data: bytes) -> bytes:
    if data[:10] != _CANONICAL_GZIP_HEADER:
        if data[:2] != b"\x1f\x8b":
            raise _CheckFailedError("bundle", "ARCHIVE", "not a gzip file (bad magic bytes)")
        raise _CheckFailedError(
            "bundle",
            "ARCHIVE",
            f"gzip header {data[:10].hex()} is not the canonical "
            f"{_CANONICAL_GZIP_HEADER.hex()} Maestro writes: the archive was altered",
        )
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            raw = stream.read(MAX_BUNDLE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise _CheckFailedError("bundle", "ARCHIVE", f"gzip stream is corrupt: {exc}") from exc
    if len(raw) > MAX_BUNDLE_BYTES:
        raise _CheckFailedError("bundle", "ARCHIVE", f"larger than {MAX_BUNDLE_BYTES} bytes")
    canonical = _gzip(raw)
    if canonical != data:
        raise _CheckFailedError(
            "bundle",
            "ARCHIVE",
            f"byte {_first_difference(canonical, data)} differs from the canonical gzip "
            "encoding of the archive's content (stored blocks): the archive was altered",
        )
    return raw


def _untar(raw: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    mtime = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                name = member.name
                mtime = int(member.mtime)
                parts = name.split("/")
                if not member.isreg():
                    raise _CheckFailedError(name, "ARCHIVE", "not a regular file")
                if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                    raise _CheckFailedError(name, "ARCHIVE", "unsafe path in the archive")
                if name in files:
                    raise _CheckFailedError(name, "ARCHIVE", "file appears twice in the archive")
                if len(files) >= MAX_BUNDLE_FILES:
                    raise _CheckFailedError(
                        "bundle", "ARCHIVE", f"more than {MAX_BUNDLE_FILES} files"
                    )
                extracted = tar.extractfile(member)
                files[name] = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise _CheckFailedError("bundle", "ARCHIVE", f"not a readable tar archive: {exc}") from exc
    canonical = _tar(files, mtime) if files else b""
    if canonical != raw:
        raise _CheckFailedError(
            "bundle",
            "ARCHIVE",
            f"tar byte {_first_difference(canonical, raw)} differs from the canonical archive "
            "of its files (a header or padding byte was changed): the archive was altered",
        )
    return files


def _json_object(
    files: Mapping[str, bytes], path: str, check: str, report: VerificationReport
) -> dict[str, Any] | None:
    if path not in files:
        report.add(path, check, "FAILED", "missing from the bundle")
        return None
    try:
        value = parse_json(files[path], path)
    except ProvenanceError as exc:
        report.add(path, check, "FAILED", str(exc))
        return None
    if not isinstance(value, dict):
        report.add(path, check, "FAILED", "not a JSON object")
        return None
    return value


def _bundle_keys(
    files: Mapping[str, bytes], trusted: Mapping[str, bytes] | None, report: VerificationReport
) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    if KEYS_FILE not in files:
        report.add(KEYS_FILE, "KEYS", "FAILED", "missing from the bundle")
    else:
        try:
            keys = parse_jwks(files[KEYS_FILE])
        except ProvenanceError as exc:
            report.add(KEYS_FILE, "KEYS", "FAILED", str(exc))
        else:
            if not keys:
                report.add(KEYS_FILE, "KEYS", "FAILED", "the JWKS has no keys")
            elif trusted is not None and set(keys) - set(trusted):
                untrusted = ", ".join(sorted(set(keys) - set(trusted)))
                report.add(
                    KEYS_FILE, "KEYS", "FAILED", f"keys not in the trusted JWKS: {untrusted}"
                )
            else:
                report.add(KEYS_FILE, "KEYS", "PASSED")
    if trusted is not None:
        return dict(trusted)
    report.warnings.append(
        "signatures were checked against the bundle's own keys/jwks.json: pass the signer's "
        "published JWKS (--keys) to pin the keys"
    )
    return keys


def _manifest_signature(files: Mapping[str, bytes], keys: Mapping[str, bytes]) -> str:
    """Checks that manifest.dsse.json signs manifest.json; returns the keyid."""
    path = MANIFEST_ENVELOPE
    if path not in files:
        raise _CheckFailedError(path, "MANIFEST_SIGNATURE", "missing from the bundle")
    try:
        envelope = envelope_from_json(files[path])
    except ProvenanceError as exc:
        raise _CheckFailedError(path, "MANIFEST_SIGNATURE", str(exc)) from exc
    if envelope.payload_type != PAYLOAD_TYPE:
        raise _CheckFailedError(
            path,
            "MANIFEST_SIGNATURE",
            f"payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE}",
        )
    outcome = check_signature(envelope, keys)
    if not outcome.passed:
        raise _CheckFailedError(path, "MANIFEST_SIGNATURE", outcome.message)
    if files.get(MANIFEST) != envelope.payload:
        raise _CheckFailedError(
            MANIFEST,
            "MANIFEST_SIGNATURE",
            f"{MANIFEST} is not the payload signed in {MANIFEST_ENVELOPE}",
        )
    return outcome.key_id


def _manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    problems = []
    if manifest.get("_type") != STATEMENT_TYPE:
        problems.append(f'"_type" is not {STATEMENT_TYPE}')
    if manifest.get("predicateType") != BUNDLE_PREDICATE_TYPE:
        problems.append(f'"predicateType" is not {BUNDLE_PREDICATE_TYPE}')
    predicate = manifest.get("predicate")
    if not isinstance(predicate, dict) or predicate.get("format") != BUNDLE_FORMAT:
        problems.append(f'"predicate.format" is not {BUNDLE_FORMAT}')
    subjects = manifest.get("subject")
    if not isinstance(subjects, list) or not all(
        isinstance(s, dict)
        and isinstance(s.get("name"), str)
        and isinstance(s.get("digest"), dict)
        and isinstance(s["digest"].get("sha256"), str)
        for s in subjects
    ):
        problems.append('"subject" must list files with a name and a sha256 digest')
    return problems


def _verify_manifest(
    files: Mapping[str, bytes], keys: Mapping[str, bytes], report: VerificationReport
) -> dict[str, Any] | None:
    try:
        key = _manifest_signature(files, keys)
    except _CheckFailedError as failed:
        failed.record(report)
    else:
        report.add(MANIFEST_ENVELOPE, "MANIFEST_SIGNATURE", "PASSED", f"signed by keyid {key}")
    manifest = _json_object(files, MANIFEST, "MANIFEST", report)
    if manifest is None:
        return None
    problems = _manifest_problems(manifest)
    if problems:
        report.add(MANIFEST, "MANIFEST", "FAILED", "; ".join(problems))
        return None
    report.add(MANIFEST, "MANIFEST", "PASSED")
    return manifest


def _verify_file_digests(
    files: Mapping[str, bytes], manifest: Mapping[str, Any], report: VerificationReport
) -> None:
    listed: dict[str, str] = {}
    for subject in manifest["subject"]:
        if subject["name"] in listed:
            report.add(subject["name"], "FILE_DIGEST", "FAILED", "listed twice in the manifest")
        listed[subject["name"]] = subject["digest"]["sha256"]
    for path, expected in sorted(listed.items()):
        if path not in files:
            report.add(
                path, "FILE_DIGEST", "FAILED", "listed in the manifest, missing from the bundle"
            )
            continue
        actual = sha256_hex(files[path])
        if actual != expected:
            report.add(
                path, "FILE_DIGEST", "FAILED", f"sha256 {actual} != manifest sha256 {expected}"
            )
        else:
            report.add(path, "FILE_DIGEST", "PASSED")
    for path in sorted(set(files) - set(listed) - {MANIFEST, MANIFEST_ENVELOPE}):
        report.add(path, "FILE_DIGEST", "FAILED", "in the bundle but not listed in the manifest")


def _verify_checkpoint(
    files: Mapping[str, bytes],
    manifest: Mapping[str, Any],
    keys: Mapping[str, bytes],
    report: VerificationReport,
) -> transparency_pb2.Checkpoint | None:
    predicate = manifest["predicate"]
    path = predicate.get("checkpoint")
    if not isinstance(path, str) or path not in files:
        report.add(
            str(path), "CHECKPOINT_SIGNATURE", "FAILED", "checkpoint missing from the bundle"
        )
        return None
    try:
        note = files[path].decode("utf-8")
        checkpoint = parse_checkpoint_note(note, keys)
    except UnicodeDecodeError:
        report.add(path, "CHECKPOINT_SIGNATURE", "FAILED", "checkpoint note is not UTF-8")
        return None
    except ProvenanceError as exc:
        report.add(path, "CHECKPOINT_SIGNATURE", "FAILED", str(exc))
        return None
    outcome = check_checkpoint_signature(checkpoint, keys, origin=predicate.get("origin"))
    if not outcome.passed:
        message = outcome.message
        if not checkpoint.signatures:
            message = "no signature line by a known key (matched by note key hash)"
        report.add(path, "CHECKPOINT_SIGNATURE", "FAILED", message)
        return None
    if checkpoint.tree_size != predicate.get("treeSize") or b64encode(
        checkpoint.root_hash
    ) != predicate.get("rootHash"):
        report.add(
            path,
            "CHECKPOINT_SIGNATURE",
            "FAILED",
            f"checkpoint (size {checkpoint.tree_size}, root {b64encode(checkpoint.root_hash)}) "
            f"differs from the manifest (size {predicate.get('treeSize')}, "
            f"root {predicate.get('rootHash')})",
        )
        return None
    report.add(
        path,
        "CHECKPOINT_SIGNATURE",
        "PASSED",
        f"{checkpoint.origin} at tree_size {checkpoint.tree_size}, keyid {outcome.key_id}",
    )
    return checkpoint


def _receipt_envelope(
    entry: Mapping[str, Any],
    files: Mapping[str, bytes],
    keys: Mapping[str, bytes],
    report: VerificationReport,
) -> tuple[receipt_pb2.Envelope, bool]:
    """ENVELOPE, STATEMENT and SIGNATURE of one receipt file."""
    path = entry["envelope"]
    if path not in files:
        raise _CheckFailedError(path, "ENVELOPE", "missing from the bundle")
    try:
        envelope = envelope_from_json(files[path])
    except ProvenanceError as exc:
        raise _CheckFailedError(path, "ENVELOPE", str(exc)) from exc
    if envelope_json(envelope) != files[path]:
        raise _CheckFailedError(path, "ENVELOPE", "not in RFC 8785 canonical form (the leaf data)")
    envelope_outcome, statement = check_envelope(envelope)
    passed = report.add(path, "ENVELOPE", envelope_outcome.status, envelope_outcome.message)
    outcome = check_statement(statement)
    if statement is not None and outcome.passed:
        names = sorted(str(s.get("name")) for s in statement["subject"])
        digest = sha256_hex(envelope.payload)
        if entry.get("subject") not in names:
            outcome = CheckOutcome(
                "STATEMENT",
                "FAILED",
                f"the manifest says subject {entry.get('subject')!r}; the statement names {names}",
            )
        elif entry.get("statementDigest") != digest:
            outcome = CheckOutcome(
                "STATEMENT",
                "FAILED",
                f"statement sha256 {digest} != manifest statementDigest "
                f"{entry.get('statementDigest')}",
            )
    passed &= report.add(path, "STATEMENT", outcome.status, outcome.message)
    signature = check_signature(envelope, keys)
    passed &= report.add(
        path, "SIGNATURE", signature.status, signature.message or f"keyid {signature.key_id}"
    )
    return envelope, passed


def _receipt_inclusion(
    entry: Mapping[str, Any],
    envelope: receipt_pb2.Envelope,
    files: Mapping[str, bytes],
    checkpoint: transparency_pb2.Checkpoint | None,
) -> str:
    """LOG_INCLUSION of one receipt; returns the PASSED message."""
    path = entry["inclusionProof"]
    if path not in files:
        raise _CheckFailedError(path, "LOG_INCLUSION", "missing from the bundle")
    try:
        proof = inclusion_proof_from_json(files[path])
    except ProvenanceError as exc:
        raise _CheckFailedError(path, "LOG_INCLUSION", str(exc)) from exc
    if checkpoint is None:
        raise _CheckFailedError(
            path, "LOG_INCLUSION", "no verified checkpoint to check the proof against"
        )
    if entry.get("logIndex") != proof.leaf_index:
        raise _CheckFailedError(
            path,
            "LOG_INCLUSION",
            f"proof leaf_index {proof.leaf_index} != manifest logIndex {entry.get('logIndex')}",
        )
    outcome = check_inclusion(receipt_leaf_hash(envelope), proof, checkpoint)
    if not outcome.passed:
        raise _CheckFailedError(path, "LOG_INCLUSION", outcome.message)
    return f"leaf {proof.leaf_index} of {proof.tree_size}"


def _verify_receipt(
    entry: Any,
    files: Mapping[str, bytes],
    keys: Mapping[str, bytes],
    checkpoint: transparency_pb2.Checkpoint | None,
    report: VerificationReport,
) -> None:
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(k), str) for k in ("name", "envelope", "inclusionProof")
    ):
        report.add(MANIFEST, "MANIFEST", "FAILED", f"malformed receipt entry {entry!r:.80}")
        return
    try:
        envelope, passed = _receipt_envelope(entry, files, keys, report)
        message = _receipt_inclusion(entry, envelope, files, checkpoint)
    except _CheckFailedError as failed:
        failed.record(report)
        return
    report.add(entry["inclusionProof"], "LOG_INCLUSION", "PASSED", message)
    if passed:
        report.receipts.append(entry["name"])


def verify_bundle(
    bundle: str | Path | bytes,
    trusted_jwks: str | bytes | Mapping[str, Any] | None = None,
) -> VerificationReport:
    """Verifies an evidence bundle completely, offline.

    Checks, each reported as a :class:`Finding` naming its file: the archive
    (canonical gzip, readable tar, safe unique paths); the keys (well-formed
    JWKS, kid = thumbprint, and with ``trusted_jwks`` every bundle key
    trusted); the manifest signature (DSSE over ``manifest.json`` by a key)
    and shape; every file's sha256 against the manifest, with nothing
    unlisted; the checkpoint (signed note by a key, matching the manifest);
    and per receipt: envelope (canonical DSSE JSON, in-toto payload),
    statement (predicate parses, subject and digest match the manifest),
    signature over PAE, and inclusion under the checkpoint root; then each
    execution receipt's link to the version receipt it names (LINK: the same
    workflow version and definition digest; a version receipt left out of the
    bundle is a warning).

    Args:
        bundle: a path to the ``.tar.gz``, or its bytes.
        trusted_jwks: the signer's published JWKS; when given, only its keys
            are accepted (otherwise the bundle's own keys are used and the
            report warns that they are not pinned).

    Raises:
        ProvenanceError: ``trusted_jwks`` is malformed (a usage error, not a
            verification result).
        OSError: ``bundle`` is a path that cannot be read.
    """
    trusted = parse_jwks(trusted_jwks) if trusted_jwks is not None else None
    data = bundle if isinstance(bundle, bytes) else Path(bundle).read_bytes()
    report = VerificationReport(keys_pinned=trusted is not None)
    try:
        files = _untar(_gunzip(data))
    except _CheckFailedError as failed:
        failed.record(report)
        return report
    report.add("bundle", "ARCHIVE", "PASSED")
    keys = _bundle_keys(files, trusted, report)
    manifest = _verify_manifest(files, keys, report)
    if manifest is None:
        return report
    _verify_file_digests(files, manifest, report)
    checkpoint = _verify_checkpoint(files, manifest, keys, report)
    report.checkpoint = checkpoint
    entries = manifest["predicate"].get("receipts")
    if not isinstance(entries, list) or not entries:
        report.add(MANIFEST, "MANIFEST", "FAILED", "the manifest lists no receipts")
        return report
    for entry in entries:
        _verify_receipt(entry, files, keys, checkpoint, report)
    _verify_links(entries, files, report)
    return report


def _verified_predicate(entry: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """The predicate of a receipt that already verified (so it parses)."""
    envelope = envelope_from_json(files[entry["envelope"]])
    predicate: dict[str, Any] = parse_statement(envelope.payload)["predicate"]
    return predicate


def _verify_links(
    entries: Sequence[Any], files: Mapping[str, bytes], report: VerificationReport
) -> None:
    """LINK: an execution receipt whose version receipt is in the bundle must
    name exactly that version: the version receipt's workflow and version are
    the execution's ``workflowVersion``, and both carry the same definition
    digest. A version receipt named but not bundled is a warning."""
    by_name = {
        e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)
    }
    for name in report.receipts:
        entry = by_name[name]
        if entry.get("kind") != "EXECUTION":
            continue
        execution = _verified_predicate(entry, files)
        linked = execution.get("versionReceipt", "")
        path = entry["envelope"]
        if not linked:
            report.add(path, "LINK", "SKIPPED", "names no version receipt")
            continue
        if linked not in by_name:
            report.warnings.append(
                f"{name} names version receipt {linked}, which is not in the bundle: "
                "which version ran is not proven"
            )
            continue
        if linked not in report.receipts:
            report.add(path, "LINK", "FAILED", f"its version receipt {linked} did not verify")
            continue
        version = _verified_predicate(by_name[linked], files)
        ran = execution.get("workflowVersion", "")
        published = f"{version.get('workflow', '')}/versions/{version.get('version', '')}"
        if by_name[linked].get("kind") != "VERSION_MANIFEST" or published != ran:
            report.add(path, "LINK", "FAILED", f"ran {ran!r}, but {linked} attests {published!r}")
        elif version.get("definitionDigest") != execution.get("definitionDigest"):
            report.add(
                path,
                "LINK",
                "FAILED",
                f"definitionDigest {execution.get('definitionDigest')} differs from the "
                f"version's {version.get('definitionDigest')} ({linked})",
            )
        else:
            report.add(path, "LINK", "PASSED", f"ran {ran} ({linked})")
