"""Alembic environment of the policy service's schema (SQLite and PostgreSQL alike).

Run by ``DecisionStore.migrate()`` at start-up. From a shell::

    alembic -c services/policy/src/maestro/services/policy/migrations/alembic.ini upgrade head

uses ``MAESTRO_POLICY_DATABASE_URL`` (else the SQLite file under
``MAESTRO_POLICY_DATA_DIR``) unless ``-x url=...`` is given.
"""

from __future__ import annotations

from maestro.runtime import db
from maestro.runtime.migrations import run_env
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.store import ALEMBIC_VERSION_TABLE, metadata


def _default_url() -> str:
    settings = PolicySettings()
    return db.database_url(settings.database_url, settings.data_dir, "policy")


run_env(metadata, ALEMBIC_VERSION_TABLE, _default_url, lock_key=0x6D61657374726F05)
