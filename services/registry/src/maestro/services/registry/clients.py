"""The registry's view of its peers, adapted to what its domain needs."""

from __future__ import annotations

from typing import cast

from maestro.common.v1 import diff_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.runtime.clients import CompilerClient
from maestro.services.registry.service import Compilation, Source, Validation


def _source(source: Source) -> source_pb2.WorkflowSource:
    return source_pb2.WorkflowSource(
        content=source.content,
        format=cast(source_pb2.SourceFormat, source.format),
        filename=source.filename,
    )


class CompilerAdapter:
    """Validates, compiles and diffs definitions through the compiler service.

    Errors come back as the compiler's typed ``MaestroError``s (for example
    INVALID_DEFINITION from CompileWorkflow, UNAVAILABLE when it is down) and
    pass through the registry unchanged.
    """

    def __init__(self, client: CompilerClient) -> None:
        self._client = client

    async def validate(self, source: Source) -> Validation:
        response = await self._client.validate_workflow(
            compiler_pb.ValidateWorkflowRequest(source=_source(source))
        )
        return Validation(
            valid=response.valid,
            definition=response.definition,
            digest=response.digest,
            diagnostics=tuple(response.diagnostics),
        )

    async def compile(self, source: Source) -> Compilation:
        response = await self._client.compile_workflow(
            compiler_pb.CompileWorkflowRequest(source=_source(source))
        )
        return Compilation(
            plan=response.plan,
            definition=response.definition,
            diagnostics=tuple(response.diagnostics),
        )

    async def diff(self, base: Source, target: Source) -> diff_pb2.WorkflowDiff:
        response = await self._client.diff_workflows(
            compiler_pb.DiffWorkflowsRequest(base=_source(base), target=_source(target))
        )
        diff: diff_pb2.WorkflowDiff = response.diff
        return diff
