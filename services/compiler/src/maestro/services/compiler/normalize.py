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
_COMPONENTS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_MAX_SAFE_FLOAT_INT = 2.0**53

_WORKFLOW_OPTIONAL = (
    "description",
    "tags",
    "triggers",
    "inputSchema",
    "outputSchema",
    "outputs",
    "labels",
)
_STEP_OPTIONAL = (
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
_TRIGGER_OPTIONAL = ("event", "path", "cron", "timezone", "input")


def duration_nanos(text: str) -> int:
    """Nanoseconds of a duration such as ``1h30m``, ``500ms`` or ``1.5s``
    (fractions below a nanosecond are truncated).

    Raises:
        ValueError: ``text`` is not a duration.
    """
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r}")
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
    try:
        return format_duration(duration_nanos(value))
    except ValueError:
        return value


def normalize(document: Any) -> Any:
    """The normal form of a parsed definition (a new value; the input is untouched)."""
    doc = plain_numbers(document)
    if not isinstance(doc, dict):
        return doc
    if "tags" in doc:
        doc["tags"] = _name_set(doc["tags"])
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [_trigger(t) for t in doc["triggers"]]
    if isinstance(doc.get("steps"), list):
        doc["steps"] = [_step(s) for s in doc["steps"]]
    return _without_empty(doc, _WORKFLOW_OPTIONAL)


def plain_numbers(value: Any) -> Any:
    """A deep copy with integral floats as ints (what RFC 8785 prints anyway)."""
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_SAFE_FLOAT_INT:
        return int(value)
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _without_empty(mapping: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    for key in optional:
        if key in mapping and _is_empty(mapping[key]):
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
    filled = {**RETRY_DEFAULTS, **_without_empty(retry, tuple(RETRY_DEFAULTS))}
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
    for key, section in _SECTIONS.items():
        if isinstance(step.get(key), dict):
            step[key] = section(step[key])
    if step.get("type") == "task" and _is_empty(step.get("taskQueue")):
        step["taskQueue"] = DEFAULT_TASK_QUEUE
    return _without_empty(step, _STEP_OPTIONAL)
