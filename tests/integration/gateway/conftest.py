"""A gateway in front of a real compiler and registry, all on port 0."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.server import GatewayServer
from maestro.services.gateway.server import create_server as create_gateway
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.conftest import AuthoringMesh, free_port, start_policy

# Peers the authoring API does not call: nothing listens there (readiness only).
_IDLE_PEERS = ("scheduler", "executor", "policy", "signer")


def gateway_settings(mesh: AuthoringMesh, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "port": 0,
        "registry_address": mesh.registry_address,
        "compiler_address": mesh.compiler_address,
        "client_timeout_seconds": 10.0,
        **{f"{peer}_address": f"127.0.0.1:{free_port()}" for peer in _IDLE_PEERS},
        **overrides,
    }
    return GatewaySettings(**values)  # type: ignore[arg-type]


@dataclass
class Gateway:
    """A running gateway and an HTTP client pointed at it."""

    server: GatewayServer
    http: httpx.AsyncClient
    mesh: AuthoringMesh


@pytest.fixture
async def gateway(authoring_mesh: AuthoringMesh) -> AsyncIterator[Gateway]:
    server = await create_gateway(gateway_settings(authoring_mesh))
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=20
        ) as http:
            yield Gateway(server, http, authoring_mesh)
    finally:
        await server.stop()


@dataclass
class BackgroundMesh:
    """A compiler and a registry served from their own thread and event loop,
    for code under test that runs its own loop (the CLI's ``asyncio.run``)."""

    data_dir: Path
    compiler_address: str = ""
    registry_address: str = ""

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="background-mesh", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("background mesh did not start")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            policy = await start_policy(self.data_dir)
            compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
            registry = await create_registry(
                RegistrySettings(
                    port=0,
                    metrics_port=None,
                    data_dir=self.data_dir,
                    compiler_address=f"127.0.0.1:{compiler.port}",
                    policy_address=f"127.0.0.1:{policy.port}",
                )
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self.compiler_address = f"127.0.0.1:{compiler.port}"
        self.registry_address = f"127.0.0.1:{registry.port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await registry.stop(0)
            await compiler.stop(0)
            await policy.stop(0)


@pytest.fixture
def background_mesh(tmp_path: Path) -> Iterator[BackgroundMesh]:
    mesh = BackgroundMesh(tmp_path)
    mesh.start()
    try:
        yield mesh
    finally:
        mesh.stop()
