"""Normal-form documents as ``maestro.common.v1`` messages.

The normal form already uses proto-JSON spellings (camelCase keys, durations in
seconds), so the mapping is ``json_format.ParseDict`` (unknown keys ignored)
plus the enum prefixes: the DSL writes ``type: task``, the proto enum value is
``STEP_TYPE_TASK``.

``ParseDict`` costs about 50 µs per step, so messages are built by
``_fill``, which does what ``ParseDict`` does, step for step, for plain values:
strings, integers in range, finite numbers, booleans, known enum names,
duration strings, nested objects, lists of strings or objects, string maps and
``Struct``s of JSON values. Anything else (another type, a null where
``ParseDict`` would clear a field, a surrogate, an extension key, a field given
under both its names, an unknown enum name, deep nesting) makes it give up and
``ParseDict`` decides, so results and errors are always ``ParseDict``'s; tests
check the two agree.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from maestro.common.v1 import workflow_pb2

_M = TypeVar("_M", bound=Message)
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHOLE_SECONDS = re.compile(r"(?:0|[1-9][0-9]{0,10})s")
"""Whole seconds below 10**11, within ``Duration``'s range."""
_MAX_DEPTH = 50
"""Nesting beyond this is left to ``ParseDict`` (which stops at 100)."""
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
}
_Setter = Callable[[Message, Any, int], None]


class _GiveUpError(Exception):
    """``_fill`` leaves this value to ``ParseDict``."""


def _step_json(step: Any) -> Any:
    if not isinstance(step, dict):
        return step
    out = {**step, "type": f"STEP_TYPE_{str(step.get('type', '')).upper()}"}
    loop = step.get("loop")
    if isinstance(loop, dict) and isinstance(loop.get("body"), dict):
        out["loop"] = {**loop, "body": _step_json(loop["body"])}
    return out


def _trigger_json(trigger: Any) -> Any:
    if not isinstance(trigger, dict):
        return trigger
    return {**trigger, "type": f"TRIGGER_TYPE_{str(trigger.get('type', '')).upper()}"}


def _parse(value: Any, message: _M) -> _M:
    """``ParseDict(value, message, ignore_unknown_fields=True)``, faster."""
    try:
        _fill(message, value, 1, False)
    except Exception:  # any doubt: ParseDict decides, errors included
        message.Clear()
        return json_format.ParseDict(value, message, ignore_unknown_fields=True)
    return message


def step_message(step: dict[str, Any]) -> workflow_pb2.Step:
    """The ``Step`` of a normal-form step; unknown keys are ignored.

    Raises:
        google.protobuf.json_format.ParseError: a value has the wrong shape.
    """
    return fill_step(workflow_pb2.Step(), step)


def fill_step(message: workflow_pb2.Step, step: dict[str, Any]) -> workflow_pb2.Step:
    """``step_message`` into ``message`` (an empty field of another message,
    which this sets, even for an empty step).

    Raises:
        google.protobuf.json_format.ParseError: a value has the wrong shape.
    """
    message.SetInParent()
    try:  # `_fill` reads the DSL's step types, as `_step_json` does
        _fill(message, step, 1, True)
    except Exception:  # any doubt: ParseDict decides, errors included
        message.Clear()
        json_format.ParseDict(_step_json(step), message, ignore_unknown_fields=True)
    return message


def definition_message(normal: dict[str, Any]) -> workflow_pb2.WorkflowDefinition:
    """The ``WorkflowDefinition`` of a normal-form document; unknown keys are ignored.

    Raises:
        google.protobuf.json_format.ParseError: a value has the wrong shape.
    """
    doc = dict(normal)
    if isinstance(doc.get("steps"), list):
        doc["steps"] = [_step_json(s) for s in doc["steps"]]
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [_trigger_json(t) for t in doc["triggers"]]
    return _parse(doc, workflow_pb2.WorkflowDefinition())


# The converter ------------------------------------------------------------------


def _fill(message: Message, value: Any, depth: int, dsl: bool) -> None:
    """``ParseDict``'s ``_ConvertFieldValuePair`` for plain values; with
    ``dsl``, steps (and their loop bodies) have DSL types, which ``_step_json``
    would turn into enum names: ``task`` is ``STEP_TYPE_TASK``."""
    if type(value) is not dict or depth > _MAX_DEPTH:
        raise _GiveUpError
    setters = _setters(message.DESCRIPTOR, dsl)
    for name, item in value.items():
        setter = setters.get(name)
        if setter is None:
            if type(name) is not str or name.startswith("["):
                raise _GiveUpError  # not a field name, or an extension
            continue  # an unknown key: ignored
        if item is None:
            raise _GiveUpError  # a null clears the field
        setter(message, item, depth)


@functools.cache
def _setters(descriptor: Descriptor, dsl: bool) -> dict[str, _Setter]:
    """The setter per JSON name. A proto name that is not also the JSON name
    (``task_queue``) gives up: with both spellings present, ``ParseDict``
    would set the field twice; keys are unique, so with JSON names only, each
    field is set at most once."""
    setters: dict[str, _Setter] = {field.name: _give_up for field in descriptor.fields}
    for field in descriptor.fields:
        setters[field.json_name] = _setter(field, dsl)
    if dsl and descriptor.full_name == workflow_pb2.Step.DESCRIPTOR.full_name:
        setters["type"] = _set_dsl_step_type
    return setters


def _set_dsl_step_type(message: Message, value: Any, _: int) -> None:
    if type(value) is not str:
        raise _GiveUpError
    step = cast(workflow_pb2.Step, message)
    step.type = _enum(_STEP_TYPE_NUMBERS, f"STEP_TYPE_{value.upper()}")  # type: ignore[assignment]


