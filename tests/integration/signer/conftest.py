"""Signer tests against real databases (SQLite and a throwaway PostgreSQL, a
fresh database per test) and real gRPC servers on port 0."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from pydantic import SecretStr

from maestro.runtime import context
from maestro.runtime.clients import ServiceClient, open_channel
from maestro.runtime.server import GrpcServer
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.policy import InterimPolicyGate
from maestro.services.signer.server import create_server
from maestro.signer.v1 import signer_service_pb2, signer_service_pb2_grpc
from tests.servers import PostgresServer, fresh_database, postgres
from tests.unit.signer.support import ANA, ORIGIN

__all__ = ["PostgresServer", "postgres"]

KEK_TEXT = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'signer.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    yield fresh_database(server)


def settings(database_url: str, data_dir: Path, **overrides: Any) -> SignerSettings:
    values: dict[str, Any] = {
        "port": 0,
        "metrics_port": None,
        "data_dir": data_dir,
        "database_url": database_url,
        "origin": ORIGIN,
        "kek": SecretStr(KEK_TEXT),
        **overrides,
    }
    return SignerSettings(**values)


class SignerTestClient(ServiceClient):
    """The SignerService stub with deadlines and typed errors (``MaestroError``)."""

    SERVICES: tuple[ServiceDescriptor, ...] = (
        signer_service_pb2.DESCRIPTOR.services_by_name["SignerService"],
    )

    def __init__(self, channel: grpc.aio.Channel, *, address: str) -> None:
        super().__init__(channel, timeout=10, address=address)
        self._stub = signer_service_pb2_grpc.SignerServiceStub(channel)

    def __getattr__(self, rpc: str) -> Callable[[Message], Any]:
        method = getattr(self._stub, rpc)

        async def call(request: Message) -> Any:
            return await self._unary(method, request)

        return call


@asynccontextmanager
async def signer_client(
    server: GrpcServer, caller: str = "registry"
) -> AsyncIterator[SignerTestClient]:
    """A client calling as service ``caller`` with the identity bound by the test."""
    address = f"127.0.0.1:{server.port}"
    channel = open_channel(address, caller=caller, services=SignerTestClient.SERVICES)
    try:
        yield SignerTestClient(channel, address=address)
    finally:
        await channel.close()


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[GrpcServer]:
    started = await create_server(settings(database_url, tmp_path), policy=InterimPolicyGate())
    try:
        yield started
    finally:
        await started.stop(0)


@pytest.fixture
async def client(server: GrpcServer) -> AsyncIterator[SignerTestClient]:
    async with signer_client(server) as c:
        with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
            yield c
