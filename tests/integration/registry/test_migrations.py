"""The registry's Alembic migrations build exactly the schema its store uses,
on PostgreSQL and SQLite, and the database itself keeps published versions
immutable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from maestro.runtime import db
from maestro.runtime.migrations import UnmigratedDatabaseError
from maestro.services.registry.store import (
    ALEMBIC_VERSION_TABLE,
    MIGRATIONS_DIR,
    RegistryStore,
    metadata,
    workflow_versions,
)
from tests.integration.registry.conftest import PostgresServer
from tests.unit.registry.support import ANA, Harness, source

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STORE_TABLES = {t.name for t in metadata.sorted_tables}


def _schema_drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"version_table": ALEMBIC_VERSION_TABLE, "compare_type": True}
    )
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_head_builds_the_store_schema(database_url: str) -> None:
    engine = db.create_engine(database_url)
    store = RegistryStore(engine)
    try:
        await store.migrate()
        await store.migrate()  # at head already: nothing to do, nothing fails
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            drift = await conn.run_sync(_schema_drift)
            revision = (await conn.execute(text(f"SELECT * FROM {ALEMBIC_VERSION_TABLE}"))).all()
    finally:
        await engine.dispose()
    assert tables == STORE_TABLES | {ALEMBIC_VERSION_TABLE}
    assert drift == []
    assert [r[0] for r in revision] == ["0002"]


def _alembic(url: str, *args: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(MIGRATIONS_DIR / "alembic.ini"),
            "-x",
            f"url={url}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_alembic_command_line_upgrades_and_downgrades_postgresql(
    postgres: PostgresServer,
) -> None:
    with postgres.admin() as admin:
        admin.execute("DROP DATABASE IF EXISTS registry_cli")
        admin.execute("CREATE DATABASE registry_cli")
    url = postgres.url("registry_cli")
    _alembic(url, "upgrade", "head")
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == STORE_TABLES | {ALEMBIC_VERSION_TABLE}
            assert await conn.run_sync(_schema_drift) == []
        await engine.dispose()
        _alembic(url, "downgrade", "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {ALEMBIC_VERSION_TABLE}
    finally:
        await engine.dispose()


async def test_alembic_command_line_works_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    _alembic(url, "upgrade", "head")
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == STORE_TABLES | {ALEMBIC_VERSION_TABLE}
    finally:
        await engine.dispose()


async def test_database_refuses_to_change_a_published_version(harness: Harness) -> None:
    await harness.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    await harness.registry.publish_workflow(ANA, "workflows/orders-flow")
    v = workflow_versions.c
    this_version = (v.workflow_id == "orders-flow", v.version == "1.0.0")
    engine = harness.store.engine
    for change in (
        update(workflow_versions).where(*this_version).values(changelog="rewritten"),
        update(workflow_versions).where(*this_version).values(plan=b"\x00"),
        workflow_versions.delete().where(*this_version),
    ):
        with pytest.raises(IntegrityError, match="immutable"):
            async with engine.begin() as conn:
                await conn.execute(change)
    # The one allowed change: attaching a signer receipt, once.
    async with engine.begin() as conn:
        await conn.execute(
            update(workflow_versions).where(*this_version).values(receipt="receipts/r-1")
        )
    with pytest.raises(IntegrityError, match="immutable"):
        async with engine.begin() as conn:
            await conn.execute(
                update(workflow_versions).where(*this_version).values(receipt="receipts/r-2")
            )
    stored = await harness.registry.get_workflow_version(
        ANA, "workflows/orders-flow/versions/1.0.0"
    )
    assert (stored.changelog, stored.receipt) == ("", "receipts/r-1")


async def test_tables_without_migration_history_are_refused(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE workflows (tenant TEXT)"))
        with pytest.raises(UnmigratedDatabaseError, match="without migration history"):
            await RegistryStore(engine).migrate()
    finally:
        await engine.dispose()
