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

The append path is the hot one (one per SignReceipt), so it is built for few
round trips: the writer thread keeps its own connection (no pool checkout and
no pre-ping per transaction), and :meth:`SignerStore.append` inserts a batch's
leaves, checkpoints and receipts as "insert unless present" and reports in the
same round trip whether all of them were new and the signing key is still
ACTIVE, so the log needs no read before it writes. The dialects differ only in
``SignerStore``'s section "dialect differences" (and the SQL it runs).
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
from sqlalchemy.engine import Connection, RootTransaction, RowMapping
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter, ColumnElement, TextClause

from maestro.runtime.migrations import upgrade_to_head

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_VERSION_TABLE = "signer_alembic_version"
"""Alembic's bookkeeping table, named per service so that services sharing one
PostgreSQL database keep separate migration histories."""
LOG_LOCK_KEY = 0x6D6165737472A006
"""PostgreSQL advisory lock serialising log appends and rotations across
signer processes sharing one database."""
_BEGIN_LOCKED = f"BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK_KEY})"

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


def _values(row: Any, *, exclude: str = "") -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__ if name != exclude}


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


def _upgrade_to_head(connection: Connection) -> None:
    upgrade_to_head(connection, MIGRATIONS_DIR, ALEMBIC_VERSION_TABLE, "log_leaves")


class SignerStore:
    """Persistence of keys, the log (leaves and checkpoints) and receipts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-write")
        self._read_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="signer-read")
        # The writer thread's own connection, used by it alone (see write).
        self._writer: Connection | None = None
        # append's statements by batch size (log.MAX_BATCH bounds the sizes).
        self._append_sql: dict[tuple[int, ...], list[TextClause]] = {}

    # -- plumbing ----------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrades the schema to the newest migration (blocking; at start-up)."""
        with self.engine.begin() as conn:
            _upgrade_to_head(conn)

    async def write(self, work: Callable[[Connection], R]) -> R:
        """Runs ``work`` in one transaction on the writer thread (committed if
        it returns, rolled back if it raises) that holds the log lock from its
        start: log writers in other processes sharing the database wait for it
        (PostgreSQL advisory lock; SQLite has one writer at a time anyway).

        The writer keeps one connection across transactions, so a transaction
        costs no pool checkout and no liveness ping. A connection found lost
        when the transaction begins (e.g. after a database restart) is
        replaced and the transaction begun again; one lost while ``work``
        runs (``DBAPIError.connection_invalidated``) is dropped, the error
        raised, and retrying is the caller's decision, because only it knows
        whether ``work`` may run twice."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        return await loop.run_in_executor(self._write_pool, call, self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Connection], R]) -> R:
        conn, transaction = self._begin()
        try:
            with transaction:
                return work(conn)
        except BaseException:
            if conn.invalidated:
                self._drop_writer()
            raise

    def _begin(self) -> tuple[Connection, RootTransaction]:
        """The writer's connection in a new transaction that holds the log
        lock. A connection found lost here, before anything ran in the
        transaction (what a pool pre-ping would catch), is replaced once."""
        for attempt in range(2):
            if self._writer is None:
                self._writer = self._connect_writer()
            conn = self._writer
            transaction = conn.begin()
            try:
                self._begin_locked(conn)
            except DBAPIError:
                transaction.rollback()
                if attempt or not conn.invalidated:
                    raise
                self._drop_writer()
                continue
            return conn, transaction
        raise AssertionError("unreachable")

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

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
        await asyncio.get_running_loop().run_in_executor(self._write_pool, self._drop_writer)
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self.engine.dispose()

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

    def append(
        self,
        conn: Connection,
        leaves: Sequence[LeafRow],
        new_checkpoints: Sequence[CheckpointRow],
        new_receipts: Sequence[ReceiptRow],
        key_id: str,
    ) -> bool:
        """Inserts leaves, their checkpoints and their receipts, each row only
        if no row with the same key (leaf index, tree size, receipt id, log
        index, tenant and request id) exists. Returns whether every row was
        inserted and ``key_id`` (the key that signed them) is still ACTIVE;
        when not, the caller must roll the transaction back, because its view
        of the log or of the keys was stale or a request id was replayed.

        Nothing is ever updated: a row that exists is left as it is. The
        transaction is the caller's."""
        tables = [
            (log_leaves, [_values(r) for r in leaves]),
            (checkpoints, [_values(r) for r in new_checkpoints]),
            (receipts, [_values(r, exclude="leaf_data") for r in new_receipts]),
        ]
        params: dict[str, Any] = {"key_id": key_id}
        for table, rows in tables:
            for i, row in enumerate(rows):
                params.update((f"{table.name}_{i}_{name}", value) for name, value in row.items())
        sizes = tuple(len(rows) for _, rows in tables)
        if not any(sizes):  # every item was a replay
            return True
        inserted, state = self._insert_new(conn, sizes, params)
        return inserted == [n for n in sizes if n] and state == "ACTIVE"

    # -- dialect differences (all of them) -------------------------------------------
    #
    # The writer: on PostgreSQL its connection is in autocommit mode and it
    # starts each transaction itself, with BEGIN and the advisory lock in one
    # round trip (a parameterless multi-statement query); the driver's commit
    # and rollback end it as usual. (psycopg would otherwise send BEGIN on its
    # own before the first statement: a round trip more.) SQLite begins
    # implicitly, and has one writer at a time anyway.
    #
    # append: one statement on PostgreSQL, four on SQLite (_append_statements).

    def _connect_writer(self) -> Connection:
        conn = self.engine.connect()
        if self.is_postgres:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def _begin_locked(self, conn: Connection) -> None:
        if self.is_postgres:
            conn.exec_driver_sql(_BEGIN_LOCKED)

    def _insert_new(
        self, conn: Connection, sizes: tuple[int, ...], params: dict[str, Any]
    ) -> tuple[list[int], str | None]:
        """Runs append's statements: how many rows each insert inserted, and
        the signing key's state after them."""
        statements = self._append_sql.get(sizes)
        if statements is None:
            statements = self._append_sql[sizes] = _append_statements(self.engine.dialect, sizes)
        if self.is_postgres:
            *inserted, state = conn.execute(statements[0], params).one()
            return [int(n) for n in inserted], state
        inserted = [len(conn.execute(s, params).all()) for s in statements[:-1]]
        return inserted, conn.execute(statements[-1], params).scalar()

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


