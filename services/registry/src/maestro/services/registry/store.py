"""The registry's own tables and every query on them. No other service reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("tenant", String(63), primary_key=True),
    Column("workflow_id", String(63), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", Text, nullable=False, default="[]"),
    Column("draft_version", String(64), nullable=False),
    Column("draft_source", LargeBinary, nullable=False),
    Column("draft_definition", LargeBinary, nullable=False),
    Column("draft_digest", String(64), nullable=False),
    Column("etag", String(64), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("delete_time", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant", "request_id", name="uq_workflows_request_id"),
)


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    """One row of ``workflows``."""

    tenant: str
    workflow_id: str
    owner: str
    state: str
    display_name: str
    description: str
    tags: tuple[str, ...]
    draft_version: str
    draft_source: bytes
    draft_definition: bytes
    draft_digest: str
    etag: str
    request_id: str | None
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None


def _as_utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _row(mapping: object) -> WorkflowRow:
    m = dict(mapping)  # type: ignore[call-overload]
    m["tags"] = tuple(json.loads(m["tags"]))
    for key in ("create_time", "update_time", "delete_time"):
        m[key] = _as_utc(m[key])
    return WorkflowRow(**m)


class DuplicateWorkflowError(Exception):
    """The workflow id or request id is taken in the tenant."""


class RegistryStore:
    """Persistence of workflows."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        """Creates missing tables (embedded mode; PostgreSQL uses migrations)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def insert_workflow(self, row: WorkflowRow) -> None:
        values = {k: getattr(row, k) for k in WorkflowRow.__slots__}
        values["tags"] = json.dumps(list(row.tags))
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(workflows).values(**values))
        except IntegrityError as exc:
            raise DuplicateWorkflowError(row.workflow_id) from exc

    async def get_workflow(self, tenant: str, workflow_id: str) -> WorkflowRow | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(workflows).where(
                    workflows.c.tenant == tenant, workflows.c.workflow_id == workflow_id
                )
            )
            found = result.mappings().first()
        return _row(found) if found else None

    async def find_by_request_id(self, tenant: str, request_id: str) -> WorkflowRow | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(workflows).where(
                    workflows.c.tenant == tenant, workflows.c.request_id == request_id
                )
            )
            found = result.mappings().first()
        return _row(found) if found else None
