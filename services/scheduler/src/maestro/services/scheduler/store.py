"""The scheduler's own tables and every query on them. No other service reads them.

The journal is the source of truth: ``executions`` (one row per execution),
``step_runs`` (checkpointed step state and outputs), ``attempts`` (one row per
step attempt, which doubles as the SQL task queue), ``execution_events`` (the
gapless, append-only event log) and ``human_tasks``. ``outbox`` holds tasks
waiting to be copied to an external dispatch index (Redis Streams); it is
written in the same transaction as the attempt, so the index can always be
rebuilt from the journal. ``pending_receipts`` is the same pattern for
provenance: a finishing transaction writes one row per finish, and the receipt
relay (receipts.py) signs it and records the receipt on the execution.

Concurrency: every transition of an execution runs in one transaction that
first locks the execution's row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
SQLite one writer at a time, serialised in-process). Transactions that touch
several executions lock them in id order, and leasing skips executions that are
locked (``SKIP LOCKED``), so pollers never wait on each other or deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
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
    delete,
    false,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from maestro.runtime.migrations import upgrade_to_head
from maestro.scheduler.v1 import execution_pb2, task_pb2

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_VERSION_TABLE = "scheduler_alembic_version"

metadata = MetaData()
R = TypeVar("R")
_TZ = DateTime(timezone=True)

executions = Table(
    "executions",
    metadata,
    Column("execution_id", String(26), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("definition_digest", String(64), nullable=False),
    Column("creator", String(255), nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("create_time", _TZ, nullable=False),
    Column("start_time", _TZ, nullable=True),
    Column("end_time", _TZ, nullable=True),
    Column("update_time", _TZ, nullable=False),
    Column("expire_time", _TZ, nullable=True),
    Column("timeout_ms", BigInteger, nullable=True),
    Column("request_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("correlation_id", String(128), nullable=False),
    Column("parent_execution_id", String(26), nullable=False),
    Column("parent_step_id", String(255), nullable=False),
    Column("labels", Text, nullable=False),
    Column("last_event_sequence", BigInteger, nullable=False),
    Column("completions", Integer, nullable=False),
    Column("etag", String(32), nullable=False),
    # `receipts/{receipt}` of the last finish's EXECUTION receipt; "" until it
    # is signed, and again after a retry or compensation.
    Column("receipt", String(64), nullable=False, server_default=""),
    # The starter's principal beyond tenant and subject (JSON, see
    # `service.started_by_json`); "" for executions started before 0003.
    Column("started_by", Text, nullable=False, server_default=""),
    # Policy decisions taken for the execution, in time order: JSON
    # `[[sequence, decision_id, step_id], ...]`, `sequence` being the last
    # event sequence before the decision (so a receipt of the finish at
    # sequence F takes those with sequence < F).
    Column("policy_decisions", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("execution_id", name="pk_executions"),
    UniqueConstraint("tenant", "request_id", name="uq_executions_tenant_request_id"),
    Index("ix_executions_tenant_create_time", "tenant", "create_time", "execution_id"),
    Index("ix_executions_state_expire_time", "state", "expire_time"),
)

plans = Table(
    "plans",
    metadata,
    Column("definition_digest", String(64), nullable=False),
    Column("plan", LargeBinary, nullable=False),
    Column("definition", LargeBinary, nullable=False),
    Column("create_time", _TZ, nullable=False),
    PrimaryKeyConstraint("definition_digest", name="pk_plans"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("execution_id", String(26), nullable=False),
    Column("step_id", String(255), nullable=False),
    # For a LOOP iteration: the loop's step id; "" for plan steps.
    Column("parent_step", String(255), nullable=False),
    Column("loop_index", Integer, nullable=False),
    Column("type", SmallInteger, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("input", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("item", Text, nullable=True),
    Column("start_time", _TZ, nullable=True),
    Column("end_time", _TZ, nullable=True),
    Column("next_attempt_time", _TZ, nullable=True),
    Column("attempt_count", Integer, nullable=False),
    Column("attempt_base", Integer, nullable=False),
    # Why a SKIPPED step was skipped: `branch` (condition not taken; survives
    # RetryExecution) or `ended` (the execution ended first; retried).
    Column("skip_reason", String(16), nullable=False),
    Column("human_task", String(64), nullable=False),
    Column("child_execution", String(64), nullable=False),
    Column("timer_fire_time", _TZ, nullable=True),
    # Set while a DELAY timer is armed; cleared when it fires.
    Column("timer_due", _TZ, nullable=True),
    # Order of completion within the execution (compensation runs in reverse).
    Column("completion_order", Integer, nullable=False),
    # Attempts of the compensate handler so far (their own numbering and budget).
    Column("compensation_attempts", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("execution_id", "step_id", name="pk_step_runs"),
    Index("ix_step_runs_timer_due", "timer_due"),
    Index("ix_step_runs_type_state", "type", "state"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("task_id", String(320), nullable=False),
    Column("execution_id", String(26), nullable=False),
    Column("step_id", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("task_queue", String(63), nullable=False),
    Column("handler", String(255), nullable=False),
    Column("config", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("step_output", Text, nullable=True),
    Column("labels", Text, nullable=False),
    Column("timeout_ms", BigInteger, nullable=False),
    Column("idempotency_key", String(320), nullable=False),
    Column("schedule_time", _TZ, nullable=False),
    # Not leasable before this (retry backoff).
    Column("visible_time", _TZ, nullable=False),
    Column("lease_id", String(32), nullable=False),
    Column("lease_expire_time", _TZ, nullable=True),
    Column("worker_identity", String(256), nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("start_time", _TZ, nullable=True),
    Column("deadline", _TZ, nullable=True),
    Column("end_time", _TZ, nullable=True),
    Column("error", Text, nullable=True),
    Column("progress", Text, nullable=True),
    Column("traceparent", String(64), nullable=False),
    # The dispatch index's handle on the attempt while leased (Redis entry id).
    Column("dispatch_ref", String(64), nullable=False),
    PrimaryKeyConstraint("task_id", name="pk_attempts"),
    Index("ix_attempts_queue_state_visible", "task_queue", "state", "visible_time"),
    Index("ix_attempts_state_lease_expire", "state", "lease_expire_time"),
    Index("ix_attempts_state_deadline", "state", "deadline"),
    Index("ix_attempts_execution_step", "execution_id", "step_id"),
)

execution_events = Table(
    "execution_events",
    metadata,
    Column("execution_id", String(26), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("type", SmallInteger, nullable=False),
    Column("subject", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("time", _TZ, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("execution_id", "sequence", name="pk_execution_events"),
)

human_tasks = Table(
    "human_tasks",
    metadata,
    Column("task_id", String(26), nullable=False),
    Column("tenant", String(63), nullable=False),
    Column("execution_id", String(26), nullable=False),
    Column("step_id", String(255), nullable=False),
    Column("assignees", Text, nullable=False),
    Column("form_schema", Text, nullable=False),
    Column("instructions", Text, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("due_time", _TZ, nullable=True),
    Column("result", Text, nullable=True),
    Column("completed_by", String(255), nullable=False),
    Column("create_time", _TZ, nullable=False),
    Column("update_time", _TZ, nullable=False),
    Column("close_time", _TZ, nullable=True),
    Column("etag", String(32), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    PrimaryKeyConstraint("task_id", name="pk_human_tasks"),
    Index("ix_human_tasks_tenant_state_due", "tenant", "state", "due_time"),
    Index("ix_human_tasks_execution", "execution_id"),
)

requests = Table(
    "requests",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("method", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("execution_id", String(26), nullable=False),
    Column("create_time", _TZ, nullable=False),
    PrimaryKeyConstraint("tenant", "method", "request_id", name="pk_requests"),
)

pending_receipts = Table(
    "pending_receipts",
    metadata,
    # One row per finish of an execution that still needs its EXECUTION
    # receipt (the finish's terminal event is `finish_sequence`); written in the
    # finishing transaction when signing is on, deleted when the receipt is
    # recorded or the finish was superseded. See receipts.py.
    Column("execution_id", String(26), nullable=False),
    Column("finish_sequence", BigInteger, nullable=False),
    Column("create_time", _TZ, nullable=False),
    # Set once the relay gave up waiting for the version's receipt: the
    # statement is then always built without it, so a re-sign after a crash
    # or a lost reply sends the same bytes (the signer dedupes by request id).
    Column("without_version_receipt", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("execution_id", "finish_sequence", name="pk_pending_receipts"),
    Index("ix_pending_receipts_create_time", "create_time"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("task_id", String(320), nullable=False),
    Column("task_queue", String(63), nullable=False),
    Column("visible_time", _TZ, nullable=False),
    PrimaryKeyConstraint("task_id", name="pk_outbox"),
    Index("ix_outbox_visible_time", "visible_time"),
)


def now() -> datetime:
    return datetime.now(UTC)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# -- rows -------------------------------------------------------------------------


@dataclass(slots=True)
class ExecutionRow:
    execution_id: str
    tenant: str
    workflow_id: str
    version: str
    alias: str
    definition_digest: str
    creator: str
    state: int
    inputs: str
    outputs: str | None
    error: str | None
    create_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    update_time: datetime
    expire_time: datetime | None
    timeout_ms: int | None
    request_id: str
    request_hash: str
    correlation_id: str
    parent_execution_id: str
    parent_step_id: str
    labels: str
    last_event_sequence: int
    completions: int
    etag: str
    receipt: str = ""
    started_by: str = ""
    policy_decisions: str = ""


@dataclass(slots=True)
class StepRow:
    execution_id: str
    step_id: str
    parent_step: str
    loop_index: int
    type: int
    state: int
    input: str | None = None
    output: str | None = None
    error: str | None = None
    item: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    next_attempt_time: datetime | None = None
    attempt_count: int = 0
    attempt_base: int = 0
    skip_reason: str = ""
    human_task: str = ""
    child_execution: str = ""
    timer_fire_time: datetime | None = None
    timer_due: datetime | None = None
    completion_order: int = 0
    compensation_attempts: int = 0


@dataclass(slots=True)
class AttemptRow:
    task_id: str
    execution_id: str
    step_id: str
    attempt: int
    kind: int
    state: int
    task_queue: str
    handler: str
    config: str
    input: str
    step_output: str | None
    labels: str
    timeout_ms: int
    idempotency_key: str
    schedule_time: datetime
    visible_time: datetime
    lease_id: str = ""
    lease_expire_time: datetime | None = None
    worker_identity: str = ""
    deliveries: int = 0
    start_time: datetime | None = None
    deadline: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None
    progress: str | None = None
    traceparent: str = ""
    dispatch_ref: str = ""


@dataclass(slots=True)
class EventRow:
    execution_id: str
    sequence: int
    type: int
    subject: str
    attempt: int
    time: datetime
    data: str


@dataclass(frozen=True, slots=True)
class PendingFinish:
    """One ``pending_receipts`` row."""

    create_time: datetime
    execution_id: str
    finish_sequence: int
    without_version_receipt: bool

    @property
    def position(self) -> tuple[datetime, str, int]:
        """Its place in the outbox's order."""
        return (self.create_time, self.execution_id, self.finish_sequence)


