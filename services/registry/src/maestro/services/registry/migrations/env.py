"""Alembic environment of the registry's schema (SQLite and PostgreSQL alike).

Run by ``RegistryStore.migrate()`` at start-up, which passes its own connection
in ``config.attributes["connection"]``. From a shell (for example before a
rolling deploy)::

    alembic -c services/registry/src/maestro/services/registry/migrations/alembic.ini upgrade head

uses the registry's settings (``MAESTRO_REGISTRY_DATABASE_URL``, else the SQLite
file under ``MAESTRO_REGISTRY_DATA_DIR``) unless ``-x url=...`` is given.
"""

from __future__ import annotations

from maestro.runtime import db
from maestro.runtime.migrations import run_env
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.store import ALEMBIC_VERSION_TABLE, metadata


def _default_url() -> str:
    settings = RegistrySettings()
    return db.database_url(settings.database_url, settings.data_dir, "registry")


run_env(metadata, ALEMBIC_VERSION_TABLE, _default_url, lock_key=0x6D61657374726F01)
