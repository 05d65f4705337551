"""End to end on both backends: the scheduler interprets the plan and a real
executor runs the steps."""

from __future__ import annotations

import pytest

from maestro.scheduler.v1 import execution_pb2
from tests.integration.execution.support import SAMPLES, Mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
X = execution_pb2.ExecutionState
S = execution_pb2.StepState
E = execution_pb2.EventType


async def test_hello_runs_to_its_result(mesh: Mesh) -> None:
    await mesh.publish((SAMPLES / "hello.yaml").read_text(), "hello")
    execution = await mesh.run("hello", {"who": "world"})
    assert execution.state == X.EXECUTION_STATE_SUCCEEDED, execution
    steps = {s.step_id: s for s in execution.steps}
    assert [s.step_id for s in execution.steps] == ["greet", "pause", "reply"]
    assert steps["reply"].output["message"] == "hello, world"
    assert all(s.state == S.STEP_STATE_SUCCEEDED and len(s.attempts) == 1 for s in steps.values())
    events = await mesh.events(execution.name)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == E.EVENT_TYPE_EXECUTION_STARTED
    assert events[-1].type == E.EVENT_TYPE_EXECUTION_SUCCEEDED
