"""REST resources for authoring workflows: CRUD, versions, validation,
simulation, templates and the builder — each a thin translation to one
registry or compiler RPC through the typed clients."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from maestro.common.v1 import diff_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.compiler.v1 import simulation_pb2
from maestro.registry.v1 import registry_service_pb2 as registry_pb
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime.clients import CompilerClient, RegistryClient
from maestro.services.gateway.bodies import duration_value, read_document, struct_value
from maestro.services.gateway.clients import Clients
from maestro.services.gateway.filters import list_filter
from maestro.services.gateway.models import (
    BuildBody,
    CloneBody,
    CreateFromTemplateBody,
    FreezeBody,
    PromoteBody,
    PublishBody,
    SimulateBody,
    StepMockBody,
)
from maestro.services.gateway.openapi import DOCUMENT_BODY, problems
from maestro.services.gateway.views import (
    message_json,
    source_text,
    version_json,
    workflow_json,
)

_BUMPS = {
    None: diff_pb2.SEMVER_BUMP_UNSPECIFIED,
    "patch": diff_pb2.SEMVER_BUMP_PATCH,
    "minor": diff_pb2.SEMVER_BUMP_MINOR,
    "major": diff_pb2.SEMVER_BUMP_MAJOR,
}
_PATTERNS = {
    "routing": resources.TEMPLATE_PATTERN_ROUTING,
    "rag": resources.TEMPLATE_PATTERN_RAG,
    "etl": resources.TEMPLATE_PATTERN_ETL,
    "approval": resources.TEMPLATE_PATTERN_APPROVAL,
}

PageSize = Annotated[
    int,
    Query(alias="pageSize", ge=0, le=500, description="Results per page; 0 means 50."),
]
PageToken = Annotated[
    str, Query(alias="pageToken", description="`nextPageToken` of the previous page.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retries with the same key return the first call's result (AIP-155).",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The workflow's ETag last read; a stale one is 409 ETAG_MISMATCH.",
    ),
]


def name_of(workflow_id: str) -> str:
    return f"workflows/{workflow_id}"


def etag_of(if_match: str | None) -> str:
    """The registry etag in an ``If-Match`` header (quotes and ``W/`` removed;
    ``*`` or absent: no check)."""
    value = (if_match or "").strip()
    if value == "*":
        return ""
    return value.removeprefix("W/").strip('"')


def http_etag(etag: str) -> dict[str, str]:
    """An ``ETag`` response header for a registry etag."""
    return {"ETag": f'"{etag}"'} if etag else {}


def _mock(step_id: str, mock: StepMockBody) -> simulation_pb2.StepMock:
    return simulation_pb2.StepMock(
        output=struct_value(mock.output),
        fail=mock.fail,
        error_code=mock.error_code,
        duration=duration_value(mock.duration, f"body.mocks.{step_id}.duration"),
        failures_before_success=mock.failures_before_success,
    )


def simulate_request(body: SimulateBody) -> compiler_pb.SimulateWorkflowRequest:
    """The compiler request of a simulate body: an object definition is sent as
    JSON, a string one as text whose syntax the compiler detects."""
    if isinstance(body.definition, str):
        source = source_pb2.WorkflowSource(content=body.definition.encode("utf-8"))
    else:
        source = source_pb2.WorkflowSource(
            content=json.dumps(body.definition).encode("utf-8"),
            format=source_pb2.SOURCE_FORMAT_JSON,
        )
    return compiler_pb.SimulateWorkflowRequest(
        source=source,
        inputs=struct_value(body.inputs),
        mocks={step: _mock(step, mock) for step, mock in body.mocks.items()},
        cost_table=body.cost_table,
        default_task_duration=duration_value(
            body.default_task_duration, "body.defaultTaskDuration"
        ),
    )


def workflows_router(clients: Clients) -> APIRouter:
    """Routes under ``/api/workflows``, ``/api/workflow-templates`` and
    ``/api/workflow-builder``."""
    router = APIRouter(prefix="/api")
    # Fixed paths (/workflows/schema) before templated ones (/workflows/{id}).
    _add_validation_routes(router, clients.compiler)
    _add_workflow_routes(router, clients.registry)
    _add_version_routes(router, clients.registry)
    _add_template_routes(router, clients.registry)
    return router


def _add_validation_routes(router: APIRouter, compiler: CompilerClient) -> None:

    @router.get(
        "/workflows/schema",
        tags=["validation"],
        summary="The JSON Schema (draft 2020-12) of the workflow definition document.",
        responses=problems(503),
    )
    async def get_workflow_schema() -> Response:
        reply = await compiler.get_workflow_schema()
        return Response(reply.schema_json, media_type="application/schema+json")

    @router.post(
        "/workflows/validate",
        tags=["validation"],
        summary="Validate (and with lint=true also lint) a definition document.",
        description="Always 200 for a document, valid or not: `valid` says whether it has "
        "errors and `diagnostics` lists every problem (syntax errors included) with JSON "
        "Pointer, line and column.",
        openapi_extra=DOCUMENT_BODY,
        responses=problems(400, 413, 415, 503),
    )
    async def validate_workflow(
        request: Request,
        lint: Annotated[bool, Query(description="Also run the linters.")] = False,
        disabled_rules: Annotated[
            list[str] | None,
            Query(alias="disabledRules", description="Lint codes to suppress (with lint)."),
        ] = None,
    ) -> dict[str, Any]:
        source = await read_document(request)
        if lint:
            rules = [r.strip() for item in disabled_rules or () for r in item.split(",")]
            linted = await compiler.lint_workflow(
                compiler_pb.LintWorkflowRequest(source=source, disabled_rules=filter(None, rules))
            )
            return message_json(linted, defaults={"valid": False, "diagnostics": []})
        validated = await compiler.validate_workflow(
            compiler_pb.ValidateWorkflowRequest(source=source)
        )
        return message_json(validated, defaults={"valid": False, "diagnostics": []})

    @router.post(
        "/workflows/simulate",
        tags=["validation"],
        summary="Dry-run a definition with mocked step results.",
        description="Returns the path through conditions and loops, a timeline with the "
        "critical path and a cost estimate. An invalid definition is a 400 problem.",
        responses=problems(400, 413, 503),
    )
    async def simulate_workflow(body: SimulateBody) -> dict[str, Any]:
        reply = await compiler.simulate_workflow(simulate_request(body))
        return message_json(reply, complete=True)


def _add_workflow_routes(router: APIRouter, registry: RegistryClient) -> None:
    @router.post(
        "/workflows",
        status_code=201,
        tags=["workflows"],
        summary="Create a workflow with its first draft (0.1.0-draft).",
        openapi_extra=DOCUMENT_BODY,
        responses={
            201: {"description": "The created workflow; `Location` and `ETag` headers."},
            **problems(400, 409, 413, 415, 503),
        },
    )
    async def create_workflow(
        request: Request,
        workflow_id: Annotated[
            str, Query(alias="workflowId", description="Id of the new workflow; empty: assigned.")
        ] = "",
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        source = await read_document(request)
        reply = await registry.create_workflow(
            registry_pb.CreateWorkflowRequest(
                source=source, workflow_id=workflow_id, request_id=idempotency_key or ""
            )
        )
        body = workflow_json(reply.workflow)
        return JSONResponse(
            body,
            status_code=201,
            headers={"Location": f"/api/workflows/{body['id']}", **http_etag(reply.workflow.etag)},
        )

    @router.get(
        "/workflows",
        tags=["workflows"],
        summary="List workflows, newest update first.",
        responses=problems(400, 503),
    )
    async def list_workflows(
        *,
        page_size: PageSize = 0,
        page_token: PageToken = "",
        owner: Annotated[str | None, Query(description="Owner (subject) equals.")] = None,
        tag: Annotated[str | None, Query(description="Has this tag.")] = None,
        state: Annotated[
            Literal["draft", "published", "deleted"] | None,
            Query(description="Lifecycle state."),
        ] = None,
        updated_since: Annotated[
            datetime | None,
            Query(alias="updatedSince", description="Updated at or after (RFC 3339)."),
        ] = None,
        filter_: Annotated[
            str | None, Query(alias="filter", description="A further AIP-160 filter.")
        ] = None,
        show_deleted: Annotated[
            bool, Query(alias="showDeleted", description="Include soft-deleted workflows.")
        ] = False,
    ) -> dict[str, Any]:
        reply = await registry.list_workflows(
            registry_pb.ListWorkflowsRequest(
                page_size=page_size,
                page_token=page_token,
                filter=list_filter(
                    owner=owner,
                    tag=tag,
                    state=state,
                    updated_since=updated_since,
                    extra=filter_,
                ),
                show_deleted=show_deleted or (state or "").lower() == "deleted",
            )
        )
        return {
            "workflows": [workflow_json(w) for w in reply.workflows],
            "nextPageToken": reply.next_page_token,
        }

    @router.get(
        "/workflows/{id}",
        tags=["workflows"],
        summary="Read a workflow: its draft and latest published version.",
        responses=problems(400, 404, 503),
    )
    async def get_workflow(
        id: str,
        show_deleted: Annotated[bool, Query(alias="showDeleted")] = False,
    ) -> JSONResponse:
        reply = await registry.get_workflow(
            registry_pb.GetWorkflowRequest(name=name_of(id), show_deleted=show_deleted)
        )
        return JSONResponse(workflow_json(reply.workflow), headers=http_etag(reply.workflow.etag))

    @router.put(
        "/workflows/{id}",
        tags=["workflows"],
        summary="Replace the draft with a new definition document.",
        openapi_extra=DOCUMENT_BODY,
        responses=problems(400, 404, 409, 413, 415, 503),
    )
    async def update_workflow(
        id: str,
        request: Request,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        source = await read_document(request)
        reply = await registry.update_workflow(
            registry_pb.UpdateWorkflowRequest(
                name=name_of(id), source=source, etag=etag_of(if_match)
            )
        )
        return JSONResponse(workflow_json(reply.workflow), headers=http_etag(reply.workflow.etag))

    @router.delete(
        "/workflows/{id}",
        tags=["workflows"],
        summary="Soft-delete a workflow (its versions are kept).",
        responses=problems(400, 404, 409, 503),
    )
    async def delete_workflow(
        id: str,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        reply = await registry.delete_workflow(
            registry_pb.DeleteWorkflowRequest(name=name_of(id), etag=etag_of(if_match))
        )
        return workflow_json(reply.workflow)


def _add_version_routes(router: APIRouter, registry: RegistryClient) -> None:
    @router.post(
        "/workflows/{id}/publish",
        status_code=201,
        tags=["versions"],
        summary="Publish the draft as an immutable semver version.",
        description="A breaking diff requires a major bump (SEMVER_BUMP_REQUIRED); a frozen "
        "workflow refuses (WORKFLOW_FROZEN).",
        responses=problems(400, 404, 409, 503),
    )
    async def publish_workflow(
        id: str,
        body: PublishBody,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await registry.publish_workflow(
            registry_pb.PublishWorkflowRequest(
                name=name_of(id),
                bump=_BUMPS[body.bump],
                version=body.version,
                changelog=body.changelog,
                etag=etag_of(if_match),
                request_id=idempotency_key or "",
            )
        )
        return JSONResponse(
            {"version": version_json(reply.version), "workflow": workflow_json(reply.workflow)},
            status_code=201,
            headers={
                "Location": f"/api/workflows/{id}/versions/{reply.version.version}",
                **http_etag(reply.workflow.etag),
            },
        )

    @router.post(
        "/workflows/{id}/clone",
        status_code=201,
        tags=["versions"],
        summary="Copy a workflow (its draft or a version) into a new workflow.",
        responses=problems(400, 404, 409, 503),
    )
    async def clone_workflow(
        id: str,
        body: CloneBody,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await registry.clone_workflow(
            registry_pb.CloneWorkflowRequest(
                name=name_of(id),
                version=body.version,
                new_workflow_id=body.workflow_id,
                new_definition_name=body.name,
                request_id=idempotency_key or "",
            )
        )
        created = workflow_json(reply.workflow)
        return JSONResponse(
            created, status_code=201, headers={"Location": f"/api/workflows/{created['id']}"}
        )

    @router.get(
        "/workflows/{id}/versions",
        tags=["versions"],
        summary="List published versions, newest first, with diff metadata.",
        responses=problems(400, 404, 503),
    )
    async def list_workflow_versions(
        id: str,
        page_size: PageSize = 0,
        page_token: PageToken = "",
    ) -> dict[str, Any]:
        reply = await registry.list_workflow_versions(
            registry_pb.ListWorkflowVersionsRequest(
                parent=name_of(id), page_size=page_size, page_token=page_token
            )
        )
        return {
            "versions": [version_json(v) for v in reply.versions],
            "nextPageToken": reply.next_page_token,
        }

    @router.get(
        "/workflows/{id}/versions/{version}",
        tags=["versions"],
        summary="Read one published version by semver or alias (`stable`, `latest`).",
        responses=problems(400, 404, 503),
    )
    async def get_workflow_version(id: str, version: str) -> dict[str, Any]:
        reply = await registry.get_workflow_version(
            registry_pb.GetWorkflowVersionRequest(name=f"{name_of(id)}/versions/{version}")
        )
        return version_json(reply.version)

    @router.get(
        "/workflows/{id}/diff",
        tags=["versions"],
        summary="Diff against another version: semantic changes and a compatibility verdict.",
        responses=problems(400, 404, 503),
    )
    async def diff_workflow_versions(
        id: str,
        base: Annotated[str, Query(description="Base: semver, alias or `draft`.")] = "latest",
        target: Annotated[
            str | None, Query(description="Target: semver, alias or `draft` (default).")
        ] = None,
        to: Annotated[str | None, Query(description="Synonym of `target`.")] = None,
    ) -> dict[str, Any]:
        reply = await registry.diff_workflow_versions(
            registry_pb.DiffWorkflowVersionsRequest(
                name=name_of(id), base_version=base, target_version=target or to or "draft"
            )
        )
        return message_json(reply, complete=True)

    @router.post(
        "/workflows/{id}/promote",
        tags=["versions"],
        summary="Point an alias (e.g. `stable`) at a published version.",
        responses=problems(400, 404, 503),
    )
    async def promote_workflow_version(
        id: str,
        body: PromoteBody,
    ) -> dict[str, Any]:
        reply = await registry.promote_workflow_version(
            registry_pb.PromoteWorkflowVersionRequest(
                name=f"{name_of(id)}/versions/{body.version}", alias=body.alias
            )
        )
        return workflow_json(reply.workflow)

    @router.post(
        "/workflows/{id}/freeze",
        tags=["versions"],
        summary="Freeze (or unfreeze) a workflow: a frozen workflow refuses publishing.",
        responses=problems(400, 404, 503),
    )
    async def freeze_workflow(
        id: str,
        body: FreezeBody,
    ) -> dict[str, Any]:
        reply = await registry.freeze_workflow(
            registry_pb.FreezeWorkflowRequest(
                name=name_of(id), frozen=body.frozen, reason=body.reason
            )
        )
        return workflow_json(reply.workflow)


def _add_template_routes(router: APIRouter, registry: RegistryClient) -> None:
    @router.get(
        "/workflow-templates",
        tags=["templates"],
        summary="List workflow templates.",
        responses=problems(400, 503),
    )
    async def list_templates(page_size: PageSize = 0, page_token: PageToken = "") -> dict[str, Any]:
        reply = await registry.list_templates(
            registry_pb.ListTemplatesRequest(page_size=page_size, page_token=page_token)
        )
        templates = []
        for template in reply.templates:
            item = message_json(template)
            item["id"] = template.name.removeprefix("templates/")
            templates.append(item)
        return {"templates": templates, "nextPageToken": reply.next_page_token}

    @router.post(
        "/workflow-templates/{id}/create",
        status_code=201,
        tags=["templates"],
        summary="Create a workflow from a template.",
        responses=problems(400, 404, 409, 503),
    )
    async def create_workflow_from_template(
        id: str,
        body: CreateFromTemplateBody,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        reply = await registry.create_workflow_from_template(
            registry_pb.CreateWorkflowFromTemplateRequest(
                template=f"templates/{id}",
                definition_name=body.name,
                workflow_id=body.workflow_id,
                request_id=idempotency_key or "",
            )
        )
        created = workflow_json(reply.workflow)
        return JSONResponse(
            created, status_code=201, headers={"Location": f"/api/workflows/{created['id']}"}
        )

    @router.post(
        "/workflow-builder",
        tags=["templates"],
        summary="Build a definition for a common pattern (routing, RAG, ETL, approval).",
        description="Nothing is stored: the response has the definition, its YAML "
        "(`sourceText`) and its validation diagnostics.",
        responses=problems(400, 503),
    )
    async def build_workflow(body: BuildBody) -> dict[str, Any]:
        reply = await registry.build_workflow(
            registry_pb.BuildWorkflowRequest(
                pattern=_PATTERNS[body.pattern],
                definition_name=body.name,
                parameters=struct_value(body.parameters),
            )
        )
        built = message_json(reply, defaults={"diagnostics": []})
        built["sourceText"] = source_text(reply.source)
        return built