@dataclass(frozen=True, slots=True)
class AttemptBrief:
    """What a receipt needs of one RUN attempt."""

    step_id: str
    attempt: int
    start_time: datetime | None
    error: str | None


@dataclass(slots=True)
class FinishRecord:
    """An execution as its receipt attests it (see ``Store.finish_records``)."""

    execution: ExecutionRow
    steps: list[StepRow] = field(default_factory=list)
    attempts: list[AttemptBrief] = field(default_factory=list)
    moved_sequence: int = 0
    """Sequence of its last retry or compensation start; 0 if none."""


@dataclass(slots=True)
class HumanTaskRow:
    task_id: str
    tenant: str
    execution_id: str
    step_id: str
    assignees: str
    form_schema: str
    instructions: str
    state: int
    due_time: datetime | None
    result: str | None
    completed_by: str
    create_time: datetime
    update_time: datetime
    close_time: datetime | None
    etag: str
    request_id: str = ""
    request_hash: str = ""


_TIME_FIELDS: dict[type, tuple[str, ...]] = {}


def _row(cls: type[Any], mapping: Mapping[str, Any] | RowMapping) -> Any:
    times = _TIME_FIELDS.get(cls)
    if times is None:
        times = tuple(f.name for f in fields(cls) if "datetime" in str(f.type))
        _TIME_FIELDS[cls] = times
    values = {f.name: mapping[f.name] for f in fields(cls)}
    for name in times:
        values[name] = utc(values[name])
    return cls(**values)


