"""The signer's own tables and every query on them. No other service reads them.

One code path for SQLite (embedded) and PostgreSQL: SQLAlchemy Core on a
synchronous engine, each transaction run whole on a thread (one writer thread,
so SQLite's single writer never waits on itself; a few reader threads). The
schema is created and upgraded by Alembic on both (``migrate``).

Invariants kept here and by the database itself (triggers, migration 0001):

- ``log_leaves`` and ``checkpoints`` are insert-only: no UPDATE or DELETE
  statement on them exists in this module, and triggers refuse both (and
  TRUNCATE on PostgreSQL). The log cannot be rewritten in place.
- ``receipts`` rows never change except their cached verification
  (``verified``, ``verify_time``); they are never deleted.
- ``signing_keys`` rows are never deleted (old receipts must keep verifying);
  the one allowed change is ACTIVE → RETIRED with a ``rotate_time``.
- A receipt, its leaf and its checkpoint are written in one transaction, with
  the request id that created them (unique per tenant).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from maestro.runtime.migrations import upgrade_to_head

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_VERSION_TABLE = "signer_alembic_version"
"""Alembic's bookkeeping table, named per service so that services sharing one
PostgreSQL database keep separate migration histories."""
LOG_LOCK_KEY = 0x6D6165737472A006
"""PostgreSQL advisory lock serialising log appends and rotations across
signer processes sharing one database."""

R = TypeVar("R")
metadata = MetaData()

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("key_id", String(64), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    # KeyEncryptionKey.seal output; kek_id names the KEK that sealed it.
    Column("sealed_private_key", LargeBinary, nullable=False),
    Column("kek_id", String(64), nullable=False),
    # ACTIVE or RETIRED; exactly one ACTIVE once bootstrapped.
    Column("state", String(16), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("rotate_time", DateTime(timezone=True), nullable=True),
    # The RotateKey request that created the key (NULL for the bootstrap key).
    Column("request_id", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("previous_key_id", String(64), nullable=True),
    PrimaryKeyConstraint("key_id", name="pk_signing_keys"),
    UniqueConstraint("request_id", name="uq_signing_keys_request_id"),
    # At most one ACTIVE key, whatever the code does.
    Index(
        "uq_signing_keys_active",
        "state",
        unique=True,
        sqlite_where=text("state = 'ACTIVE'"),
        postgresql_where=text("state = 'ACTIVE'"),
    ),
)

log_leaves = Table(
    "log_leaves",
    metadata,
    Column("leaf_index", BigInteger, nullable=False, autoincrement=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    # RFC 8785 JSON of the DSSE envelope: the exact bytes hashed into the leaf.
    Column("leaf_data", LargeBinary, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("leaf_index", name="pk_log_leaves"),
    # Not unique: Ed25519 is deterministic, so signing one statement twice
    # gives one envelope twice; lookups by hash take the first index.
    Index("ix_log_leaves_leaf_hash", "leaf_hash"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("tree_size", BigInteger, nullable=False, autoincrement=False),
    Column("origin", String(255), nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    # Unix seconds, as in the signed body.
    Column("timestamp", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    PrimaryKeyConstraint("tree_size", name="pk_checkpoints"),
    ForeignKeyConstraint(["key_id"], ["signing_keys.key_id"], name="fk_checkpoints_signing_keys"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("receipt_id", String(26), nullable=False),
    Column("tenant", String(63), nullable=False),
    # ReceiptKind number.
    Column("kind", SmallInteger, nullable=False),
    Column("subject", String(512), nullable=False),
    Column("statement_digest", String(64), nullable=False),
    Column("log_index", BigInteger, nullable=False),
    Column("request_id", String(64), nullable=False),
    # SHA-256 of the request without its request id: a replay must match it.
    Column("request_hash", String(64), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verify_time", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("receipt_id", name="pk_receipts"),
    UniqueConstraint("log_index", name="uq_receipts_log_index"),
    UniqueConstraint("tenant", "request_id", name="uq_receipts_tenant_request_id"),
    ForeignKeyConstraint(["log_index"], ["log_leaves.leaf_index"], name="fk_receipts_log_leaves"),
    # ListReceipts: a tenant's receipts newest first, keyset-paginated.
    Index("ix_receipts_tenant_create_time", "tenant", "create_time", "log_index"),
)


def utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (SQLite hands naive ones back)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One row of ``signing_keys``."""

    key_id: str
    public_key: bytes
    sealed_private_key: bytes
    kek_id: str
    state: str
    create_time: datetime
    rotate_time: datetime | None
    request_id: str | None
    reason: str
    previous_key_id: str | None


@dataclass(frozen=True, slots=True)
class LeafRow:
    """One row of ``log_leaves``."""

    leaf_index: int
    leaf_hash: bytes
    leaf_data: bytes
    create_time: datetime


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One row of ``checkpoints``."""

    tree_size: int
    origin: str
    root_hash: bytes
    timestamp: int
    key_id: str
    signature: bytes
    note: str


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """One row of ``receipts``, with its leaf's data when read with it."""

    receipt_id: str
    tenant: str
    kind: int
    subject: str
    statement_digest: str
    log_index: int
    request_id: str
    request_hash: str
    create_time: datetime
    verified: bool
    verify_time: datetime | None
    leaf_data: bytes = b""


