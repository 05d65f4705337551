"""Registry tests against real databases: SQLite and a throwaway PostgreSQL.

The PostgreSQL cluster is started once per session (``initdb`` as the
``postgres`` user, ``pg_ctl start`` on a free loopback port, sockets and data
under a temporary directory) and stopped at the end. Missing PostgreSQL binaries
fail the tests that need them; they are never skipped. Each test gets a clean
database: SQLite a new file, PostgreSQL the session database with every registry
table truncated afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from maestro.services.registry.clients import CompilerAdapter
from maestro.services.registry.store import metadata
from tests.conftest import free_port
from tests.unit.registry.support import Harness, compiler_adapter, registry_over

_PG_GLOB = "/usr/lib/postgresql/*/bin"
_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are required by the registry tests and "
    "were not found under /usr/lib/postgresql/*/bin. Install them with "
    "`apt-get install postgresql` (Debian/Ubuntu; or run `make system-deps`)."
)


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster."""

    port: int
    database: str

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3, async-capable) of ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the ``postgres`` maintenance database."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )


def _pg_bin() -> Path:
    candidates = sorted(
        (Path(d) for d in glob.glob(_PG_GLOB)),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    pytest.fail(_INSTALL_HINT, pytrace=False)


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        details = result.stdout + result.stderr
        if log is not None and log.exists():
            details += "\n--- server log ---\n" + log.read_text(errors="replace")
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{details}", pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session with an empty database ``maestro``."""
    bin_dir = _pg_bin()
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        # initdb refuses to run as root: the cluster belongs to `postgres`.
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("the 'postgres' system user is missing: " + _INSTALL_HINT, pytrace=False)
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    pg_ctl = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        _run(
            [
                *as_postgres,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run([*pg_ctl, "-w", "-l", str(log), "-o", options, "start"], "pg_ctl start", log)
        started = True
        server = PostgresServer(port=port, database="maestro")
        with server.admin() as conn:
            conn.execute("CREATE DATABASE maestro")
        yield server
    finally:
        if started:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


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
