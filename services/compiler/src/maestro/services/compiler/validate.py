"""Validation of a parsed workflow document.

Reports every problem at once, each as a finding with a stable code and a JSON
Pointer, in three passes over the same document:

1. shape: the document against ``workflow.schema.json`` (unknown keys, missing
   and mistyped fields, durations, type-specific sections), one finding per
   schema error;
2. graph: duplicate ids, ``needs``/``thenSteps``/``elseSteps`` naming unknown
   steps, dependency cycles (one per strongly connected component) and steps
   that can never run (``UNREACHABLE_STEP``);
3. expressions: every CEL expression type-checked with exactly the variables
   in its scope (``expressions.py``).

The passes do not overlap: the graph pass only reads well-typed values and
leaves their shape to the schema, and the expression pass skips values that
are not strings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from maestro.services.compiler.expressions import (
    Memo,
    ScannedExpression,
    check_expressions,
    scan_expressions,
)
from maestro.services.compiler.findings import Finding, Report, locate
from maestro.services.compiler.graph import (
    StepGraph,
    cycles,
    downstream,
    id_of,
    step_graph,
    string_list,
)
from maestro.services.compiler.metaschema import plainly_valid
from maestro.services.compiler.source import ParsedSource, pointer
from maestro.services.compiler.workflow_schema import (
    WORKFLOW_SCHEMA,
    fast_validator,
    meta_validator,
    validator,
)

__all__ = [
    "STEP_TYPES",
    "Analysis",
    "Finding",
    "Report",
    "analyse",
    "validate",
    "validation_findings",
]

_DEFS: dict[str, Any] = WORKFLOW_SCHEMA["$defs"]
STEP_TYPES: tuple[str, ...] = tuple(_DEFS["stepType"]["enum"])
NAME_PATTERN = re.compile(_DEFS["workflowName"]["pattern"])
STEP_ID_PATTERN = re.compile(_DEFS["stepId"]["pattern"])
_DEF_OF_SCHEMA = {id(schema): name for name, schema in _DEFS.items()}
_STEP_KEYS_BY_TYPE = {t: frozenset(_DEFS[f"{t}Step"]["properties"]) for t in STEP_TYPES}
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_EXPECTED = {
    "object": "an object (a mapping)",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}
_PATTERN_MEANING = {
    "duration": "a duration such as `30s`, `500ms`, `2m` or `1h30m`",
    "workflowRef": "a workflow resource name such as `workflows/billing`",
}
_TRIGGER_TYPE_HINT = f"set `type` to one of {', '.join(_DEFS['triggerType']['enum'])}"
_MISSING_HINTS = {
    "name": "add `name: my-flow` (lowercase letters, digits and `-`)",
    "steps": "add `steps:` with at least one step",
    "id": "give the step an `id`",
    "type": f"set `type` to one of {', '.join(STEP_TYPES)}",
    "condition": "add `condition: {expression: ..., thenSteps: [...], elseSteps: [...]}`",
    "loop": "add `loop: {items: ..., body: {type: task, handler: ...}}`",
    "human": "add `human: {assignees: [role:<name>]}`",
    "subworkflow": "add `subworkflow: {workflow: workflows/<name>}`",
    "delay": "add `delay: {duration: 10m}`",
    "expression": "add a CEL expression that evaluates to a bool",
    "items": "add a CEL expression that evaluates to a list",
    "body": "add the step to run per item, for example `body: {type: task, handler: echo}`",
    "assignees": "list who may complete the task, for example `[role:reviewer]`",
    "workflow": "name the child workflow, for example `workflows/billing`",
}


@dataclass(frozen=True)
class Analysis:
    """What validating a document found, for the callers that go on (lint,
    compile) so that nothing is parsed, scanned or built twice: the findings,
    the step graph (None when ``steps`` is not a list) and the expressions
    with their step reads (empty without a graph)."""

    findings: list[Finding]
    graph: StepGraph | None
    expressions: list[ScannedExpression]

    @property
    def valid(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def validate(parsed: ParsedSource) -> Report:
    """Validates the document; findings sorted by position, then code."""
    return locate(parsed, analyse(parsed.document).findings)


def analyse(
    doc: Any, memo: Memo | None = None, known_valid: Sequence[bool] | None = None
) -> Analysis:
    """Shape, graph and expression findings of a parsed document (``memo``:
    work shared by the documents of one call, see ``expressions.Memo``;
    ``known_valid``: the steps known to satisfy the schema, embedded schemas
    included, see ``fast_validator``)."""
    findings = list(schema_findings(doc, known_valid))
    graph = step_graph(doc)
    if graph is None:
        return Analysis(findings, None, [])
    if memo is None:
        memo = Memo()
    expressions = scan_expressions(doc, memo)
    findings.extend(graph_findings(graph))
    findings.extend(check_expressions(doc, graph, expressions, memo))
    return Analysis(findings, graph, expressions)


def validation_findings(doc: Any) -> Iterator[Finding]:
    """Shape, graph and expression findings of a parsed document."""
    yield from analyse(doc).findings


# Shape --------------------------------------------------------------------


def schema_findings(doc: Any, known_valid: Sequence[bool] | None = None) -> Iterator[Finding]:
    """One finding per error of the document against the workflow schema, and
    of each embedded JSON Schema against the draft 2020-12 meta-schema.

    Both have a fast path that only ever says "no errors": the compiled
    ``fast_validator`` for the document, ``metaschema.plainly_valid`` for each
    embedded schema. Whatever they do not accept goes through jsonschema,
    which describes every error; identical embedded schemas are meta-validated
    once. ``known_valid``: see ``fast_validator``; the embedded schemas of
    those steps are known valid too (steps of a valid document)."""
    if not _fast_valid(doc, known_valid):
        for error in validator().iter_errors(doc):
            yield from _schema_error_findings(error, doc)
    meta_errors: dict[str, list[ValidationError]] = {}
    for at, schema in _embedded_schemas(doc, known_valid):
        if plainly_valid(schema):
            continue
        key = repr(schema)  # tells 1, 1.0 and true apart, and keeps key order
        errors = meta_errors.get(key)
        if errors is None:
            errors = meta_errors[key] = list(meta_validator().iter_errors(schema))
        for error in errors:
            tokens = [*at, *error.absolute_path]
            yield _embedded_schema_finding(error, pointer(*tokens), _where(doc, tokens))


def _fast_valid(doc: Any, known_valid: Sequence[bool] | None) -> bool:
    try:
        fast_validator()(doc, known_valid)
    except Exception:  # any doubt: let jsonschema decide
        return False
    return True


def _embedded_schemas(
    doc: Any, known_valid: Sequence[bool] | None = None
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(location, schema) of the JSON Schemas inside a document, but for
    those in steps ``known_valid`` (whose embedded schemas are valid)."""

    def in_step(step: Any, at: tuple[str | int, ...]) -> Iterator[tuple[Any, ...]]:
        if not isinstance(step, dict):
            return
        yield (*at, "outputSchema"), step.get("outputSchema")
        human, loop = step.get("human"), step.get("loop")
        if isinstance(human, dict):
            yield (*at, "human", "formSchema"), human.get("formSchema")
        if isinstance(loop, dict):
            yield from in_step(loop.get("body"), (*at, "loop", "body"))

    if not isinstance(doc, dict):
        return
    found: list[tuple[Any, ...]] = [(("inputSchema",), doc.get("inputSchema"))]
    found.append((("outputSchema",), doc.get("outputSchema")))
    steps = doc.get("steps")
    steps = steps if isinstance(steps, list) else []
    if known_valid is None or len(known_valid) != len(steps):
        known_valid = [False] * len(steps)
    for i, (step, known) in enumerate(zip(steps, known_valid, strict=True)):
        if not known:
            found.extend(in_step(step, ("steps", i)))
    for at, schema in found:
        if isinstance(schema, dict):
            yield at, schema


