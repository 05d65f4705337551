"""Structural validation of a parsed workflow document.

Reports every problem at once as diagnostics with a stable code and a JSON
Pointer: document shape, required fields, step types, duplicate ids, unknown
``needs`` references and dependency cycles (naming the steps on the cycle).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from maestro.services.compiler.source import ParsedSource, pointer

STEP_TYPES = ("task", "condition", "loop", "human", "subworkflow", "delay")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
STEP_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")


@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnostic before positions are attached."""

    code: str
    message: str
    path: str
    severity: str = "error"
    hint: str = ""
    related_steps: tuple[str, ...] = ()


@dataclass
class Report:
    """All findings for one document, each with its (line, column)."""

    findings: list[tuple[Finding, tuple[int, int]]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(f.severity == "error" for f, _ in self.findings)


def validate(parsed: ParsedSource) -> Report:
    """Validates the document; findings sorted by position, then code."""
    findings = list(_check_document(parsed.document))
    located = [(f, parsed.position(f.path)) for f in findings]
    located.sort(key=lambda item: (item[1], item[0].code, item[0].path))
    return Report(located)


def _check_document(doc: Any) -> Iterator[Finding]:
    if not isinstance(doc, dict):
        yield Finding("INVALID_DOCUMENT", "a workflow definition must be a mapping", "")
        return
    name = doc.get("name")
    if name is None:
        yield Finding("MISSING_FIELD", "`name` is required", "/name", hint="add `name: my-flow`")
    elif not isinstance(name, str) or not NAME_PATTERN.match(name):
        yield Finding(
            "INVALID_NAME",
            "`name` must be lowercase letters, digits and `-`, starting with a letter, "
            "at most 63 characters",
            "/name",
        )
    steps = doc.get("steps")
    if steps is None:
        yield Finding("MISSING_FIELD", "`steps` is required", "/steps")
        return
    if not isinstance(steps, list) or not steps:
        yield Finding("TYPE_MISMATCH", "`steps` must be a non-empty list", "/steps")
        return
    yield from _check_steps(steps)


def _check_steps(steps: list[Any]) -> Iterator[Finding]:
    index_of: dict[str, int] = {}
    for i, step in enumerate(steps):
        here = pointer("steps", i)
        if not isinstance(step, dict):
            yield Finding("TYPE_MISMATCH", "a step must be a mapping", here)
            continue
        step_id = step.get("id")
        if not isinstance(step_id, str) or not step_id:
            yield Finding("MISSING_FIELD", "every step needs an `id`", here + "/id")
        elif not STEP_ID_PATTERN.match(step_id):
            yield Finding(
                "INVALID_STEP_ID",
                f"step id {step_id!r} must start with a letter and use letters, digits, "
                "`_` and `-`",
                here + "/id",
            )
        elif step_id in index_of:
            yield Finding(
                "DUPLICATE_STEP_ID",
                f"step id {step_id!r} is already used by /steps/{index_of[step_id]}",
                here + "/id",
                related_steps=(step_id,),
            )
        else:
            index_of[step_id] = i
        step_type = step.get("type")
        if step_type not in STEP_TYPES:
            yield Finding(
                "INVALID_STEP_TYPE" if step_type is not None else "MISSING_FIELD",
                f"`type` must be one of {', '.join(STEP_TYPES)}",
                here + "/type",
            )
        needs = step.get("needs", [])
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            yield Finding("TYPE_MISMATCH", "`needs` must be a list of step ids", here + "/needs")
        timeout = step.get("timeout")
        if timeout is not None and not (isinstance(timeout, str) and DURATION.match(timeout)):
            yield Finding(
                "TYPE_MISMATCH",
                f"`timeout` must be a duration in seconds such as `30s` or `0.5s`, got {timeout!r}",
                here + "/timeout",
            )
    yield from _check_references(steps, index_of)


def _needs(step: Any) -> list[str]:
    needs = step.get("needs", []) if isinstance(step, dict) else []
    return [n for n in needs if isinstance(n, str)] if isinstance(needs, list) else []


def _check_references(steps: list[Any], index_of: dict[str, int]) -> Iterator[Finding]:
    graph: dict[str, list[str]] = {}
    for step_id, i in index_of.items():
        edges = []
        for j, need in enumerate(_needs(steps[i])):
            if need not in index_of:
                yield Finding(
                    "UNKNOWN_STEP_REF",
                    f"step {step_id!r} needs unknown step {need!r}",
                    pointer("steps", i, "needs", j),
                    related_steps=(step_id,),
                )
            else:
                edges.append(need)
        graph[step_id] = edges
    for cycle in _cycles(graph):
        first = cycle[0]
        yield Finding(
            "CYCLE",
            "dependency cycle: " + " -> ".join([*cycle, first]),
            pointer("steps", index_of[first], "needs"),
            hint="remove one of the `needs` edges on the cycle",
            related_steps=tuple(cycle),
        )


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that contains a cycle.

    Each is found by walking from the component's smallest step id along its
    smallest in-component edge until a step repeats, then rotated to start at
    its smallest id, so reports are deterministic.
    """
    reach = {node: _reachable(graph, node) for node in graph}
    assigned: set[str] = set()
    found: list[list[str]] = []
    for node in sorted(graph):
        if node in assigned or node not in reach[node]:
            continue
        component = {other for other in reach[node] if node in reach[other]}
        assigned |= component
        path: list[str] = []
        current = min(component)
        while current not in path:
            path.append(current)
            current = min(n for n in graph[current] if n in component)
        cycle = path[path.index(current) :]
        pivot = cycle.index(min(cycle))
        found.append(cycle[pivot:] + cycle[:pivot])
    return found