_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}
_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _fields_of(row: Any) -> tuple[Any, ...]:
    getter = _GETTERS.get(type(row))
    if getter is None:
        getter = _GETTERS[type(row)] = operator.attrgetter(*_names(type(row)))
    return getter(row)


def _values(row: Any) -> dict[str, Any]:
    return dict(zip(_names(type(row)), _fields_of(row), strict=True))


# -- the unit of work --------------------------------------------------------------


@dataclass
class Unit:
    """One execution loaded under its lock: the orchestrator mutates these
    objects and records new ones; :meth:`Store.flush` writes the difference."""

    execution: ExecutionRow
    steps: dict[str, StepRow]
    attempts: dict[str, AttemptRow] = field(default_factory=dict)
    human_tasks: dict[str, HumanTaskRow] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    new_steps: set[str] = field(default_factory=set)
    new_attempts: set[str] = field(default_factory=set)
    new_human_tasks: set[str] = field(default_factory=set)
    is_new: bool = False
    close_human_tasks: bool = False
    """Set when the execution ended: open human tasks are cancelled at flush."""
    _snapshot: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)

    def remember(self) -> None:
        """Snapshots the loaded state, to find what changed at flush time
        (shallow tuples of the fields: every field is immutable)."""
        self._snapshot = {("execution", ""): _fields_of(self.execution)}
        for key, step in self.steps.items():
            self._snapshot[("step", key)] = _fields_of(step)
        for key, attempt in self.attempts.items():
            self._snapshot[("attempt", key)] = _fields_of(attempt)
        for key, task in self.human_tasks.items():
            self._snapshot[("human", key)] = _fields_of(task)

    def changed(self, kind: str, key: str, row: Any) -> bool:
        return self._snapshot.get((kind, key)) != _fields_of(row)

    def add_step(self, step: StepRow) -> None:
        self.steps[step.step_id] = step
        self.new_steps.add(step.step_id)

    def add_attempt(self, attempt: AttemptRow) -> None:
        self.attempts[attempt.task_id] = attempt
        self.new_attempts.add(attempt.task_id)

    def add_human_task(self, task: HumanTaskRow) -> None:
        self.human_tasks[task.task_id] = task
        self.new_human_tasks.add(task.task_id)


_ORDER: tuple[str, ...] = (
    "executions",
    "step_runs",
    "attempts",
    "human_tasks",
    "execution_events",
)


@dataclass
class _Changes:
    """The rows to insert and update for a set of units, batched per table."""

    inserts: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {t: [] for t in _ORDER}
    )
    updates: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {t: [] for t in _ORDER}
    )

    def collect(self, unit: Unit) -> None:
        if unit.is_new:
            self.inserts["executions"].append(_values(unit.execution))
        elif unit.changed("execution", "", unit.execution):
            self.updates["executions"].append(_values(unit.execution))
        self._rows(unit, "step", "step_runs", unit.steps, unit.new_steps)
        self._rows(unit, "attempt", "attempts", unit.attempts, unit.new_attempts)
        self._rows(unit, "human", "human_tasks", unit.human_tasks, unit.new_human_tasks)
        self.inserts["execution_events"].extend(_values(e) for e in unit.events)

    def _rows(
        self, unit: Unit, kind: str, table: str, rows: Mapping[str, Any], new: set[str]
    ) -> None:
        for key, row in rows.items():
            if key in new:
                self.inserts[table].append(_values(row))
            elif unit.changed(kind, key, row):
                self.updates[table].append(_values(row))

    def write(self, conn: Connection) -> None:
        for name in _ORDER:
            statements = _statements(name)
            if self.inserts[name]:
                conn.execute(statements.insert, self.inserts[name])
            if self.updates[name]:
                keys = statements.keys
                rows = [
                    {(f"b_{k}" if k in keys else k): v for k, v in r.items()}
                    for r in self.updates[name]
                ]
                conn.execute(statements.update, rows)


@dataclass(frozen=True)
class _TableStatements:
    """Statements built once per table: constructing SQLAlchemy statements per
    transaction cost more than running them."""

    insert: Any
    update: Any
    keys: frozenset[str]


_STATEMENTS: dict[str, _TableStatements] = {}


