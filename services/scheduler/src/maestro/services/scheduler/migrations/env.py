"""Alembic environment of the scheduler's schema (SQLite and PostgreSQL alike).

Run by ``Store.migrate()`` at start-up. From a shell::

    alembic -c services/scheduler/src/maestro/services/scheduler/migrations/alembic.ini upgrade head

uses ``MAESTRO_SCHEDULER_DATABASE_URL`` (else the SQLite file under
``MAESTRO_SCHEDULER_DATA_DIR``) unless ``-x url=...`` is given.
"""

from __future__ import annotations

from maestro.runtime import db
from maestro.runtime.migrations import run_env
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.store import ALEMBIC_VERSION_TABLE, metadata


def _default_url() -> str:
    settings = SchedulerSettings()
    return db.database_url(settings.database_url, settings.data_dir, "scheduler")


run_env(metadata, ALEMBIC_VERSION_TABLE, _default_url, lock_key=0x6D61657374726F02)