_STEP_TYPE_NUMBERS = {value.name: value.number for value in workflow_pb2.StepType.DESCRIPTOR.values}


def _setter(field: FieldDescriptor, dsl: bool) -> _Setter:  # noqa: PLR0911 - one return per kind
    name = field.name
    if field.containing_oneof is not None or field.is_extension:
        return _give_up
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        key_type = message_type.fields_by_name["key"].cpp_type
        value_type = message_type.fields_by_name["value"].cpp_type
        if key_type == value_type == FieldDescriptor.CPPTYPE_STRING:
            return functools.partial(_set_string_map, name)
        return _give_up
    if field.is_repeated:
        if message_type is not None:
            return functools.partial(_set_message_list, name, dsl)
        convert = _scalar(field)
        return functools.partial(_set_scalar_list, name, convert)
    if message_type is not None:
        full_name = message_type.full_name
        if full_name == "google.protobuf.Struct":
            return functools.partial(_set_struct, name)
        if full_name == "google.protobuf.Duration":
            return functools.partial(_set_duration, name)
        if full_name.startswith("google.protobuf."):
            return _give_up
        return functools.partial(_set_message, name, dsl)
    convert = _scalar(field)
    if convert is _string:
        return _string_setter(name)  # most fields: one call per value, not three
    return functools.partial(_set_scalar, name, convert)


def _string_setter(name: str) -> _Setter:
    """``_set_scalar`` with ``_string``, inline."""

    def set_string(message: Message, value: Any, _: int) -> None:
        if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
            raise _GiveUpError
        setattr(message, name, value)

    return set_string


def _give_up(message: Message, value: Any, depth: int) -> None:
    raise _GiveUpError


def _scalar(field: FieldDescriptor) -> Callable[[Any], Any]:
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_STRING and field.type == FieldDescriptor.TYPE_STRING:
        return _string
    if cpp_type in _INT_RANGES:
        low, high = _INT_RANGES[cpp_type]
        return functools.partial(_integer, low, high)
    if cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double
    if cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return _boolean
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM and field.enum_type is not None:
        numbers = {value.name: value.number for value in field.enum_type.values}
        return functools.partial(_enum, numbers)
    return _never


def _never(value: Any) -> Any:
    raise _GiveUpError


def _string(value: Any) -> str:
    if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
        raise _GiveUpError
    return value


def _integer(low: int, high: int, value: Any) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _GiveUpError
    return value


def _double(value: Any) -> float:
    if type(value) is int:
        return float(value)
    if type(value) is not float or not math.isfinite(value):
        raise _GiveUpError
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _GiveUpError
    return value


def _enum(numbers: dict[str, int], value: Any) -> int:
    number = numbers.get(value) if type(value) is str else None
    if number is None:
        raise _GiveUpError
    return number


def _set_scalar(
    name: str, convert: Callable[[Any], Any], message: Message, value: Any, _: int
) -> None:
    setattr(message, name, convert(value))


def _set_scalar_list(
    name: str, convert: Callable[[Any], Any], message: Message, value: Any, _: int
) -> None:
    if type(value) is not list:
        raise _GiveUpError
    message.ClearField(name)
    getattr(message, name).extend([convert(item) for item in value])


def _set_message(name: str, dsl: bool, message: Message, value: Any, depth: int) -> None:
    sub = getattr(message, name)
    sub.SetInParent()
    _fill(sub, value, depth + 1, dsl)


def _set_message_list(name: str, dsl: bool, message: Message, value: Any, depth: int) -> None:
    if type(value) is not list:
        raise _GiveUpError
    message.ClearField(name)
    repeated = getattr(message, name)
    for item in value:
        _fill(repeated.add(), item, depth + 1, dsl)


def _set_string_map(name: str, message: Message, value: Any, _: int) -> None:
    if type(value) is not dict:
        raise _GiveUpError
    message.ClearField(name)
    target = getattr(message, name)
    for key, item in value.items():
        target[_string(key)] = _string(item)


def _set_duration(name: str, message: Message, value: Any, _: int) -> None:
    if type(value) is not str:
        raise _GiveUpError
    sub = getattr(message, name)
    sub.SetInParent()
    if _WHOLE_SECONDS.fullmatch(value):  # what FromJsonString makes of `30s`
        sub.seconds = int(value[:-1])
    else:
        sub.FromJsonString(value)


def _set_struct(name: str, message: Message, value: Any, depth: int) -> None:
    sub = getattr(message, name)
    sub.SetInParent()
    _fill_struct(sub, value, depth + 1)


def _fill_struct(struct: Any, value: Any, depth: int) -> None:
    if type(value) is not dict or depth > _MAX_DEPTH:
        raise _GiveUpError
    struct.Clear()
    fields = struct.fields
    for key, item in value.items():
        if type(key) is not str or (not key.isascii() and _SURROGATE.search(key)):
            raise _GiveUpError  # `_string`, inline: the hottest check
        kind = type(item)
        if kind is str:  # most values of a schema: set here, not in `_fill_value`
            if not item.isascii() and _SURROGATE.search(item):
                raise _GiveUpError
            fields[key].string_value = item
        else:
            _fill_value(fields[key], item, depth + 1)


def _fill_value(target: Any, value: Any, depth: int) -> None:
    kind = type(value)
    if kind is dict:
        _fill_struct(target.struct_value, value, depth + 1)
    elif kind is list:
        if depth + 1 > _MAX_DEPTH:
            raise _GiveUpError
        values = target.list_value
        values.ClearField("values")
        for item in value:
            _fill_value(values.values.add(), item, depth + 2)
    elif value is None:
        target.null_value = 0
    elif kind is bool:
        target.bool_value = value
    elif kind is str:
        target.string_value = _string(value)
    elif kind is int or kind is float:
        target.number_value = value
    else:
        raise _GiveUpError