def _statements(name: str) -> _TableStatements:
    found = _STATEMENTS.get(name)
    if found is None:
        table = metadata.tables[name]
        keys = [c.name for c in table.primary_key.columns]
        found = _STATEMENTS[name] = _TableStatements(
            insert=insert(table),
            update=update(table)
            .where(*(table.c[k] == bindparam(f"b_{k}") for k in keys))
            .values({c.name: bindparam(c.name) for c in table.c if c.name not in keys}),
            keys=frozenset(keys),
        )
    return found


FINISH_EVENTS = frozenset(
    {execution_pb2.EVENT_TYPE_EXECUTION_SUCCEEDED, execution_pb2.EVENT_TYPE_EXECUTION_FAILED,
     execution_pb2.EVENT_TYPE_EXECUTION_CANCELLED, execution_pb2.EVENT_TYPE_EXECUTION_TIMED_OUT,
     execution_pb2.EVENT_TYPE_EXECUTION_COMPENSATED}
)  # fmt: skip
"""The terminal event of each way an execution finishes (one per finish)."""
MOVE_ON_EVENTS = (
    execution_pb2.EVENT_TYPE_EXECUTION_RETRIED,
    execution_pb2.EVENT_TYPE_COMPENSATION_STARTED,
)
"""Events that take a finished execution out of its finish (a new run follows)."""

_IDS: Any = bindparam("ids", expanding=True)
_INSERT_PENDING_RECEIPT = insert(pending_receipts)
_SELECT_EXECUTION = select(executions).where(
    executions.c.execution_id == bindparam("execution_id"),
    executions.c.tenant == bindparam("tenant"),
)
_SELECT_EXECUTION_BY_REQUEST = select(executions).where(
    executions.c.tenant == bindparam("tenant"),
    executions.c.request_id == bindparam("request_id"),
)
_SELECT_STARTED_REQUESTS = select(executions.c.tenant, executions.c.request_id).where(
    tuple_(executions.c.tenant, executions.c.request_id).in_(bindparam("requests", expanding=True))
)
_SELECT_REQUEST = select(requests.c.request_hash, requests.c.execution_id).where(
    requests.c.tenant == bindparam("tenant"),
    requests.c.method == bindparam("method"),
    requests.c.request_id == bindparam("request_id"),
)
_TIMELINE_STEPS = select(step_runs).where(step_runs.c.execution_id == bindparam("execution_id"))
_TIMELINE_ATTEMPTS = (
    select(attempts)
    .where(attempts.c.execution_id == bindparam("execution_id"))
    .order_by(attempts.c.step_id, attempts.c.kind, attempts.c.attempt)
)
_LIST_EVENTS = (
    select(execution_events)
    .where(
        execution_events.c.execution_id == bindparam("execution_id"),
        execution_events.c.sequence > bindparam("after"),
    )
    .order_by(execution_events.c.sequence)
    .limit(bindparam("limit"))
)
_LEASABLE_SCHEDULED = (
    select(attempts.c.task_id, attempts.c.execution_id)
    .where(
        attempts.c.task_queue == bindparam("queue"),
        attempts.c.state == 1,
        attempts.c.visible_time <= bindparam("at"),
    )
    .order_by(attempts.c.visible_time)
    .limit(bindparam("limit"))
)
_LEASABLE_EXPIRED = (
    select(attempts.c.task_id, attempts.c.execution_id)
    .where(
        attempts.c.task_queue == bindparam("queue"),
        attempts.c.state == 2,
        attempts.c.lease_expire_time < bindparam("at"),
    )
    .order_by(attempts.c.lease_expire_time)
    .limit(bindparam("limit"))
)
_SELECT_EXECUTIONS = (
    select(executions)
    .where(executions.c.execution_id.in_(_IDS))
    .order_by(executions.c.execution_id)
)
_LOCK_EXECUTIONS = {
    skip: _SELECT_EXECUTIONS.with_for_update(skip_locked=skip) for skip in (False, True)
}
_SELECT_STEPS = select(step_runs).where(step_runs.c.execution_id.in_(_IDS))
_EXECUTION_VERSIONS = select(
    executions.c.execution_id, executions.c.tenant, executions.c.workflow_id, executions.c.version
).where(executions.c.execution_id.in_(_IDS))
_RUN_ATTEMPTS = select(
    attempts.c.execution_id,
    attempts.c.step_id,
    attempts.c.attempt,
    attempts.c.start_time,
    attempts.c.error,
).where(attempts.c.execution_id.in_(_IDS), attempts.c.kind == task_pb2.TASK_KIND_RUN)
_MOVED_ON = (
    select(execution_events.c.execution_id, func.max(execution_events.c.sequence))
    .where(
        execution_events.c.execution_id.in_(_IDS),
        execution_events.c.type.in_(MOVE_ON_EVENTS),
    )
    .group_by(execution_events.c.execution_id)
)
_SELECT_ACTIVE_ATTEMPTS = select(attempts).where(
    attempts.c.execution_id.in_(_IDS), attempts.c.state.in_((1, 2))
)


# -- the store -----------------------------------------------------------------------


def _upgrade_to_head(connection: Connection) -> None:
    upgrade_to_head(connection, MIGRATIONS_DIR, ALEMBIC_VERSION_TABLE, "executions")


