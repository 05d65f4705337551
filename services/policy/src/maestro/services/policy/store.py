"""The policy service's own table, the decision log, and every query on it.

One row per decision: the columns the log is filtered and ordered on, and the
whole ``maestro.policy.v1.Decision`` as logged (serialized protobuf; its context
already redacted). The log is append-only: this module has no UPDATE, and
DELETE only for retention. ``request_id`` is unique, which is what makes Decide
idempotent: a second decision with a logged request id is not inserted, and its
caller gets the first one back.

Writes use a synchronous engine. On SQLite a decision batch commits on the
event loop itself: a one-row commit in WAL mode without fsync costs ~0.1 ms,
less than the two thread hops it would otherwise take (which, on a busy
machine, cost a durable Decide more than the evaluation). On PostgreSQL, whose
commit is a network round trip, a batch commits on one writer thread. Retention
trims run on that thread on either database, serialised with the inserts by a
lock, so an inline insert never waits on SQLite's file lock; so do SQLite's WAL
checkpoints, which the inline connection never runs itself (a checkpoint
copies and fsyncs ~4 MB every ~170 decisions, and in the commit that triggers
it, it was the p99 of Decide). Reads use the
async engine. SQLite and PostgreSQL alike, migrated by Alembic at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    and_,
    delete,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from maestro.runtime.migrations import upgrade_to_head

log = logging.getLogger("maestro.policy.log")
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CHECKPOINT_EVERY_COMMITS = 100
"""Decision-log commits on SQLite between two WAL checkpoints (each commit
writes ~6 pages: the table and its five indexes)."""
ALEMBIC_VERSION_TABLE = "policy_alembic_version"
"""Alembic's bookkeeping table, named per service so that services sharing one
PostgreSQL database keep separate migration histories."""

metadata = MetaData()
_TZ = DateTime(timezone=True)

decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(26), nullable=False),
    Column("request_id", String(64), nullable=False),
    # SHA-256 of the question (principal, action, resource, context): a reused
    # request id with another question is refused.
    Column("request_hash", String(64), nullable=False),
    Column("create_time", _TZ, nullable=False),
    # The principal's tenant and subject (who asked about whom).
    Column("tenant", String(255), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("action", String(128), nullable=False),
    Column("allow", Boolean, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_name", String(1024), nullable=False),
    Column("resource_tenant", String(255), nullable=False),
    Column("bundle_revision", String(80), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("enforcer", String(255), nullable=False),
    # The Decision message as logged (serialized protobuf).
    Column("decision", LargeBinary, nullable=False),
    PrimaryKeyConstraint("decision_id", name="pk_decisions"),
    UniqueConstraint("request_id", name="uq_decisions_request_id"),
    # ListDecisions: a tenant's decisions (as actor or as resource owner), by time.
    Index("ix_decisions_tenant_create_time", "tenant", "create_time", "decision_id"),
    Index(
        "ix_decisions_resource_tenant_create_time",
        "resource_tenant",
        "create_time",
        "decision_id",
    ),
    # Retention trims by age.
    Index("ix_decisions_create_time", "create_time"),
)


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One row of the decision log."""

    decision_id: str
    request_id: str
    request_hash: str
    create_time: datetime
    tenant: str
    subject: str
    action: str
    allow: bool
    resource_type: str
    resource_name: str
    resource_tenant: str
    bundle_revision: str
    cached: bool
    enforcer: str
    decision: bytes


_COLUMNS = tuple(f.name for f in fields(DecisionRow))


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """The decision already logged under a request id."""

    request_hash: str
    decision: bytes


def utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _upgrade_to_head(connection: Connection) -> None:
    upgrade_to_head(connection, MIGRATIONS_DIR, ALEMBIC_VERSION_TABLE, "decisions")