def _schema_error_findings(error: ValidationError, doc: Any) -> Iterator[Finding]:
    tokens = list(error.absolute_path)
    here = pointer(*tokens)
    where = _where(doc, tokens)
    definition = _DEF_OF_SCHEMA.get(id(error.schema), "")
    keyword = error.validator
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        kind = instance.get("type") if definition.endswith("Step") else None
        for name in error.validator_value:
            if name not in instance:
                yield Finding(
                    "MISSING_FIELD",
                    f"{where}a {kind} step needs `{name}`"
                    if isinstance(kind, str)
                    else f"{where}`{name}` is required",
                    pointer(*tokens, name),
                    hint=_TRIGGER_TYPE_HINT
                    if name == "type" and tokens[:1] == ["triggers"]
                    else _MISSING_HINTS.get(name, ""),
                )
    elif keyword == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        for key in sorted(set(instance) - known):
            yield _unknown_key(
                key, known, definition=definition, instance=instance, tokens=tokens, where=where
            )
    elif definition == "workflowName":
        yield Finding(
            "INVALID_NAME",
            "`name` must be lowercase letters, digits and `-`, starting with a letter, "
            f"at most 63 characters; got {instance!r}",
            here,
        )
    elif definition == "stepId":
        yield Finding(
            "INVALID_STEP_ID",
            f"step id {instance!r} must start with a letter and use letters, digits, "
            "`_` and `-` (at most 128 characters)",
            here,
        )
    elif definition == "stepType":
        close = difflib.get_close_matches(str(instance), STEP_TYPES, n=1)
        yield Finding(
            "INVALID_STEP_TYPE",
            f"{where}`type` must be one of {', '.join(STEP_TYPES)}; got {instance!r}",
            here,
            hint=f"did you mean `{close[0]}`?" if close else "",
        )
    elif keyword == "type":
        yield _type_mismatch(error, tokens, here, where, definition)
    elif alternatives := _one_of_required(error):
        options = " or ".join(f"`{name}`" for name in alternatives)
        yield Finding("MISSING_FIELD", f"{where}{_subject(tokens)} needs {options}", here)
    else:
        yield Finding("SCHEMA_VIOLATION", where + _violation(error, tokens, definition), here)


