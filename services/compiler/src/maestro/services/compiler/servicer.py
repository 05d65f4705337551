"""gRPC servicer of the compiler: proto <-> domain, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from maestro.common.v1 import diagnostic_pb2, source_pb2, workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as pb_grpc
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.protomap import definition_message
from maestro.services.compiler.service import Compiler, Source, ValidationResult

_SEVERITY = {
    "error": diagnostic_pb2.SEVERITY_ERROR,
    "warning": diagnostic_pb2.SEVERITY_WARNING,
    "info": diagnostic_pb2.SEVERITY_INFO,
}


def source_from_proto(source: source_pb2.WorkflowSource) -> Source:
    """The domain source for a request's ``WorkflowSource``."""
    is_json = {
        source_pb2.SOURCE_FORMAT_JSON: True,
        source_pb2.SOURCE_FORMAT_YAML: False,
    }.get(source.format)
    return Source(source.content, is_json, source.filename)


def diagnostics_to_proto(result: ValidationResult) -> list[diagnostic_pb2.Diagnostic]:
    return [
        diagnostic_pb2.Diagnostic(
            code=f.code,
            severity=_SEVERITY[f.severity],
            message=f.message,
            hint=f.hint,
            path=f.path,
            position=source_pb2.SourcePosition(line=line, column=column),
            related_steps=f.related_steps,
        )
        for f, (line, column) in result.report.findings
    ]


def definition_to_proto(document: object) -> workflow_pb2.WorkflowDefinition | None:
    """The typed definition of a valid document, converted from its normal form
    (so durations such as ``2m`` become ``Duration``s; DSL step/trigger types are
    lowercase words, the proto enums are prefixed)."""
    return _definition(normalize(document)) if isinstance(document, dict) else None


def _definition(normal: object) -> workflow_pb2.WorkflowDefinition | None:
    """``definition_to_proto`` of a document whose normal form is ``normal``."""
    if not isinstance(normal, dict):
        return None
    try:
        return definition_message(normal)
    except json_format.ParseError:
        return None


class CompilerServicer(pb_grpc.CompilerServiceServicer):
    """Serves ``maestro.compiler.v1.CompilerService``."""

    def __init__(self, compiler: Compiler) -> None:
        self._compiler = compiler

    async def ValidateWorkflow(
        self, request: pb.ValidateWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateWorkflowResponse:
        result = self._compiler.validate(source_from_proto(request.source))
        definition = _definition(result.normal) if result.valid else None
        return pb.ValidateWorkflowResponse(
            valid=result.valid,
            diagnostics=diagnostics_to_proto(result),
            definition=definition,
            digest=result.digest,
        )

    async def LintWorkflow(
        self, request: pb.LintWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.LintWorkflowResponse:
        result = self._compiler.lint(
            source_from_proto(request.source), list(request.disabled_rules)
        )
        return pb.LintWorkflowResponse(valid=result.valid, diagnostics=diagnostics_to_proto(result))

    async def GetWorkflowSchema(
        self, request: pb.GetWorkflowSchemaRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWorkflowSchemaResponse:
        schema, schema_id = self._compiler.workflow_schema()
        return pb.GetWorkflowSchemaResponse(schema_json=schema, schema_id=schema_id)

    async def DigestWorkflow(
        self, request: pb.DigestWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.DigestWorkflowResponse:
        digest, canonical = self._compiler.digest(source_from_proto(request.source))
        return pb.DigestWorkflowResponse(digest=digest, canonical_json=canonical)

    async def CompileWorkflow(
        self, request: pb.CompileWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompileWorkflowResponse:
        compiled = self._compiler.compile(source_from_proto(request.source))
        return pb.CompileWorkflowResponse(
            plan=compiled.plan,
            definition=definition_message(compiled.normal),
            diagnostics=diagnostics_to_proto(compiled.result),
        )

    async def DiffWorkflows(
        self, request: pb.DiffWorkflowsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DiffWorkflowsResponse:
        diff = self._compiler.diff(
            source_from_proto(request.base), source_from_proto(request.target)
        )
        return pb.DiffWorkflowsResponse(diff=diff)

    async def SimulateWorkflow(
        self, request: pb.SimulateWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimulateWorkflowResponse:
        default_task_duration = (
            request.default_task_duration.ToTimedelta().total_seconds()
            if request.HasField("default_task_duration")
            else None
        )
        return self._compiler.simulate(
            source_from_proto(request.source),
            json_format.MessageToDict(request.inputs),
            dict(request.mocks),
            dict(request.cost_table),
            default_task_duration,
        )
