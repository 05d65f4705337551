"""The registry's own tables and every query on them. No other service reads them.

One code path for SQLite (embedded) and PostgreSQL: SQLAlchemy Core on the async
engine, no dialect-specific SQL outside the migrations. The schema is created
and upgraded by Alembic on both (``migrate``), so both run the same DDL.

Invariants kept here:

- Every query is scoped by ``tenant``.
- A workflow row changes only through a compare-and-set on its ``etag``
  (``WHERE etag = :expected``) or, when the caller skipped the check, on its
  being live (``delete_time IS NULL``); a miss is reported, never retried here.
- Published versions are insert-only: there is no UPDATE or DELETE of
  ``workflow_versions`` in this module, and database triggers refuse both
  (except attaching a signer receipt to a version that has none).
- A request id is stored in the transaction of the mutation it made, so a
  retried request finds either nothing or the complete result.
- Receipts go through an outbox: while receipts are on, a publish writes a
  ``version_receipt_outbox`` row in its own transaction, and the row is
  deleted in the transaction that attaches the signed receipt to the version.
  A version with a row is *pending*; a pending version is only handed out for
  signing once its previous version is not pending, so the receipt chain
  (``previous_receipt``) never skips a link.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
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
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from maestro.runtime.migrations import upgrade_to_head

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ALEMBIC_VERSION_TABLE = "registry_alembic_version"
"""Alembic's bookkeeping table, named per service so that services sharing one
PostgreSQL database keep separate migration histories."""

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("owner", String(255), nullable=False),
    # DRAFT until the first publish, then PUBLISHED; deletion is delete_time.
    Column("state", String(16), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    # JSON list, for reading; workflow_tags holds the same tags for filtering.
    Column("tags", Text, nullable=False),
    Column("draft_version", String(64), nullable=False),
    Column("draft_source", LargeBinary, nullable=False),
    Column("draft_format", SmallInteger, nullable=False),
    Column("draft_definition", LargeBinary, nullable=False),
    Column("draft_digest", String(64), nullable=False),
    # JSON list of the draft's warning diagnostics (proto JSON).
    Column("draft_diagnostics", Text, nullable=False),
    Column("draft_update_time", DateTime(timezone=True), nullable=False),
    Column("latest_version", String(64), nullable=True),
    Column("frozen", Boolean, nullable=False),
    Column("frozen_reason", Text, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("delete_time", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("tenant", "workflow_id", name="pk_workflows"),
    # ListWorkflows: newest update first, keyset-paginated.
    Index("ix_workflows_tenant_update_time", "tenant", "update_time", "workflow_id"),
)

workflow_tags = Table(
    "workflow_tags",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("tag", String(255), nullable=False),
    PrimaryKeyConstraint("tenant", "workflow_id", "tag", name="pk_workflow_tags"),
    ForeignKeyConstraint(
        ["tenant", "workflow_id"],
        ["workflows.tenant", "workflows.workflow_id"],
        name="fk_workflow_tags_workflows",
    ),
    Index("ix_workflow_tags_tenant_tag", "tenant", "tag"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    # 1, 2, 3, ... per workflow in publish order; versions only increase, so
    # this is also semver order (newest first = seq descending).
    Column("seq", Integer, nullable=False),
    Column("source", LargeBinary, nullable=False),
    Column("source_format", SmallInteger, nullable=False),
    Column("definition", LargeBinary, nullable=False),
    Column("plan", LargeBinary, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("publish_time", DateTime(timezone=True), nullable=False),
    Column("published_by", String(255), nullable=False),
    Column("changelog", Text, nullable=False),
    Column("diff_from_previous", LargeBinary, nullable=True),
    Column("receipt", String(255), nullable=False),
    PrimaryKeyConstraint("tenant", "workflow_id", "version", name="pk_workflow_versions"),
    UniqueConstraint("tenant", "workflow_id", "seq", name="uq_workflow_versions_seq"),
    ForeignKeyConstraint(
        ["tenant", "workflow_id"],
        ["workflows.tenant", "workflows.workflow_id"],
        name="fk_workflow_versions_workflows",
    ),
)

workflow_aliases = Table(
    "workflow_aliases",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("alias", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant", "workflow_id", "alias", name="pk_workflow_aliases"),
    ForeignKeyConstraint(
        ["tenant", "workflow_id", "version"],
        ["workflow_versions.tenant", "workflow_versions.workflow_id", "workflow_versions.version"],
        name="fk_workflow_aliases_workflow_versions",
    ),
)

request_ids = Table(
    "request_ids",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("request_id", String(128), nullable=False),
    # CREATE, PUBLISH, CLONE or CREATE_FROM_TEMPLATE.
    Column("operation", String(32), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("version", String(64), nullable=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant", "request_id", name="pk_request_ids"),
)

version_receipt_outbox = Table(
    "version_receipt_outbox",
    metadata,
    Column("tenant", String(63), nullable=False),
    Column("workflow_id", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    # proto3 JSON of the maestro.common.v1.Principal that published.
    Column("published_by", Text, nullable=False),
    # JSON list of the ids of the policy decisions that allowed the publish.
    Column("policy_decision_ids", Text, nullable=False),
    Column("policy_bundle_revision", String(255), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant", "workflow_id", "version", name="pk_version_receipt_outbox"),
    ForeignKeyConstraint(
        ["tenant", "workflow_id", "version"],
        ["workflow_versions.tenant", "workflow_versions.workflow_id", "workflow_versions.version"],
        name="fk_version_receipt_outbox_workflow_versions",
    ),
    # The relay reads the oldest pending receipts first.
    Index("ix_version_receipt_outbox_create_time", "create_time"),
)

_VERSION_SUMMARY_COLUMNS = [
    c
    for c in workflow_versions.columns
    if c.name not in ("source", "source_format", "definition", "plan")
]


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One row of ``workflow_versions``. Listings leave ``source``,
    ``definition`` and ``plan`` empty (``has_content`` is then False)."""

    tenant: str
    workflow_id: str
    version: str
    seq: int
    digest: str
    publish_time: datetime
    published_by: str
    changelog: str
    diff_from_previous: bytes | None
    receipt: str
    source: bytes = b""
    source_format: int = 0
    definition: bytes = b""
    plan: bytes = b""
    has_content: bool = True


