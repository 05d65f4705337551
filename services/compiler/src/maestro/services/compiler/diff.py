"""Structural and semantic difference between two normal-form definitions.

Steps are matched by id. Field changes recurse into objects and treat arrays
and scalars as whole values, each addressed by an RFC 6901 pointer relative to
the step (or to the document root for workflow-level changes).

The verdict is IDENTICAL when the normal forms are equal, BREAKING when any
breaking change is found, COMPATIBLE otherwise. Breaking changes:

* ``STEP_REMOVED``: a removed step that a workflow output depends on, directly
  (its expression reads the step) or transitively (through ``needs``); other
  removals are compatible.
* ``INPUT_SCHEMA_NARROWED``: an input that callers could send is now refused:
  a new ``required`` entry, a removed property, a property type that no longer
  accepts every old type (``integer`` counts as a ``number``), an added or
  shrunk ``enum``, ``additionalProperties`` turned off. Nested object
  properties are checked too.
* ``OUTPUT_REMOVED``: a key of ``outputs`` removed, or an ``outputSchema``
  property removed, no longer ``required``, or typed so that consumers may get
  a type they did not before.
* ``TRIGGER_REMOVED``: a trigger (identified by type and event, webhook path,
  or cron and time zone) no longer present.

The smallest bump is PATCH for identical definitions and for changes of only
``description``, ``tags`` and ``labels``; MINOR for other compatible changes;
MAJOR for breaking ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from google.protobuf import json_format, struct_pb2

from maestro.common.v1 import diff_pb2
from maestro.services.compiler import digest as digests
from maestro.services.compiler.plan import expression_reads
from maestro.services.compiler.source import escape_pointer_token, pointer

_COSMETIC = frozenset({"description", "tags", "labels"})
_ABSENT = object()


def _fingerprint(value: Any) -> str:
    # Equal normal-form values dump equally and unequal ones differently (the
    # normal form has no integral floats, and JSON keeps true apart from 1).
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same(base: Any, target: Any) -> bool:
    if isinstance(base, dict | list) or isinstance(target, dict | list):
        return _fingerprint(base) == _fingerprint(target)
    return type(base) is type(target) and base == target


def _value(value: Any) -> struct_pb2.Value:
    if value is _ABSENT or value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    kind = type(value)
    if kind is str and value.isascii():  # what ParseDict makes of the common values
        return struct_pb2.Value(string_value=value)
    if kind is bool:
        return struct_pb2.Value(bool_value=value)
    return json_format.ParseDict(value, struct_pb2.Value())


def _change(path: str, base: Any, target: Any) -> diff_pb2.FieldChange:
    if base is _ABSENT:
        kind = diff_pb2.CHANGE_KIND_ADDED
    elif target is _ABSENT:
        kind = diff_pb2.CHANGE_KIND_REMOVED
    else:
        kind = diff_pb2.CHANGE_KIND_CHANGED
    return diff_pb2.FieldChange(
        path=path, kind=kind, base_value=_value(base), target_value=_value(target)
    )


def field_changes(base: Any, target: Any, path: str = "") -> Iterator[diff_pb2.FieldChange]:
    """Changes from ``base`` to ``target``, objects recursed, keys in sorted order."""
    if isinstance(base, dict) and isinstance(target, dict):
        for key in sorted(base.keys() | target.keys()):
            here = path + "/" + escape_pointer_token(key)
            old, new = base.get(key, _ABSENT), target.get(key, _ABSENT)
            if old is _ABSENT or new is _ABSENT:
                yield _change(here, old, new)
            else:
                yield from field_changes(old, new, here)
    elif not _same(base, target):
        yield _change(path, base, target)


def _steps_by_id(normal: Mapping[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    return {s["id"]: (i, s) for i, s in enumerate(normal.get("steps", ()))}


class _Steps:
    """The steps of a normal form by id, with their canonical JSON when known."""

    def __init__(self, normal: Mapping[str, Any], canonical: Sequence[bytes] | None) -> None:
        self.by_id = _steps_by_id(normal)
        steps = normal.get("steps", ())
        self._canonical = (
            canonical if canonical is not None and len(canonical) == len(steps) else None
        )

    def digest(self, found: tuple[int, dict[str, Any]]) -> str:
        if self._canonical is None:
            return digests.digest(found[1])
        return digests.sha256_hex(self._canonical[found[0]])

    def same(
        self, old: tuple[int, dict[str, Any]], new: tuple[int, dict[str, Any]], other: _Steps
    ) -> bool:
        if self._canonical is None or other._canonical is None:
            return _same(old[1], new[1])
        return self._canonical[old[0]] == other._canonical[new[0]]


def diff(
    base: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    base_digest: str | None = None,
    target_digest: str | None = None,
    base_steps: Sequence[bytes] | None = None,
    target_steps: Sequence[bytes] | None = None,
) -> diff_pb2.WorkflowDiff:
    """The difference from ``base`` to ``target`` (both valid normal forms).

    The digests are computed when not given (the caller usually has them), and
    so are the step digests unless ``base_steps`` and ``target_steps`` give
    the canonical JSON of each step (``digest.canonical_json_and_steps``). Two
    steps of normal forms that canonicalise are the same exactly when their
    canonical JSON is (normal forms have no integral floats, and RFC 8785
    refuses integers where floats could collide with them).
    """
    result = diff_pb2.WorkflowDiff(
        base_digest=base_digest or digests.digest(base),
        target_digest=target_digest or digests.digest(target),
    )
    olds, news = _Steps(base, base_steps), _Steps(target, target_steps)
    base_by_id, target_by_id = olds.by_id, news.by_id
    for step_id in sorted(base_by_id.keys() | target_by_id.keys()):
        old = base_by_id.get(step_id)
        new = target_by_id.get(step_id)
        if old is None and new is not None:
            result.step_changes.append(
                diff_pb2.StepChange(
                    step_id=step_id,
                    kind=diff_pb2.CHANGE_KIND_ADDED,
                    target_config_digest=news.digest(new),
                )
            )
        elif new is None and old is not None:
            result.step_changes.append(
                diff_pb2.StepChange(
                    step_id=step_id,
                    kind=diff_pb2.CHANGE_KIND_REMOVED,
                    base_config_digest=olds.digest(old),
                )
            )
        elif old is not None and new is not None and not olds.same(old, new, news):
            result.step_changes.append(
                diff_pb2.StepChange(
                    step_id=step_id,
                    kind=diff_pb2.CHANGE_KIND_CHANGED,
                    base_config_digest=olds.digest(old),
                    target_config_digest=news.digest(new),
                    field_changes=field_changes(old[1], new[1]),
                )
            )
    base_rest = {k: v for k, v in base.items() if k != "steps"}
    target_rest = {k: v for k, v in target.items() if k != "steps"}
    result.workflow_changes.extend(field_changes(base_rest, target_rest))

    if result.base_digest == result.target_digest or (
        not result.step_changes and not result.workflow_changes
    ):
        result.compatibility = diff_pb2.COMPATIBILITY_IDENTICAL
        result.required_bump = diff_pb2.SEMVER_BUMP_PATCH
        return result
    breaking = sorted(
        _breaking_changes(base, target, base_by_id, target_by_id),
        key=lambda b: (b.path, b.code, b.message),
    )
    if breaking:
        result.compatibility = diff_pb2.COMPATIBILITY_BREAKING
        result.breaking_changes.extend(breaking)
        result.required_bump = diff_pb2.SEMVER_BUMP_MAJOR
        return result
    result.compatibility = diff_pb2.COMPATIBILITY_COMPATIBLE
    cosmetic = not result.step_changes and all(
        change.path.split("/", 2)[1] in _COSMETIC for change in result.workflow_changes
    )
    result.required_bump = diff_pb2.SEMVER_BUMP_PATCH if cosmetic else diff_pb2.SEMVER_BUMP_MINOR
    return result


def _breaking(code: str, message: str, path: str) -> diff_pb2.BreakingChange:
    return diff_pb2.BreakingChange(code=code, message=message, path=path)


def _breaking_changes(
    base: Mapping[str, Any],
    target: Mapping[str, Any],
    base_steps: dict[str, tuple[int, dict[str, Any]]],
    target_steps: dict[str, tuple[int, dict[str, Any]]],
) -> Iterator[diff_pb2.BreakingChange]:
    removed = base_steps.keys() - target_steps.keys()
    if removed:
        feeding = _output_dependencies(base, base_steps)
        for step_id in sorted(removed & feeding):
            yield _breaking(
                "STEP_REMOVED",
                f"step {step_id!r} was removed, and the workflow outputs depend on it",
                pointer("steps", base_steps[step_id][0]),
            )
    yield from _narrowed_inputs(base.get("inputSchema"), target.get("inputSchema"), "/inputSchema")
    yield from _removed_outputs(base, target)
    yield from _removed_triggers(base, target)


def _output_dependencies(
    normal: Mapping[str, Any], steps: dict[str, tuple[int, dict[str, Any]]]
) -> set[str]:
    """Steps the workflow outputs read, and everything those need, transitively."""
    outputs = normal.get("outputs")
    expressions = [v for v in outputs.values() if isinstance(v, str)] if outputs else []
    stack = expression_reads(expressions, steps.keys())
    seen: set[str] = set()
    while stack:
        step_id = stack.pop()
        if step_id not in seen:
            seen.add(step_id)
            stack.extend(n for n in steps[step_id][1].get("needs", ()) if n in steps)
    return seen


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema admits by its ``type``; None when unrestricted."""
    kind = schema.get("type")
    names = {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else None
    if names is not None and "number" in names:
        names.add("integer")
    return names


def _admits_all(wider: set[str] | None, narrower: set[str] | None) -> bool:
    """Whether a schema typed ``wider`` admits every value one typed ``narrower`` does."""
    if wider is None:
        return True
    return narrower is not None and narrower <= wider


def _schema(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    return _schema(schema.get("properties"))


def _required(schema: Mapping[str, Any]) -> set[str]:
    required = schema.get("required")
    return {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()


def _narrowed_inputs(base: Any, target: Any, path: str) -> Iterator[diff_pb2.BreakingChange]:
    old, new = _schema(base), _schema(target)
    code = "INPUT_SCHEMA_NARROWED"
    old_types = _types(old)
    if path == "/inputSchema" and old_types is None:
        old_types = {"object"}  # execution inputs are always an object
    if not _admits_all(_types(new), old_types):
        yield _breaking(code, f"{path or '/'}: type no longer admits {old.get('type')!r}", path)
    if "enum" in new and (
        "enum" not in old
        or not isinstance(old["enum"], list)
        or not isinstance(new["enum"], list)
        or any(not any(_same(v, w) for w in new["enum"]) for v in old["enum"])
    ):
        yield _breaking(code, f"{path or '/'}: enum restricts the accepted values", path + "/enum")
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        yield _breaking(code, f"{path or '/'}: additional properties are no longer accepted", path)
    for name in sorted(_required(new) - _required(old)):
        yield _breaking(code, f"input {name!r} is now required", path + "/required")
    old_props, new_props = _properties(old), _properties(new)
    for name in sorted(old_props):
        here = f"{path}/properties/{escape_pointer_token(name)}"
        if name not in new_props:
            yield _breaking(code, f"input property {name!r} was removed", here)
        else:
            yield from _narrowed_inputs(old_props[name], new_props[name], here)


def _removed_outputs(
    base: Mapping[str, Any], target: Mapping[str, Any]
) -> Iterator[diff_pb2.BreakingChange]:
    old_outputs, new_outputs = _schema(base.get("outputs")), _schema(target.get("outputs"))
    for key in sorted(old_outputs.keys() - new_outputs.keys()):
        yield _breaking("OUTPUT_REMOVED", f"output {key!r} was removed", pointer("outputs", key))
    yield from _widened_outputs(
        base.get("outputSchema"), target.get("outputSchema"), "/outputSchema"
    )


def _widened_outputs(base: Any, target: Any, path: str) -> Iterator[diff_pb2.BreakingChange]:
    old, new = _schema(base), _schema(target)
    code = "OUTPUT_REMOVED"
    if not _admits_all(_types(old), _types(new)):
        yield _breaking(
            code, f"{path}: type changed from {old.get('type')!r} to {new.get('type')!r}", path
        )
    for name in sorted(_required(old) - _required(new)):
        yield _breaking(code, f"output {name!r} is no longer guaranteed", path + "/required")
    old_props, new_props = _properties(old), _properties(new)
    for name in sorted(old_props):
        here = f"{path}/properties/{escape_pointer_token(name)}"
        if name not in new_props:
            yield _breaking(code, f"output property {name!r} was removed", here)
        else:
            yield from _widened_outputs(old_props[name], new_props[name], here)


def _trigger_key(trigger: Any) -> str:
    if not isinstance(trigger, Mapping):
        return _fingerprint(trigger)
    kind = trigger.get("type")
    fields = {"event": ("event",), "webhook": ("path",), "schedule": ("cron", "timezone")}.get(
        str(kind)
    )
    if fields is None:
        return _fingerprint(trigger)
    return _fingerprint([kind, *(trigger.get(f, "") for f in fields)])


def _removed_triggers(
    base: Mapping[str, Any], target: Mapping[str, Any]
) -> Iterator[diff_pb2.BreakingChange]:
    old, new = base.get("triggers") or [], target.get("triggers") or []
    remaining = {_trigger_key(t) for t in new}
    for i, trigger in enumerate(old):
        if _trigger_key(trigger) not in remaining:
            what = trigger.get("type", "trigger") if isinstance(trigger, Mapping) else "trigger"
            yield _breaking("TRIGGER_REMOVED", f"{what} trigger #{i} was removed", f"/triggers/{i}")
