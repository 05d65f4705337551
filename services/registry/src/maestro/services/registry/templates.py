"""Built-in templates and the workflow builder: DSL documents for common
patterns, built programmatically from parameters (pure functions).

Each builder returns a DSL document (``docs/dsl.md``) as plain data; ``to_yaml``
renders it. The compiler validates what they build (the registry never stores
or returns a built document without its diagnostics). Parameter names are
camelCase like the DSL; unknown parameters are errors.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from maestro.runtime.errors import FieldViolation, InvalidArgumentError

_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
_HANDLER = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)?$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_ROUTES = 20
_MAX_TRANSFORMS = 20
_LABELS = {"classification": "internal"}


class Pattern(enum.Enum):
    """A workflow shape the builder can generate."""

    ROUTING = "routing"
    RAG = "rag"
    ETL = "etl"
    APPROVAL = "approval"


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A built-in template: a pattern built with its default parameters."""

    template_id: str
    display_name: str
    description: str
    pattern: Pattern

    @property
    def name(self) -> str:
        return f"templates/{self.template_id}"

    def document(self, definition_name: str = "") -> dict[str, Any]:
        return build(self.pattern, definition_name or self.template_id, {})


TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "approval",
        "Human approval",
        "A person approves or rejects a request; approved requests run an action.",
        Pattern.APPROVAL,
    ),
    TemplateSpec(
        "etl",
        "Extract, transform, load",
        "Extract records, run them through transforms in order, load the result.",
        Pattern.ETL,
    ),
    TemplateSpec(
        "rag",
        "Retrieval-augmented generation",
        "Retrieve passages for a question, build a prompt with them, generate an answer.",
        Pattern.RAG,
    ),
    TemplateSpec(
        "routing",
        "Request routing",
        "Route a request to one of several handlers by the value of an input field.",
        Pattern.ROUTING,
    ),
)
"""The templates, sorted by id."""


def find_template(template_id: str) -> TemplateSpec | None:
    return next((t for t in TEMPLATES if t.template_id == template_id), None)


def build(pattern: Pattern, name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The DSL document of ``pattern`` named ``name``.

    Raises:
        InvalidArgumentError: a parameter is unknown or has a bad value (one
            field violation per problem, ``parameters.<name>``).
    """
    params = _Params(parameters)
    document = _BUILDERS[pattern](name, params)
    params.finish()
    return document


class _Dumper(yaml.SafeDumper):
    """Writes shared values out in full: no `&id001` anchors in documents
    people read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: Mapping[str, Any], *, comment: str = "") -> bytes:
    """The document as YAML, keys in the order built, with an optional header."""
    text = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return (header + str(text)).encode()


# -- parameters ---------------------------------------------------------------


