"""gRPC servicer of the registry: proto <-> domain, nothing else."""

from __future__ import annotations

import grpc
from google.protobuf import timestamp_pb2

from maestro.common.v1 import source_pb2, workflow_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.registry.v1 import registry_service_pb2_grpc as pb_grpc
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime import context
from maestro.services.registry.service import Registry, workflow_name
from maestro.services.registry.store import WorkflowRow

_STATES = {
    "DRAFT": resources.WORKFLOW_STATE_DRAFT,
    "PUBLISHED": resources.WORKFLOW_STATE_PUBLISHED,
}
_IS_JSON = {source_pb2.SOURCE_FORMAT_JSON: True, source_pb2.SOURCE_FORMAT_YAML: False}


def _timestamp(value: object) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)  # type: ignore[arg-type]
    return ts


def workflow_to_proto(row: WorkflowRow) -> resources.Workflow:
    return resources.Workflow(
        name=workflow_name(row.workflow_id),
        tenant=row.tenant,
        owner=row.owner,
        state=resources.WORKFLOW_STATE_DELETED
        if row.delete_time is not None
        else _STATES[row.state],
        draft=resources.WorkflowDraft(
            version=row.draft_version,
            definition=workflow_pb2.WorkflowDefinition.FromString(row.draft_definition),
            source=row.draft_source,
            digest=row.draft_digest,
            update_time=_timestamp(row.update_time),
        ),
        etag=row.etag,
        create_time=_timestamp(row.create_time),
        update_time=_timestamp(row.update_time),
        delete_time=_timestamp(row.delete_time),
        display_name=row.display_name,
        description=row.description,
        tags=row.tags,
    )


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    """Serves ``maestro.registry.v1.RegistryService``."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def CreateWorkflow(
        self, request: pb.CreateWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.CreateWorkflowResponse:
        row = await self._registry.create_workflow(
            context.current().principal,
            request.source.content,
            is_json=_IS_JSON.get(request.source.format),
            filename=request.source.filename,
            workflow_id=request.workflow_id,
            request_id=request.request_id,
        )
        return pb.CreateWorkflowResponse(workflow=workflow_to_proto(row))

    async def GetWorkflow(
        self, request: pb.GetWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.GetWorkflowResponse:
        row = await self._registry.get_workflow(
            context.current().principal, request.name, show_deleted=request.show_deleted
        )
        return pb.GetWorkflowResponse(workflow=workflow_to_proto(row))
