"""Proto messages as REST JSON."""

from __future__ import annotations

from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.services.gateway.views import message_json, version_json, workflow_id, workflow_json


def test_workflow_json_adds_id_source_text_and_frozen() -> None:
    workflow = resources.Workflow(
        name="workflows/order-flow",
        state=resources.WORKFLOW_STATE_DRAFT,
        draft=resources.WorkflowDraft(version="0.1.0-draft", source=b"name: x\n"),
        aliases={"stable": "1.0.0"},
    )
    body = workflow_json(workflow)
    assert body["id"] == "order-flow"
    assert body["state"] == "WORKFLOW_STATE_DRAFT"
    assert body["frozen"] is False
    assert body["aliases"] == {"stable": "1.0.0"}
    assert body["draft"]["source"] == "bmFtZTogeAo="  # proto JSON: bytes as base64
    assert body["draft"]["sourceText"] == "name: x\n"


def test_version_json_names_its_workflow() -> None:
    version = resources.WorkflowVersion(name="workflows/order-flow/versions/1.2.0")
    assert version_json(version)["workflowId"] == "order-flow"
    assert workflow_id("workflows/a-b/versions/1.0.0") == "a-b"


def test_defaults_and_complete_output() -> None:
    reply = compiler_pb.ValidateWorkflowResponse(valid=False)
    assert message_json(reply) == {}
    assert message_json(reply, defaults={"valid": False, "diagnostics": []}) == {
        "valid": False,
        "diagnostics": [],
    }
    complete = message_json(reply, complete=True)
    assert complete["valid"] is False
    assert complete["digest"] == ""
