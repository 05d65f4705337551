"""Normal-form documents as ``maestro.common.v1`` messages.

The normal form already uses proto-JSON spellings (camelCase keys, durations in
seconds), so the mapping is ``json_format`` plus the enum prefixes: the DSL
writes ``type: task``, the proto enum value is ``STEP_TYPE_TASK``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from maestro.common.v1 import workflow_pb2


def _step_json(step: Any) -> Any:
    if not isinstance(step, dict):
        return step
    out = {**step, "type": f"STEP_TYPE_{str(step.get('type', '')).upper()}"}
    loop = step.get("loop")
    if isinstance(loop, dict) and isinstance(loop.get("body"), dict):
        out["loop"] = {**loop, "body": _step_json(loop["body"])}
    return out


def _trigger_json(trigger: Any) -> Any:
    if not isinstance(trigger, dict):
        return trigger
    return {**trigger, "type": f"TRIGGER_TYPE_{str(trigger.get('type', '')).upper()}"}


def step_message(step: dict[str, Any]) -> workflow_pb2.Step:
    """The ``Step`` of a normal-form step; unknown keys are ignored.

    Raises:
        google.protobuf.json_format.ParseError: a value has the wrong shape.
    """
    return json_format.ParseDict(_step_json(step), workflow_pb2.Step(), ignore_unknown_fields=True)


def definition_message(normal: dict[str, Any]) -> workflow_pb2.WorkflowDefinition:
    """The ``WorkflowDefinition`` of a normal-form document; unknown keys are ignored.

    Raises:
        google.protobuf.json_format.ParseError: a value has the wrong shape.
    """
    doc = dict(normal)
    if isinstance(doc.get("steps"), list):
        doc["steps"] = [_step_json(s) for s in doc["steps"]]
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [_trigger_json(t) for t in doc["triggers"]]
    return json_format.ParseDict(doc, workflow_pb2.WorkflowDefinition(), ignore_unknown_fields=True)