class _Params:
    """Reads parameters with type checks, collecting every problem."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = dict(raw)
        self._used: set[str] = set()
        self.violations: list[FieldViolation] = []

    def _bad(self, key: str, message: str) -> None:
        self.violations.append(FieldViolation(f"parameters.{key}", message))

    def string(self, key: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
        self._used.add(key)
        value = self._raw.get(key, default)
        if not isinstance(value, str) or not value:
            self._bad(key, "must be a non-empty string")
            return default
        if pattern is not None and not pattern.match(value):
            self._bad(key, f"{value!r} must match {pattern.pattern}")
            return default
        return value

    def optional_string(self, key: str) -> str:
        self._used.add(key)
        value = self._raw.get(key, "")
        if not isinstance(value, str):
            self._bad(key, "must be a string")
            return ""
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        self._used.add(key)
        value = self._raw.get(key, default)
        # Struct numbers arrive as floats: 5.0 is 5.
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            self._bad(key, "must be an integer")
            return default
        if not low <= int(value) <= high:
            self._bad(key, f"must be between {low} and {high}")
            return default
        return int(value)

    def strings(
        self,
        key: str,
        default: Sequence[str],
        pattern: re.Pattern[str],
        *,
        most: int,
    ) -> list[str]:
        self._used.add(key)
        value = self._raw.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._bad(key, "must be a list of strings")
            return list(default)
        if not 1 <= len(value) <= most:
            self._bad(key, f"must have between 1 and {most} entries")
            return list(default)
        if len(set(value)) != len(value):
            self._bad(key, "must not repeat an entry")
            return list(default)
        bad = [v for v in value if not pattern.match(v)]
        if bad:
            self._bad(key, f"{bad[0]!r} must match {pattern.pattern}")
            return list(default)
        return list(value)

    def finish(self) -> None:
        for key in sorted(set(self._raw) - self._used):
            self._bad(key, "unknown parameter")
        if self.violations:
            raise InvalidArgumentError(
                f"{len(self.violations)} bad parameter(s): {self.violations[0].description}",
                field_violations=self.violations,
            )


# -- builders -----------------------------------------------------------------


def _step_id(prefix: str, slug: str) -> str:
    # CEL reads steps as `steps.<id>`: ids that expressions may name use `_`.
    return f"{prefix}_{slug.replace('-', '_')}"


def _seconds(value: int) -> str:
    return f"{value}s"


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _retry(attempts: int) -> dict[str, Any]:
    return {
        "maxAttempts": attempts,
        "initialBackoff": "1s",
        "multiplier": 2,
        "maxBackoff": "30s",
        "jitter": 0.2,
    }


def _routing(name: str, params: _Params) -> dict[str, Any]:
    routes = params.strings("routes", ["standard", "priority"], _SLUG, most=_MAX_ROUTES)
    field = params.string("field", "route", _FIELD)
    handler = params.string("handler", "echo", _HANDLER)
    timeout = params.integer("timeoutSeconds", 30, 1, 86_400)
    steps: list[dict[str, Any]] = []
    gate: list[str] = []  # the condition the next step hangs off
    for i, route in enumerate(routes):
        if i < len(routes) - 1:
            check = _step_id("check", route)
            otherwise = (
                _step_id("check", routes[i + 1])
                if i + 1 < len(routes) - 1
                else _step_id("handle", routes[i + 1])
            )
            steps.append(
                {
                    "id": check,
                    "type": "condition",
                    **({"needs": list(gate)} if gate else {}),
                    "condition": {
                        "expression": f'inputs.{field} == "{route}"',
                        "thenSteps": [_step_id("handle", route)],
                        "elseSteps": [otherwise],
                    },
                }
            )
            gate = [check]
        steps.append(
            {
                "id": _step_id("handle", route),
                "type": "task",
                **({"needs": list(gate)} if gate else {}),
                "handler": handler,
                "config": {"route": route},
                "input": {"request": "inputs"},
                "timeout": _seconds(timeout),
            }
        )
    return {
        "name": name,
        "description": f"Route a request by `{field}` to one of: {', '.join(routes)}.",
        "tags": ["routing"],
        "labels": dict(_LABELS),
        "inputSchema": {
            "type": "object",
            "required": [field],
            "properties": {field: {"type": "string", "enum": routes}},
        },
        "steps": steps,
    }


def _rag(name: str, params: _Params) -> dict[str, Any]:
    retriever = params.string("retriever", "retrieve", _HANDLER)
    augmenter = params.string("augmenter", "prompt", _HANDLER)
    generator = params.string("generator", "generate", _HANDLER)
    index = params.string("index", "documents")
    model = params.string("model", "default")
    top_k = params.integer("topK", 5, 1, 100)
    return {
        "name": name,
        "description": "Retrieve passages for a question, augment a prompt, generate an answer.",
        "tags": ["rag"],
        "labels": dict(_LABELS),
        "inputSchema": {
            "type": "object",
            "required": ["question"],
            "properties": {"question": {"type": "string"}},
        },
        "outputSchema": _object(answer={"type": "string"}),
        "outputs": {"answer": "steps.generate.output.answer"},
        "steps": [
            {
                "id": "retrieve",
                "type": "task",
                "handler": retriever,
                "config": {"index": index, "topK": top_k},
                "input": {"query": "inputs.question"},
                "outputSchema": _object(passages={"type": "array", "items": {"type": "string"}}),
                "timeout": "30s",
                "retry": _retry(3),
                "cache": {"enabled": True, "ttl": "600s"},
            },
            {
                "id": "augment",
                "type": "task",
                "handler": augmenter,
                "needs": ["retrieve"],
                "input": {
                    "question": "inputs.question",
                    "passages": "steps.retrieve.output.passages",
                },
                "outputSchema": _object(prompt={"type": "string"}),
                "timeout": "10s",
            },
            {
                "id": "generate",
                "type": "task",
                "handler": generator,
                "needs": ["augment"],
                "config": {"model": model},
                "input": {"prompt": "steps.augment.output.prompt"},
                "outputSchema": _object(answer={"type": "string"}),
                "timeout": "120s",
                "retry": _retry(2),
                "resources": {"quota": "llm-tokens", "quotaUnits": 1},
            },
        ],
    }


def _etl(name: str, params: _Params) -> dict[str, Any]:
    extract = params.string("extract", "extract", _HANDLER)
    transforms = params.strings("transforms", ["clean"], _SLUG, most=_MAX_TRANSFORMS)
    load = params.string("load", "load", _HANDLER)
    schedule = params.optional_string("schedule")
    if schedule and len(schedule.split()) != 5:
        params.violations.append(
            FieldViolation("parameters.schedule", "must be a five-field cron expression")
        )
    records = _object(records={"type": "array"})
    steps: list[dict[str, Any]] = [
        {
            "id": "extract",
            "type": "task",
            "handler": extract,
            "outputSchema": records,
            "timeout": "300s",
            "retry": _retry(3),
        }
    ]
    previous = "extract"
    for transform in transforms:
        step_id = _step_id("transform", transform)
        steps.append(
            {
                "id": step_id,
                "type": "task",
                "handler": transform,
                "needs": [previous],
                "input": {"records": f"steps.{previous}.output.records"},
                "outputSchema": records,
                "timeout": "300s",
            }
        )
        previous = step_id
    steps.append(
        {
            "id": "load",
            "type": "task",
            "handler": load,
            "needs": [previous],
            "input": {"records": f"steps.{previous}.output.records"},
            "outputSchema": _object(count={"type": "integer"}),
            "timeout": "300s",
            "retry": _retry(3),
        }
    )
    document: dict[str, Any] = {
        "name": name,
        "description": f"Extract, transform ({', '.join(transforms)}), load.",
        "tags": ["etl"],
        "labels": dict(_LABELS),
    }
    if schedule:
        document["triggers"] = [{"type": "schedule", "cron": schedule, "timezone": "UTC"}]
    document.update(
        {
            "outputSchema": _object(loaded={"type": "integer"}),
            "outputs": {"loaded": "steps.load.output.count"},
            "steps": steps,
        }
    )
    return document


def _approval(name: str, params: _Params) -> dict[str, Any]:
    approvers = params.strings(
        "approvers", ["role:approver"], re.compile(r"^[A-Za-z0-9:._@-]+$"), most=50
    )
    due = params.integer("dueSeconds", 86_400, 60, 30 * 86_400)
    action = params.string("action", "echo", _HANDLER)
    on_reject = params.string("onReject", "echo", _HANDLER)
    instructions = params.string("instructions", "Approve or reject the request.")
    form = {
        "type": "object",
        "required": ["approved"],
        "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
    }
    return {
        "name": name,
        "description": "A person approves or rejects a request; approved requests run an action.",
        "tags": ["approval"],
        "labels": dict(_LABELS),
        "inputSchema": _object(request={"type": "object"}),
        "steps": [
            {
                "id": "review",
                "type": "human",
                "human": {
                    "assignees": approvers,
                    "due": _seconds(due),
                    "instructions": instructions,
                    "formSchema": form,
                },
                "outputSchema": form,
            },
            {
                "id": "decide",
                "type": "condition",
                "needs": ["review"],
                "condition": {
                    "expression": "steps.review.output.approved",
                    "thenSteps": ["approved"],
                    "elseSteps": ["rejected"],
                },
            },
            {
                "id": "approved",
                "type": "task",
                "handler": action,
                "needs": ["decide"],
                "input": {"request": "inputs.request", "comment": "steps.review.output.comment"},
                "timeout": "60s",
            },
            {
                "id": "rejected",
                "type": "task",
                "handler": on_reject,
                "needs": ["decide"],
                "input": {"request": "inputs.request", "comment": "steps.review.output.comment"},
                "timeout": "60s",
            },
        ],
    }


_BUILDERS: Mapping[Pattern, Callable[[str, _Params], dict[str, Any]]] = {
    Pattern.ROUTING: _routing,
    Pattern.RAG: _rag,
    Pattern.ETL: _etl,
    Pattern.APPROVAL: _approval,
}
