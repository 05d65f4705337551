"""Alembic plumbing shared by every service that owns tables.

Each service keeps its own migration history (its own ``alembic_version``
table, named per service, so services sharing one PostgreSQL database do not
collide) and runs it at start-up on SQLite and PostgreSQL alike. A service's
``migrations/env.py`` is one call to :func:`run_env`; its store calls
:func:`upgrade_to_head` on a connection of its own engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


class UnmigratedDatabaseError(RuntimeError):
    """The database holds a service's tables but no migration history."""


def upgrade_to_head(
    connection: Connection, migrations_dir: Path, version_table: str, marker_table: str
) -> None:
    """Upgrades the schema on ``connection`` to the newest migration.

    ``marker_table`` is one of the service's tables: finding it without the
    version table means a database created before migrations existed, which is
    refused rather than guessed at.
    """
    tables = set(inspect(connection).get_table_names())
    if marker_table in tables and version_table not in tables:
        raise UnmigratedDatabaseError(
            f"{connection.engine.url.render_as_string(hide_password=True)} holds "
            f"{marker_table} without migration history: move the database aside "
            "(embedded development data) and restart"
        )
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_env(
    metadata: MetaData, version_table: str, default_url: Callable[[], str], lock_key: int
) -> None:
    """The body of a service's Alembic ``env.py``.

    Online with a connection passed in ``config.attributes["connection"]`` (the
    service at start-up), online with an engine of its own (``alembic upgrade``
    from a shell; ``-x url=...`` or the service's settings), or offline (SQL
    script). On PostgreSQL concurrent migrators serialise on an advisory lock
    keyed ``lock_key``; the second finds the schema at head and does nothing.
    """

    def url() -> str:
        explicit = context.get_x_argument(as_dictionary=True).get("url")
        return str(explicit) if explicit else default_url()

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({lock_key})"))
            context.run_migrations()

    async def run_with_own_engine() -> None:
        engine = create_async_engine(url(), poolclass=pool.NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=url(), target_metadata=metadata, version_table=version_table, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
    else:
        asyncio.run(run_with_own_engine())
