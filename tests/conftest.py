"""Shared fixtures: free loopback ports and in-process servers on port 0."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Tests take their loopback ports from the same helpers as `maestro up --envoy-free-ports`.
from maestro.cli.envoy_config import free_port, free_ports  # noqa: F401 - re-exported
from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.server import create_server as create_policy
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.server import create_server as create_signer
from tests.teardown import stop_within

REPO = Path(__file__).resolve().parents[1]

# Receipts are signed only where a test starts a signer and names it: never by
# a stray signer listening on the default port of this machine.
os.environ.setdefault("MAESTRO_REGISTRY_SIGNER_ADDRESS", "")
os.environ.setdefault("MAESTRO_SCHEDULER_SIGNER_ADDRESS", "")


async def start_policy(data_dir: Path) -> GrpcServer:
    """A policy server with the shipped default bundle (every service asks it
    before acting, and fails closed without it)."""
    return await create_policy(PolicySettings(port=0, metrics_port=None, data_dir=data_dir))


async def start_signer(data_dir: Path, policy_address: str) -> GrpcServer:
    """A signer (SQLite in ``data_dir``, a development key-encryption key)
    that asks the policy service at ``policy_address``."""
    return await create_signer(
        SignerSettings(port=0, metrics_port=None, data_dir=data_dir, policy_address=policy_address)
    )


@dataclass
class AuthoringMesh:
    """A compiler, a registry wired to it, the policy service both ask, and
    the signer that signs each published version's receipt."""

    compiler: GrpcServer
    registry: GrpcServer
    policy: GrpcServer
    signer: GrpcServer

    @property
    def registry_address(self) -> str:
        return f"127.0.0.1:{self.registry.port}"

    @property
    def compiler_address(self) -> str:
        return f"127.0.0.1:{self.compiler.port}"

    @property
    def policy_address(self) -> str:
        return f"127.0.0.1:{self.policy.port}"

    @property
    def signer_address(self) -> str:
        return f"127.0.0.1:{self.signer.port}"


@pytest.fixture
async def authoring_mesh(tmp_path: Path) -> AsyncIterator[AuthoringMesh]:
    policy = await start_policy(tmp_path)
    signer = await start_signer(tmp_path, f"127.0.0.1:{policy.port}")
    compiler = await create_compiler(CompilerSettings(port=0, metrics_port=0))
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=0,
            data_dir=tmp_path,
            compiler_address=f"127.0.0.1:{compiler.port}",
            policy_address=f"127.0.0.1:{policy.port}",
            signer_address=f"127.0.0.1:{signer.port}",
        )
    )
    try:
        yield AuthoringMesh(compiler, registry, policy, signer)
    finally:
        await stop_within("registry", registry.stop(0))
        await stop_within("compiler", compiler.stop(0))
        await stop_within("signer", signer.stop(0))
        await stop_within("policy", policy.stop(0))
