"""Alembic environment of the signer's schema (SQLite and PostgreSQL alike).

Run by ``SignerStore.migrate()`` at start-up, which passes its own connection
in ``config.attributes["connection"]``. From a shell::

    alembic -c services/signer/src/maestro/services/signer/migrations/alembic.ini upgrade head

uses the signer's settings (``MAESTRO_SIGNER_DATABASE_URL``, else the SQLite
file under ``MAESTRO_SIGNER_DATA_DIR``) unless ``-x url=...`` is given.
"""

from __future__ import annotations

from maestro.runtime import db
from maestro.runtime.migrations import run_env
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.store import ALEMBIC_VERSION_TABLE, metadata


def _default_url() -> str:
    settings = SignerSettings()
    return db.database_url(settings.database_url, settings.data_dir, "signer")


run_env(metadata, ALEMBIC_VERSION_TABLE, _default_url, lock_key=0x6D61657374726F06)