# -- append's statements ------------------------------------------------------------

_APPEND_TABLES = (
    (log_leaves, log_leaves.c.leaf_index),
    (checkpoints, checkpoints.c.tree_size),
    (receipts, receipts.c.receipt_id),
)


def _append_statements(dialect: Dialect, sizes: tuple[int, ...]) -> list[TextClause]:
    """What :meth:`SignerStore.append` runs for ``sizes`` (leaves, checkpoints,
    receipts rows): per table ``INSERT ... VALUES ... ON CONFLICT DO NOTHING
    RETURNING key`` (the same SQL on both), then the signing key's state.
    Row ``i``'s column ``c`` of table ``t`` is the parameter ``t_i_c``.

    Written as typed ``text()``, built once per batch size: SQLAlchemy
    compiles a multi-row ``insert().values([...])`` anew on every execution.

    PostgreSQL: one statement (data-modifying CTEs, then a ``SELECT`` of how
    many rows each inserted and of the key state), so one round trip; its
    snapshot is taken after the advisory lock, which the transaction took
    when it began, in a statement of its own. SQLite has no data-modifying
    CTEs (and no round trips): the inserts one by one, then the key state."""
    # Only identifiers of this module's tables are spliced in (quoted); every
    # value is a bound parameter.
    quote = dialect.identifier_preparer.quote
    inserts: list[tuple[str, list[BindParameter[Any]]]] = []
    for (table, key), size in zip(_APPEND_TABLES, sizes, strict=True):
        if not size:
            continue
        binds = [
            bindparam(f"{table.name}_{i}_{c.name}", type_=c.type)
            for i in range(size)
            for c in table.columns
        ]
        width = len(table.columns)
        rows = ", ".join(
            "(" + ", ".join(f":{b.key}" for b in binds[i : i + width]) + ")"
            for i in range(0, len(binds), width)
        )
        columns = ", ".join(quote(c.name) for c in table.columns)
        sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES {rows}"  # noqa: S608
        sql += f" ON CONFLICT DO NOTHING RETURNING {quote(key.name)}"
        inserts.append((sql, binds))
    key_state = "SELECT state FROM signing_keys WHERE key_id = :key_id"
    if dialect.name == "postgresql":
        ctes = ", ".join(f"new_{i} AS ({sql})" for i, (sql, _) in enumerate(inserts))
        counts = ", ".join(f"(SELECT count(*) FROM new_{i})" for i in range(len(inserts)))  # noqa: S608
        binds = [b for _, bs in inserts for b in bs]
        return [text(f"WITH {ctes} SELECT {counts}, ({key_state})").bindparams(*binds)]
    return [*(text(sql).bindparams(*binds) for sql, binds in inserts), text(key_state)]
