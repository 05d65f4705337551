"""gRPC servicer of the registry: proto <-> domain, nothing else.

Errors are the domain's ``MaestroError``s, mapped to statuses by the server
interceptor; the caller's identity comes from the call context.
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from maestro.common.v1 import diff_pb2, plan_pb2, source_pb2, workflow_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.registry.v1 import registry_service_pb2_grpc as pb_grpc
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime import context
from maestro.runtime.errors import FieldViolation, InvalidArgumentError
from maestro.runtime.timestamps import timestamp
from maestro.services.registry.service import (
    Registry,
    Source,
    Template,
    draft_diagnostics,
    version_name,
    workflow_name,
)
from maestro.services.registry.store import VersionRow, WorkflowRow
from maestro.services.registry.templates import Pattern

_STATES = {
    "DRAFT": resources.WORKFLOW_STATE_DRAFT,
    "PUBLISHED": resources.WORKFLOW_STATE_PUBLISHED,
}
_PATTERNS = {
    Pattern.ROUTING: resources.TEMPLATE_PATTERN_ROUTING,
    Pattern.RAG: resources.TEMPLATE_PATTERN_RAG,
    Pattern.ETL: resources.TEMPLATE_PATTERN_ETL,
    Pattern.APPROVAL: resources.TEMPLATE_PATTERN_APPROVAL,
}
_PATTERNS_FROM_PROTO = {value: key for key, value in _PATTERNS.items()}


def _source(source: source_pb2.WorkflowSource) -> Source:
    return Source(source.content, source.format, source.filename)


def version_to_proto(row: VersionRow) -> resources.WorkflowVersion:
    """A version; ``definition`` and ``plan`` only when the row has them."""
    message = resources.WorkflowVersion(
        name=version_name(row.workflow_id, row.version),
        version=row.version,
        digest=row.digest,
        receipt=row.receipt,
        published_by=row.published_by,
        publish_time=timestamp(row.publish_time),
        changelog=row.changelog,
    )
    if row.has_content:
        message.definition.ParseFromString(row.definition)
        message.plan.CopyFrom(plan_pb2.CompiledPlan.FromString(row.plan))
    if row.diff_from_previous is not None:
        message.diff_from_previous.ParseFromString(row.diff_from_previous)
    return message


def workflow_to_proto(row: WorkflowRow) -> resources.Workflow:
    return resources.Workflow(
        name=workflow_name(row.workflow_id),
        tenant=row.tenant,
        owner=row.owner,
        state=resources.WORKFLOW_STATE_DELETED if row.deleted else _STATES[row.state],
        draft=resources.WorkflowDraft(
            version=row.draft_version,
            definition=workflow_pb2.WorkflowDefinition.FromString(row.draft_definition),
            source=row.draft_source,
            digest=row.draft_digest,
            diagnostics=draft_diagnostics(row),
            update_time=timestamp(row.draft_update_time),
        ),
        latest_version=version_to_proto(row.latest) if row.latest is not None else None,
        aliases=dict(row.aliases),
        frozen=row.frozen,
        frozen_reason=row.frozen_reason,
        etag=row.etag,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
        delete_time=timestamp(row.delete_time),
        display_name=row.display_name,
        description=row.description,
        tags=row.tags,
    )


def template_to_proto(template: Template) -> resources.Template:
    return resources.Template(
        name=template.name,
        display_name=template.display_name,
        description=template.description,
        pattern=_PATTERNS[template.pattern],
        definition=template.definition,
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
            _source(request.source),
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

    async def ListWorkflows(
        self, request: pb.ListWorkflowsRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.ListWorkflowsResponse:
        page = await self._registry.list_workflows(
            context.current().principal,
            page_size=request.page_size,
            page_token=request.page_token,
            filter=request.filter,
            show_deleted=request.show_deleted,
        )
        return pb.ListWorkflowsResponse(
            workflows=[workflow_to_proto(row) for row in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateWorkflow(
        self, request: pb.UpdateWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.UpdateWorkflowResponse:
        row = await self._registry.update_workflow(
            context.current().principal,
            request.name,
            _source(request.source),
            etag=request.etag,
        )
        return pb.UpdateWorkflowResponse(workflow=workflow_to_proto(row))

    async def DeleteWorkflow(
        self, request: pb.DeleteWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.DeleteWorkflowResponse:
        row = await self._registry.delete_workflow(
            context.current().principal, request.name, etag=request.etag
        )
        return pb.DeleteWorkflowResponse(workflow=workflow_to_proto(row))

    async def PublishWorkflow(
        self, request: pb.PublishWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.PublishWorkflowResponse:
        published = await self._registry.publish_workflow(
            context.current().principal,
            request.name,
            bump=request.bump,
            version=request.version,
            changelog=request.changelog,
            etag=request.etag,
            request_id=request.request_id,
        )
        return pb.PublishWorkflowResponse(
            version=version_to_proto(published.version),
            workflow=workflow_to_proto(published.workflow),
        )

    async def CloneWorkflow(
        self, request: pb.CloneWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.CloneWorkflowResponse:
        row = await self._registry.clone_workflow(
            context.current().principal,
            request.name,
            version=request.version,
            new_workflow_id=request.new_workflow_id,
            new_definition_name=request.new_definition_name,
            request_id=request.request_id,
        )
        return pb.CloneWorkflowResponse(workflow=workflow_to_proto(row))

    async def GetWorkflowVersion(
        self, request: pb.GetWorkflowVersionRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.GetWorkflowVersionResponse:
        row = await self._registry.get_workflow_version(context.current().principal, request.name)
        return pb.GetWorkflowVersionResponse(version=version_to_proto(row))

    async def ListWorkflowVersions(
        self, request: pb.ListWorkflowVersionsRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.ListWorkflowVersionsResponse:
        page = await self._registry.list_workflow_versions(
            context.current().principal,
            request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListWorkflowVersionsResponse(
            versions=[version_to_proto(row) for row in page.items],
            next_page_token=page.next_page_token,
        )

    async def DiffWorkflowVersions(
        self, request: pb.DiffWorkflowVersionsRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.DiffWorkflowVersionsResponse:
        diff: diff_pb2.WorkflowDiff = await self._registry.diff_workflow_versions(
            context.current().principal,
            request.name,
            base=request.base_version,
            target=request.target_version,
        )
        return pb.DiffWorkflowVersionsResponse(diff=diff)

    async def PromoteWorkflowVersion(
        self, request: pb.PromoteWorkflowVersionRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.PromoteWorkflowVersionResponse:
        row = await self._registry.promote_workflow_version(
            context.current().principal, request.name, request.alias
        )
        return pb.PromoteWorkflowVersionResponse(workflow=workflow_to_proto(row))

    async def FreezeWorkflow(
        self, request: pb.FreezeWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.FreezeWorkflowResponse:
        row = await self._registry.freeze_workflow(
            context.current().principal,
            request.name,
            frozen=request.frozen,
            reason=request.reason,
        )
        return pb.FreezeWorkflowResponse(workflow=workflow_to_proto(row))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.ListTemplatesResponse:
        page = await self._registry.list_templates(
            page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListTemplatesResponse(
            templates=[template_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    async def CreateWorkflowFromTemplate(
        self, request: pb.CreateWorkflowFromTemplateRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.CreateWorkflowFromTemplateResponse:
        row = await self._registry.create_workflow_from_template(
            context.current().principal,
            request.template,
            definition_name=request.definition_name,
            workflow_id=request.workflow_id,
            request_id=request.request_id,
        )
        return pb.CreateWorkflowFromTemplateResponse(workflow=workflow_to_proto(row))

    async def BuildWorkflow(
        self, request: pb.BuildWorkflowRequest, ctx: grpc.aio.ServicerContext
    ) -> pb.BuildWorkflowResponse:
        pattern = _PATTERNS_FROM_PROTO.get(request.pattern)
        if pattern is None:
            raise InvalidArgumentError(
                "pattern must be ROUTING, RAG, ETL or APPROVAL",
                field_violations=[FieldViolation("pattern", "unspecified or unknown pattern")],
            )
        built = await self._registry.build_workflow(
            pattern, request.definition_name, json_format.MessageToDict(request.parameters)
        )
        return pb.BuildWorkflowResponse(
            definition=built.definition,
            source=built.source,
            diagnostics=built.diagnostics,
            format=source_pb2.SOURCE_FORMAT_YAML,
        )
