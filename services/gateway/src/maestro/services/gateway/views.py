"""Proto messages as REST JSON: proto JSON (camelCase, enums by name, int64 as
strings, bytes as base64), plus the conveniences REST clients need — a
workflow's ``id`` and a document's ``sourceText``."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from maestro.registry.v1 import workflow_pb2 as resources

WORKFLOW_PREFIX = "workflows/"


def message_json(
    message: Message, *, defaults: dict[str, Any] | None = None, complete: bool = False
) -> dict[str, Any]:
    """Proto JSON of ``message``. Proto JSON leaves out fields at their default;
    ``defaults`` puts back the top-level ones a client should always see
    (``{"valid": False}``), and ``complete`` prints every scalar and list at
    every level (for results read field by field, such as a simulation)."""
    body: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=complete
    )
    for name, value in (defaults or {}).items():
        body.setdefault(name, value)
    return body


def workflow_id(name: str) -> str:
    """The ``{workflow}`` of ``workflows/{workflow}[/...]``."""
    return name.removeprefix(WORKFLOW_PREFIX).split("/", 1)[0]


def source_text(content: bytes) -> str:
    """A stored source document as text (documents are UTF-8 by contract)."""
    return content.decode("utf-8", errors="replace")


def workflow_json(workflow: resources.Workflow) -> dict[str, Any]:
    """A workflow with its ``id`` and its draft's ``sourceText``."""
    body = message_json(workflow, defaults={"frozen": False})
    body["id"] = workflow_id(workflow.name)
    if workflow.HasField("draft") and workflow.draft.source:
        body["draft"]["sourceText"] = source_text(workflow.draft.source)
    return body


def version_json(version: resources.WorkflowVersion) -> dict[str, Any]:
    """A published version with the ``id`` of its workflow."""
    body = message_json(version)
    if version.name:
        body["workflowId"] = workflow_id(version.name)
    return body