def _where(doc: Any, tokens: list[str | int]) -> str:
    """``step 'charge': `` when the path is inside a step with an id."""
    if len(tokens) >= 2 and tokens[0] == "steps" and isinstance(tokens[1], int):
        steps = doc.get("steps") if isinstance(doc, dict) else None
        step = steps[tokens[1]] if isinstance(steps, list) and tokens[1] < len(steps) else None
        if isinstance(step, dict) and isinstance(step.get("id"), str):
            return f"step {step['id']!r}: "
    return ""


def _subject(tokens: list[str | int]) -> str:
    if not tokens:
        return "the document"
    last = tokens[-1]
    if isinstance(last, int):
        return f"`{tokens[-2]}[{last}]`" if len(tokens) > 1 else f"item {last}"
    return f"`{last}`"


def _embedded_schema_finding(error: ValidationError, here: str, where: str) -> Finding:
    detail = best_match(error.context) if error.context else error
    hint = ""
    if here.endswith("/type"):
        hint = "JSON Schema types are array, boolean, integer, null, number, object and string"
    return Finding(
        "SCHEMA_VIOLATION", f"{where}not a valid JSON Schema: {detail.message}", here, hint=hint
    )


def _unknown_key(
    key: str,
    known: set[str],
    *,
    definition: str,
    instance: Mapping[str, Any],
    tokens: list[str | int],
    where: str,
) -> Finding:
    path = pointer(*tokens, key)
    if definition.endswith("Step") and definition != "anyStep":
        owners = [t for t, keys in _STEP_KEYS_BY_TYPE.items() if key in keys]
        if owners:
            return Finding(
                "SCHEMA_VIOLATION",
                f"{where}`{key}` is not allowed on a {instance.get('type')} step",
                path,
                hint=f"`{key}` applies to {', '.join(owners)} steps",
            )
    close = difflib.get_close_matches(key, sorted(known), n=1)
    allowed = ", ".join(sorted(known))
    return Finding(
        "SCHEMA_VIOLATION",
        f"{where}unknown key `{key}`",
        path,
        hint=f"did you mean `{close[0]}`?" if close else f"allowed keys: {allowed}",
    )


def _type_mismatch(
    error: ValidationError, tokens: list[str | int], here: str, where: str, definition: str
) -> Finding:
    expected = error.validator_value
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_EXPECTED.get(n, n) for n in names)
    got = _JSON_TYPES.get(type(error.instance), "a value")
    hint = ""
    if definition == "celExpression":
        hint = "CEL expressions are strings: quote the value, for example '5' or '\"text\"'"
    elif definition == "duration":
        hint = "write durations as strings such as `30s`, `500ms` or `1h30m`"
    elif not tokens:
        wanted = "a mapping of `name`, `steps`, ..."
    return Finding(
        "TYPE_MISMATCH",
        f"{where}{_subject(tokens)} must be {wanted}, got {got}",
        here,
        hint=hint,
    )


_VIOLATIONS = {
    "enum": "{subject} must be one of {options}; got {instance!r}",
    "minimum": "{subject} must be at least {value}, got {instance}",
    "maximum": "{subject} must be at most {value}, got {instance}",
    "minItems": "{subject} must have at least {value} item(s)",
    "minLength": "{subject} must not be empty",
}


def _violation(error: ValidationError, tokens: list[str | int], definition: str) -> str:
    subject = _subject(tokens)
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword == "pattern":
        meaning = _PATTERN_MEANING.get(definition)
        if meaning is None and tokens and tokens[-1] == "cron":
            meaning = "a five-field cron expression such as `0 * * * *`"
        return f"{subject} must be {meaning or f'a string matching {value}'}, got {instance!r}"
    template = _VIOLATIONS.get(str(keyword))
    if template is None:
        return f"{subject}: {error.message}"
    options = ", ".join(map(str, value)) if isinstance(value, list) else ""
    return template.format(subject=subject, value=value, instance=instance, options=options)


