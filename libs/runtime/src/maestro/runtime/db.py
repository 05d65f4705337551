"""Database engines for the services that own tables.

SQLite (WAL, one file per service under the data directory) is the embedded
default; a ``postgresql+psycopg://`` URL selects PostgreSQL. Both through
SQLAlchemy 2's asyncio engine, so store code is the same on either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def database_url(configured: str, data_dir: Path, service: str) -> str:
    """``configured`` when set, else a SQLite file ``<data_dir>/<service>.db``."""
    if configured:
        return configured
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and FKs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def create_sync_engine(url: str, *, pool_size: int = 10) -> Engine:
    """A synchronous engine on the same database as :func:`create_engine`'s URL
    (``sqlite+aiosqlite`` becomes ``sqlite``; psycopg 3 serves both), for work
    run whole on a thread: one hop from the event loop per transaction."""
    if url.startswith("sqlite"):
        engine = sa_create_engine(
            url.replace("sqlite+aiosqlite", "sqlite", 1),
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa_create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers ``SELECT 1``."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def pinger(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """A readiness check that the database answers."""

    async def database() -> None:
        await ping(engine)

    return database
