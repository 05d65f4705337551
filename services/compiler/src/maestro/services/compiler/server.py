"""The compiler's gRPC server."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from maestro.compiler.v1 import compiler_service_pb2, compiler_service_pb2_grpc
from maestro.runtime.server import GrpcServer, ServiceSpec, start_grpc_server
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.gcpause import tune_collection
from maestro.services.compiler.service import Compiler, Source
from maestro.services.compiler.servicer import CompilerServicer

SERVICE_NAME = compiler_service_pb2.DESCRIPTOR.services_by_name["CompilerService"].full_name
_SELF_TEST = Source(b"name: self-test\nsteps:\n  - id: a\n    type: task\n", is_json=False)


async def create_server(
    settings: CompilerSettings, *, tracer_provider: TracerProvider | None = None
) -> GrpcServer:
    """Starts a compiler server; ``server.port`` is the bound port."""
    tune_collection()
    compiler = Compiler(settings.document_cache_size)

    async def can_compile() -> None:
        # Ready when the whole parse/validate/digest path works (libyaml loaded,
        # rfc8785 importable, validators sane).
        if not compiler.validate(_SELF_TEST).valid:
            raise RuntimeError("self-test definition does not validate")

    spec = ServiceSpec(
        name="compiler",
        servicers=[
            (
                compiler_service_pb2_grpc.add_CompilerServiceServicer_to_server,
                CompilerServicer(compiler),
            )
        ],
        service_names=[SERVICE_NAME],
        checks={"self_test": can_compile},
    )
    return await start_grpc_server(spec, settings, tracer_provider)
