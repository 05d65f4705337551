"""Alembic environment of the registry's schema (SQLite and PostgreSQL alike).

Run by ``RegistryStore.migrate()`` at start-up, which passes its own connection
in ``config.attributes["connection"]``. From a shell (for example before a
rolling deploy)::

    alembic -c services/registry/src/maestro/services/registry/migrations/alembic.ini upgrade head

uses the registry's settings (``MAESTRO_REGISTRY_DATABASE_URL``, else the SQLite
file under ``MAESTRO_REGISTRY_DATA_DIR``) unless ``-x url=...`` is given.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from maestro.runtime import db
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.store import ALEMBIC_VERSION_TABLE, metadata

config = context.config

# Any fixed 64-bit key: concurrent registries migrating one PostgreSQL database
# take turns; the second finds the schema at head and does nothing.
_ADVISORY_LOCK_KEY = 0x6D61657374726F01


def _url() -> str:
    explicit = context.get_x_argument(as_dictionary=True).get("url")
    if explicit:
        return str(explicit)
    settings = RegistrySettings()
    return db.database_url(settings.database_url, settings.data_dir, "registry")


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=ALEMBIC_VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})"))
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        version_table=ALEMBIC_VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_with_own_engine(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
