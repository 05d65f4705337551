"""The verified calling service: from Envoy's XFCC header behind a sidecar, from
the peer certificate with native TLS, else only what the caller claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from maestro.cli.certs import identity_files, make_certs
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime import context
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.server import GrpcServer, ServiceSpec
from maestro.runtime.tls import TlsFiles
from maestro.services.compiler.config import CompilerSettings

pytestmark = pytest.mark.timeout(20)

COMPILER = compiler_pb.DESCRIPTOR.services_by_name["CompilerService"]
ENVOY_XFCC = (
    'By=spiffe://maestro.local/compiler;Hash=4f1c9a;Subject="O=Maestro development,CN=registry";'
    "URI=spiffe://maestro.local/registry;DNS=registry.maestro.local;"
    "DNS=registry.maestro.svc.cluster.local;DNS=registry"
)


@pytest.mark.parametrize(
    ("value", "service"),
    [
        (ENVOY_XFCC, "registry"),
        # Several elements (APPEND_FORWARD hops): the last is the nearest caller.
        (
            "URI=spiffe://maestro.local/gateway,By=x;URI=spiffe://maestro.local/scheduler",
            "scheduler",
        ),
        # Quoted values may hold separators.
        ('Subject="CN=a,O=b;c";URI=spiffe://maestro.local/signer', "signer"),
        ("URI=spiffe://other.example/registry;DNS=registry.maestro.local", ""),
        ("URI=spiffe://maestro.local/a/b", ""),
        ("DNS=registry.maestro.local", ""),
        ("", ""),
    ],
)
def test_service_from_xfcc(value: str, service: str) -> None:
    assert context.service_from_xfcc(value) == service


def test_spiffe_ids_round_trip() -> None:
    assert context.spiffe_id("policy") == "spiffe://maestro.local/policy"
    assert context.service_from_spiffe_id(context.spiffe_id("policy")) == "policy"
    assert context.service_from_spiffe_id("spiffe://maestro.local/") == ""


class Recorder(compiler_grpc.CompilerServiceServicer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    async def DigestWorkflow(
        self, request: compiler_pb.DigestWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> compiler_pb.DigestWorkflowResponse:
        call = context.current()
        self.seen.append((call.caller_service, call.caller_verified))
        return compiler_pb.DigestWorkflowResponse(digest="ab" * 32)


@asynccontextmanager
async def _serve(settings: CompilerSettings, recorder: Recorder) -> AsyncIterator[GrpcServer]:
    spec = ServiceSpec(
        name="compiler",
        servicers=[(compiler_grpc.add_CompilerServiceServicer_to_server, recorder)],
        service_names=[COMPILER.full_name],
    )
    server = GrpcServer(spec, settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    make_certs(folder, ["compiler", "registry"])
    return folder


async def test_behind_a_sidecar_the_xfcc_caller_wins_over_the_claimed_one() -> None:
    recorder = Recorder()
    settings = CompilerSettings(port=0, metrics_port=None)
    async with (
        _serve(settings, recorder) as server,
        open_channel(server.address, caller="gateway", services=[COMPILER]) as channel,
    ):
        await CompilerClient(channel, timeout=5).digest_workflow(
            compiler_pb.DigestWorkflowRequest()
        )
        await compiler_grpc.CompilerServiceStub(channel).DigestWorkflow(
            compiler_pb.DigestWorkflowRequest(),
            timeout=5,
            metadata=((context.XFCC_KEY, ENVOY_XFCC),),
        )
    assert recorder.seen == [("gateway", False), ("registry", True)]


async def test_with_native_tls_the_peer_certificate_names_the_caller(certs: Path) -> None:
    server_files = identity_files(certs, "compiler")
    client_files = identity_files(certs, "registry")
    settings = CompilerSettings(
        port=0,
        metrics_port=None,
        tls_cert_file=server_files.cert,
        tls_key_file=server_files.key,
        tls_ca_file=server_files.ca,
    )
    recorder = Recorder()
    async with _serve(settings, recorder) as server:
        tls = TlsFiles(client_files.cert, client_files.key, client_files.ca)
        async with open_channel(
            f"127.0.0.1:{server.port}", caller="claimed", services=[COMPILER], tls=tls
        ) as ch:
            stub = compiler_grpc.CompilerServiceStub(ch)
            # A forged XFCC is ignored when the connection itself is mTLS.
            await stub.DigestWorkflow(
                compiler_pb.DigestWorkflowRequest(),
                timeout=5,
                metadata=((context.XFCC_KEY, "URI=spiffe://maestro.local/signer"),),
            )
    assert recorder.seen == [("registry", True)]
