"""The JSON Schema (draft 2020-12) of the workflow DSL (docs/dsl.md).

``workflow.schema.json`` ships inside this package and is loaded once. It is the
single source of truth for the document's shape: the validator checks documents
against it, and ``GetWorkflowSchema`` serves it to editors and the gateway.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Callable, Sequence
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

_RESOURCE = "workflow.schema.json"


@functools.cache
def schema_json() -> bytes:
    """The schema document as shipped (UTF-8 JSON)."""
    return importlib.resources.files(__package__).joinpath(_RESOURCE).read_bytes()


def _load() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_json())
    Draft202012Validator.check_schema(schema)
    return schema


WORKFLOW_SCHEMA: dict[str, Any] = _load()
"""The parsed schema; treat as read-only."""

SCHEMA_ID: str = WORKFLOW_SCHEMA["$id"]


META_SCHEMA_ID = "https://json-schema.org/draft/2020-12/schema"


@functools.cache
def validator() -> Draft202012Validator:
    """A validator of workflow documents against ``WORKFLOW_SCHEMA``, except
    for the JSON Schemas embedded in them (``inputSchema``, ``outputSchema``,
    ``formSchema``): here the meta-schema they reference accepts anything, and
    ``meta_validator`` checks them one by one. Reached through the workflow
    schema, each ``$dynamicRef`` of the meta-schema makes python-jsonschema
    re-crawl the whole workflow schema (seconds for a 1,000-step document).
    """
    accept_all = Resource.from_contents({"$schema": META_SCHEMA_ID, "$id": META_SCHEMA_ID})
    registry: Registry[Any] = Registry().with_resource(META_SCHEMA_ID, accept_all)
    return Draft202012Validator(WORKFLOW_SCHEMA, registry=registry)


@functools.cache
def meta_validator() -> Draft202012Validator:
    """A validator of JSON Schemas against the draft 2020-12 meta-schema, which
    ``jsonschema`` bundles (no network access)."""
    return Draft202012Validator(Draft202012Validator.META_SCHEMA)


def _draft7_equivalent(node: Any) -> Any:
    """``node`` with the same meaning under draft 7 as under 2020-12, for
    ``fast_validator``: no ``$ref`` to the meta-schema (the embedded schemas
    it stands for are checked one by one, as in ``validator``), and no
    ``$ref`` with sibling keywords (draft 7 ignores the siblings; 2020-12
    applies both, as does an ``allOf`` of the reference and the siblings)."""
    if isinstance(node, list):
        return [_draft7_equivalent(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft7_equivalent(value) for key, value in node.items()}
    if "const" in out and "enum" not in out:
        out["enum"] = [out.pop("const")]
    if out.get("$ref") == META_SCHEMA_ID:
        del out["$ref"]
    if "$ref" in out and set(out) - {"$ref", "description"}:
        out["allOf"] = [{"$ref": out.pop("$ref")}, *out.get("allOf", [])]
    return out


FastValidator = Callable[[Any, Sequence[bool] | None], None]


class FastValidationError(Exception):
    """``fast_validator`` does not vouch for the document."""


@functools.cache
def fast_validator() -> FastValidator:
    """A validator that accepts a document only when ``validator`` reports no
    error for it (tests check the two agree), and otherwise raises
    ``FastValidationError`` or ``fastjsonschema.JsonSchemaException`` at the
    first problem, so that callers run ``validator`` to describe them.

    It is fastjsonschema code compiled from this schema, rewritten by
    ``_draft7_equivalent`` for fastjsonschema's draft 7 (its patterns' ``$``
    match only at the very end, so it can only be stricter there). Steps are
    checked one by one by type: a step whose ``type`` is one of the step types
    must have ``id`` and ``type``, a valid ``id``, and satisfy that type's
    definition, which is what the step definition's chain of ``if``s comes to
    (fastjsonschema evaluates each ``if`` by raising an exception); a step of
    any other type is left to ``validator``. ``known_valid``, when given,
    marks the steps the caller knows to be valid (a step is valid or not on
    its own), which are not checked again."""
    defs = _draft7_equivalent(WORKFLOW_SCHEMA["$defs"])
    document = _draft7_equivalent(copy.deepcopy(WORKFLOW_SCHEMA))
    document["properties"]["steps"]["items"] = True
    by_type = {
        step_type: _compile(
            {
                "$defs": defs,
                "type": "object",
                "required": ["id", "type"],
                "properties": {"id": {"$ref": "#/$defs/stepId"}},
                "allOf": [{"$ref": f"#/$defs/{step_type}Step"}],
            }
        )
        for step_type in WORKFLOW_SCHEMA["$defs"]["stepType"]["enum"]
    }
    validate_document = _compile(document)

    def validate(doc: Any, known_valid: Sequence[bool] | None = None) -> None:
        validate_document(doc)
        steps = doc["steps"]
        if known_valid is not None and len(known_valid) == len(steps):
            steps = [step for step, known in zip(steps, known_valid, strict=True) if not known]
        for step in steps:
            kind = step.get("type") if type(step) is dict else None
            validate_step = by_type.get(kind) if type(kind) is str else None
            if validate_step is None:
                raise FastValidationError
            validate_step(step)

    return validate


def _compile(schema: dict[str, Any]) -> Callable[[Any], Any]:
    schema.pop("$id", None)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema, detailed_exceptions=False)
    return validate
