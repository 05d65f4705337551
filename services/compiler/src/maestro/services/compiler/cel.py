"""CEL expressions: type-checking against declared schemas, and evaluation.

Uses ``cel-expr-python``, Google's Python binding of cel-cpp (the reference
checker and runtime), rather than a re-implementation.

Type-checking declares, besides ``inputs`` and ``steps.<id>.output`` as maps,
one qualified variable per schema property (``inputs.who``,
``steps.fetch.output.score``) with the property's CEL type; CEL resolves the
longest declared name first, so ``inputs.who + 1`` is a type error when ``who``
is a string, and an undeclared ``steps.nope.output`` is an undeclared reference.
Evaluation (``evaluate``) lives in :mod:`maestro.runtime.cel`, shared with the
scheduler that runs workflows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cel_expr_python import cel

from maestro.runtime.cel import CelEvaluationError, evaluate

__all__ = ["CelEvaluationError", "CelIssue", "Checked", "check", "environment", "evaluate"]

T = cel.Type
_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")
_SCALARS: dict[str, Any] = {
    "string": T.STRING,
    "integer": T.INT,
    "number": T.DOUBLE,
    "boolean": T.BOOL,
    "null": T.NULL,
}
MAX_SCHEMA_DEPTH = 6


@dataclass(frozen=True, slots=True)
class CelIssue:
    """Why an expression failed to compile.

    ``kind`` is ``syntax`` (does not parse), ``undeclared`` (names a variable
    that is not in scope; ``reference`` holds it) or ``type`` (no overload
    matches the operand types). ``column`` is 1-based within the expression.
    """

    kind: Literal["syntax", "undeclared", "type"]
    message: str
    column: int = 0
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Checked:
    """A type-checked expression: its result type name (``BOOL``, ``LIST<INT>``...)."""

    return_type: str


_MAP = T.Map(T.STRING, T.DYN)


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def cel_type(schema: Any) -> Any:
    """The CEL type of a JSON Schema (``dyn`` when it does not pin one down)."""
    if not _is_mapping(schema):
        return T.DYN
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        return T.List(cel_type(schema.get("items")))
    if kind == "object":
        return _MAP
    return T.DYN


def schema_variables(prefix: str, schema: Any, depth: int = 0) -> dict[str, Any]:
    """Declarations for ``prefix`` and, for objects, each property under it."""
    declared = {prefix: cel_type(schema) if schema else _MAP}
    if _is_mapping(schema) and depth < MAX_SCHEMA_DEPTH:
        properties = schema.get("properties")
        if _is_mapping(properties):
            for name, sub in properties.items():
                if isinstance(name, str) and name.isidentifier():
                    declared.update(schema_variables(f"{prefix}.{name}", sub, depth + 1))
    return declared


def declared_chain(schema: Any, fields: Sequence[str]) -> list[Any]:
    """The types ``schema_variables(prefix, schema)`` declares for ``prefix``
    and for each of ``prefix.<fields[0]>``, ``prefix.<fields[0]>.<fields[1]>``...
    (None where it declares none), without building the other declarations."""
    types = [cel_type(schema) if schema else _MAP]
    node = schema
    for depth, name in enumerate(fields):
        if not _is_mapping(node) or depth >= MAX_SCHEMA_DEPTH:
            break
        properties = node.get("properties")
        if not (_is_mapping(properties) and name.isidentifier() and name in properties):
            break
        node = properties[name]
        types.append(cel_type(node) if node else _MAP)
    return types + [None] * (len(fields) + 1 - len(types))


def environment(variables: Mapping[str, Any]) -> Any:
    """A checking environment with exactly ``variables`` in scope."""
    return cel.NewEnv(variables=dict(variables))


def check(env: Any, expression: str) -> Checked | CelIssue:
    """Type-checks ``expression`` in ``env``."""
    try:
        compiled = env.compile(expression)
    except RuntimeError as exc:
        return _issue(str(exc))
    return Checked(compiled.return_type().name())


def _issue(text: str) -> CelIssue:
    match = _ERROR.search(text)
    detail = match.group(3).strip() if match else text.strip()
    column = int(match.group(2)) if match else 0
    undeclared = _UNDECLARED.search(detail)
    if undeclared:
        return CelIssue("undeclared", detail, column, undeclared.group(1))
    if detail.startswith("Syntax error") or "Syntax error" in text:
        return CelIssue("syntax", detail, column)
    return CelIssue("type", detail, column)
