"""Compiling a normal-form definition into a ``CompiledPlan``.

The plan is a pure function of the normal form: steps in topological order with
ties broken by step id (Kahn's algorithm over a min-heap), every list sorted, so
the same definition always serialises to the same bytes.

Defaults resolved into ``PlannedStep.step``: on task steps and on loop bodies,
a ``timeout`` of ``DEFAULT_STEP_TIMEOUT`` and the default ``retry`` when absent;
also a ``timeout`` on subworkflow steps. Condition steps (evaluated by the
scheduler), delay steps (a timer of their own duration), loop steps (bounded by
their body's timeouts) and human steps (people take hours; ``human.due``
escalates, it does not fail) get none.

``critical_path_timeout`` weighs each step by its timeout: a step's own
``timeout`` when it has one; else a loop's body timeout (one round of
iterations, as the item count is only known at run time), a delay's
``duration``, zero for conditions and for delays that wait ``until`` a time,
and ``DEFAULT_STEP_TIMEOUT`` for everything else.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any

from google.protobuf import duration_pb2

from maestro.common.v1 import plan_pb2
from maestro.services.compiler import digest as digests
from maestro.services.compiler.expressions import referenced_steps
from maestro.services.compiler.graph import levels as graph_levels
from maestro.services.compiler.normalize import (
    DEFAULT_LOOP_PARALLELISM,
    RETRY_DEFAULTS,
    duration_nanos,
)
from maestro.services.compiler.protomap import fill_step

__all__ = [
    "DEFAULT_STEP_TIMEOUT",
    "PLAN_VERSION",
    "compile_plan",
    "expression_reads",
    "loop_parallelism",
    "referenced_steps",
    "resolve_defaults",
    "step_expressions",
    "timeout_weight",
    "topological_order",
]

PLAN_VERSION = 1
COMPILER_DISTRIBUTION = "maestro-compiler"


def _compiler_version() -> str:
    try:
        return metadata.version(COMPILER_DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


COMPILER_VERSION = _compiler_version()
"""The compiler's version, which every plan records (``compiler_version``)."""
DEFAULT_STEP_TIMEOUT = "300s"
"""Per-attempt timeout of a step that declares none (lint warns MISSING_TIMEOUT)."""
_DEFAULT_TIMEOUT_NANOS = duration_nanos(DEFAULT_STEP_TIMEOUT)
_DEFAULT_TIMEOUT_TYPES = frozenset({"task", "subworkflow"})


