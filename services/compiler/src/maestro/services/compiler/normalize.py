"""The normal form of a workflow definition (docs/dsl.md, "Normal form and digest").

The normal form writes every value one way, so that two documents that mean the
same workflow are equal as JSON values and therefore have the same digest:

* durations, in any accepted spelling (``1h30m``, ``500ms``, ``2m``, ``1.5s``),
  become proto-JSON seconds with the fewest fractional digits (``5400s``,
  ``0.5s``);
* ``needs``, ``tags`` and a condition's ``thenSteps``/``elseSteps`` (sets of
  names) are sorted and de-duplicated;
* step and trigger ``type`` are lowercase;
* defaults are filled: ``taskQueue: default`` on task steps, every ``retry``
  field of a present ``retry``, ``cache.enabled: false``, loop ``parallelism: 10``;
* optional sections that are absent, ``null`` or empty (``""``, ``[]``, ``{}``)
  are omitted, as in proto3 where empty and unset are the same; a loop body's
  ``id`` and ``needs``, which are ignored, are dropped;
* integral numbers are integers (``2.0`` is ``2``), as RFC 8785 prints them.

Free-form values (``config``, JSON Schemas, ``labels``) are kept as written apart
from the number rule. Unknown keys are kept, so nothing is lost from documents
that do not validate; ``normalize`` accepts any JSON value and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_TASK_QUEUE = "default"
DEFAULT_LOOP_PARALLELISM = 10
RETRY_DEFAULTS: dict[str, Any] = {
    "maxAttempts": 1,
    "initialBackoff": "1s",
    "multiplier": 2,
    "maxBackoff": "60s",
    "jitter": 0,
}

NANOS_PER_SECOND = 1_000_000_000
_UNIT_NANOS = {
    "ns": Decimal(1),
    "us": Decimal(1_000),
    "µs": Decimal(1_000),
    "ms": Decimal(1_000_000),
    "s": Decimal(NANOS_PER_SECOND),
    "m": Decimal(60 * NANOS_PER_SECOND),
    "h": Decimal(3600 * NANOS_PER_SECOND),
}
_COMPONENT = r"(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)"
DURATION_PATTERN = f"^(?:{_COMPONENT})+$"
"""Every accepted duration spelling: one or more ``<number><unit>`` components,
units ``h``, ``m``, ``s``, ``ms``, ``us`` (``µs``) and ``ns``, as in Go."""
_DURATION = re.compile(DURATION_PATTERN)
_WHOLE_SECONDS = re.compile(r"(?:0|[1-9][0-9]*)s")
_WHOLE_UNITS = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h)")
_INT_UNIT_NANOS = {unit: int(nanos) for unit, nanos in _UNIT_NANOS.items()}
_COMPONENTS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_MAX_SAFE_FLOAT_INT = 2.0**53

_WORKFLOW_OPTIONAL = frozenset(
    (
        "description",
        "tags",
        "triggers",
        "inputSchema",
        "outputSchema",
        "outputs",
        "labels",
    )
)
_STEP_OPTIONAL = frozenset(
    (
        "needs",
        "handler",
        "config",
        "input",
        "timeout",
        "retry",
        "compensate",
        "cache",
        "resources",
        "labels",
        "taskQueue",
        "condition",
        "loop",
        "human",
        "subworkflow",
        "delay",
        "outputSchema",
    )
)
_TRIGGER_OPTIONAL = frozenset(("event", "path", "cron", "timezone", "input"))


def duration_nanos(text: str) -> int:
    """Nanoseconds of a duration such as ``1h30m``, ``500ms`` or ``1.5s``
    (fractions below a nanosecond are truncated).

    Raises:
        ValueError: ``text`` is not a duration.
    """
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r}")
    whole = _WHOLE_UNITS.fullmatch(text)
    if whole:  # one component, a whole number of units: `30s`, `500ms`
        return int(whole.group(1)) * _INT_UNIT_NANOS[whole.group(2)]
    total = Decimal(0)
    for number, unit in _COMPONENTS.findall(text):
        try:
            total += Decimal(number) * _UNIT_NANOS[unit]
        except InvalidOperation as exc:  # pragma: no cover - excluded by the pattern
            raise ValueError(f"not a duration: {text!r}") from exc
    return int(total)


def duration_seconds(text: str) -> float:
    """Seconds of a duration such as ``1h30m``, ``500ms`` or ``1.5s``.

    Raises:
        ValueError: ``text`` is not a duration.
    """
    return duration_nanos(text) / NANOS_PER_SECOND


def format_duration(nanos: int) -> str:
    """The proto-JSON spelling of a duration, with the fewest fractional digits
    (``5400s``, ``0.5s``, ``0.000000001s``)."""
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    if not fraction:
        return f"{seconds}s"
    return f"{seconds}.{fraction:09d}".rstrip("0") + "s"


def normalize_duration(value: Any) -> Any:
    """``value`` in proto-JSON seconds when it is a duration; otherwise unchanged."""
    if type(value) is str and _WHOLE_SECONDS.fullmatch(value):
        return value  # already the proto-JSON spelling
    try:
        return format_duration(duration_nanos(value))
    except ValueError:
        return value


def normalize(document: Any, known_steps: Sequence[Any] | None = None) -> Any:
    """The normal form of a parsed definition (a new value; the input is
    untouched). ``known_steps``, when given, holds the normal form of each of
    its steps where the caller has it (None elsewhere): a step's normal form is
    a function of the step alone."""
    raw_steps = document.get("steps") if isinstance(document, dict) else None
    if known_steps is None or not isinstance(raw_steps, list) or len(known_steps) != len(raw_steps):
        doc = plain_numbers(document)
        if isinstance(doc, dict) and isinstance(doc.get("steps"), list):
            doc["steps"] = [_step(s) for s in doc["steps"]]
    else:  # as above, but copying only the steps not known
        doc = {k: v if k == "steps" else plain_numbers(v) for k, v in document.items()}
        doc["steps"] = [
            _step(plain_numbers(raw)) if known is None else known
            for raw, known in zip(raw_steps, known_steps, strict=True)
        ]
    if not isinstance(doc, dict):
        return doc
    if "tags" in doc:
        doc["tags"] = _name_set(doc["tags"])
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [_trigger(t) for t in doc["triggers"]]
    return _without_empty(doc, _WORKFLOW_OPTIONAL)


_ATOMIC = frozenset({str, int, bool, type(None)})


def plain_numbers(value: Any) -> Any:
    """A deep copy with integral floats as ints (what RFC 8785 prints anyway)."""
    kind = type(value)
    if kind is dict:  # the common, exact types first; subclasses below
        return {k: v if type(v) in _ATOMIC else plain_numbers(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMIC else plain_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_SAFE_FLOAT_INT:
        return int(value)
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _without_empty(mapping: dict[str, Any], optional: Collection[str]) -> dict[str, Any]:
    # `_is_empty`, inline and asking `not value` first: most values are not empty
    empty = [
        key
        for key, value in mapping.items()
        if not value and key in optional and (value is None or isinstance(value, str | list | dict))
    ]
    for key in empty:
        del mapping[key]
    return mapping


def _name_set(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _durations(mapping: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key in mapping:
            mapping[key] = normalize_duration(mapping[key])


def _trigger(trigger: Any) -> Any:
    if not isinstance(trigger, dict):
        return trigger
    if "type" in trigger:
        trigger["type"] = _lower(trigger["type"])
    return _without_empty(trigger, _TRIGGER_OPTIONAL)


def _retry(retry: dict[str, Any]) -> dict[str, Any]:
    filled = {**RETRY_DEFAULTS, **_without_empty(retry, RETRY_DEFAULTS)}
    _durations(filled, "initialBackoff", "maxBackoff")
    return _without_empty(filled, ("nonRetryableErrors",))


def _cache(cache: dict[str, Any]) -> dict[str, Any]:
    if cache.get("enabled") is None:
        cache["enabled"] = False
    _durations(cache, "ttl")
    return _without_empty(cache, ("ttl",))


def _condition(condition: dict[str, Any]) -> dict[str, Any]:
    for key in ("thenSteps", "elseSteps"):
        if key in condition:
            condition[key] = _name_set(condition[key])
    return _without_empty(condition, ("thenSteps", "elseSteps"))


def _loop(loop: dict[str, Any]) -> dict[str, Any]:
    if not loop.get("parallelism"):
        loop["parallelism"] = DEFAULT_LOOP_PARALLELISM
    if isinstance(loop.get("body"), dict):
        body = _step(loop["body"])
        body.pop("id", None)  # ignored in a body
        body.pop("needs", None)
        loop["body"] = body
    return loop


def _human(human: dict[str, Any]) -> dict[str, Any]:
    _durations(human, "due")
    return _without_empty(human, ("assignees", "formSchema", "due", "instructions"))


def _delay(delay: dict[str, Any]) -> dict[str, Any]:
    _durations(delay, "duration")
    return _without_empty(delay, ("duration", "until"))


def _subworkflow(subworkflow: dict[str, Any]) -> dict[str, Any]:
    return _without_empty(subworkflow, ("version",))


_SECTIONS = {
    "retry": _retry,
    "cache": _cache,
    "condition": _condition,
    "loop": _loop,
    "human": _human,
    "delay": _delay,
    "subworkflow": _subworkflow,
}


def _step(step: Any) -> Any:
    if not isinstance(step, dict):
        return step
    if "type" in step:
        step["type"] = _lower(step["type"])
    if "needs" in step:
        step["needs"] = _name_set(step["needs"])
    _durations(step, "timeout")
    for key in [k for k in step if k in _SECTIONS]:  # each section on its own value
        if isinstance(step[key], dict):
            step[key] = _SECTIONS[key](step[key])
    if step.get("type") == "task" and _is_empty(step.get("taskQueue")):
        step["taskQueue"] = DEFAULT_TASK_QUEUE
    return _without_empty(step, _STEP_OPTIONAL)
