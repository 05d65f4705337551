"""mTLS between services through Envoy: only certificates of the mesh CA are
accepted, only the identities the topology lets call a service get through,
and the service learns the verified caller from XFCC (never from the client)."""

from __future__ import annotations

import grpc
import pytest
import trustme

from maestro.common.v1 import source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as compiler_grpc
from maestro.runtime import context
from tests.integration.envoy.conftest import Flaky, LocalMesh, StartMesh, mtls_channel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

DIGEST = compiler_pb.DigestWorkflowRequest(
    source=source_pb2.WorkflowSource(content=b"name: x\nsteps: []\n")
)
TARGET = "compiler.maestro.local"


@pytest.fixture
async def mesh(flaky: Flaky, start_mesh: StartMesh) -> LocalMesh:
    flaky.compiler.failures = 0
    return await start_mesh({"compiler": [flaky.server.port]})


async def _digest(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    async with channel:
        reply = await compiler_grpc.CompilerServiceStub(channel).DigestWorkflow(
            DIGEST, timeout=3, metadata=metadata
        )
    return str(reply.digest)


async def test_the_service_sees_the_verified_caller_not_the_claimed_one(
    mesh: LocalMesh, flaky: Flaky
) -> None:
    forged = (
        (context.XFCC_KEY, "URI=spiffe://maestro.local/registry"),
        (context.CALLER_SERVICE_KEY, "registry"),
    )
    # The gateway's app calls its outbound listener in plaintext; Envoy presents
    # the gateway's certificate, the compiler's Envoy verifies it and replaces XFCC.
    assert await _digest(grpc.aio.insecure_channel(mesh.outbound("gateway")), forged)
    assert flaky.compiler.callers == [("gateway", True)]
    [xfcc] = flaky.compiler.xfcc
    assert "URI=spiffe://maestro.local/gateway" in xfcc
    assert "spiffe://maestro.local/registry" not in xfcc
    assert "By=spiffe://maestro.local/compiler" in xfcc


async def test_a_caller_with_a_mesh_certificate_reaches_the_inbound_listener(
    mesh: LocalMesh, flaky: Flaky
) -> None:
    channel = mtls_channel(mesh.certs, "registry", mesh.inbound("compiler"), TARGET)
    assert await _digest(channel)
    assert flaky.compiler.callers == [("registry", True)]


async def test_no_client_certificate_is_refused(mesh: LocalMesh, flaky: Flaky) -> None:
    ca = (mesh.certs / "ca.crt").read_bytes()
    no_cert = grpc.aio.secure_channel(
        mesh.inbound("compiler"),
        grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.ssl_target_name_override", TARGET)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _digest(no_cert)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.compiler.digest_calls == 0
    listener = f"listener.127.0.0.1_{mesh.plan.inbound['compiler'][0]}"
    assert mesh.stat(f"{listener}.ssl.fail_verify_no_cert") >= 1


async def test_plaintext_is_refused(mesh: LocalMesh, flaky: Flaky) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _digest(grpc.aio.insecure_channel(mesh.inbound("compiler")))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.compiler.digest_calls == 0


async def test_a_certificate_from_another_ca_is_refused(mesh: LocalMesh, flaky: Flaky) -> None:
    stranger_ca = trustme.CA()
    stranger = stranger_ca.issue_cert("registry.maestro.local")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(mesh.certs / "ca.crt").read_bytes(),
        private_key=stranger.private_key_pem.bytes(),
        certificate_chain=b"".join(blob.bytes() for blob in stranger.cert_chain_pems),
    )
    channel = grpc.aio.secure_channel(
        mesh.inbound("compiler"), credentials, options=[("grpc.ssl_target_name_override", TARGET)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _digest(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.compiler.digest_calls == 0


async def test_a_mesh_identity_the_topology_does_not_allow_is_denied(
    mesh: LocalMesh, flaky: Flaky
) -> None:
    # policy calls nobody, so the compiler's RBAC does not list it.
    channel = mtls_channel(mesh.certs, "policy", mesh.inbound("compiler"), TARGET)
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _digest(channel)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert flaky.compiler.digest_calls == 0
    assert mesh.stat("http.inbound_compiler_0.rbac.denied") == 1
