"""The transparency log and the signing keys behind it: one writer, group commit.

Every append (SignReceipt) and every rotation goes through one writer: under an
asyncio lock, on the store's writer thread, in one database transaction that on
PostgreSQL also holds an advisory lock. Concurrent SignReceipt calls that
arrive while a transaction is committing are appended together by the next
one (group commit): each gets its own leaf, its own checkpoint (one is signed
for every tree size) and its own receipt, but they share one commit.

Signing happens inside that transaction with the key that is ACTIVE in it, so
a receipt is signed by exactly one key, and everything a key signed is logged
before its ``rotate_time``. (The DSSE envelope is signed ahead, on the event
loop while the writer is busy, with the key ACTIVE then; the transaction
re-signs it if that is no longer its key. Checkpoints are signed inside.)

An append batch is optimistic first: it assumes the in-memory tree and keys
are the stored ones and that its request ids are new, and writes without
reading (on PostgreSQL three round trips: BEGIN with the advisory lock, one
statement that inserts and checks, COMMIT; see ``SignerStore.append``). When
the check fails (another process appended or rotated, or a request id is
replayed) the transaction is rolled back and the batch is redone the careful
way: catch up with the stored log, look each request id up, then write.
Either way nothing is committed that was not checked in the same transaction.

In memory: the Merkle tree (rebuilt from the leaves at start-up and checked
against the latest signed checkpoint), the committed size, the latest
checkpoint, the public keys and the decrypted ACTIVE private key. Retired
private keys are never decrypted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from maestro.runtime import provenance
from maestro.runtime.errors import AlreadyExistsError, FieldViolation, MaestroError
from maestro.services.signer.keys import KekError, KeyEncryptionKey
from maestro.services.signer.merkle import MerkleTree
from maestro.services.signer.store import (
    CheckpointRow,
    KeyRow,
    LeafRow,
    ReceiptRow,
    SignerStore,
)

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
RETIRED = "RETIRED"
MAX_BATCH = 256
"""Most appends committed together (bounds a statement's parameters)."""


class LogIntegrityError(RuntimeError):
    """The stored log does not match its own signed checkpoints."""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Append:
    """One receipt to sign and log (already validated)."""

    tenant: str
    request_id: str
    request_hash: str
    kind: int
    subject: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Signed:
    """An append with its envelope signed ahead by ``key_id``."""

    item: Append
    key_id: str
    leaf_data: bytes
    statement_digest: str


class _Stale(Exception):  # noqa: N818 - control flow, never leaves this module
    """The optimistic append's check failed: roll back, redo it checked."""


@dataclass(frozen=True, slots=True)
class Appended:
    """The stored receipt and the checkpoint at its leaf's tree size."""

    receipt: ReceiptRow
    checkpoint: CheckpointRow
    replayed: bool


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of a rotation (or of its replay)."""

    active_key: KeyRow
    retired_key: KeyRow
    replayed: bool


def _checkpoint_row(
    signer: provenance.Signer, origin: str, size: int, root: bytes, timestamp: int
) -> CheckpointRow:
    signed = provenance.sign_checkpoint(origin, size, root, timestamp, signer)
    return CheckpointRow(
        tree_size=size,
        origin=origin,
        root_hash=root,
        timestamp=timestamp,
        key_id=signer.key_id,
        signature=signed.signatures[0].sig,
        note=signed.note,
    )


def _sign(item: Append, signer: provenance.Signer) -> _Signed:
    envelope = provenance.sign_envelope(item.payload, signer)
    return _Signed(
        item=item,
        key_id=signer.key_id,
        leaf_data=provenance.envelope_json(envelope),
        statement_digest=provenance.sha256_hex(item.payload),
    )


class TransparencyLog:
    """The log, its checkpoints and the keys that sign them."""

    def __init__(
        self,
        store: SignerStore,
        kek: KeyEncryptionKey,
        origin: str,
        *,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._store = store
        self._kek = kek
        self.origin = origin
        self._clock = clock
        self._tree = MerkleTree()
        self._size = 0
        self._latest: CheckpointRow | None = None
        self._keys: list[KeyRow] = []
        self._public: dict[str, bytes] = {}
        self._active: provenance.Ed25519Signer | None = None
        self._write_lock = asyncio.Lock()
        self._pending: list[tuple[_Signed, asyncio.Future[Appended]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._state_lock = threading.Lock()

    # -- state for readers ---------------------------------------------------------

    @property
    def size(self) -> int:
        """Committed tree size."""
        return self._size

    @property
    def latest(self) -> CheckpointRow:
        """The checkpoint at the committed size."""
        assert self._latest is not None, "open() first"
        return self._latest

    @property
    def keys(self) -> list[KeyRow]:
        """Every key, ACTIVE first, then RETIRED most recently retired first."""
        return list(self._keys)

    @property
    def public_keys(self) -> dict[str, bytes]:
        """Published keys: key id → raw Ed25519 public key."""
        return dict(self._public)

    @property
    def last_rotate_time(self) -> datetime | None:
        times = [k.rotate_time for k in self._keys if k.rotate_time is not None]
        return max(times) if times else None

    @property
    def active_signer(self) -> provenance.Signer:
        """The ACTIVE key (for signing evidence-bundle manifests)."""
        assert self._active is not None, "open() first"
        return self._active

    def leaf_hash(self, leaf_index: int) -> bytes:
        return self._tree.leaf(leaf_index)

    def root(self, tree_size: int) -> bytes:
        return self._tree.root(tree_size)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        if tree_size > self._size:
            raise ValueError(f"tree size {tree_size} is beyond the log ({self._size})")
        return self._tree.inclusion_proof(leaf_index, tree_size)

    def consistency_proof(self, first_size: int, second_size: int) -> list[bytes]:
        if second_size > self._size:
            raise ValueError(f"tree size {second_size} is beyond the log ({self._size})")
        return self._tree.consistency_proof(first_size, second_size)

    # -- start-up ------------------------------------------------------------------

    async def open(self) -> None:
        """Bootstraps the first key if there is none, loads the keys and the
        tree, checks the tree against the latest signed checkpoint, and signs
        the empty tree's checkpoint on a new log.

        Raises:
            KekError: the KEK does not decrypt the ACTIVE key.
            LogIntegrityError: the stored leaves do not hash to the latest
                checkpoint's root, or that checkpoint's signature is invalid.
        """
        async with self._write_lock:
            await self._store.write(self._open)

    def _open(self, conn: Connection) -> None:
        if not self._store.keys(conn):
            self._insert_key(conn, request_id=None, reason="bootstrap", previous=None)
        self._load_keys(conn)
        self._tree = MerkleTree()
        for leaf_hash in self._store.leaf_hashes(conn, 0):
            self._tree.append(leaf_hash)
        latest = self._store.checkpoint(conn)
        if latest is None:
            if self._tree.size:
                raise LogIntegrityError(f"{self._tree.size} leaves but no checkpoint")
            latest = self._sign_checkpoint(0)
            self._store.insert_checkpoint(conn, latest)
        self._check_checkpoint(latest)
        self._size, self._latest = self._tree.size, latest
        log.info(
            "transparency log %s opened at tree size %d",
            self.origin,
            self._size,
            extra={"tree_size": self._size, "key_id": self.active_signer.key_id},
        )

    def _check_checkpoint(self, latest: CheckpointRow) -> None:
        if latest.tree_size != self._tree.size:
            raise LogIntegrityError(
                f"the latest checkpoint is at tree size {latest.tree_size}, "
                f"the log has {self._tree.size} leaves"
            )
        root = self._tree.root(latest.tree_size)
        if root != latest.root_hash:
            raise LogIntegrityError(
                f"the stored leaves hash to {root.hex()}, the signed checkpoint at tree size "
                f"{latest.tree_size} says {latest.root_hash.hex()}: the log was altered"
            )
        if latest.origin != self.origin:
            raise LogIntegrityError(
                f"the log's origin is {latest.origin!r}, the configured origin is "
                f"{self.origin!r}: the origin never changes"
            )
        public = self._public.get(latest.key_id)
        body = provenance.checkpoint_body(
            latest.origin, latest.tree_size, latest.root_hash, latest.timestamp
        )
        if public is None or not provenance.verify_ed25519(public, latest.signature, body):
            raise LogIntegrityError(
                f"the checkpoint at tree size {latest.tree_size} is not validly signed"
            )

    # -- keys ----------------------------------------------------------------------

    def _insert_key(
        self, conn: Connection, *, request_id: str | None, reason: str, previous: str | None
    ) -> KeyRow:
        signer = provenance.Ed25519Signer.generate()
        row = KeyRow(
            key_id=signer.key_id,
            public_key=signer.public_key,
            sealed_private_key=self._kek.seal(signer.key_id, signer.private_bytes()),
            kek_id=self._kek.kek_id,
            state=ACTIVE,
            create_time=self._clock(),
            rotate_time=None,
            request_id=request_id,
            reason=reason,
            previous_key_id=previous,
        )
        self._store.insert_key(conn, row)
        return row

    def _load_keys(self, conn: Connection) -> None:
        rows = self._store.keys(conn)
        active = [r for r in rows if r.state == ACTIVE]
        if len(active) != 1:
            raise LogIntegrityError(f"{len(active)} ACTIVE signing keys; exactly one expected")
        raw = self._kek.open(active[0].key_id, active[0].sealed_private_key, active[0].kek_id)
        signer = provenance.Ed25519Signer.from_private_bytes(raw)
        if signer.public_key != active[0].public_key or signer.key_id != active[0].key_id:
            raise KekError(f"signing key {active[0].key_id}: decrypted key does not match")
        with self._state_lock:
            self._keys = rows
            self._public = {r.key_id: r.public_key for r in rows}
            self._active = signer

    def _sync(self, conn: Connection) -> CheckpointRow | None:
        """Catches up with another process's writes: reloads the keys when they
        were rotated, appends the leaves committed since this one last wrote.
        Returns the latest checkpoint when there were new leaves."""
        size, active = self._store.log_state(conn)
        if self._active is None or active != self._active.key_id:
            self._load_keys(conn)
        if size <= self._tree.size:
            return None
        for leaf_hash in self._store.leaf_hashes(conn, self._tree.size):
            self._tree.append(leaf_hash)
        latest = self._store.checkpoint(conn)
        assert latest is not None
        self._check_checkpoint(latest)
        return latest

    def _sign_checkpoint(self, tree_size: int) -> CheckpointRow:
        timestamp = int(self._clock().timestamp())
        return _checkpoint_row(
            self.active_signer, self.origin, tree_size, self._tree.root(tree_size), timestamp
        )

    async def rotate(self, request_id: str, reason: str) -> Rotation:
        """Makes a new key ACTIVE and retires the current one (or replays the
        rotation made with ``request_id``).

        Raises:
            AlreadyExistsError: ``request_id`` was used with another reason.
        """
        async with self._write_lock:
            try:
                rotation = await self._store.write(partial(self._rotate, request_id, reason))
            except BaseException:
                self._tree.truncate(self._size)
                raise
            if self._tree.size != self._size:  # caught up with another process's appends
                latest = await self._store.read(self._store.checkpoint)
                assert latest is not None and latest.tree_size == self._tree.size
                self._size, self._latest = self._tree.size, latest
            return rotation

    def _rotate(self, request_id: str, reason: str, conn: Connection) -> Rotation:
        self._sync(conn)
        done = self._store.key_by_request(conn, request_id)
        if done is not None:
            if done.reason != reason:
                raise AlreadyExistsError(
                    f"request_id {request_id!r} was used for a rotation with another reason",
                    field_violations=[FieldViolation("request_id", "reused with another reason")],
                )
            retired = next(k for k in self._keys if k.key_id == done.previous_key_id)
            current = next(k for k in self._keys if k.key_id == done.key_id)
            return Rotation(current, retired, replayed=True)
        old = self.active_signer.key_id
        self._store.retire_key(conn, old, self._clock())
        self._insert_key(conn, request_id=request_id, reason=reason, previous=old)
        self._load_keys(conn)
        return Rotation(self._keys[0], next(k for k in self._keys if k.key_id == old), False)

    # -- appends -------------------------------------------------------------------

    async def append(self, item: Append) -> Appended:
        """Signs ``item`` into a DSSE envelope, logs it, signs the new
        checkpoint and stores the receipt, all committed before returning; or
        returns the receipt an earlier call with the same request id made.

        Raises:
            AlreadyExistsError: the request id was used with another request.
            MaestroError / database errors: nothing was logged.
        """
        signed = _sign(item, self.active_signer)  # pure CPU, off the writer's path
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending.append((signed, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="signer-log-flush")
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            async with self._write_lock:
                try:
                    results, latest = await self._write_batch([item for item, _ in batch])
                except Exception as exc:  # every waiter gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if latest is not None:
                    self._latest = latest
                self._size = self._tree.size
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _write_batch(
        self, batch: list[_Signed]
    ) -> tuple[list[Appended | MaestroError], CheckpointRow | None]:
        """One transaction for ``batch``: optimistic, then checked if the
        optimistic one was stale; once more if the connection was found lost
        (safe: a batch that did commit is then found by its request ids)."""
        checked, reconnected = False, False
        while True:
            try:
                return await self._store.write(partial(self._append_batch, batch, checked))
            except _Stale:
                self._tree.truncate(self._size)
                checked = True
            except Exception as exc:
                self._tree.truncate(self._size)
                lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
                if reconnected or not lost:
                    raise
                log.warning("signer database connection lost; appending again", exc_info=True)
                reconnected = True

    def _append_batch(
        self, batch: list[_Signed], checked: bool, conn: Connection
    ) -> tuple[list[Appended | MaestroError], CheckpointRow | None]:
        """Appends ``batch`` in ``conn``'s transaction; returns one result per
        item and the new latest checkpoint (None when the size did not change).

        Optimistic (``checked`` false): no reads; raises ``_Stale`` when the
        store reports the write was not what this process expected. Checked:
        catches up with the stored log and looks each request id up first."""
        latest = self._sync(conn) if checked else None
        signer = self.active_signer
        results: list[Appended | MaestroError] = []
        in_batch: dict[tuple[str, str], Appended] = {}
        leaves: list[LeafRow] = []
        checkpoints: list[CheckpointRow] = []
        receipts: list[ReceiptRow] = []
        for ahead in batch:
            item = ahead.item
            key = (item.tenant, item.request_id)
            earlier = in_batch.get(key)
            if earlier is None and checked:
                stored = self._store.receipt_by_request(conn, *key)
                if stored is not None:
                    checkpoint = self._store.checkpoint(conn, stored.log_index + 1)
                    assert checkpoint is not None
                    earlier = Appended(stored, checkpoint, replayed=True)
            if earlier is not None:
                if earlier.receipt.request_hash != item.request_hash:
                    results.append(
                        AlreadyExistsError(
                            f"request_id {item.request_id!r} was used for another receipt "
                            f"({'receipts/' + earlier.receipt.receipt_id})",
                            field_violations=[
                                FieldViolation("request_id", "reused with another statement")
                            ],
                        )
                    )
                else:
                    results.append(Appended(earlier.receipt, earlier.checkpoint, replayed=True))
                continue
            # Rotated since it was signed ahead: sign with the ACTIVE key.
            signed = ahead if ahead.key_id == signer.key_id else _sign(item, signer)
            at = self._clock()
            data = signed.leaf_data
            index = self._tree.append(provenance.leaf_hash(data))
            checkpoint = _checkpoint_row(
                signer, self.origin, index + 1, self._tree.root(index + 1), int(at.timestamp())
            )
            receipt = ReceiptRow(
                receipt_id=str(ULID()),
                tenant=item.tenant,
                kind=item.kind,
                subject=item.subject,
                statement_digest=signed.statement_digest,
                log_index=index,
                request_id=item.request_id,
                request_hash=item.request_hash,
                create_time=at,
                verified=True,
                verify_time=at,
                leaf_data=data,
            )
            leaves.append(LeafRow(index, self._tree.leaf(index), data, at))
            checkpoints.append(checkpoint)
            receipts.append(receipt)
            appended = Appended(receipt, checkpoint, replayed=False)
            in_batch[key] = appended
            results.append(appended)
        if not self._store.append(conn, leaves, checkpoints, receipts, signer.key_id):
            if not checked:
                raise _Stale
            raise LogIntegrityError(
                "the log changed under its lock: an append was not stored as checked"
            )
        return results, (checkpoints[-1] if checkpoints else latest)

    async def close(self) -> None:
        """Waits for the appends in flight."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
