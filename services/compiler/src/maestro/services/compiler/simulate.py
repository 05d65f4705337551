"""Dry runs of a compiled plan with mocked step results.

The walk follows the plan's topological order, as the scheduler would:

* a step runs when every step it ``needs`` succeeded and no condition routed
  away from it; otherwise it is SKIPPED (zero duration at the time its last
  need ended), so a failure or an untaken branch skips everything downstream,
  and a step that needs both branches of one condition never runs (what the
  validator reports as UNREACHABLE_STEP);
* it starts when the last of its ``needs`` ends;
* conditions are evaluated with CEL over the inputs and the outputs produced so
  far, and take zero time;
* an attempt takes the mock's ``duration``, else the per-type estimate:
  ``default_task_duration`` for tasks, ``DEFAULT_HUMAN_DURATION`` for human
  steps, ``DEFAULT_SUBWORKFLOW_DURATION`` for subworkflows, the ``duration``
  of a delay (zero when it waits ``until`` a time). An attempt longer than the
  step's ``timeout`` fails at the timeout;
* a mock with ``fail`` fails every attempt; ``failures_before_success`` fails
  that many first. Failed attempts are retried up to ``retry.maxAttempts``
  (``MAX_SIMULATED_ATTEMPTS`` when unbounded) after the backoff
  ``min(initialBackoff * multiplier**k, maxBackoff)`` (jitter averages out);
* a loop runs ``len(items)`` iterations of its body, ``parallelism`` at a time,
  taking ``ceil(n / parallelism)`` times one iteration; a mock of the loop step
  applies to every iteration.

Cost is per attempt, in US cents: the request's ``cost_table`` entry for the
step's handler, else for its type, else ``COST_CENTS``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2

from maestro.common.v1 import plan_pb2
from maestro.compiler.v1 import compiler_service_pb2, simulation_pb2
from maestro.services.compiler import cel
from maestro.services.compiler.normalize import (
    NANOS_PER_SECOND,
    RETRY_DEFAULTS,
    duration_nanos,
    plain_numbers,
)
from maestro.services.compiler.plan import loop_parallelism, resolve_defaults

DEFAULT_TASK_DURATION = 100_000_000
"""Nanoseconds of an unmocked task attempt when the request sets none."""
DEFAULT_HUMAN_DURATION = 3600 * NANOS_PER_SECOND
"""Nanoseconds until an unmocked human step is completed."""
DEFAULT_SUBWORKFLOW_DURATION = NANOS_PER_SECOND
"""Nanoseconds of an unmocked child execution."""
MAX_SIMULATED_ATTEMPTS = 100
"""Attempts simulated for a step with unbounded retries (``maxAttempts: 0``)."""
COST_CENTS: Mapping[str, float] = {
    "task": 0.01,
    "human": 50.0,
    "subworkflow": 0.05,
    "loop": 0.0,
    "condition": 0.0,
    "delay": 0.0,
}
"""Built-in cost of one attempt by step type, in US cents."""

SUCCEEDED = simulation_pb2.SIMULATED_STEP_STATUS_SUCCEEDED
FAILED = simulation_pb2.SIMULATED_STEP_STATUS_FAILED
SKIPPED = simulation_pb2.SIMULATED_STEP_STATUS_SKIPPED


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass
class _Outcome:
    status: simulation_pb2.SimulatedStepStatus
    start: int
    duration: int = 0
    attempts: int = 0
    iterations: int = 0
    cost: float = 0.0
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True)
class _Attempts:
    succeeded: bool
    count: int
    duration: int


def _nanos(duration: duration_pb2.Duration) -> int:
    return duration.seconds * NANOS_PER_SECOND + duration.nanos


def _duration(nanos: int) -> duration_pb2.Duration:
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    return duration_pb2.Duration(seconds=seconds, nanos=fraction)


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _json_value(value: Any) -> Any:
    """A CEL result as a value a Struct can hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class _Simulation:
    def __init__(
        self,
        inputs: Mapping[str, Any],
        mocks: Mapping[str, simulation_pb2.StepMock],
        cost_table: Mapping[str, float],
        task_duration: int,
    ) -> None:
        self.mocks = mocks
        self.cost_table = cost_table
        self.task_duration = task_duration
        self.data: dict[str, Any] = {"inputs": plain_numbers(dict(inputs)), "steps": {}}

    def unit_cost(self, step: Mapping[str, Any]) -> float:
        handler, kind = step.get("handler"), str(step.get("type", ""))
        if isinstance(handler, str) and handler in self.cost_table:
            return self.cost_table[handler]
        if kind in self.cost_table:
            return self.cost_table[kind]
        return COST_CENTS.get(kind, 0.0)

    def attempt_duration(
        self, step: Mapping[str, Any], mock: simulation_pb2.StepMock | None
    ) -> int:
        if mock is not None and mock.HasField("duration"):
            return _nanos(mock.duration)
        kind = step.get("type")
        if kind == "human":
            return DEFAULT_HUMAN_DURATION
        if kind == "subworkflow":
            return DEFAULT_SUBWORKFLOW_DURATION
        if kind == "delay":
            return _nanos_of(_mapping(step.get("delay")).get("duration"))
        if kind == "condition":
            return 0
        return self.task_duration

    def attempts(self, step: Mapping[str, Any], mock: simulation_pb2.StepMock | None) -> _Attempts:
        retry = _mapping(step.get("retry")) or RETRY_DEFAULTS
        max_attempts = retry.get("maxAttempts", 1)
        if not isinstance(max_attempts, int) or max_attempts <= 0:
            max_attempts = MAX_SIMULATED_ATTEMPTS
        max_attempts = min(max_attempts, MAX_SIMULATED_ATTEMPTS)
        each = self.attempt_duration(step, mock)
        timeout = _nanos_of(step.get("timeout"), default=-1)
        timed_out = 0 <= timeout < each
        if timed_out:
            each = timeout
        if timed_out or (mock is not None and mock.fail):
            failures = max_attempts
        else:
            failures = mock.failures_before_success if mock is not None else 0
        succeeded = failures < max_attempts
        count = failures + 1 if succeeded else max_attempts
        initial = _nanos_of(retry.get("initialBackoff", RETRY_DEFAULTS["initialBackoff"]))
        ceiling = _nanos_of(retry.get("maxBackoff", RETRY_DEFAULTS["maxBackoff"]))
        multiplier = retry.get("multiplier", RETRY_DEFAULTS["multiplier"])
        multiplier = float(multiplier) if isinstance(multiplier, int | float) else 2.0
        backoff, delay = 0, float(initial)
        for _ in range(count - 1):
            backoff += min(round(delay), ceiling)
            delay = min(delay * max(multiplier, 1.0), float(ceiling))
        return _Attempts(succeeded, count, count * each + backoff)

    def output_of(self, mock: simulation_pb2.StepMock | None) -> dict[str, Any]:
        if mock is None:
            return {}
        output: dict[str, Any] = plain_numbers(json_format.MessageToDict(mock.output))
        return output

    def run(self, step_id: str, step: Mapping[str, Any], start: int) -> _Outcome:
        mock = self.mocks.get(step_id)
        kind = step.get("type")
        if kind == "loop":
            return self.run_loop(step, mock, start)
        tries = self.attempts(step, mock)
        outcome = _Outcome(
            SUCCEEDED if tries.succeeded else FAILED,
            start,
            tries.duration,
            tries.count,
            cost=tries.count * self.unit_cost(step),
        )
        if tries.succeeded:
            outcome.output = self.output_of(mock)
        return outcome

    def run_loop(
        self, step: Mapping[str, Any], mock: simulation_pb2.StepMock | None, start: int
    ) -> _Outcome:
        loop = _mapping(step.get("loop"))
        body = _mapping(loop.get("body")) or {"type": "task"}
        try:
            items = cel.evaluate(str(loop.get("items", "[]")), self.data)
        except cel.CelEvaluationError:
            return _Outcome(FAILED, start, attempts=1)
        if not isinstance(items, list | tuple):
            return _Outcome(FAILED, start, attempts=1)
        parallelism = loop_parallelism(step)
        tries = self.attempts(body, mock)
        iterations = len(items) if tries.succeeded else min(len(items), parallelism)
        rounds = math.ceil(iterations / parallelism)
        outcome = _Outcome(
            SUCCEEDED if tries.succeeded or not items else FAILED,
            start,
            rounds * tries.duration,
            iterations * tries.count,
            iterations,
            iterations * tries.count * self.unit_cost(body),
        )
        if outcome.status == SUCCEEDED:
            outcome.output = self.output_of(mock)
        return outcome

    def decide(
        self, step_id: str, step: Mapping[str, Any], start: int
    ) -> tuple[_Outcome, simulation_pb2.PathDecision | None]:
        condition = _mapping(step.get("condition"))
        expression = str(condition.get("expression", ""))
        try:
            result = cel.evaluate(expression, self.data)
        except cel.CelEvaluationError:
            result = None
        if not isinstance(result, bool):
            return _Outcome(FAILED, start, attempts=1), None
        outcome = self.run(step_id, step, start)
        if outcome.status != SUCCEEDED:
            return outcome, None
        then_steps = list(condition.get("thenSteps", ()))
        else_steps = list(condition.get("elseSteps", ()))
        decision = simulation_pb2.PathDecision(
            step_id=step_id,
            expression=expression,
            result=result,
            taken_steps=then_steps if result else else_steps,
            skipped_steps=else_steps if result else then_steps,
        )
        return outcome, decision


