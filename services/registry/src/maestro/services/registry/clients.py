"""The registry's view of its peers, adapted to what its domain needs."""

from __future__ import annotations

from maestro.common.v1 import diagnostic_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.runtime.clients import CompilerClient
from maestro.services.registry.service import Problem, Validation

_FORMATS = {True: source_pb2.SOURCE_FORMAT_JSON, False: source_pb2.SOURCE_FORMAT_YAML}


class CompilerValidator:
    """Validates definitions through the compiler service."""

    def __init__(self, client: CompilerClient) -> None:
        self._client = client

    async def validate(self, content: bytes, is_json: bool | None, filename: str) -> Validation:
        response = await self._client.validate_workflow(
            compiler_pb.ValidateWorkflowRequest(
                source=source_pb2.WorkflowSource(
                    content=content,
                    format=_FORMATS.get(is_json, source_pb2.SOURCE_FORMAT_UNSPECIFIED)
                    if is_json is not None
                    else source_pb2.SOURCE_FORMAT_UNSPECIFIED,
                    filename=filename,
                )
            )
        )
        return Validation(
            valid=response.valid,
            definition=response.definition.SerializeToString() if response.valid else b"",
            name=response.definition.name,
            description=response.definition.description,
            tags=tuple(response.definition.tags),
            digest=response.digest,
            problems=tuple(
                Problem(d.code, d.message, d.path, d.position.line, d.position.column)
                for d in response.diagnostics
                if d.severity == diagnostic_pb2.SEVERITY_ERROR
            ),
        )
