"""Native gRPC TLS without Envoy: a server with tls_* settings serves mTLS,
clients present their certificate through open_channel/probe_health, and a
client without one is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError

from maestro.cli.certs import identity_files, make_certs
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.runtime.clients import CompilerClient, open_channel, probe_health, service_authority
from maestro.runtime.errors import UnavailableError
from maestro.runtime.server import GrpcServer
from maestro.runtime.tls import TlsFiles
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server

pytestmark = pytest.mark.timeout(20)

COMPILER = compiler_pb.DESCRIPTOR.services_by_name["CompilerService"]
SOURCE = b"name: x\nsteps: []\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    make_certs(folder, ["compiler", "registry"])
    return folder


def _tls(certs: Path, identity: str) -> TlsFiles:
    files = identity_files(certs, identity)
    return TlsFiles(files.cert, files.key, files.ca)


@pytest.fixture
async def server(certs: Path) -> AsyncIterator[GrpcServer]:
    files = identity_files(certs, "compiler")
    started = await create_server(
        CompilerSettings(
            port=0,
            metrics_port=None,
            tls_cert_file=files.cert,
            tls_key_file=files.key,
            tls_ca_file=files.ca,
        )
    )
    try:
        yield started
    finally:
        await started.stop(0)


def test_settings_refuse_half_a_tls_configuration(certs: Path) -> None:
    files = identity_files(certs, "compiler")
    with pytest.raises(ValidationError, match="set together"):
        CompilerSettings(tls_cert_file=files.cert)
    with pytest.raises(ValidationError, match="needs tls_ca_file"):
        CompilerSettings(tls_cert_file=files.cert, tls_key_file=files.key)
    plain = CompilerSettings(tls_cert_file=files.cert, tls_key_file=files.key,
                             tls_require_client_auth=False)  # fmt: skip
    assert plain.tls_files() == TlsFiles(files.cert, files.key, None)
    assert CompilerSettings().tls_files() is None


async def test_a_client_with_a_mesh_certificate_is_served(server: GrpcServer, certs: Path) -> None:
    address = f"127.0.0.1:{server.port}"
    # The authority (compiler.maestro.local) is checked against the server's DNS SAN.
    async with open_channel(
        address, caller="registry", services=[COMPILER], tls=_tls(certs, "registry")
    ) as channel:
        client = CompilerClient(channel, timeout=5, address=address)
        reply = await client.digest_workflow(
            compiler_pb.DigestWorkflowRequest(source={"content": SOURCE})
        )
    assert len(reply.digest) == 64
    assert (
        await probe_health(
            address, authority=service_authority("compiler"), tls=_tls(certs, "registry")
        )
        == "SERVING"
    )


async def test_a_client_without_a_certificate_is_refused(server: GrpcServer, certs: Path) -> None:
    address = f"127.0.0.1:{server.port}"
    assert await probe_health(address) == "UNREACHABLE"  # plaintext
    credentials = grpc.ssl_channel_credentials((certs / "ca.crt").read_bytes())
    async with grpc.aio.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", "compiler.maestro.local")]
    ) as channel:
        client = CompilerClient(channel, timeout=3, address=address)
        with pytest.raises(UnavailableError):
            await client.digest_workflow(compiler_pb.DigestWorkflowRequest())


async def test_a_server_with_another_name_is_not_trusted(server: GrpcServer, certs: Path) -> None:
    address = f"127.0.0.1:{server.port}"
    # The client expects the registry; the compiler's certificate does not name it.
    status = await probe_health(
        address, authority=service_authority("registry"), tls=_tls(certs, "registry")
    )
    assert status == "UNREACHABLE"
