"""gRPC servicer of the compiler: proto <-> domain, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from maestro.common.v1 import diagnostic_pb2, source_pb2, workflow_pb2
from maestro.compiler.v1 import compiler_service_pb2 as pb
from maestro.compiler.v1 import compiler_service_pb2_grpc as pb_grpc
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
    """The typed definition of a valid document (DSL step/trigger types are
    lowercase words; the proto enums are prefixed)."""
    if not isinstance(document, dict):
        return None
    doc = dict(document)
    doc["steps"] = [
        {**s, "type": f"STEP_TYPE_{str(s.get('type', '')).upper()}"}
        for s in doc.get("steps", [])
        if isinstance(s, dict)
    ]
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [
            {**t, "type": f"TRIGGER_TYPE_{str(t.get('type', '')).upper()}"}
            for t in doc["triggers"]
            if isinstance(t, dict)
        ]
    try:
        return json_format.ParseDict(
            doc, workflow_pb2.WorkflowDefinition(), ignore_unknown_fields=True
        )
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
        definition = (
            definition_to_proto(result.parsed.document) if result.valid and result.parsed else None
        )
        return pb.ValidateWorkflowResponse(
            valid=result.valid,
            diagnostics=diagnostics_to_proto(result),
            definition=definition,
            digest=result.digest,
        )

    async def DigestWorkflow(
        self, request: pb.DigestWorkflowRequest, context: grpc.aio.ServicerContext
    ) -> pb.DigestWorkflowResponse:
        digest, canonical = self._compiler.digest(source_from_proto(request.source))
        return pb.DigestWorkflowResponse(digest=digest, canonical_json=canonical)
