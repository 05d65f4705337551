"""CEL evaluation at run time, shared by the compiler (simulation) and the
scheduler (conditions, input mappings, loop items, outputs).

Uses ``cel-expr-python``, Google's Python binding of cel-cpp. Programs are
compiled once per expression text and cached; the environment is plain dynamic
maps, so runtime data need not be flattened. Type-checking against schemas is
the compiler's job (``maestro.services.compiler.cel``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

T = cel.Type


@functools.lru_cache(maxsize=1)
def _runtime_env() -> Any:
    return cel.NewEnv(
        variables={
            "inputs": T.Map(T.STRING, T.DYN),
            "steps": T.Map(T.STRING, T.DYN),
            "item": T.DYN,
            "index": T.INT,
        }
    )


@functools.lru_cache(maxsize=4096)
def _program(expression: str) -> Any:
    return _runtime_env().compile(expression)


class CelEvaluationError(Exception):
    """An expression failed at run time (missing key, division by zero, ...)."""


def evaluate(expression: str, data: Mapping[str, Any]) -> Any:
    """Evaluates ``expression`` with ``inputs``, ``steps``, ``item`` and
    ``index`` from ``data`` (JSON-like values); returns a plain Python value."""
    activation = {"inputs": {}, "steps": {}, "item": None, "index": 0, **data}
    try:
        value = _program(expression).eval(data=activation)
    except RuntimeError as exc:
        raise CelEvaluationError(str(exc).split("\n", 1)[0]) from exc
    if value.type() == T.ERROR:  # runtime errors come back as error values
        raise CelEvaluationError(str(value.value()))
    return value.plain_value()