def _mapping_values(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        yield from (v for v in value.values() if isinstance(v, str))


def step_expressions(step: Mapping[str, Any]) -> Iterator[str]:
    """Every CEL expression of a step: input mapping, condition, loop items and
    body inputs, delay ``until``."""
    yield from _mapping_values(step.get("input"))
    condition = step.get("condition")
    if isinstance(condition, Mapping) and isinstance(condition.get("expression"), str):
        yield condition["expression"]
    loop = step.get("loop")
    if isinstance(loop, Mapping):
        if isinstance(loop.get("items"), str):
            yield loop["items"]
        body = loop.get("body")
        if isinstance(body, Mapping):
            yield from step_expressions(body)
    delay = step.get("delay")
    if isinstance(delay, Mapping) and isinstance(delay.get("until"), str):
        yield delay["until"]


def expression_reads(expressions: Iterable[str], step_ids: Iterable[str]) -> list[str]:
    """Sorted ids among ``step_ids`` that ``expressions`` reference."""
    referenced: set[str] = set()
    for expression in expressions:
        referenced |= referenced_steps(expression)
    return sorted(referenced.intersection(step_ids))


def loop_parallelism(step: Mapping[str, Any]) -> int:
    """Concurrent iterations of a loop step (the default when unset)."""
    loop = step.get("loop")
    parallelism = loop.get("parallelism") if isinstance(loop, Mapping) else None
    return (
        parallelism
        if isinstance(parallelism, int) and parallelism > 0
        else (DEFAULT_LOOP_PARALLELISM)
    )


def resolve_defaults(step: Mapping[str, Any]) -> dict[str, Any]:
    """The normal-form step with the plan's defaults filled in (see module doc)."""
    resolved = dict(step)
    kind = resolved.get("type")
    if kind in _DEFAULT_TIMEOUT_TYPES and "timeout" not in resolved:
        resolved["timeout"] = DEFAULT_STEP_TIMEOUT
    if kind == "task" and "retry" not in resolved:
        resolved["retry"] = dict(RETRY_DEFAULTS)
    loop = resolved.get("loop")
    if isinstance(loop, Mapping) and isinstance(loop.get("body"), Mapping):
        resolved["loop"] = {**loop, "body": resolve_defaults(loop["body"])}
    return resolved


def _nanos(value: Any, default: int = 0) -> int:
    try:
        return duration_nanos(value)
    except ValueError:
        return default


def timeout_weight(step: Mapping[str, Any]) -> int:
    """Nanoseconds a step adds to ``critical_path_timeout`` (see module doc)."""
    default = _DEFAULT_TIMEOUT_NANOS
    if "timeout" in step:
        return _nanos(step["timeout"], default)
    kind = step.get("type")
    if kind == "condition":
        return 0
    if kind == "delay":
        delay = step.get("delay")
        return _nanos(delay.get("duration")) if isinstance(delay, Mapping) else 0
    if kind == "loop":
        loop = step.get("loop")
        body = loop.get("body") if isinstance(loop, Mapping) else None
        return timeout_weight(body) if isinstance(body, Mapping) else default
    return default


def topological_order(needs: Mapping[str, list[str]]) -> list[str]:
    """Step ids in dependency order, ties broken by id.

    Raises:
        ValueError: the graph has a cycle or an unknown ``needs`` entry.
    """
    waiting = {step_id: len(set(deps)) for step_id, deps in needs.items()}
    dependents: dict[str, list[str]] = {step_id: [] for step_id in needs}
    for step_id, deps in needs.items():
        for dep in set(deps):
            if dep not in dependents:
                raise ValueError(f"step {step_id!r} needs unknown step {dep!r}")
            dependents[dep].append(step_id)
    ready = [step_id for step_id, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        step_id = heapq.heappop(ready)
        order.append(step_id)
        for dependent in dependents[step_id]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) != len(needs):
        raise ValueError("the step graph has a cycle")
    return order


def _duration(nanos: int) -> duration_pb2.Duration:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return duration_pb2.Duration(seconds=seconds, nanos=fraction)


def compile_plan(
    normal: Mapping[str, Any],
    digest: str,
    *,
    config_digests: Sequence[str] | None = None,
    reads: Mapping[str, Collection[str]] | None = None,
) -> plan_pb2.CompiledPlan:
    """The executable plan of a valid normal-form definition. Callers that
    have them pass ``config_digests``, the digest of each of
    ``normal["steps"]``, and ``reads``, per step id the ids its expressions
    reference (``referenced_steps``).

    Raises:
        ValueError: the graph has a cycle or an unknown reference (the
            definition was not validated).
        google.protobuf.json_format.ParseError: a step has the wrong shape.
    """
    steps: dict[str, Mapping[str, Any]] = {s["id"]: s for s in normal["steps"]}
    needs = {step_id: list(step.get("needs", ())) for step_id, step in steps.items()}
    order = topological_order(needs)
    levels = graph_levels(needs)  # complete: there is no cycle
    level = {step_id: depth for depth, ids in enumerate(levels) for step_id in ids}
    if config_digests is None:
        config_digests = [digests.digest(step) for step in normal["steps"]]
    config_digest = {step["id"]: d for step, d in zip(normal["steps"], config_digests, strict=True)}

    dependents: dict[str, list[str]] = {step_id: [] for step_id in steps}
    longest: dict[str, int] = {}
    for step_id in order:
        deps = needs[step_id]
        for dep in deps:
            dependents[dep].append(step_id)
        upstream = max((longest[d] for d in deps), default=0)
        longest[step_id] = upstream + timeout_weight(steps[step_id])
    max_fanout = max(
        (
            sum(loop_parallelism(steps[s]) if steps[s].get("type") == "loop" else 1 for s in ids)
            for ids in levels
        ),
        default=0,
    )

    plan = plan_pb2.CompiledPlan(
        definition_digest=digest,
        plan_version=PLAN_VERSION,
        levels=[plan_pb2.PlanLevel(step_ids=ids) for ids in levels],
        terminal_steps=sorted(s for s in steps if not dependents[s]),
        critical_path_timeout=_duration(max(longest.values(), default=0)),
        max_fanout=max_fanout,
        compiler_version=COMPILER_VERSION,
    )
    for position, step_id in enumerate(order):
        step = steps[step_id]
        planned = plan.steps.add(
            order=position,
            level=level[step_id],
            dependents=sorted(dependents[step_id]),
            config_digest=config_digest[step_id],
            reads=sorted(
                read
                for read in (
                    reads[step_id]
                    if reads is not None
                    else {r for e in step_expressions(step) for r in referenced_steps(e)}
                )
                if read in steps and read != step_id
            ),
        )
        fill_step(planned.step, resolve_defaults(step))
    return plan