@dataclass(frozen=True, slots=True)
class ReceiptEntry:
    """What a publish writes to the receipt outbox: what only the publish call
    knows, beyond the version row itself."""

    published_by: str  # proto3 JSON of maestro.common.v1.Principal
    policy_decision_ids: tuple[str, ...]
    policy_bundle_revision: str


@dataclass(frozen=True, slots=True)
class PendingVersionReceipt:
    """A version whose receipt is still to be signed, with everything its
    statement needs: the outbox entry, the version's content and its
    previous version (by publish order) with that version's receipt."""

    tenant: str
    workflow_id: str
    version: str
    digest: str
    plan: bytes
    source: bytes
    publish_time: datetime
    entry: ReceiptEntry
    create_time: datetime
    previous_version: str | None
    previous_receipt: str


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    """One row of ``workflows``, with its aliases and (when read) its latest
    published version."""

    tenant: str
    workflow_id: str
    owner: str
    state: str
    display_name: str
    description: str
    tags: tuple[str, ...]
    draft_version: str
    draft_source: bytes
    draft_format: int
    draft_definition: bytes
    draft_digest: str
    draft_diagnostics: str
    draft_update_time: datetime
    latest_version: str | None
    frozen: bool
    frozen_reason: str
    etag: str
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None
    aliases: Mapping[str, str] = field(default_factory=dict)
    latest: VersionRow | None = None

    @property
    def deleted(self) -> bool:
        return self.delete_time is not None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What an earlier request with the same request id did."""

    tenant: str
    request_id: str
    operation: str
    workflow_id: str
    version: str | None
    create_time: datetime


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    """The filter of a workflow listing (all conditions must hold)."""

    owner: str | None = None
    tags: tuple[str, ...] = ()
    state: str | None = None  # DRAFT, PUBLISHED or DELETED
    update_time: Sequence[tuple[str, datetime]] = ()  # (operator, time) pairs
    show_deleted: bool = False


class DuplicateWorkflowError(Exception):
    """The workflow id is taken in the tenant."""


class DuplicateRequestError(Exception):
    """The request id was already used in the tenant (by a concurrent call)."""


class DuplicateVersionError(Exception):
    """The version was already published (by a concurrent call)."""


_WORKFLOW_FIELDS = frozenset(c.name for c in workflows.columns)
_TIMES = ("create_time", "update_time", "delete_time", "draft_update_time")


async def _first_row(conn: AsyncConnection, statement: Any) -> RowMapping | None:
    """The first row of ``statement`` as a mapping, or None."""
    return (await conn.execute(statement)).mappings().first()


def _as_utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _utc(value: datetime) -> datetime:
    result = _as_utc(value)
    assert result is not None
    return result


def _workflow(m: RowMapping) -> WorkflowRow:
    values = dict(m)
    values["tags"] = tuple(json.loads(values["tags"]))
    values["frozen"] = bool(values["frozen"])
    for key in _TIMES:
        values[key] = _as_utc(values[key])
    return WorkflowRow(**values)


def _version(m: RowMapping, *, has_content: bool = True) -> VersionRow:
    values = dict(m)
    values["publish_time"] = _utc(values["publish_time"])
    return VersionRow(**values, has_content=has_content)


def _workflow_values(row: WorkflowRow) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _WORKFLOW_FIELDS}
    values["tags"] = json.dumps(list(row.tags))
    return values


def _version_values(row: VersionRow) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in workflow_versions.columns}


def _upgrade_to_head(connection: Connection) -> None:
    upgrade_to_head(connection, MIGRATIONS_DIR, ALEMBIC_VERSION_TABLE, "workflows")


class RegistryStore:
    """Persistence of workflows, versions, aliases and request ids."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def migrate(self) -> None:
        """Upgrades the schema to the newest migration (both SQLite and
        PostgreSQL; concurrent callers on PostgreSQL serialise on a lock)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    # -- workflows -------------------------------------------------------------

    async def insert_workflow(self, row: WorkflowRow, *, request: RequestRecord | None) -> None:
        """Inserts a new workflow, its tags and the request id that created it.

        Raises:
            DuplicateRequestError: ``request`` was recorded before.
            DuplicateWorkflowError: the workflow id is taken.
        """
        async with self._engine.begin() as conn:
            if request is not None:
                await self._insert_request(conn, request)
            try:
                await conn.execute(insert(workflows).values(**_workflow_values(row)))
            except IntegrityError as exc:
                raise DuplicateWorkflowError(row.workflow_id) from exc
            await self._insert_tags(conn, row.tenant, row.workflow_id, row.tags)

    async def get_workflow(
        self, tenant: str, workflow_id: str, *, with_latest: bool = True
    ) -> WorkflowRow | None:
        """The workflow (deleted ones too), its aliases and its latest version."""
        async with self._engine.connect() as conn:
            found = await _first_row(
                conn,
                select(workflows).where(
                    workflows.c.tenant == tenant, workflows.c.workflow_id == workflow_id
                ),
            )
            if found is None:
                return None
            row = _workflow(found)
            aliases = await self._aliases(conn, tenant, [workflow_id])
            latest = None
            if with_latest and row.latest_version is not None:
                latest = await self._get_version(conn, tenant, workflow_id, row.latest_version)
        return replace(row, aliases=aliases.get(workflow_id, {}), latest=latest)

    async def list_workflows(
        self,
        tenant: str,
        query: WorkflowQuery,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[WorkflowRow]:
        """Up to ``limit`` workflows, newest update first (ties: id descending),
        strictly after the ``(update_time, workflow_id)`` key ``after``. Latest
        versions are summaries (no source, definition or plan)."""
        w = workflows.c
        conditions: list[Any] = [w.tenant == tenant]
        if not query.show_deleted:
            conditions.append(w.delete_time.is_(None))
        if query.owner is not None:
            conditions.append(w.owner == query.owner)
        for tag in query.tags:
            t = workflow_tags.c
            conditions.append(
                exists().where(t.tenant == w.tenant, t.workflow_id == w.workflow_id, t.tag == tag)
            )
        if query.state == "DELETED":
            conditions.append(w.delete_time.is_not(None))
        elif query.state is not None:
            conditions.extend([w.state == query.state, w.delete_time.is_(None)])
        for operator, when in query.update_time:
            conditions.append(_compare(w.update_time, operator, when))
        if after is not None:
            time, workflow_id = after
            conditions.append(
                or_(
                    w.update_time < time,
                    and_(w.update_time == time, w.workflow_id < workflow_id),
                )
            )
        statement = (
            select(workflows)
            .where(*conditions)
            .order_by(w.update_time.desc(), w.workflow_id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = [_workflow(m) for m in (await conn.execute(statement)).mappings()]
            ids = [r.workflow_id for r in rows]
            aliases = await self._aliases(conn, tenant, ids)
            latest = await self._version_summaries(
                conn, tenant, [(r.workflow_id, r.latest_version) for r in rows if r.latest_version]
            )
        return [
            replace(
                r,
                aliases=aliases.get(r.workflow_id, {}),
                latest=latest.get((r.workflow_id, r.latest_version or "")),
            )
            for r in rows
        ]

    async def update_workflow(
        self,
        tenant: str,
        workflow_id: str,
        *,
        expected_etag: str | None,
        values: Mapping[str, Any],
        tags: Sequence[str] | None = None,
    ) -> bool:
        """Compare-and-set of a live workflow's columns: True when the row was
        changed; False when it is missing, deleted, or its etag is no longer
        ``expected_etag`` (None skips the etag comparison)."""
        async with self._engine.begin() as conn:
            if not await self._cas(conn, tenant, workflow_id, expected_etag, values):
                return False
            if tags is not None:
                await conn.execute(
                    delete(workflow_tags).where(
                        workflow_tags.c.tenant == tenant,
                        workflow_tags.c.workflow_id == workflow_id,
                    )
                )
                await self._insert_tags(conn, tenant, workflow_id, tags)
        return True

    # -- versions --------------------------------------------------------------

    async def publish_version(
        self,
        version: VersionRow,
        *,
        expected_etag: str,
        values: Mapping[str, Any],
        request: RequestRecord | None,
        receipt: ReceiptEntry | None = None,
    ) -> bool:
        """In one transaction: compare-and-set the workflow row (False when the
        etag moved on), append the version with the next ``seq`` (the version's
        own ``seq`` is ignored), record the request id and, with ``receipt``,
        queue the version's receipt in the outbox.

        Raises:
            DuplicateRequestError: ``request`` was recorded before.
            DuplicateVersionError: the version exists already.
        """
        async with self._engine.begin() as conn:
            # The UPDATE comes first: it locks the workflow row, so concurrent
            # publishes of one workflow serialise here.
            if not await self._cas(
                conn, version.tenant, version.workflow_id, expected_etag, values
            ):
                return False
            v = workflow_versions.c
            last = (
                await conn.execute(
                    select(func.max(v.seq)).where(
                        v.tenant == version.tenant, v.workflow_id == version.workflow_id
                    )
                )
            ).scalar()
            row = replace(version, seq=int(last or 0) + 1)
            try:
                await conn.execute(insert(workflow_versions).values(**_version_values(row)))
            except IntegrityError as exc:
                raise DuplicateVersionError(version.version) from exc
            if request is not None:
                await self._insert_request(conn, request)
            if receipt is not None:
                await conn.execute(
                    insert(version_receipt_outbox).values(
                        tenant=row.tenant,
                        workflow_id=row.workflow_id,
                        version=row.version,
                        published_by=receipt.published_by,
                        policy_decision_ids=json.dumps(list(receipt.policy_decision_ids)),
                        policy_bundle_revision=receipt.policy_bundle_revision,
                        create_time=row.publish_time,
                    )
                )
        return True

    async def get_version(self, tenant: str, workflow_id: str, version: str) -> VersionRow | None:
        async with self._engine.connect() as conn:
            return await self._get_version(conn, tenant, workflow_id, version)

    async def list_versions(
        self, tenant: str, workflow_id: str, *, before_seq: int | None, limit: int
    ) -> list[VersionRow]:
        """Up to ``limit`` version summaries, newest first, older than
        ``before_seq``."""
        v = workflow_versions.c
        conditions = [v.tenant == tenant, v.workflow_id == workflow_id]
        if before_seq is not None:
            conditions.append(v.seq < before_seq)
        statement = (
            select(*_VERSION_SUMMARY_COLUMNS).where(*conditions).order_by(v.seq.desc()).limit(limit)
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(statement)
            return [_version(m, has_content=False) for m in result.mappings()]

    # -- receipt outbox --------------------------------------------------------

    async def pending_version_receipts(
        self, limit: int, *, only: tuple[str, str, str] | None = None
    ) -> list[PendingVersionReceipt]:
        """Up to ``limit`` pending versions, oldest queued first, leaving out
        every version whose previous version is pending too (it follows once
        that one is recorded). ``only`` = ``(tenant, workflow_id, version)``
        restricts the result to that version."""
        o = version_receipt_outbox.c
        v = workflow_versions.alias("v")
        previous = workflow_versions.alias("previous")
        queued = version_receipt_outbox.alias("queued")
        conditions: list[Any] = [
            ~exists().where(
                queued.c.tenant == previous.c.tenant,
                queued.c.workflow_id == previous.c.workflow_id,
                queued.c.version == previous.c.version,
            )
        ]
        if only is not None:
            tenant, workflow_id, version = only
            conditions += [o.tenant == tenant, o.workflow_id == workflow_id, o.version == version]
        statement = (
            select(
                o.tenant,
                o.workflow_id,
                o.version,
                o.published_by,
                o.policy_decision_ids,
                o.policy_bundle_revision,
                o.create_time,
                v.c.digest,
                v.c.plan,
                v.c.source,
                v.c.publish_time,
                previous.c.version.label("previous_version"),
                previous.c.receipt.label("previous_receipt"),
            )
            .select_from(
                version_receipt_outbox.join(
                    v,
                    and_(
                        v.c.tenant == o.tenant,
                        v.c.workflow_id == o.workflow_id,
                        v.c.version == o.version,
                    ),
                ).outerjoin(
                    previous,
                    and_(
                        previous.c.tenant == v.c.tenant,
                        previous.c.workflow_id == v.c.workflow_id,
                        previous.c.seq == v.c.seq - 1,
                    ),
                )
            )
            .where(*conditions)
            .order_by(o.create_time, o.tenant, o.workflow_id, v.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(statement)
            return [
                PendingVersionReceipt(
                    tenant=m["tenant"],
                    workflow_id=m["workflow_id"],
                    version=m["version"],
                    digest=m["digest"],
                    plan=m["plan"],
                    source=m["source"],
                    publish_time=_utc(m["publish_time"]),
                    entry=ReceiptEntry(
                        published_by=m["published_by"],
                        policy_decision_ids=tuple(json.loads(m["policy_decision_ids"])),
                        policy_bundle_revision=m["policy_bundle_revision"],
                    ),
                    create_time=_utc(m["create_time"]),
                    previous_version=m["previous_version"],
                    previous_receipt=m["previous_receipt"] or "",
                )
                for m in result.mappings()
            ]

    async def record_version_receipt(
        self, tenant: str, workflow_id: str, version: str, receipt: str
    ) -> str | None:
        """In one transaction: attaches ``receipt`` to the version unless it
        has one already, and drops the version from the outbox. Idempotent.
        Returns the version's receipt afterwards (None: no such version)."""
        v = workflow_versions.c
        o = version_receipt_outbox.c
        this = (v.tenant == tenant, v.workflow_id == workflow_id, v.version == version)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(workflow_versions).where(*this, v.receipt == "").values(receipt=receipt)
            )
            await conn.execute(
                delete(version_receipt_outbox).where(
                    o.tenant == tenant, o.workflow_id == workflow_id, o.version == version
                )
            )
            stored: str | None = (await conn.execute(select(v.receipt).where(*this))).scalar()
        return stored

    # -- aliases ---------------------------------------------------------------

    async def set_alias(
        self,
        tenant: str,
        workflow_id: str,
        alias: str,
        version: str,
        *,
        expected_etag: str,
        values: Mapping[str, Any],
    ) -> bool:
        """Points ``alias`` at ``version``, with a compare-and-set of the
        workflow row in the same transaction (False when the etag moved on)."""
        async with self._engine.begin() as conn:
            if not await self._cas(conn, tenant, workflow_id, expected_etag, values):
                return False
            a = workflow_aliases.c
            now = values.get("update_time", datetime.now(UTC))
            changed = await conn.execute(
                update(workflow_aliases)
                .where(a.tenant == tenant, a.workflow_id == workflow_id, a.alias == alias)
                .values(version=version, update_time=now)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(workflow_aliases).values(
                        tenant=tenant,
                        workflow_id=workflow_id,
                        alias=alias,
                        version=version,
                        update_time=now,
                    )
                )
        return True

    # -- request ids -----------------------------------------------------------

    async def find_request(self, tenant: str, request_id: str) -> RequestRecord | None:
        async with self._engine.connect() as conn:
            found = await _first_row(
                conn,
                select(request_ids).where(
                    request_ids.c.tenant == tenant, request_ids.c.request_id == request_id
                ),
            )
        if found is None:
            return None
        values = dict(found)
        values["create_time"] = _utc(values["create_time"])
        return RequestRecord(**values)

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    async def _cas(
        conn: AsyncConnection,
        tenant: str,
        workflow_id: str,
        expected_etag: str | None,
        values: Mapping[str, Any],
    ) -> bool:
        unknown = set(values) - _WORKFLOW_FIELDS
        if unknown:
            raise ValueError(f"not columns of workflows: {sorted(unknown)}")
        w = workflows.c
        conditions = [w.tenant == tenant, w.workflow_id == workflow_id, w.delete_time.is_(None)]
        if expected_etag is not None:
            conditions.append(w.etag == expected_etag)
        changes = dict(values)
        if "tags" in changes:
            changes["tags"] = json.dumps(list(changes["tags"]))
        result = await conn.execute(update(workflows).where(*conditions).values(**changes))
        return bool(result.rowcount == 1)

    @staticmethod
    async def _insert_request(conn: AsyncConnection, request: RequestRecord) -> None:
        try:
            await conn.execute(
                insert(request_ids).values(
                    tenant=request.tenant,
                    request_id=request.request_id,
                    operation=request.operation,
                    workflow_id=request.workflow_id,
                    version=request.version,
                    create_time=request.create_time,
                )
            )
        except IntegrityError as exc:
            raise DuplicateRequestError(request.request_id) from exc

    @staticmethod
    async def _insert_tags(
        conn: AsyncConnection, tenant: str, workflow_id: str, tags: Iterable[str]
    ) -> None:
        unique = sorted(set(tags))
        if unique:
            await conn.execute(
                insert(workflow_tags),
                [{"tenant": tenant, "workflow_id": workflow_id, "tag": tag} for tag in unique],
            )

    @staticmethod
    async def _get_version(
        conn: AsyncConnection, tenant: str, workflow_id: str, version: str
    ) -> VersionRow | None:
        v = workflow_versions.c
        found = await _first_row(
            conn,
            select(workflow_versions).where(
                v.tenant == tenant, v.workflow_id == workflow_id, v.version == version
            ),
        )
        return _version(found) if found else None

    @staticmethod
    async def _aliases(
        conn: AsyncConnection, tenant: str, workflow_ids: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        if not workflow_ids:
            return {}
        a = workflow_aliases.c
        result = await conn.execute(
            select(a.workflow_id, a.alias, a.version)
            .where(a.tenant == tenant, a.workflow_id.in_(list(workflow_ids)))
            .order_by(a.alias)
        )
        found: dict[str, dict[str, str]] = {}
        for workflow_id, alias, version in result:
            found.setdefault(workflow_id, {})[alias] = version
        return found

    @staticmethod
    async def _version_summaries(
        conn: AsyncConnection, tenant: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], VersionRow]:
        if not keys:
            return {}
        v = workflow_versions.c
        result = await conn.execute(
            select(*_VERSION_SUMMARY_COLUMNS).where(
                v.tenant == tenant,
                or_(*(and_(v.workflow_id == wid, v.version == ver) for wid, ver in keys)),
            )
        )
        rows = [_version(m, has_content=False) for m in result.mappings()]
        return {(r.workflow_id, r.version): r for r in rows}


def _compare(column: Any, operator: str, value: datetime) -> Any:
    if operator == ">":
        return column > value
    if operator == ">=":
        return column >= value
    if operator == "<":
        return column < value
    if operator == "<=":
        return column <= value
    if operator == "=":
        return column == value
    if operator == "!=":
        return column != value
    raise ValueError(f"unknown comparison {operator!r}")
