"""The Redis dispatch's outbox relay against a real PostgreSQL and Redis: rows
a commit of this process wrote reach their stream from memory (the outbox is
not read back) and leave the outbox; rows not due yet, and rows another
process left, are moved by the sweep, which reads the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from maestro.runtime import db
from maestro.services.scheduler.dispatch import RedisDispatch
from maestro.services.scheduler.store import AttemptRow, Store, now
from tests.servers import PostgresServer, RedisServer, fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

QUEUE = "relay-test"


@pytest.fixture
async def store(postgres: PostgresServer) -> AsyncIterator[Store]:
    url = fresh_database(postgres)
    opened = Store(db.create_engine(url), db.create_sync_engine(url))
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def relaying(
    store: Store, redis: RedisServer, sweep_seconds: float
) -> AsyncIterator[tuple[RedisDispatch, list[list[str]]]]:
    """A started dispatch, and what each of its outbox reads returned."""
    redis.client().flushall()
    dispatch = RedisDispatch(
        store, redis.url(), consumer="test", lease_seconds=5, relay_seconds=sweep_seconds
    )
    reads: list[list[str]] = []

    async def take(at: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await Store.take_outbox(store, at, limit)
        reads.append([task_id for task_id, _ in rows])
        return rows

    store.take_outbox = take  # type: ignore[method-assign]
    await dispatch.start()
    try:
        yield dispatch, reads
    finally:
        await dispatch.close()


def attempt(task_id: str, *, delay: float = 0.0) -> AttemptRow:
    """What the outbox and the relay read of an attempt."""
    row = SimpleNamespace(
        task_id=task_id, task_queue=QUEUE, visible_time=now() + timedelta(seconds=delay)
    )
    return cast("AttemptRow", row)


async def commit(store: Store, dispatch: RedisDispatch, rows: list[AttemptRow]) -> None:
    """A transaction that schedules ``rows``, then what the scheduler does after it."""
    await store.write(lambda conn: dispatch.scheduled(conn, rows))
    dispatch.committed(rows)


def streamed(redis: RedisServer) -> list[str]:
    entries = redis.client().xrange(RedisDispatch.stream(QUEUE))
    return [fields[b"task_id"].decode() for _, fields in entries]


async def in_outbox(store: Store) -> list[str]:
    rows = await Store.take_outbox(store, now() + timedelta(days=1), 100)
    return sorted(task_id for task_id, _ in rows)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_due_rows_of_a_commit_reach_the_stream_without_reading_the_outbox(
    store: Store, redis_server: RedisServer
) -> None:
    async with relaying(store, redis_server, sweep_seconds=30) as (dispatch, reads):
        await commit(store, dispatch, [attempt("e1/a/1"), attempt("e1/b/1")])

        async def moved() -> bool:
            return len(streamed(redis_server)) == 2 and await in_outbox(store) == []

        await until(moved)
        assert streamed(redis_server) == ["e1/a/1", "e1/b/1"]
        # The first wake also sweeps (none ran yet): it found nothing to move.
        assert all(read == [] for read in reads)


async def test_rows_not_due_and_rows_left_by_another_process_are_swept(
    store: Store, redis_server: RedisServer
) -> None:
    async with relaying(store, redis_server, sweep_seconds=0.2) as (dispatch, reads):
        # Due in 0.5 s: not moved at its commit; a sweep moves it once due.
        await commit(store, dispatch, [attempt("e2/later/1", delay=0.5)])
        # Written by another process (or before a crash): never committed here.
        await store.write(lambda conn: store.insert_outbox(conn, [attempt("e3/orphan/1")]))

        async def moved() -> bool:
            return len(streamed(redis_server)) == 2 and await in_outbox(store) == []

        await until(moved)
        assert sorted(streamed(redis_server)) == ["e2/later/1", "e3/orphan/1"]
        swept = [task_id for read in reads for task_id in read]
        assert sorted(swept) == ["e2/later/1", "e3/orphan/1"]  # each moved once, by a sweep
