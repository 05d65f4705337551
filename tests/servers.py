"""Real servers the test suite (and the benchmarks) start for themselves: a
throwaway PostgreSQL cluster and Redis, each on a free loopback port, stopped
by PID at the end.

:func:`postgres_cluster` and :func:`redis_instance` are plain context managers
that raise ``RuntimeError`` (with the install hint) when a server cannot be
started; the session fixtures ``postgres`` and ``redis_server`` wrap them and
turn that into a test failure: missing binaries fail the tests that need them,
they are never skipped. Tests get isolation from fresh databases (PostgreSQL
``CREATE DATABASE``, Redis ``FLUSHDB``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import free_port

_PG_GLOB = "/usr/lib/postgresql/*/bin"
_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are required by the registry tests and "
    "were not found under /usr/lib/postgresql/*/bin. Install them with "
    "`apt-get install postgresql` (Debian/Ubuntu; or run `make system-deps`)."
)
# Throwaway clusters trade durability for speed; `durable=True` keeps
# PostgreSQL's defaults (fsync, synchronous_commit and full_page_writes on).
_FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


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
    raise RuntimeError(_INSTALL_HINT)


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        details = result.stdout + result.stderr
        if log is not None and log.exists():
            details += "\n--- server log ---\n" + log.read_text(errors="replace")
        raise RuntimeError(f"{what} failed ({' '.join(command)}):\n{details}")


@contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster with an empty database ``maestro``,
    stopped and deleted on exit.

    Raises:
        RuntimeError: the binaries or the ``postgres`` user are missing, or the
            cluster did not start (with its log).
    """
    bin_dir = _pg_bin()
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    port = free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        if os.geteuid() == 0:
            # initdb refuses to run as root: the cluster belongs to `postgres`.
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "the 'postgres' system user is missing: " + _INSTALL_HINT
                ) from None
            for path in (root, sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
            as_postgres = ["runuser", "-u", "postgres", "--"]
            pg_ctl = [*as_postgres, *pg_ctl]
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
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " " + _FAST_OPTIONS
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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session with an empty database ``maestro``."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_cluster())
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


def fresh_database(server: PostgresServer) -> str:
    """A new, empty database on ``server``; returns its SQLAlchemy URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    with server.admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url(name)


@dataclass(frozen=True)
class RedisServer:
    """A running throwaway Redis."""

    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)


_REDIS_HINT = (
    "redis-server is required by the execution tests (Redis Streams dispatch) and was not "
    "found on PATH. Install it with `apt-get install redis-server` (or `make system-deps`)."
)


@contextmanager
def redis_instance() -> Iterator[RedisServer]:
    """A throwaway Redis (no persistence, loopback only, own port), stopped on exit.

    Raises:
        RuntimeError: ``redis-server`` is missing or did not start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(_REDIS_HINT)
    root = Path(tempfile.mkdtemp(prefix="maestro-redis-"))
    port = free_port()
    try:
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
             "no", "--dir", str(root), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    server = RedisServer(port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                server.client().ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis for the session: no persistence, loopback only, own port."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(redis_instance())
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server
