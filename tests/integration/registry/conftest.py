"""Registry tests against real databases: SQLite and a throwaway PostgreSQL.

The PostgreSQL cluster is started once per session (``initdb`` as the
``postgres`` user, ``pg_ctl start`` on a free loopback port, sockets and data
under a temporary directory) and stopped at the end. Missing PostgreSQL binaries
fail the tests that need them; they are never skipped. Each test gets a clean
database: SQLite a new file, PostgreSQL the session database with every registry
table truncated afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from maestro.services.registry.clients import CompilerAdapter
from maestro.services.registry.store import metadata
from tests.servers import PostgresServer, postgres
from tests.unit.registry.support import Harness, compiler_adapter, registry_over

__all__ = ["PostgresServer", "postgres"]


def _truncate_all(server: PostgresServer) -> None:
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname=server.database
    ) as conn:
        exists = conn.execute("SELECT to_regclass('public.workflows')").fetchone()
        if exists and exists[0] is not None:
            conn.execute(f"TRUNCATE {tables}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty registry database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    _truncate_all(server)
    try:
        yield server.url()
    finally:
        _truncate_all(server)


@pytest.fixture
async def compiler() -> AsyncIterator[CompilerAdapter]:
    async with compiler_adapter() as adapter:
        yield adapter


@pytest.fixture
async def harness(database_url: str, compiler: CompilerAdapter) -> AsyncIterator[Harness]:
    async with registry_over(database_url, compiler) as h:
        yield h