def _nanos_of(value: Any, default: int = 0) -> int:
    try:
        return duration_nanos(value)
    except ValueError:
        return default


def _critical_path(
    outcomes: Mapping[str, _Outcome],
    needs: Mapping[str, list[str]],
    position: Mapping[str, int],
) -> list[str]:
    def rank(step_id: str) -> tuple[int, bool, int]:
        outcome = outcomes[step_id]
        # Latest end first; among equals a step that ran, then the one latest in
        # the plan (so a zero-time step ending with its need extends the chain).
        return (-outcome.end, outcome.status == SKIPPED, -position[step_id])

    if not outcomes:
        return []
    path = [min(outcomes, key=rank)]
    while needs[path[-1]]:
        path.append(min(needs[path[-1]], key=rank))
    path.reverse()
    return path


def simulate(  # noqa: PLR0917 - the RPC's request fields, in its order
    normal: Mapping[str, Any],
    plan: plan_pb2.CompiledPlan,
    inputs: Mapping[str, Any],
    mocks: Mapping[str, simulation_pb2.StepMock],
    cost_table: Mapping[str, float],
    default_task_duration: float | None = None,
) -> compiler_service_pb2.SimulateWorkflowResponse:
    """Simulates one execution of a valid definition (see module doc).

    ``default_task_duration`` is in seconds; None means 100 ms.
    """
    task_duration = (
        DEFAULT_TASK_DURATION
        if default_task_duration is None
        else round(default_task_duration * NANOS_PER_SECOND)
    )
    sim = _Simulation(inputs, mocks, cost_table, task_duration)
    steps = {s["id"]: resolve_defaults(s) for s in normal["steps"]}
    needs = {step_id: list(step.get("needs", ())) for step_id, step in steps.items()}
    routed_away: set[str] = set()
    outcomes: dict[str, _Outcome] = {}
    decisions: dict[str, simulation_pb2.PathDecision] = {}
    order = [planned.step.id for planned in plan.steps]
    for step_id in order:
        step = steps[step_id]
        start = max((outcomes[n].end for n in needs[step_id]), default=0)
        if step_id in routed_away or any(outcomes[n].status != SUCCEEDED for n in needs[step_id]):
            outcomes[step_id] = _Outcome(SKIPPED, start)
            continue
        if step.get("type") == "condition":
            outcome, decision = sim.decide(step_id, step, start)
            if decision is not None:
                decisions[step_id] = decision
                routed_away.update(decision.skipped_steps)
        else:
            outcome = sim.run(step_id, step, start)
        outcomes[step_id] = outcome
        if outcome.status == SUCCEEDED:
            sim.data["steps"][step_id] = {"output": outcome.output}

    position = {step_id: i for i, step_id in enumerate(order)}

    def timeline(ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=lambda s: (outcomes[s].start, position[s]))

    response = compiler_service_pb2.SimulateWorkflowResponse(
        steps=[
            simulation_pb2.SimulatedStep(
                step_id=step_id,
                status=outcomes[step_id].status,
                start_offset=_duration(outcomes[step_id].start),
                duration=_duration(outcomes[step_id].duration),
                attempts=outcomes[step_id].attempts,
                iterations=outcomes[step_id].iterations,
                cost_cents=outcomes[step_id].cost,
                output=_struct(outcomes[step_id].output),
            )
            for step_id in timeline(order)
        ],
        path=[decisions[s] for s in timeline(decisions)],
        critical_path=_critical_path(outcomes, needs, position),
        total_duration=_duration(max((o.end for o in outcomes.values()), default=0)),
        total_cost_cents=sum(o.cost for o in outcomes.values()),
        succeeded=all(o.status != FAILED for o in outcomes.values()),
        outputs=_struct(_outputs(normal.get("outputs"), sim.data)),
    )
    return response


def _outputs(outputs: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """Workflow outputs; ``null`` for one whose expression cannot be evaluated
    (it reads a step that was skipped or failed, ...)."""
    values: dict[str, Any] = {}
    if isinstance(outputs, Mapping):
        for key in sorted(outputs):
            try:
                values[key] = _json_value(cel.evaluate(str(outputs[key]), data))
            except cel.CelEvaluationError:
                values[key] = None
    return values