class Store:
    """Persistence of executions, steps, attempts, events and human tasks."""

    def __init__(self, engine: AsyncEngine, writer: Engine, *, receipts: bool = False) -> None:
        """``receipts``: signing is on, so every finish writes a pending receipt."""
        self.engine = engine
        self.writer = writer
        self.receipts = receipts
        self.is_sqlite = engine.dialect.name == "sqlite"
        # Write transactions run whole on a thread with a synchronous connection:
        # one hop from the event loop per transaction, not one per statement, so
        # row locks (and SQLite's single writer lock) are held for as little time
        # as the SQL takes. SQLite has one writer thread.
        self._write_pool = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 8, thread_name_prefix="scheduler-write"
        )
        self._read_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scheduler-read")

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def write(self, work: Callable[[Connection], R]) -> R:
        """Runs ``work`` in one write transaction (committed if it returns,
        rolled back if it raises) on a writer thread."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run  # logs and identity follow onto the thread
        return await loop.run_in_executor(self._write_pool, call, self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Connection], R]) -> R:
        with self.writer.begin() as conn:
            return work(conn)

    async def query(self, work: Callable[[Connection], R]) -> R:
        """Runs ``work`` on a synchronous read connection on a reader thread."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        return await loop.run_in_executor(self._read_pool, call, self._on_connection, work)

    def _on_connection(self, work: Callable[[Connection], R]) -> R:
        with self.writer.connect() as conn:
            return work(conn)

    async def close(self) -> None:
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self.writer.dispose()
        await self.engine.dispose()

    # -- loading units ---------------------------------------------------------------

    def lock_executions(
        self, conn: Connection, execution_ids: Iterable[str], *, skip_locked: bool = False
    ) -> list[ExecutionRow]:
        """Locks and returns the executions (in id order); with ``skip_locked``
        executions locked by another transaction are left out."""
        ids = sorted(set(execution_ids))
        if not ids:
            return []
        query = _SELECT_EXECUTIONS if self.is_sqlite else _LOCK_EXECUTIONS[skip_locked]
        rows = conn.execute(query, {"ids": ids}).mappings().all()
        return [_row(ExecutionRow, r) for r in rows]

    def load_units(
        self,
        conn: Connection,
        execution_ids: Iterable[str],
        *,
        skip_locked: bool = False,
        with_active_attempts: bool = False,
    ) -> dict[str, Unit]:
        """Locks executions and loads their steps (and, when asked, their
        scheduled or running attempts) into units."""
        rows = self.lock_executions(conn, execution_ids, skip_locked=skip_locked)
        units = {r.execution_id: Unit(r, {}) for r in rows}
        if not units:
            return units
        ids = list(units)
        for mapping in conn.execute(_SELECT_STEPS, {"ids": ids}).mappings():
            step = _row(StepRow, mapping)
            units[step.execution_id].steps[step.step_id] = step
        if with_active_attempts:
            for mapping in conn.execute(_SELECT_ACTIVE_ATTEMPTS, {"ids": ids}).mappings():
                attempt = _row(AttemptRow, mapping)
                units[attempt.execution_id].attempts[attempt.task_id] = attempt
        for unit in units.values():
            unit.remember()
        return units

    def _load_attempts(self, conn: Connection, units: Mapping[str, Unit], where: Any) -> None:
        result = conn.execute(select(attempts).where(where))
        for mapping in result.mappings():
            attempt = _row(AttemptRow, mapping)
            unit = units.get(attempt.execution_id)
            if unit is not None and attempt.task_id not in unit.attempts:
                unit.attempts[attempt.task_id] = attempt

    def load_human_task(self, conn: Connection, unit: Unit, task_id: str) -> None:
        row = (
            (conn.execute(select(human_tasks).where(human_tasks.c.task_id == task_id)))
            .mappings()
            .first()
        )
        if row is not None:
            task = _row(HumanTaskRow, row)
            unit.human_tasks[task_id] = task
            unit._snapshot[("human", task_id)] = _fields_of(task)

    # -- writing units -----------------------------------------------------------------

    def flush(self, conn: Connection, units: Iterable[Unit]) -> int:
        """Writes what the orchestrator changed, in a few batched statements;
        returns how many finishes got a pending receipt (0 with receipts off)."""
        units = list(units)
        changes = _Changes()
        for unit in units:
            changes.collect(unit)
        changes.write(conn)
        finishes = 0
        if self.receipts:
            # One small row per finish, in the finishing transaction; the
            # statement is built later, off this path (receipts.py).
            rows = [
                {
                    "execution_id": e.execution_id,
                    "finish_sequence": e.sequence,
                    "create_time": e.time,
                }
                for unit in units
                for e in unit.events
                if e.type in FINISH_EVENTS
            ]
            if rows:
                conn.execute(_INSERT_PENDING_RECEIPT, rows)
                finishes = len(rows)
        for unit in units:
            if unit.close_human_tasks:
                conn.execute(
                    update(human_tasks)
                    .where(
                        human_tasks.c.execution_id == unit.execution.execution_id,
                        human_tasks.c.state.in_((1, 2)),
                    )
                    .values(state=4, update_time=now(), close_time=now())
                )
                unit.close_human_tasks = False
            unit.is_new = False
            unit.new_steps.clear()
            unit.new_attempts.clear()
            unit.new_human_tasks.clear()
            unit.events.clear()
            unit.remember()
        return finishes

    def insert_outbox(self, conn: Connection, rows: Sequence[AttemptRow]) -> None:
        if rows:
            conn.execute(
                insert(outbox),
                [
                    {
                        "task_id": r.task_id,
                        "task_queue": r.task_queue,
                        "visible_time": r.visible_time,
                    }
                    for r in rows
                ],
            )

    # -- plans ---------------------------------------------------------------------------

    def plan_row(self, conn: Connection, digest: str) -> tuple[bytes, bytes] | None:
        row = conn.execute(
            select(plans.c.plan, plans.c.definition).where(plans.c.definition_digest == digest)
        ).first()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    async def get_plan(self, digest: str) -> tuple[bytes, bytes] | None:
        def read(conn: Connection) -> Any:
            row = (
                conn.execute(
                    select(plans.c.plan, plans.c.definition).where(
                        plans.c.definition_digest == digest
                    )
                )
            ).first()
            return row

        row = await self.query(read)
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    async def put_plan(self, digest: str, plan: bytes, definition: bytes) -> None:
        def put(conn: Connection) -> None:
            exists = conn.execute(
                select(plans.c.definition_digest).where(plans.c.definition_digest == digest)
            ).first()
            if exists is None:
                conn.execute(
                    insert(plans).values(
                        definition_digest=digest,
                        plan=plan,
                        definition=definition,
                        create_time=now(),
                    )
                )

        # A concurrent first start of the same version may store it first: same bytes.
        with contextlib.suppress(IntegrityError):
            await self.write(put)

    # -- requests ------------------------------------------------------------------------

    def find_execution_by_request(
        self, conn: Connection, tenant: str, request_id: str
    ) -> ExecutionRow | None:
        params = {"tenant": tenant, "request_id": request_id}
        row = conn.execute(_SELECT_EXECUTION_BY_REQUEST, params).mappings().first()
        return None if row is None else _row(ExecutionRow, row)

    def started_requests(
        self, conn: Connection, requests: Collection[tuple[str, str]]
    ) -> frozenset[tuple[str, str]]:
        """Which of these (tenant, request id) pairs an execution has (one
        statement for a whole batch of starts)."""
        rows = conn.execute(_SELECT_STARTED_REQUESTS, {"requests": list(requests)})
        return frozenset((str(tenant), str(request_id)) for tenant, request_id in rows)

    def find_request(
        self, conn: Connection, tenant: str, method: str, request_id: str
    ) -> tuple[str, str] | None:
        """``(request_hash, execution_id)`` of a recorded request."""
        params = {"tenant": tenant, "method": method, "request_id": request_id}
        row = conn.execute(_SELECT_REQUEST, params).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def record_request(
        self,
        conn: Connection,
        *,
        tenant: str,
        method: str,
        request_id: str,
        request_hash: str,
        execution_id: str,
    ) -> None:
        conn.execute(
            insert(requests).values(
                tenant=tenant,
                method=method,
                request_id=request_id,
                request_hash=request_hash,
                execution_id=execution_id,
                create_time=now(),
            )
        )

    # -- reads ---------------------------------------------------------------------------

    async def get_execution(self, tenant: str, execution_id: str) -> ExecutionRow | None:
        def read(conn: Connection) -> ExecutionRow | None:
            row = (
                conn.execute(_SELECT_EXECUTION, {"execution_id": execution_id, "tenant": tenant})
                .mappings()
                .first()
            )
            return None if row is None else _row(ExecutionRow, row)

        return await self.query(read)

    async def get_executions(self, tenant: str, ids: Collection[str]) -> dict[str, ExecutionRow]:
        """The tenant's executions among ``ids``, by id (one query)."""
        if not ids:
            return {}

        def read(conn: Connection) -> dict[str, ExecutionRow]:
            rows = conn.execute(_SELECT_EXECUTIONS, {"ids": sorted(ids)}).mappings()
            found = (_row(ExecutionRow, m) for m in rows)
            return {r.execution_id: r for r in found if r.tenant == tenant}

        return await self.query(read)

    async def get_timeline(self, execution_id: str) -> tuple[list[StepRow], list[AttemptRow]]:
        def read(conn: Connection) -> tuple[list[StepRow], list[AttemptRow]]:
            params = {"execution_id": execution_id}
            steps = [_row(StepRow, m) for m in conn.execute(_TIMELINE_STEPS, params).mappings()]
            tries = [
                _row(AttemptRow, m) for m in conn.execute(_TIMELINE_ATTEMPTS, params).mappings()
            ]
            return steps, tries

        return await self.query(read)

    async def list_executions(
        self, tenant: str, where: Any, after: tuple[datetime, str] | None, limit: int
    ) -> list[ExecutionRow]:
        query = select(executions).where(executions.c.tenant == tenant)
        if where is not None:
            query = query.where(where)
        if after is not None:
            created, execution_id = after
            query = query.where(
                or_(
                    executions.c.create_time < created,
                    and_(
                        executions.c.create_time == created,
                        executions.c.execution_id < execution_id,
                    ),
                )
            )
        query = query.order_by(
            executions.c.create_time.desc(), executions.c.execution_id.desc()
        ).limit(limit)

        def read(conn: Connection) -> Any:
            rows = (conn.execute(query)).mappings().all()
            return rows

        rows = await self.query(read)
        return [_row(ExecutionRow, r) for r in rows]

    async def list_events(self, execution_id: str, after: int, limit: int) -> list[EventRow]:
        params = {"execution_id": execution_id, "after": after, "limit": limit}

        def read(conn: Connection) -> list[EventRow]:
            return [_row(EventRow, m) for m in conn.execute(_LIST_EVENTS, params).mappings()]

        return await self.query(read)

    async def get_human_task(self, tenant: str, task_id: str) -> HumanTaskRow | None:
        def read(conn: Connection) -> Any:
            row = (
                (
                    conn.execute(
                        select(human_tasks).where(
                            human_tasks.c.task_id == task_id, human_tasks.c.tenant == tenant
                        )
                    )
                )
                .mappings()
                .first()
            )
            return row

        row = await self.query(read)
        return None if row is None else _row(HumanTaskRow, row)

    async def list_human_tasks(
        self, tenant: str, where: Any, offset: int, limit: int
    ) -> list[HumanTaskRow]:
        query = select(human_tasks).where(human_tasks.c.tenant == tenant)
        if where is not None:
            query = query.where(where)
        query = (
            query.order_by(
                human_tasks.c.due_time.is_(None),
                human_tasks.c.due_time,
                human_tasks.c.create_time,
                human_tasks.c.task_id,
            )
            .offset(offset)
            .limit(limit)
        )

        def read(conn: Connection) -> Any:
            rows = (conn.execute(query)).mappings().all()
            return rows

        rows = await self.query(read)
        return [_row(HumanTaskRow, r) for r in rows]

    # -- task queue ----------------------------------------------------------------------

    def leasable(
        self, conn: Connection, task_queue: str, at: datetime, limit: int
    ) -> list[tuple[str, str]]:
        """``(task_id, execution_id)`` of tasks a worker could lease now: scheduled
        and visible, or running under an expired lease. Unlocked candidates."""
        params = {"queue": task_queue, "at": at, "limit": limit}
        rows = list(conn.execute(_LEASABLE_SCHEDULED, params).all())
        if len(rows) < limit:
            params["limit"] = limit - len(rows)
            rows.extend(conn.execute(_LEASABLE_EXPIRED, params).all())
        return [(str(r[0]), str(r[1])) for r in rows]

    async def heartbeat(
        self,
        task_id: str,
        lease_id: str,
        at: datetime,
        lease_expire_time: datetime,
        progress: str | None,
    ) -> int | None:
        """Renews a current lease; returns the execution state, or None when the
        lease is stale (superseded, finished, past its deadline, unknown)."""

        def renew(conn: Connection) -> int | None:
            values: dict[str, Any] = {"lease_expire_time": lease_expire_time}
            if progress is not None:
                values["progress"] = progress
            result = conn.execute(
                update(attempts)
                .where(
                    attempts.c.task_id == task_id,
                    attempts.c.lease_id == lease_id,
                    attempts.c.state == 2,
                    or_(attempts.c.deadline.is_(None), attempts.c.deadline >= at),
                )
                .values(values)
            )
            if result.rowcount != 1:
                return None
            state = conn.execute(
                select(executions.c.state)
                .select_from(
                    executions.join(attempts, attempts.c.execution_id == executions.c.execution_id)
                )
                .where(attempts.c.task_id == task_id)
            ).scalar_one()
            return int(state)

        return await self.write(renew)

    def attempt_rows(self, conn: Connection, task_ids: Sequence[str]) -> list[AttemptRow]:
        result = conn.execute(select(attempts).where(attempts.c.task_id.in_(list(task_ids))))
        return [_row(AttemptRow, m) for m in result.mappings()]

    async def execution_by_id(self, execution_id: str) -> ExecutionRow | None:
        """Any tenant's execution (for the scheduler's own background work)."""

        def read(conn: Connection) -> Any:
            row = (
                (conn.execute(select(executions).where(executions.c.execution_id == execution_id)))
                .mappings()
                .first()
            )
            return row

        row = await self.query(read)
        return None if row is None else _row(ExecutionRow, row)

    async def waiting_subworkflows(self, limit: int) -> list[tuple[str, str, str]]:
        """``(execution_id, step_id, child_execution)`` of waiting SUBWORKFLOW steps."""

        def read(conn: Connection) -> Any:
            rows = (
                conn.execute(
                    select(
                        step_runs.c.execution_id, step_runs.c.step_id, step_runs.c.child_execution
                    )
                    .where(step_runs.c.type == 5, step_runs.c.state == 5)
                    .limit(limit)
                )
            ).all()
            return rows

        rows = await self.query(read)
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    # -- timers --------------------------------------------------------------------------

    async def due_work(self, at: datetime, limit: int) -> dict[str, set[str]]:
        """Executions with something due, by kind: ``delay`` (timers),
        ``deadline`` (attempts past their deadline), ``expire`` (executions past
        their expire_time), ``lease`` (expired leases of cancelling or finished
        executions)."""
        due: dict[str, set[str]] = {"delay": set(), "deadline": set(), "expire": set()}

        def read(conn: Connection) -> Any:
            for row in conn.execute(
                select(step_runs.c.execution_id).where(step_runs.c.timer_due <= at).limit(limit)
            ):
                due["delay"].add(str(row[0]))
            for row in conn.execute(
                select(attempts.c.execution_id)
                .where(attempts.c.state == 2, attempts.c.deadline < at)
                .limit(limit)
            ):
                due["deadline"].add(str(row[0]))
            for row in conn.execute(
                select(executions.c.execution_id)
                .where(executions.c.state.in_((1, 2, 5)), executions.c.expire_time < at)
                .limit(limit)
            ):
                due["expire"].add(str(row[0]))
            for row in conn.execute(
                select(attempts.c.execution_id)
                .select_from(
                    attempts.join(executions, attempts.c.execution_id == executions.c.execution_id)
                )
                .where(
                    attempts.c.state == 2,
                    attempts.c.lease_expire_time < at,
                    executions.c.state.not_in((2, 8)),
                )
                .limit(limit)
            ):
                due["deadline"].add(str(row[0]))
            return due

        due = await self.query(read)
        return due

    # -- pending receipts (the receipt outbox) ----------------------------------------------

    async def pending_finishes(
        self, limit: int, after: tuple[datetime, str, int] | None = None
    ) -> list[PendingFinish]:
        """Pending receipts, oldest finish first, after the given
        ``(create_time, execution_id, finish_sequence)``."""
        query = select(
            pending_receipts.c.create_time,
            pending_receipts.c.execution_id,
            pending_receipts.c.finish_sequence,
            pending_receipts.c.without_version_receipt,
        )
        if after is not None:
            at, execution_id, sequence = after
            query = query.where(
                or_(
                    pending_receipts.c.create_time > at,
                    and_(
                        pending_receipts.c.create_time == at,
                        or_(
                            pending_receipts.c.execution_id > execution_id,
                            and_(
                                pending_receipts.c.execution_id == execution_id,
                                pending_receipts.c.finish_sequence > sequence,
                            ),
                        ),
                    ),
                )
            )
        query = query.order_by(
            pending_receipts.c.create_time,
            pending_receipts.c.execution_id,
            pending_receipts.c.finish_sequence,
        ).limit(limit)

        def read(conn: Connection) -> list[PendingFinish]:
            return [
                PendingFinish(utc(r[0]) or now(), str(r[1]), int(r[2]), bool(r[3]))
                for r in conn.execute(query).all()
            ]

        return await self.query(read)

    async def waive_version_receipt(self, execution_id: str, finish_sequence: int) -> None:
        """Records that a finish's receipt is signed without its version's receipt."""
        await self.write(
            lambda conn: conn.execute(
                update(pending_receipts)
                .where(
                    pending_receipts.c.execution_id == execution_id,
                    pending_receipts.c.finish_sequence == finish_sequence,
                )
                .values(without_version_receipt=True)
            )
        )

    async def execution_versions(
        self, execution_ids: Sequence[str]
    ) -> dict[str, tuple[str, str, str]]:
        """``(tenant, workflow_id, version)`` of each execution."""
        ids = sorted(set(execution_ids))

        def read(conn: Connection) -> dict[str, tuple[str, str, str]]:
            return {
                str(r[0]): (str(r[1]), str(r[2]), str(r[3]))
                for r in conn.execute(_EXECUTION_VERSIONS, {"ids": ids})
            }

        return await self.query(read) if ids else {}

    async def finish_records(self, execution_ids: Sequence[str]) -> dict[str, FinishRecord]:
        """What the receipts of these executions' finishes attest, read in one
        transaction. ``moved_sequence`` is read last: when it shows no retry or
        compensation after a finish, nothing read before it can be from a
        later run either (those changes commit together with their event)."""
        ids = sorted(set(execution_ids))

        def read(conn: Connection) -> dict[str, FinishRecord]:
            params = {"ids": ids}
            found = {
                m["execution_id"]: FinishRecord(_row(ExecutionRow, m))
                for m in conn.execute(_SELECT_EXECUTIONS, params).mappings()
            }
            for mapping in conn.execute(_SELECT_STEPS, params).mappings():
                step = _row(StepRow, mapping)
                found[step.execution_id].steps.append(step)
            for tried in conn.execute(_RUN_ATTEMPTS, params):
                found[str(tried[0])].attempts.append(
                    AttemptBrief(str(tried[1]), int(tried[2]), utc(tried[3]), tried[4])
                )
            for moved in conn.execute(_MOVED_ON, params):
                found[str(moved[0])].moved_sequence = int(moved[1])
            return found

        return await self.query(read) if ids else {}

    async def drop_pending_receipt(self, execution_id: str, finish_sequence: int) -> None:
        """Forgets a pending receipt unsigned (its finish was superseded)."""
        await self.write(
            lambda conn: conn.execute(
                delete(pending_receipts).where(
                    pending_receipts.c.execution_id == execution_id,
                    pending_receipts.c.finish_sequence == finish_sequence,
                )
            )
        )

    async def record_receipt(self, execution_id: str, finish_sequence: int, receipt: str) -> str:
        """Drops the pending receipt of a finish and, when the execution is
        still in that finish, shows ``receipt`` on it; one transaction.

        Returns ``recorded``, ``superseded`` (a retry or compensation moved the
        execution on: the receipt stays in the signer's log only) or ``gone``
        (recorded or dropped already: nothing changes).
        """

        def record(conn: Connection) -> str:
            self.lock_executions(conn, [execution_id])
            dropped = conn.execute(
                delete(pending_receipts).where(
                    pending_receipts.c.execution_id == execution_id,
                    pending_receipts.c.finish_sequence == finish_sequence,
                )
            )
            if dropped.rowcount == 0:
                return "gone"
            moved = conn.execute(_MOVED_ON, {"ids": [execution_id]}).first()
            if moved is not None and int(moved[1]) > finish_sequence:
                return "superseded"
            # Output only: no new etag or update_time, so a client holding the
            # etag of the finished execution can still retry or compensate it.
            conn.execute(
                update(executions)
                .where(executions.c.execution_id == execution_id)
                .values(receipt=receipt)
            )
            return "recorded"

        return await self.write(record)

    # -- outbox (external dispatch index) ------------------------------------------------

    async def take_outbox(self, at: datetime, limit: int) -> list[tuple[str, str]]:
        def read(conn: Connection) -> Any:
            rows = (
                conn.execute(
                    select(outbox.c.task_id, outbox.c.task_queue)
                    .where(outbox.c.visible_time <= at)
                    .order_by(outbox.c.visible_time)
                    .limit(limit)
                )
            ).all()
            return rows

        rows = await self.query(read)
        return [(str(r[0]), str(r[1])) for r in rows]

    async def delete_outbox(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            ids = list(task_ids)
            await self.write(
                lambda conn: conn.execute(delete(outbox).where(outbox.c.task_id.in_(ids)))
            )


__all__ = [
    "AttemptBrief",
    "AttemptRow",
    "EventRow",
    "ExecutionRow",
    "FinishRecord",
    "HumanTaskRow",
    "PendingFinish",
    "StepRow",
    "Store",
    "Unit",
]
