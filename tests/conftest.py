"""Shared fixtures: free loopback ports and in-process servers on port 0."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AuthoringMesh:
    """A compiler and a registry wired to it, in this process."""

    compiler: GrpcServer
    registry: GrpcServer

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry.port}"

    @property
    def compiler_address(self) -> str:
        return f"127.0.0.1:{self.compiler.port}"


@pytest.fixture
async def authoring_mesh(tmp_path: Path) -> AsyncIterator[AuthoringMesh]:
    compiler = await create_compiler(CompilerSettings(port=0, metrics_port=0))
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=0,
            data_dir=tmp_path,
            compiler_address=f"127.0.0.1:{compiler.port}",
        )
    )
    try:
        yield AuthoringMesh(compiler, registry)
    finally:
        await registry.stop(0)
        await compiler.stop(0)
