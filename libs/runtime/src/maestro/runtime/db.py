"""Database engines for the services that own tables.

SQLite (WAL, one file per service under the data directory) is the embedded
default; a ``postgresql+psycopg://`` URL selects PostgreSQL. Both through
SQLAlchemy 2's asyncio engine, so store code is the same on either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def database_url(configured: str, data_dir: Path, service: str) -> str:
    """``configured`` when set, else a SQLite file ``<data_dir>/<service>.db``."""
    if configured:
        return configured
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').resolve()}"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and FKs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def pinger(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """A readiness check that the database answers."""

    async def database() -> None:
        await ping(engine)

    return database