def _key(m: RowMapping) -> KeyRow:
    values = dict(m)
    values["create_time"] = _utc(values["create_time"])
    values["rotate_time"] = utc(values["rotate_time"])
    return KeyRow(**values)


def _receipt(m: RowMapping) -> ReceiptRow:
    values = dict(m)
    values["create_time"] = _utc(values["create_time"])
    values["verify_time"] = utc(values["verify_time"])
    return ReceiptRow(**values)


def _values(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


_RECEIPT_WITH_LEAF = select(*receipts.columns, log_leaves.c.leaf_data).join(
    log_leaves, log_leaves.c.leaf_index == receipts.c.log_index
)
# Hot statements, built once (appends run them per batch).
_RECEIPT_BY_REQUEST = _RECEIPT_WITH_LEAF.where(
    receipts.c.tenant == bindparam("tenant"), receipts.c.request_id == bindparam("request_id")
)
_LOG_STATE = select(
    select(func.max(log_leaves.c.leaf_index)).scalar_subquery(),
    select(signing_keys.c.key_id).where(signing_keys.c.state == "ACTIVE").scalar_subquery(),
)
_INSERT_LEAVES = insert(log_leaves)
_INSERT_CHECKPOINTS = insert(checkpoints)
_INSERT_RECEIPTS = insert(receipts)


def _upgrade_to_head(connection: Connection) -> None:
    upgrade_to_head(connection, MIGRATIONS_DIR, ALEMBIC_VERSION_TABLE, "log_leaves")


class SignerStore:
    """Persistence of keys, the log (leaves and checkpoints) and receipts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-write")
        self._read_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="signer-read")

    # -- plumbing ----------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrades the schema to the newest migration (blocking; at start-up)."""
        with self.engine.begin() as conn:
            _upgrade_to_head(conn)

    async def write(self, work: Callable[[Connection], R]) -> R:
        """Runs ``work`` in one transaction on the writer thread (committed if
        it returns, rolled back if it raises)."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        return await loop.run_in_executor(self._write_pool, call, self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Connection], R]) -> R:
        with self.engine.begin() as conn:
            return work(conn)

    async def read(self, work: Callable[[Connection], R]) -> R:
        """Runs ``work`` on a read connection on a reader thread."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        return await loop.run_in_executor(self._read_pool, call, self._on_connection, work)

    def _on_connection(self, work: Callable[[Connection], R]) -> R:
        with self.engine.connect() as conn:
            return work(conn)

    async def ping(self) -> None:
        """Raises unless the database answers (the readiness check)."""
        await self.read(lambda conn: conn.execute(text("SELECT 1")))

    async def close(self) -> None:
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self.engine.dispose()

    def lock_log(self, conn: Connection) -> None:
        """Serialises log writers across processes (PostgreSQL; SQLite has one
        writer already), until the transaction ends."""
        if self.is_postgres:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({LOG_LOCK_KEY})"))

    # -- keys ----------------------------------------------------------------------

    @staticmethod
    def keys(conn: Connection) -> list[KeyRow]:
        """Every key: ACTIVE first, then RETIRED most recently retired first."""
        rows = conn.execute(
            select(signing_keys).order_by(
                (signing_keys.c.state == "ACTIVE").desc(),
                signing_keys.c.rotate_time.desc(),
                signing_keys.c.create_time.desc(),
            )
        ).mappings()
        return [_key(m) for m in rows]

    @staticmethod
    def key_by_request(conn: Connection, request_id: str) -> KeyRow | None:
        row = (
            conn.execute(select(signing_keys).where(signing_keys.c.request_id == request_id))
            .mappings()
            .first()
        )
        return None if row is None else _key(row)

    @staticmethod
    def insert_key(conn: Connection, row: KeyRow) -> None:
        conn.execute(insert(signing_keys).values(**_values(row)))

    @staticmethod
    def retire_key(conn: Connection, key_id: str, at: datetime) -> None:
        conn.execute(
            update(signing_keys)
            .where(signing_keys.c.key_id == key_id, signing_keys.c.state == "ACTIVE")
            .values(state="RETIRED", rotate_time=at)
        )

    @staticmethod
    def last_rotate_time(conn: Connection) -> datetime | None:
        return utc(conn.execute(select(func.max(signing_keys.c.rotate_time))).scalar())

    # -- the log -------------------------------------------------------------------

    @staticmethod
    def log_size(conn: Connection) -> int:
        last = conn.execute(select(func.max(log_leaves.c.leaf_index))).scalar()
        return 0 if last is None else int(last) + 1

    @staticmethod
    def log_state(conn: Connection) -> tuple[int, str | None]:
        """The stored tree size and the ACTIVE key id, in one query."""
        row = conn.execute(_LOG_STATE).one()
        return (0 if row[0] is None else int(row[0]) + 1), row[1]

    @staticmethod
    def leaf_hashes(conn: Connection, start: int) -> list[bytes]:
        """Leaf hashes from index ``start`` on, in order."""
        rows = conn.execute(
            select(log_leaves.c.leaf_index, log_leaves.c.leaf_hash)
            .where(log_leaves.c.leaf_index >= start)
            .order_by(log_leaves.c.leaf_index)
        )
        hashes = []
        for expected, (index, leaf_hash) in enumerate(rows, start):
            if index != expected:
                raise RuntimeError(f"the log has a gap: leaf {expected} is missing")
            hashes.append(bytes(leaf_hash))
        return hashes

    @staticmethod
    def leaf(conn: Connection, leaf_index: int) -> LeafRow | None:
        row = (
            conn.execute(select(log_leaves).where(log_leaves.c.leaf_index == leaf_index))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return LeafRow(
            leaf_index=row["leaf_index"],
            leaf_hash=bytes(row["leaf_hash"]),
            leaf_data=bytes(row["leaf_data"]),
            create_time=_utc(row["create_time"]),
        )

    @staticmethod
    def leaf_index_of(conn: Connection, leaf_hash: bytes) -> int | None:
        value = conn.execute(
            select(func.min(log_leaves.c.leaf_index)).where(log_leaves.c.leaf_hash == leaf_hash)
        ).scalar()
        return None if value is None else int(value)

    @staticmethod
    def insert_checkpoint(conn: Connection, row: CheckpointRow) -> None:
        conn.execute(insert(checkpoints).values(**_values(row)))

    @staticmethod
    def checkpoint(conn: Connection, tree_size: int | None = None) -> CheckpointRow | None:
        """The checkpoint at ``tree_size``, or the latest."""
        query = select(checkpoints)
        if tree_size is None:
            query = query.order_by(checkpoints.c.tree_size.desc()).limit(1)
        else:
            query = query.where(checkpoints.c.tree_size == tree_size)
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["root_hash"] = bytes(values["root_hash"])
        values["signature"] = bytes(values["signature"])
        return CheckpointRow(**values)

    @staticmethod
    def append(
        conn: Connection,
        leaves: Sequence[LeafRow],
        new_checkpoints: Sequence[CheckpointRow],
        new_receipts: Sequence[ReceiptRow],
    ) -> None:
        """Inserts leaves, their checkpoints and their receipts (one transaction
        is the caller's)."""
        if leaves:
            conn.execute(_INSERT_LEAVES, [_values(r) for r in leaves])
        if new_checkpoints:
            conn.execute(_INSERT_CHECKPOINTS, [_values(r) for r in new_checkpoints])
        if new_receipts:
            rows = []
            for row in new_receipts:
                values = _values(row)
                del values["leaf_data"]
                rows.append(values)
            conn.execute(_INSERT_RECEIPTS, rows)

    # -- receipts ------------------------------------------------------------------

    @staticmethod
    def receipt(conn: Connection, receipt_id: str) -> ReceiptRow | None:
        row = (
            conn.execute(_RECEIPT_WITH_LEAF.where(receipts.c.receipt_id == receipt_id))
            .mappings()
            .first()
        )
        return None if row is None else _receipt(row)

    @staticmethod
    def receipt_by_request(conn: Connection, tenant: str, request_id: str) -> ReceiptRow | None:
        row = (
            conn.execute(_RECEIPT_BY_REQUEST, {"tenant": tenant, "request_id": request_id})
            .mappings()
            .first()
        )
        return None if row is None else _receipt(row)

    @staticmethod
    def receipt_at(conn: Connection, log_index: int) -> str | None:
        """The id of the receipt whose leaf is ``log_index``."""
        value = conn.execute(
            select(receipts.c.receipt_id).where(receipts.c.log_index == log_index)
        ).scalar()
        return None if value is None else str(value)

    @staticmethod
    def set_verified(conn: Connection, receipt_id: str, verified: bool, at: datetime) -> None:
        conn.execute(
            update(receipts)
            .where(receipts.c.receipt_id == receipt_id)
            .values(verified=verified, verify_time=at)
        )

    @staticmethod
    def list_receipts(
        conn: Connection,
        where: ColumnElement[bool] | None,
        *,
        by_log_index: bool,
        descending: bool,
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> list[ReceiptRow]:
        """A page of receipts with their leaves, keyset-paginated after the sort
        key ``after``: ``(log_index,)`` or ``(create_time, log_index)``."""
        query = _RECEIPT_WITH_LEAF
        if where is not None:
            query = query.where(where)
        columns = (
            [receipts.c.log_index]
            if by_log_index
            else [receipts.c.create_time, receipts.c.log_index]
        )
        if after is not None:
            query = query.where(_after(columns, after, descending))
        order = [c.desc() if descending else c.asc() for c in columns]
        rows = conn.execute(query.order_by(*order).limit(limit)).mappings()
        return [_receipt(m) for m in rows]


def _after(columns: list[Any], key: tuple[Any, ...], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the (lexicographic) sort order."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        beyond = column < key[i] if descending else column > key[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)
