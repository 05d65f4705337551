"""The decision log on SQLite and on a throwaway PostgreSQL: the migrated schema
is the store's, and a real policy server logs, deduplicates, lists and trims
decisions the same way on both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import db
from maestro.services.policy.store import (
    ALEMBIC_VERSION_TABLE,
    CHECKPOINT_EVERY_COMMITS,
    DecisionStore,
    metadata,
)
from tests.servers import PostgresServer, fresh_database, postgres
from tests.unit.policy.support import (
    ADMIN,
    copy_bundle,
    decision_row,
    policy_mesh,
    principal,
    question,
)

__all__ = ["postgres"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'policy.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield fresh_database(server)


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"version_table": ALEMBIC_VERSION_TABLE, "compare_type": True}
    )
    return list(compare_metadata(context, metadata))


async def test_the_decision_log_on_each_database(database_url: str, tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path / "bundle")
    settings = {"database_url": database_url}
    async with policy_mesh(tmp_path, bundle=bundle, **settings) as mesh:
        made = [
            (
                await mesh.client.decide(
                    question(principal("viewer"), action, request_id=f"log-{i}")
                )
            ).decision
            for i, action in enumerate(["workflow.read", "workflow.delete", "receipt.read"])
        ]
        # Concurrent duplicates within one commit, and a retry: one row each.
        batch = pb.BatchDecideRequest(
            requests=[question(principal("viewer"), "workflow.read", request_id="log-0")] * 3
        )
        assert {d.name for d in (await mesh.client.batch_decide(batch)).decisions} == {made[0].name}
    # A restarted server answers a logged request id from the database.
    async with policy_mesh(tmp_path, bundle=bundle, **settings) as mesh:
        again = (
            await mesh.client.decide(
                question(principal("viewer"), "workflow.read", request_id="log-0")
            )
        ).decision
        assert again == made[0]
        with mesh.as_(ADMIN):
            page = await mesh.client.list_decisions(
                pb.ListDecisionsRequest(filter='enforcer = "tests"', page_size=2)
            )
            rest = await mesh.client.list_decisions(
                pb.ListDecisionsRequest(
                    filter='enforcer = "tests"', page_size=2, page_token=page.next_page_token
                )
            )
            denied = await mesh.client.list_decisions(
                pb.ListDecisionsRequest(filter='allow = false AND enforcer = "tests"')
            )
        assert [d.name for d in [*page.decisions, *rest.decisions]] == [
            d.name for d in reversed(made)
        ]
        assert not rest.next_page_token
        assert [d.name for d in denied.decisions] == [made[1].name]

    engine = db.create_engine(database_url)
    store = DecisionStore(engine, db.create_sync_engine(database_url, pool_size=1))
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_drift) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables == {"decisions", ALEMBIC_VERSION_TABLE}
        # Retention: everything is younger than a day; a cutoff in the future
        # trims it all.
        assert await store.trim(datetime.now(UTC) - timedelta(days=1)) == 0
        trimmed = await store.trim(datetime.now(UTC) + timedelta(seconds=1))
        assert trimmed >= len(made)
        assert await store.get_decision(made[0].name.removeprefix("decisions/")) is None
    finally:
        await store.close()


async def test_sqlite_checkpoints_run_off_the_commits_and_keep_the_wal_small(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'policy.db'}"
    engine = db.create_engine(url)
    store = DecisionStore(engine, db.create_sync_engine(url))
    await store.migrate()
    wal = tmp_path / "policy.db-wal"
    commits = CHECKPOINT_EVERY_COMMITS * 12
    largest = 0
    try:
        for i in range(commits):
            # One decision per commit, as a lone caller's durable Decide makes.
            assert (
                await store.insert_decisions([decision_row(i, f"wal-{i}", decision=b"x" * 600)])
                == {}
            )
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # lets a running checkpoint finish
                largest = max(largest, wal.stat().st_size)
    finally:
        await store.close()
    # Every commit writes ~6 pages (the table and five indexes): without the
    # background checkpoints (the inline connection runs none itself) the WAL
    # would hold all ~7,000 of them (~29 MB); with them it keeps being reused.
    assert 0 < largest < 3 * CHECKPOINT_EVERY_COMMITS * 8 * 4096
    reopened = DecisionStore(db.create_engine(url), db.create_sync_engine(url))
    try:
        last = await reopened.get_decision(f"{commits - 1:026d}")
        assert last is not None
        assert last.request_id == f"wal-{commits - 1}"
        assert last.create_time.tzinfo is not None
    finally:
        await reopened.close()
