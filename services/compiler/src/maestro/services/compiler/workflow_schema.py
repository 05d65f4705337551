"""The JSON Schema (draft 2020-12) of the workflow DSL (docs/dsl.md).

``workflow.schema.json`` ships inside this package and is loaded once. It is the
single source of truth for the document's shape: the validator checks documents
against it, and ``GetWorkflowSchema`` serves it to editors and the gateway.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

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
