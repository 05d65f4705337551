"""All fifteen RegistryService RPCs through real gRPC servers (registry and
compiler on port 0), with identity from call metadata and typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from maestro.common.v1 import diff_pb2, source_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime import context
from maestro.runtime.clients import RegistryClient, open_channel
from maestro.runtime.errors import AbortedError, FailedPreconditionError, InvalidArgumentError
from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.conftest import start_policy
from tests.unit.registry.support import ANA, document

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[RegistryClient]:
    policy = await start_policy(tmp_path)
    compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
    registry: GrpcServer | None = None
    channel: grpc.aio.Channel | None = None
    try:
        registry = await create_registry(
            RegistrySettings(
                port=0,
                metrics_port=None,
                data_dir=tmp_path,
                database_url=database_url,
                compiler_address=f"127.0.0.1:{compiler.port}",
                policy_address=f"127.0.0.1:{policy.port}",
            )
        )
        address = f"127.0.0.1:{registry.port}"
        channel = open_channel(address, caller="tests", services=RegistryClient.SERVICES)
        # Calls carry the identity bound here, as they would from the gateway.
        # (an admin of tenant acme: the policy service decides who may act)
        admin = context.Principal(tenant=ANA.tenant, subject=ANA.subject, roles=("admin",))
        with context.bind(context.CallContext(principal=admin)):
            yield RegistryClient(channel, timeout=10, address=address)
    finally:
        if channel is not None:
            await channel.close()
        if registry is not None:
            await registry.stop(0)
        await compiler.stop(0)
        await policy.stop(0)


def _source(content: bytes) -> source_pb2.WorkflowSource:
    return source_pb2.WorkflowSource(content=content, format=source_pb2.SOURCE_FORMAT_YAML)


async def test_every_rpc_round_trips(client: RegistryClient) -> None:
    name = "workflows/orders-flow"
    created = (
        await client.create_workflow(
            pb.CreateWorkflowRequest(
                source=_source(document()), workflow_id="orders-flow", request_id="c-1"
            )
        )
    ).workflow
    assert (created.name, created.tenant, created.owner) == (name, "acme", "ana")
    assert created.state == resources.WORKFLOW_STATE_DRAFT
    assert created.draft.version == "0.1.0-draft"
    assert [s.id for s in created.draft.definition.steps] == ["fetch", "store"]

    got = (await client.get_workflow(pb.GetWorkflowRequest(name=name))).workflow
    assert got.etag == created.etag and not got.HasField("latest_version")

    published = await client.publish_workflow(
        pb.PublishWorkflowRequest(name=name, changelog="first", etag=got.etag, request_id="p-1")
    )
    assert published.version.name == f"{name}/versions/1.0.0"
    assert published.version.plan.steps and published.version.definition.steps
    assert published.workflow.state == resources.WORKFLOW_STATE_PUBLISHED
    assert published.workflow.latest_version.version == "1.0.0"

    updated = (
        await client.update_workflow(
            pb.UpdateWorkflowRequest(
                name=name,
                source=_source(document(steps=("fetch", "store", "notify"))),
                etag=published.workflow.etag,
            )
        )
    ).workflow
    assert updated.draft.version == "1.1.0-draft"
    with pytest.raises(AbortedError) as stale:
        await client.update_workflow(
            pb.UpdateWorkflowRequest(name=name, source=_source(document()), etag=got.etag)
        )
    assert stale.value.metadata["current_etag"] == updated.etag

    with pytest.raises(FailedPreconditionError) as bump:
        await client.publish_workflow(
            pb.PublishWorkflowRequest(name=name, bump=diff_pb2.SEMVER_BUMP_PATCH)
        )
    assert bump.value.metadata["required_bump"] == "SEMVER_BUMP_MINOR"
    second = await client.publish_workflow(pb.PublishWorkflowRequest(name=name))
    assert second.version.version == "1.1.0"
    assert second.version.diff_from_previous.compatibility == diff_pb2.COMPATIBILITY_COMPATIBLE

    promoted = (
        await client.promote_workflow_version(
            pb.PromoteWorkflowVersionRequest(name=f"{name}/versions/1.0.0", alias="stable")
        )
    ).workflow
    assert dict(promoted.aliases) == {"stable": "1.0.0"}
    stable = (
        await client.get_workflow_version(
            pb.GetWorkflowVersionRequest(name=f"{name}/versions/stable")
        )
    ).version
    assert stable.version == "1.0.0" and stable.plan.steps

    versions = await client.list_workflow_versions(
        pb.ListWorkflowVersionsRequest(parent=name, page_size=1)
    )
    assert [v.version for v in versions.versions] == ["1.1.0"]
    assert not versions.versions[0].HasField("plan")
    assert not versions.versions[0].HasField("definition")
    assert versions.next_page_token

    diff = (
        await client.diff_workflow_versions(
            pb.DiffWorkflowVersionsRequest(name=name, base_version="stable", target_version="1.1.0")
        )
    ).diff
    assert [c.step_id for c in diff.step_changes] == ["notify"]

    frozen = (
        await client.freeze_workflow(pb.FreezeWorkflowRequest(name=name, frozen=True, reason="x"))
    ).workflow
    assert frozen.frozen and frozen.frozen_reason == "x"

    clone = (
        await client.clone_workflow(
            pb.CloneWorkflowRequest(name=name, version="stable", new_workflow_id="orders-clone")
        )
    ).workflow
    assert (clone.name, clone.display_name) == ("workflows/orders-clone", "orders-copy")

    templates = await client.list_templates(pb.ListTemplatesRequest(page_size=3))
    assert len(templates.templates) == 3 and templates.next_page_token
    rest = await client.list_templates(
        pb.ListTemplatesRequest(page_size=3, page_token=templates.next_page_token)
    )
    patterns = {t.pattern for t in [*templates.templates, *rest.templates]}
    assert patterns == {
        resources.TEMPLATE_PATTERN_ROUTING,
        resources.TEMPLATE_PATTERN_RAG,
        resources.TEMPLATE_PATTERN_ETL,
        resources.TEMPLATE_PATTERN_APPROVAL,
    }
    from_template = (
        await client.create_workflow_from_template(
            pb.CreateWorkflowFromTemplateRequest(
                template="templates/rag", definition_name="ask-docs"
            )
        )
    ).workflow
    assert from_template.display_name == "ask-docs"

    parameters = struct_pb2.Struct()
    parameters.update({"approvers": ["role:finance"], "dueSeconds": 3600})
    built = await client.build_workflow(
        pb.BuildWorkflowRequest(
            pattern=resources.TEMPLATE_PATTERN_APPROVAL,
            definition_name="spend",
            parameters=parameters,
        )
    )
    assert built.format == source_pb2.SOURCE_FORMAT_YAML
    assert built.definition.name == "spend"
    assert list(built.definition.steps[0].human.assignees) == ["role:finance"]
    assert b"role:finance" in built.source

    listed = await client.list_workflows(pb.ListWorkflowsRequest(filter='owner = "ana"'))
    # The template's workflow is classified internal: an admin without that
    # clearance may not read it, so the list leaves it out.
    assert {w.name for w in listed.workflows} == {name, "workflows/orders-clone"}
    cleared = context.Principal(
        tenant=ANA.tenant, subject=ANA.subject, roles=("admin",), clearance="internal"
    )
    with context.bind(context.CallContext(principal=cleared)):
        listed = await client.list_workflows(pb.ListWorkflowsRequest(filter='owner = "ana"'))
    assert {w.name for w in listed.workflows} == {
        name,
        "workflows/orders-clone",
        from_template.name,
    }
    summary = next(w for w in listed.workflows if w.name == name)
    assert summary.latest_version.version == "1.1.0" and not summary.latest_version.plan.steps

    deleted = (await client.delete_workflow(pb.DeleteWorkflowRequest(name=name))).workflow
    assert deleted.state == resources.WORKFLOW_STATE_DELETED
    remaining = await client.list_workflows(pb.ListWorkflowsRequest())
    assert name not in {w.name for w in remaining.workflows}


async def test_bad_requests_are_typed_invalid_arguments(client: RegistryClient) -> None:
    with pytest.raises(InvalidArgumentError) as bad_filter:
        await client.list_workflows(pb.ListWorkflowsRequest(filter="owner ~ ana"))
    assert bad_filter.value.reason == "INVALID_FILTER"
    with pytest.raises(InvalidArgumentError) as bad_token:
        await client.list_workflows(pb.ListWorkflowsRequest(page_token="%%%"))
    assert bad_token.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgumentError) as bad_pattern:
        await client.build_workflow(pb.BuildWorkflowRequest(definition_name="x"))
    assert [v.field for v in bad_pattern.value.field_violations] == ["pattern"]
    parameters = struct_pb2.Struct()
    parameters.update({"routes": "not-a-list", "colour": "red"})
    with pytest.raises(InvalidArgumentError) as bad_parameters:
        await client.build_workflow(
            pb.BuildWorkflowRequest(
                pattern=resources.TEMPLATE_PATTERN_ROUTING, parameters=parameters
            )
        )
    assert {v.field for v in bad_parameters.value.field_violations} == {
        "parameters.routes",
        "parameters.colour",
    }
