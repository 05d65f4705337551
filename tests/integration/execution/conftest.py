"""Execution tests run once per backend: ``embedded`` (SQLite, SQL task table)
and ``production`` (a real PostgreSQL and a real Redis the suite starts)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.execution.support import Backend, Mesh, execution_mesh
from tests.servers import PostgresServer, RedisServer, fresh_database, postgres, redis_server

__all__ = ["postgres", "redis_server"]


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        yield Backend("embedded")
        return
    pg: PostgresServer = request.getfixturevalue("postgres")
    redis: RedisServer = request.getfixturevalue("redis_server")
    redis.client().flushall()
    yield Backend("production", database_url=fresh_database(pg), redis_url=redis.url())


@pytest.fixture
async def mesh(backend: Backend, tmp_path: Path) -> AsyncIterator[Mesh]:
    async with execution_mesh(backend, tmp_path) as running:
        yield running


@pytest.fixture
async def bare_mesh(backend: Backend, tmp_path: Path) -> AsyncIterator[Mesh]:
    """The mesh without an executor: tests drive the task queue by hand."""
    async with execution_mesh(backend, tmp_path, executor=False) as running:
        yield running