def _one_of_required(error: ValidationError) -> list[str]:
    """The alternatives of an ``anyOf`` of ``required``s (``delay``: ``duration``
    or ``until``); empty for any other error."""
    value = error.validator_value
    if error.validator == "anyOf" and all(
        isinstance(s, dict) and set(s) == {"required"} for s in value
    ):
        return [s["required"][0] for s in value]
    return []


# Graph --------------------------------------------------------------------


def graph_findings(graph: StepGraph) -> Iterator[Finding]:
    """Duplicate ids, unknown references, cycles and unreachable steps."""
    steps, index_of = graph.steps, graph.index_of
    for i, step in enumerate(steps):
        step_id = id_of(step)
        if step_id is None:
            continue
        if index_of[step_id] != i:
            yield Finding(
                "DUPLICATE_STEP_ID",
                f"step id {step_id!r} is already used by /steps/{index_of[step_id]}",
                pointer("steps", i, "id"),
                hint="give every step a unique id",
                related_steps=(step_id,),
            )
        yield from _unknown_references(step, i, step_id, index_of)
    for cycle in [] if graph.acyclic() else cycles(graph.needs):
        first = cycle[0]
        yield Finding(
            "CYCLE",
            "dependency cycle: " + " -> ".join([*cycle, first]),
            pointer("steps", index_of[first], "needs"),
            hint="remove one of the `needs` edges on the cycle",
            related_steps=tuple(cycle),
        )
    yield from _unreachable(graph)


def _unknown_references(
    step: dict[str, Any], i: int, step_id: str, index_of: Mapping[str, int]
) -> Iterator[Finding]:
    lists: list[tuple[tuple[str, ...], Any]] = [(("needs",), step.get("needs"))]
    condition = step.get("condition")
    if isinstance(condition, dict):
        for key in ("thenSteps", "elseSteps"):
            lists.append((("condition", key), condition.get(key)))
    for where, names in lists:
        if not isinstance(names, list):
            continue
        for j, name in enumerate(names):
            if isinstance(name, str) and name not in index_of:
                close = difflib.get_close_matches(name, index_of, n=1)
                verb = "needs" if where == ("needs",) else f"lists in `{where[-1]}`"
                yield Finding(
                    "UNKNOWN_STEP_REF",
                    f"step {step_id!r} {verb} unknown step {name!r}",
                    pointer("steps", i, *where, j),
                    hint=f"did you mean {close[0]!r}?" if close else "",
                    related_steps=(step_id,),
                )


def _unreachable(graph: StepGraph) -> Iterator[Finding]:
    """Steps that can never run because of how a condition routes.

    A condition runs the steps on one side (``thenSteps`` or ``elseSteps``, and
    everything that needs them) and skips the other side, so a step on both
    sides always waits for a skipped step. Only the first such step on each
    path is reported; those after it are unreachable for the same reason. A
    branch step that does not need its condition is not gated by it at all.
    """
    dependents: dict[str, list[str]] | None = None
    for condition_id, i in graph.index_of.items():
        step = graph.steps[i]
        spec = step.get("condition") if step.get("type") == "condition" else None
        if not isinstance(spec, dict):
            continue
        sides: list[list[str]] = []
        for key in ("thenSteps", "elseSteps"):
            names = string_list(spec.get(key))
            for j, name in enumerate(names):
                if name in graph.index_of and condition_id not in graph.needs[name]:
                    yield Finding(
                        "UNREACHABLE_STEP",
                        f"step {name!r} is in `{key}` of condition {condition_id!r} but does "
                        f"not need {condition_id!r}, so the condition does not gate it",
                        pointer("steps", i, "condition", key, j),
                        hint=f"add {condition_id!r} to the `needs` of {name!r}",
                        related_steps=(name, condition_id),
                    )
            sides.append([n for n in names if n in graph.index_of])
        if not sides[0] or not sides[1]:
            continue
        if dependents is None:
            dependents = graph.dependents()
        then_side = downstream(sides[0], dependents)
        else_side = downstream(sides[1], dependents)
        both = then_side.keys() & else_side.keys()
        for name in sorted(both, key=graph.index_of.__getitem__):
            if any(need in both for need in graph.needs[name]):
                continue
            via_then, via_else = then_side[name], else_side[name]
            yield Finding(
                "UNREACHABLE_STEP",
                f"step {name!r} never runs: it waits for both branches of condition "
                f"{condition_id!r} (then: {via_then!r}, else: {via_else!r}) and one of them "
                "is always skipped",
                pointer("steps", graph.index_of[name], "needs"),
                hint=f"make {name!r} need {condition_id!r} instead, or keep it on one branch",
                related_steps=(name, condition_id),
            )