class DecisionStore:
    """The decision log table."""

    def __init__(self, engine: AsyncEngine, writer: Engine) -> None:
        self.engine = engine
        self._writer = writer
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="policy-log-writer")
        # On SQLite, inserts commit inline on the event loop (module docstring).
        self._appender = _SqliteAppender(writer) if writer.dialect.name == "sqlite" else None
        self._write_lock = asyncio.Lock()
        self._checkpoint: asyncio.Task[None] | None = None

    async def migrate(self) -> None:
        """Upgrades the schema to the newest migration (SQLite and PostgreSQL;
        concurrent callers on PostgreSQL serialise on an advisory lock)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        self._writer_thread.shutdown(wait=True)
        if self._appender is not None:
            self._appender.close()
        self._writer.dispose()
        await self.engine.dispose()

    # -- writes --------------------------------------------------------------------

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> dict[str, LoggedRequest]:
        """Appends ``rows`` in one transaction. A row whose request id is logged
        already (by an earlier batch, or earlier in this one) is not inserted;
        the result maps each such row's decision id to what was logged first."""
        async with self._write_lock:
            if self._appender is not None:
                logged = self._insert(rows)
                self._checkpoint_when_due()
                return logged
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, self._insert, rows)

    def _insert(self, rows: Sequence[DecisionRow]) -> dict[str, LoggedRequest]:
        if self._appender is not None:
            inserted = self._appender.append(rows)
        else:
            statement = (
                postgresql.insert(decisions)
                .on_conflict_do_nothing(index_elements=["request_id"])
                .returning(decisions.c.decision_id)
            )
            with self._writer.begin() as conn:
                values = [{name: getattr(r, name) for name in _COLUMNS} for r in rows]
                inserted = set(conn.execute(statement, values).scalars().all())
        skipped = [r for r in rows if r.decision_id not in inserted]
        if not skipped:
            return {}
        # Logged rows never change (retention only deletes), so reading them
        # after the commit sees what the conflicting insert saw.
        with self._writer.connect() as conn:
            found = conn.execute(
                select(
                    decisions.c.request_id, decisions.c.request_hash, decisions.c.decision
                ).where(decisions.c.request_id.in_({r.request_id for r in skipped}))
            ).all()
        logged = {f.request_id: LoggedRequest(f.request_hash, f.decision) for f in found}
        return {r.decision_id: logged[r.request_id] for r in skipped if r.request_id in logged}

    def _checkpoint_when_due(self) -> None:
        if self._appender is None or self._appender.commits < CHECKPOINT_EVERY_COMMITS:
            return
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._appender.commits = 0
        self._checkpoint = asyncio.create_task(self._run_checkpoint(), name="policy-log-checkpoint")

    async def _run_checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer_thread, self._wal_checkpoint)
        except Exception as exc:  # the next one retries; the WAL only grows meanwhile
            log.warning("decision log: WAL checkpoint failed: %s", exc)

    def _wal_checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting for readers or writers.
        with self._writer.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    async def trim(self, before: datetime, limit: int = 10_000) -> int:
        """Deletes up to ``limit`` decisions made before ``before`` (retention)."""
        async with self._write_lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, self._trim, before, limit)

    def _trim(self, before: datetime, limit: int) -> int:
        oldest = (
            select(decisions.c.decision_id)
            .where(decisions.c.create_time < before)
            .order_by(decisions.c.create_time)
            .limit(limit)
        )
        with self._writer.begin() as conn:
            result = conn.execute(
                delete(decisions).where(decisions.c.decision_id.in_(oldest.scalar_subquery()))
            )
            return int(result.rowcount or 0)

    # -- reads ----------------------------------------------------------------------

    async def get_decision(self, decision_id: str) -> DecisionRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(decisions).where(decisions.c.decision_id == decision_id))
            ).first()
        return _row(row._mapping) if row is not None else None

    async def find_request(self, request_id: str) -> LoggedRequest | None:
        """What was logged under ``request_id``, if anything."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(decisions.c.request_hash, decisions.c.decision).where(
                        decisions.c.request_id == request_id
                    )
                )
            ).first()
        return LoggedRequest(row.request_hash, row.decision) if row is not None else None

    async def list_decisions(
        self,
        tenant: str,
        where: ColumnElement[bool] | None,
        after: tuple[datetime, str] | None,
        limit: int,
        *,
        ascending: bool,
    ) -> list[DecisionRow]:
        """Decisions about ``tenant`` (as the principal's tenant or the
        resource's), matching ``where``, after the keyset ``after`` in the order
        asked for, at most ``limit``."""
        c = decisions.c
        conditions: list[ColumnElement[bool]] = [
            or_(c.tenant == tenant, c.resource_tenant == tenant)
        ]
        if where is not None:
            conditions.append(where)
        if after is not None:
            time, decision_id = after
            if ascending:
                conditions.append(
                    or_(
                        c.create_time > time,
                        and_(c.create_time == time, c.decision_id > decision_id),
                    )
                )
            else:
                conditions.append(
                    or_(
                        c.create_time < time,
                        and_(c.create_time == time, c.decision_id < decision_id),
                    )
                )
        order = (
            (c.create_time.asc(), c.decision_id.asc())
            if ascending
            else (c.create_time.desc(), c.decision_id.desc())
        )
        query = select(decisions).where(and_(*conditions)).order_by(*order).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_row(r._mapping) for r in rows]


class _SqliteAppender:
    """Decision inserts on SQLite, straight on one DBAPI connection held for
    the store's life: the statement compiled once by SQLAlchemy, the values
    converted by the columns' own bind processors. A one-row commit costs a
    third of the same insert through a SQLAlchemy ``Connection``, and it runs
    on the event loop (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = (
            sqlite.insert(decisions)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(decisions.c.decision_id)
            .compile(dialect=dialect, column_keys=list(_COLUMNS))
        )
        self._sql = str(compiled)
        self._columns = [
            (name, decisions.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        ]
        self._connection = engine.raw_connection()
        # Checkpoints run on the writer thread (DecisionStore), never in this
        # connection's commits.
        self._connection.execute("PRAGMA wal_autocheckpoint=0")
        self.commits = 0
        """Commits since the last checkpoint was started."""

    def append(self, rows: Sequence[DecisionRow]) -> set[str]:
        """Inserts ``rows`` in one transaction; the decision ids inserted (a row
        whose request id is logged already is not)."""
        inserted: set[str] = set()
        cursor = self._connection.cursor()
        try:
            for row in rows:
                values = [
                    getattr(row, name) if convert is None else convert(getattr(row, name))
                    for name, convert in self._columns
                ]
                cursor.execute(self._sql, values)
                inserted.update(found[0] for found in cursor.fetchall())
            self._connection.commit()
            self.commits += 1
        except BaseException:
            self._connection.rollback()
            raise
        finally:
            cursor.close()
        return inserted

    def close(self) -> None:
        self._connection.close()


def _row(mapping: object) -> DecisionRow:
    values = dict(mapping)  # type: ignore[call-overload]
    values["create_time"] = utc(values["create_time"])
    return DecisionRow(**values)
