"""Executions and events as JSON (maestro.runtime.cloudevents): the CloudEvents
types agree with the contract, and the attributes follow CloudEvents 1.0."""

from __future__ import annotations

import re

from google.protobuf import struct_pb2, timestamp_pb2

from maestro.runtime.cloudevents import (
    EVENT_TYPES,
    TERMINAL_EVENT_TYPES,
    cloudevent,
    duration_between,
    event_type,
    execution_json,
    execution_name,
    human_task_name,
    plain_numbers,
)
from maestro.scheduler.v1 import execution_pb2 as ex
from tests.conftest import REPO

_TYPE = re.compile(r"`(dev\.maestro\.[a-z_.]+)`")
_VALUE = re.compile(r"^\s*(EVENT_TYPE_\w+)\s*=\s*\d+;")


def documented_event_types() -> dict[int, str]:
    """EventType value -> the CloudEvents type in the comment above it."""
    text = (REPO / "protos/maestro/scheduler/v1/execution.proto").read_text()
    documented: dict[int, str] = {}
    comment: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("//"):
            comment.append(line)
            continue
        value = _VALUE.match(line)
        if value and (kind := _TYPE.search(" ".join(comment))):
            documented[ex.EventType.Value(value[1])] = kind[1]
        comment = []
    return documented


def test_event_types_are_the_ones_the_proto_documents() -> None:
    documented = documented_event_types()
    assert len(documented) == len(ex.EventType.keys()) - 1  # all but UNSPECIFIED
    assert dict(EVENT_TYPES) == documented
    # CloudEvents attribute names: lowercase letters and digits only.
    for attribute in cloudevent(ex.ExecutionEvent(sequence=1, attempt=1)):
        assert re.fullmatch(r"[a-z0-9]+", attribute), attribute


def test_unknown_event_types_still_get_a_type() -> None:
    assert event_type(999) == "dev.maestro.unknown_999"
    assert all(EVENT_TYPES[t].startswith("dev.maestro.execution.") for t in TERMINAL_EVENT_TYPES)


def test_cloudevent_leaves_out_what_is_not_set() -> None:
    event = cloudevent(
        ex.ExecutionEvent(
            sequence=12, type=ex.EVENT_TYPE_EXECUTION_STARTED, execution="executions/E1"
        )
    )
    assert event == {
        "specversion": "1.0",
        "id": "12",
        "source": "//scheduler.maestro.dev/executions/E1",
        "type": "dev.maestro.execution.started",
        "datacontenttype": "application/json",
        "executionid": "E1",
        "sequence": "0000000000000000012",
        "data": {},
    }
    # The padded sequence orders as the numbers do.
    assert cloudevent(ex.ExecutionEvent(sequence=9))["sequence"] < event["sequence"]


def test_struct_numbers_print_as_integers_when_integral() -> None:
    data = struct_pb2.Struct()
    data.update({"n": 3, "x": 0.5, "nested": [{"k": 2}], "big": 2.0**60})
    event = cloudevent(ex.ExecutionEvent(sequence=1, data=data))
    assert event["data"] == {"n": 3, "x": 0.5, "nested": [{"k": 2}], "big": 2.0**60}
    assert type(event["data"]["n"]) is int
    assert plain_numbers([1.0, True, "1.0"]) == [1, True, "1.0"]


def test_durations_in_proto_json() -> None:
    start = timestamp_pb2.Timestamp(seconds=10, nanos=900_000_000)
    assert duration_between(start, timestamp_pb2.Timestamp(seconds=12, nanos=150_000_000)) == (
        "1.250s"
    )
    assert duration_between(start, start) == "0s"
    running = ex.Execution(name="executions/E1", start_time=start, steps=[ex.StepRun()])
    body = execution_json(running)
    assert body["executionId"] == "E1"
    assert "duration" not in body
    assert "duration" not in body["steps"][0]


def test_names_from_ids_or_names() -> None:
    assert execution_name("E1") == execution_name(" executions/E1 ") == "executions/E1"
    assert human_task_name("T1") == human_task_name("humanTasks/T1") == "humanTasks/T1"
