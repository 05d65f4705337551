"""The orchestrator: every state transition of an execution, in one place.

Each method takes a :class:`~maestro.services.scheduler.store.Unit` (the
execution loaded under its lock) and the plan, changes rows in memory and
appends events; the caller flushes the unit in the same transaction. Nothing
here does I/O, so a transition is atomic: the journal (events, step
checkpoints, attempts) and the state it describes are written together or not
at all.

Interpretation of the plan:

- A PENDING step becomes ready when every step it ``needs`` has SUCCEEDED; if
  one of them was SKIPPED (a branch not taken) it is SKIPPED too.
- TASK steps put an attempt on their task queue. CONDITION steps are evaluated
  here (CEL) and skip the branch not taken. LOOP steps evaluate their items,
  create one iteration per item and keep at most ``parallelism`` running; the
  loop SUCCEEDS with ``{"results": [...]}`` when every iteration has. DELAY
  steps arm a durable timer. HUMAN steps open a human task and wait.
  SUBWORKFLOW steps wait for a child execution that the service starts.
- A failed attempt is retried per the step's policy with exponential backoff;
  with no attempts left the step fails and so does the execution (fail fast:
  other running attempts are cancelled, pending steps are skipped).
- When every step has SUCCEEDED or been SKIPPED the workflow ``outputs`` are
  evaluated and the execution SUCCEEDS.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from maestro.runtime.cel import CelEvaluationError, evaluate
from maestro.scheduler.v1 import execution_pb2, task_pb2
from maestro.services.scheduler.plans import Plan, StepSpec
from maestro.services.scheduler.store import (
    AttemptRow,
    EventRow,
    HumanTaskRow,
    StepRow,
    Unit,
    dumps,
    loads,
)

X = execution_pb2.ExecutionState
S = execution_pb2.StepState
A = execution_pb2.AttemptState
E = execution_pb2.EventType
T = execution_pb2
TASK = 1
CONDITION = 2
LOOP = 3
HUMAN = 4
SUBWORKFLOW = 5
DELAY = 6
RUN = task_pb2.TaskKind.TASK_KIND_RUN
COMPENSATE = task_pb2.TaskKind.TASK_KIND_COMPENSATE

TERMINAL_EXECUTION = frozenset(
    {X.EXECUTION_STATE_SUCCEEDED, X.EXECUTION_STATE_FAILED, X.EXECUTION_STATE_CANCELLED,
     X.EXECUTION_STATE_TIMED_OUT, X.EXECUTION_STATE_COMPENSATED}
)  # fmt: skip
FINAL_STEP = frozenset(
    {S.STEP_STATE_SUCCEEDED, S.STEP_STATE_FAILED, S.STEP_STATE_TIMED_OUT,
     S.STEP_STATE_CANCELLED, S.STEP_STATE_SKIPPED}
)  # fmt: skip
ACTIVE_STEP = frozenset(
    {S.STEP_STATE_SCHEDULED, S.STEP_STATE_RUNNING, S.STEP_STATE_RETRYING, S.STEP_STATE_WAITING}
)
ACTIVE_ATTEMPT = frozenset({A.ATTEMPT_STATE_SCHEDULED, A.ATTEMPT_STATE_RUNNING})
SKIP_BRANCH = "branch"
SKIP_ENDED = "ended"


_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\"[^\"]*\"\]|\[\d+\])*$")
"""A plain selector path such as ``inputs.product`` or ``steps["a-b"].output.x``."""


def _is_missing_key(error: CelEvaluationError) -> bool:
    text = str(error)
    return "NOT_FOUND" in text or "no such key" in text.lower() or "Key not found" in text


def _reads_any(expression: str, step_ids: set[str]) -> bool:
    return any(
        re.search(rf"steps\.{re.escape(i)}\b|steps\[\"{re.escape(i)}\"\]", expression)
        for i in step_ids
    )


def event_type_name(value: int) -> str:
    """CloudEvents ``type`` of an EventType, e.g. ``dev.maestro.step.succeeded``."""
    name = E.Name(value).removeprefix("EVENT_TYPE_").lower()
    group, _, rest = name.partition("_")
    if group == "human":
        return "dev.maestro.human_task." + name.removeprefix("human_task_")
    return f"dev.maestro.{group}.{rest}"


@dataclass(frozen=True, slots=True)
class FailOutcome:
    """What FailTask answers: whether another attempt follows, and when."""

    will_retry: bool
    next_attempt_time: datetime | None


class Orchestrator:
    """Owns every transition; see the module docstring."""

    def __init__(
        self,
        *,
        lease_seconds: float,
        on_new_attempt: Callable[[Unit, AttemptRow], None] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.lease = timedelta(seconds=lease_seconds)
        self.heartbeat_interval = timedelta(seconds=lease_seconds / 3)
        self._rand = rand
        self._on_new_attempt = on_new_attempt

    # -- journal ---------------------------------------------------------------------

    def emit(
        self,
        unit: Unit,
        kind: int,
        at: datetime,
        *,
        subject: str = "",
        attempt: int = 0,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        execution = unit.execution
        execution.last_event_sequence += 1
        execution.update_time = at
        execution.etag = ULID().hex[:16]
        unit.events.append(
            EventRow(
                execution.execution_id,
                execution.last_event_sequence,
                kind,
                subject,
                attempt,
                at,
                dumps(dict(data or {})),
            )
        )

    def record_decisions(
        self, unit: Unit, decision_ids: Sequence[str], *, before: int, step_id: str = ""
    ) -> None:
        """Keeps the ids of policy decisions taken for the execution (for its
        receipts). ``before`` is the last event sequence before the decision
        was acted on: the receipt of a finish at sequence F lists the
        decisions with ``before < F``."""
        if not decision_ids:
            return
        execution = unit.execution
        taken = loads(execution.policy_decisions) if execution.policy_decisions else []
        taken.extend([before, d, step_id] for d in decision_ids)
        execution.policy_decisions = dumps(taken)

    # -- start -----------------------------------------------------------------------

    def start(self, unit: Unit, plan: Plan, at: datetime) -> None:
        """A new execution: create its step rows, journal the start, dispatch."""
        execution = unit.execution
        for step_id in plan.order:
            spec = plan.steps[step_id]
            unit.add_step(
                StepRow(execution.execution_id, step_id, "", -1, spec.type, S.STEP_STATE_PENDING)
            )
        execution.state = X.EXECUTION_STATE_RUNNING
        execution.start_time = at
        self.emit(
            unit,
            E.EVENT_TYPE_EXECUTION_STARTED,
            at,
            data={"workflow": f"workflows/{execution.workflow_id}", "version": execution.version},
        )
        self.advance(unit, plan, at)

    # -- scope for expressions ----------------------------------------------------------

    def scope(self, unit: Unit, item: Any = None, index: int = 0) -> dict[str, Any]:
        steps = {
            step_id: {"output": loads(step.output) or {}}
            for step_id, step in unit.steps.items()
            if step.state == S.STEP_STATE_SUCCEEDED and not step.parent_step
        }
        return {
            "inputs": loads(unit.execution.inputs),
            "steps": steps,
            "item": item,
            "index": index,
        }

    # -- advancing the graph ---------------------------------------------------------------

    def advance(self, unit: Unit, plan: Plan, at: datetime) -> None:
        """Starts every step that became ready, then ends the execution if
        nothing is left to run."""
        if unit.execution.state != X.EXECUTION_STATE_RUNNING:
            return
        progressed = True
        while progressed and unit.execution.state == X.EXECUTION_STATE_RUNNING:
            progressed = False
            for step_id in plan.order:
                step = unit.steps[step_id]
                if step.state != S.STEP_STATE_PENDING:
                    continue
                spec = plan.steps[step_id]
                needs = [unit.steps[n] for n in spec.needs]
                if any(n.state == S.STEP_STATE_SKIPPED for n in needs) and all(
                    n.state in (S.STEP_STATE_SUCCEEDED, S.STEP_STATE_SKIPPED) for n in needs
                ):
                    self.skip(unit, step, at, SKIP_BRANCH, "an upstream step was skipped")
                    progressed = True
                elif all(n.state == S.STEP_STATE_SUCCEEDED for n in needs):
                    self.activate(unit, plan, spec, step, at)
                    progressed = True
                if unit.execution.state != X.EXECUTION_STATE_RUNNING:
                    return
        if unit.execution.state == X.EXECUTION_STATE_RUNNING and all(
            unit.steps[s].state in (S.STEP_STATE_SUCCEEDED, S.STEP_STATE_SKIPPED)
            for s in plan.order
        ):
            self.succeed(unit, plan, at)

    def activate(self, unit: Unit, plan: Plan, spec: StepSpec, step: StepRow, at: datetime) -> None:
        """A ready step (or loop iteration) starts according to its type."""
        step.start_time = step.start_time or at
        item = loads(step.item) if step.parent_step else None
        scope = self.scope(unit, item, max(step.loop_index, 0))
        if spec.type == CONDITION:
            self.decide(unit, plan, spec, step, scope=scope, at=at)
        elif spec.type == LOOP:
            self.expand(unit, plan, spec, step, scope=scope, at=at)
        elif spec.type == DELAY:
            self.arm_timer(unit, spec, step, scope, at)
        elif spec.type == HUMAN:
            self.open_human_task(unit, plan, spec, step, at)
        elif spec.type == SUBWORKFLOW:
            inputs = self.map_inputs(unit, spec, step, scope, at)
            if inputs is not None:
                step.input = dumps(inputs)
                step.state = S.STEP_STATE_WAITING
        else:
            inputs = self.map_inputs(unit, spec, step, scope, at)
            if inputs is not None:
                step.input = dumps(inputs)
                self.schedule(unit, plan, spec, step, at=at, visible=at)

    def map_inputs(
        self, unit: Unit, spec: StepSpec, step: StepRow, scope: Mapping[str, Any], at: datetime
    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        for name, expression in spec.input.items():
            try:
                values[name] = evaluate(expression, scope)
            except CelEvaluationError as exc:
                if _PATH.match(expression.strip()) and _is_missing_key(exc):
                    # A plain path to an absent optional value maps to null.
                    values[name] = None
                    continue
                self.step_failed(
                    unit,
                    step,
                    at,
                    {
                        "code": "INPUT_EVALUATION_FAILED",
                        "message": f"input `{name}`: {exc}",
                        "non_retryable": True,
                    },
                )
                return None
        return values

    # -- attempts ------------------------------------------------------------------------

    def schedule(
        self,
        unit: Unit,
        plan: Plan,
        spec: StepSpec,
        step: StepRow,
        *,
        at: datetime,
        visible: datetime,
    ) -> AttemptRow:
        """Puts the step's next attempt on its task queue."""
        execution = unit.execution
        step.attempt_count += 1
        number = step.attempt_count
        key = f"{execution.execution_id}/{step.step_id}/{number}"
        labels = {**plan.workflow_labels, **spec.labels}
        attempt = AttemptRow(
            task_id=key,
            execution_id=execution.execution_id,
            step_id=step.step_id,
            attempt=number,
            kind=RUN,
            state=A.ATTEMPT_STATE_SCHEDULED,
            task_queue=spec.task_queue,
            handler=spec.handler,
            config=dumps(dict(spec.config)),
            input=step.input or "{}",
            step_output=None,
            labels=dumps(labels),
            timeout_ms=int(spec.timeout_s * 1000),
            idempotency_key=key,
            schedule_time=at,
            visible_time=visible,
        )
        unit.add_attempt(attempt)
        if step.state != S.STEP_STATE_RETRYING:
            step.state = S.STEP_STATE_SCHEDULED
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_SCHEDULED,
            at,
            subject=step.step_id,
            attempt=number,
            data={"task_queue": spec.task_queue, "idempotency_key": key},
        )
        if self._on_new_attempt is not None:
            self._on_new_attempt(unit, attempt)
        return attempt

    def leased(
        self, unit: Unit, attempt: AttemptRow, worker: str, lease_id: str, at: datetime
    ) -> None:
        """A worker leased the attempt (first delivery or a redelivery)."""
        attempt.state = A.ATTEMPT_STATE_RUNNING
        attempt.lease_id = lease_id
        attempt.lease_expire_time = at + self.lease
        attempt.worker_identity = worker
        attempt.deliveries += 1
        if attempt.start_time is None:
            attempt.start_time = at
            attempt.deadline = at + timedelta(milliseconds=attempt.timeout_ms)
        step = unit.steps[attempt.step_id]
        if attempt.kind == RUN:
            step.state = S.STEP_STATE_RUNNING
        step.next_attempt_time = None
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_STARTED,
            at,
            subject=attempt.step_id,
            attempt=attempt.attempt,
            data={"worker_identity": worker, "delivery": attempt.deliveries},
        )

    def completed(
        self, unit: Unit, plan: Plan, attempt: AttemptRow, output: Mapping[str, Any], at: datetime
    ) -> None:
        """The worker reported success: checkpoint the output and move on."""
        attempt.state = A.ATTEMPT_STATE_SUCCEEDED
        attempt.end_time = at
        step = unit.steps[attempt.step_id]
        if attempt.kind == COMPENSATE:
            self.step_compensated(unit, plan, step, dict(output), at=at, attempt=attempt.attempt)
            return
        self.step_succeeded(unit, plan, step, dict(output), at, attempt=attempt.attempt)
        if unit.execution.state == X.EXECUTION_STATE_CANCELLING:
            self.finish_cancel_if_idle(unit, at)

    def failed(
        self, unit: Unit, plan: Plan, attempt: AttemptRow, error: Mapping[str, Any], at: datetime
    ) -> FailOutcome:
        """The worker reported failure: retry per policy, or fail the step."""
        code = str(error.get("code", ""))
        step = unit.steps[attempt.step_id]
        if unit.execution.state == X.EXECUTION_STATE_CANCELLING:
            # Whatever the worker says, the attempt ended and nothing follows it.
            self.cancel_attempt(unit, attempt, at)
            self.finish_cancel_if_idle(unit, at)
            return FailOutcome(False, None)
        attempt.state = A.ATTEMPT_STATE_FAILED
        attempt.end_time = at
        attempt.error = dumps(dict(error))
        if attempt.kind == COMPENSATE:
            self.emit(
                unit,
                E.EVENT_TYPE_STEP_FAILED,
                at,
                subject=step.step_id,
                attempt=attempt.attempt,
                data={"code": code, "message": error.get("message", ""), "compensation": True},
            )
            return self.compensation_failed(unit, plan, step, dict(error), at)
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_FAILED,
            at,
            subject=step.step_id,
            attempt=attempt.attempt,
            data={
                "code": code,
                "message": error.get("message", ""),
                "non_retryable": bool(error.get("non_retryable")),
            },
        )
        return self.retry_or_fail(
            unit, plan, step, dict(error), at=at, final_state=S.STEP_STATE_FAILED
        )

    def timed_out(self, unit: Unit, plan: Plan, attempt: AttemptRow, at: datetime) -> None:
        """The attempt passed its deadline with no result."""
        if unit.execution.state == X.EXECUTION_STATE_CANCELLING:
            self.cancel_attempt(unit, attempt, at)
            self.finish_cancel_if_idle(unit, at)
            return
        attempt.state = A.ATTEMPT_STATE_TIMED_OUT
        attempt.end_time = at
        seconds = attempt.timeout_ms / 1000
        error = {"code": "TIMED_OUT", "message": f"attempt exceeded its {seconds:g}s timeout"}
        attempt.error = dumps(error)
        step = unit.steps[attempt.step_id]
        if attempt.kind == COMPENSATE:
            self.compensation_failed(unit, plan, step, error, at)
            return
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_TIMED_OUT,
            at,
            subject=step.step_id,
            attempt=attempt.attempt,
            data={"timeout": f"{seconds:g}s"},
        )
        self.retry_or_fail(unit, plan, step, error, at=at, final_state=S.STEP_STATE_TIMED_OUT)

    def retry_or_fail(
        self,
        unit: Unit,
        plan: Plan,
        step: StepRow,
        error: dict[str, Any],
        *,
        at: datetime,
        final_state: int,
    ) -> FailOutcome:
        spec = self.spec_of(plan, step)
        policy = spec.retry
        used = step.attempt_count - step.attempt_base
        retryable = not error.get("non_retryable") and error.get("code") not in (
            policy.non_retryable_errors
        )
        if retryable and (policy.max_attempts == 0 or used < policy.max_attempts):
            delay = timedelta(seconds=policy.backoff(used, self._rand()))
            step.state = S.STEP_STATE_RETRYING
            step.next_attempt_time = at + delay
            self.emit(
                unit,
                E.EVENT_TYPE_STEP_RETRYING,
                at,
                subject=step.step_id,
                attempt=step.attempt_count,
                data={
                    "next_attempt": step.attempt_count + 1,
                    "next_attempt_time": step.next_attempt_time.isoformat(),
                },
            )
            self.schedule(unit, plan, spec, step, at=at, visible=at + delay)
            return FailOutcome(True, step.next_attempt_time)
        error["non_retryable"] = not retryable
        self.step_failed(unit, step, at, error, final_state, journal=False)
        return FailOutcome(False, None)

    @staticmethod
    def spec_of(plan: Plan, step: StepRow) -> StepSpec:
        if step.parent_step:
            body = plan.steps[step.parent_step].body
            assert body is not None  # a loop iteration exists only for a loop with a body
            return body
        return plan.steps[step.step_id]

    # -- step outcomes ---------------------------------------------------------------------

    def step_succeeded(
        self,
        unit: Unit,
        plan: Plan,
        step: StepRow,
        output: dict[str, Any],
        at: datetime,
        *,
        attempt: int = 0,
    ) -> None:
        step.state = S.STEP_STATE_SUCCEEDED
        step.output = dumps(output)
        step.end_time = at
        step.error = None
        step.next_attempt_time = None
        unit.execution.completions += 1
        step.completion_order = unit.execution.completions
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_SUCCEEDED,
            at,
            subject=step.step_id,
            attempt=attempt,
            data={"output": output, "cache_hit": False},
        )
        if step.parent_step:
            self.loop_progress(unit, plan, unit.steps[step.parent_step], at)
        else:
            self.advance(unit, plan, at)

    def step_failed(
        self,
        unit: Unit,
        step: StepRow,
        at: datetime,
        error: Mapping[str, Any],
        final_state: int = S.STEP_STATE_FAILED,
        *,
        journal: bool = True,
    ) -> None:
        """The step failed for good: so does its loop, and the execution.

        ``journal`` False when the attempt's failure was already journaled
        (STEP_FAILED / STEP_TIMED_OUT); failures found by the scheduler itself
        (input mapping, condition, loop items, delay, child) are journaled here.
        """
        if journal:
            self.emit(
                unit,
                E.EVENT_TYPE_STEP_FAILED,
                at,
                subject=step.step_id,
                data={
                    "code": str(error.get("code", "")),
                    "message": error.get("message", ""),
                    "non_retryable": bool(error.get("non_retryable")),
                },
            )
        step.state = final_state
        step.error = dumps(dict(error))
        step.end_time = at
        step.next_attempt_time = None
        failing = step
        if step.parent_step:
            loop = unit.steps[step.parent_step]
            loop.state = S.STEP_STATE_FAILED
            loop.end_time = at
            loop.error = step.error
            failing = loop
        if unit.execution.state != X.EXECUTION_STATE_RUNNING:
            return
        code = "STEP_TIMED_OUT" if final_state == S.STEP_STATE_TIMED_OUT else error.get("code")
        self.end(
            unit,
            X.EXECUTION_STATE_FAILED,
            at,
            {
                "code": str(code or "INTERNAL"),
                "message": f"step {step.step_id}: {error.get('message', '')}",
                "step_id": failing.step_id,
            },
        )

    def skip(self, unit: Unit, step: StepRow, at: datetime, why: str, reason: str) -> None:
        step.state = S.STEP_STATE_SKIPPED
        step.skip_reason = why
        step.end_time = at
        self.emit(
            unit, E.EVENT_TYPE_STEP_SKIPPED, at, subject=step.step_id, data={"reason": reason}
        )

    # -- typed steps --------------------------------------------------------------------------

    def decide(
        self,
        unit: Unit,
        plan: Plan,
        spec: StepSpec,
        step: StepRow,
        *,
        scope: Mapping[str, Any],
        at: datetime,
    ) -> None:
        try:
            result = evaluate(spec.condition, scope)
        except CelEvaluationError as exc:
            result = exc
        if not isinstance(result, bool):
            message = f"condition did not evaluate to a bool: {result}"
            self.step_failed(
                unit,
                step,
                at,
                {"code": "CONDITION_EVALUATION_FAILED", "message": message, "non_retryable": True},
            )
            return
        not_taken = spec.else_steps if result else spec.then_steps
        for other in not_taken:
            target = unit.steps.get(other)
            if target is not None and target.state == S.STEP_STATE_PENDING:
                self.skip(unit, target, at, SKIP_BRANCH, f"condition {step.step_id} was {result}")
        self.step_succeeded(unit, plan, step, {"result": result}, at)

    def expand(
        self,
        unit: Unit,
        plan: Plan,
        spec: StepSpec,
        step: StepRow,
        *,
        scope: Mapping[str, Any],
        at: datetime,
    ) -> None:
        try:
            items = evaluate(spec.loop_items, scope)
        except CelEvaluationError as exc:
            items = exc
        if not isinstance(items, list | tuple):
            message = f"loop items did not evaluate to a list: {items}"
            self.step_failed(
                unit,
                step,
                at,
                {"code": "LOOP_ITEMS_INVALID", "message": message, "non_retryable": True},
            )
            return
        body = spec.body
        assert body is not None
        step.state = S.STEP_STATE_RUNNING
        step.input = dumps({"items": list(items)})
        for index, item in enumerate(items):
            unit.add_step(
                StepRow(
                    unit.execution.execution_id,
                    f"{step.step_id}[{index}]",
                    step.step_id,
                    index,
                    body.type,
                    S.STEP_STATE_PENDING,
                    item=dumps(item),
                )
            )
        self.loop_progress(unit, plan, step, at)

    def iterations(self, unit: Unit, loop: StepRow) -> list[StepRow]:
        found = [s for s in unit.steps.values() if s.parent_step == loop.step_id]
        found.sort(key=lambda s: s.loop_index)
        return found

    def loop_progress(self, unit: Unit, plan: Plan, loop: StepRow, at: datetime) -> None:
        """Keeps up to ``parallelism`` iterations running; ends the loop when
        every iteration has succeeded."""
        if loop.state != S.STEP_STATE_RUNNING or unit.execution.state != X.EXECUTION_STATE_RUNNING:
            return
        spec = plan.steps[loop.step_id]
        body = spec.body
        assert body is not None
        iterations = self.iterations(unit, loop)
        running = sum(1 for s in iterations if s.state in ACTIVE_STEP)
        for iteration in iterations:
            if running >= spec.loop_parallelism:
                break
            if iteration.state == S.STEP_STATE_PENDING:
                self.activate(unit, plan, body, iteration, at)
                if unit.execution.state != X.EXECUTION_STATE_RUNNING:
                    return
                running += 1
        if all(s.state == S.STEP_STATE_SUCCEEDED for s in iterations):
            results = [loads(s.output) for s in iterations]
            self.step_succeeded(unit, plan, loop, {"results": results}, at)

    def arm_timer(
        self, unit: Unit, spec: StepSpec, step: StepRow, scope: Mapping[str, Any], at: datetime
    ) -> None:
        fire = at + timedelta(seconds=spec.delay_s)
        if spec.delay_until:
            try:
                until = evaluate(spec.delay_until, scope)
                fire = until if isinstance(until, datetime) else datetime.fromisoformat(str(until))
            except (CelEvaluationError, ValueError) as exc:
                self.step_failed(
                    unit,
                    step,
                    at,
                    {"code": "DELAY_UNTIL_INVALID", "message": str(exc), "non_retryable": True},
                )
                return
            if fire.tzinfo is None:
                fire = fire.replace(tzinfo=at.tzinfo)
        step.state = S.STEP_STATE_WAITING
        step.timer_fire_time = fire
        step.timer_due = fire
        self.emit(
            unit,
            E.EVENT_TYPE_TIMER_STARTED,
            at,
            subject=step.step_id,
            data={"fire_time": fire.isoformat()},
        )

    def fire_timers(self, unit: Unit, plan: Plan, at: datetime) -> None:
        for step in list(unit.steps.values()):
            if step.timer_due is not None and step.timer_due <= at:
                step.timer_due = None
                if step.state != S.STEP_STATE_WAITING:
                    continue
                fired = step.timer_fire_time or at
                self.emit(
                    unit,
                    E.EVENT_TYPE_TIMER_FIRED,
                    at,
                    subject=step.step_id,
                    data={"fire_time": fired.isoformat()},
                )
                self.step_succeeded(unit, plan, step, {"fire_time": fired.isoformat()}, at)

    def open_human_task(
        self, unit: Unit, plan: Plan, spec: StepSpec, step: StepRow, at: datetime
    ) -> None:
        del plan
        task_id = str(ULID())
        due = at + timedelta(seconds=spec.due_s) if spec.due_s else None
        unit.add_human_task(
            HumanTaskRow(
                task_id=task_id,
                tenant=unit.execution.tenant,
                execution_id=unit.execution.execution_id,
                step_id=step.step_id,
                assignees=dumps(list(spec.assignees)),
                form_schema=dumps(dict(spec.form_schema)),
                instructions=spec.instructions,
                state=execution_pb2.HumanTaskState.HUMAN_TASK_STATE_OPEN,
                due_time=due,
                result=None,
                completed_by="",
                create_time=at,
                update_time=at,
                close_time=None,
                etag=ULID().hex[:16],
            )
        )
        step.state = S.STEP_STATE_WAITING
        step.human_task = f"humanTasks/{task_id}"
        self.emit(
            unit,
            E.EVENT_TYPE_HUMAN_TASK_CREATED,
            at,
            subject=step.step_id,
            data={
                "human_task": step.human_task,
                "assignees": list(spec.assignees),
                "due_time": due.isoformat() if due else None,
            },
        )

    def complete_human_task(
        self,
        unit: Unit,
        plan: Plan,
        task: HumanTaskRow,
        *,
        result: Mapping[str, Any],
        by: str,
        at: datetime,
    ) -> None:
        task.state = execution_pb2.HumanTaskState.HUMAN_TASK_STATE_COMPLETED
        task.result = dumps(dict(result))
        task.completed_by = by
        task.update_time = at
        task.close_time = at
        task.etag = ULID().hex[:16]
        step = unit.steps[task.step_id]
        self.emit(
            unit,
            E.EVENT_TYPE_HUMAN_TASK_COMPLETED,
            at,
            subject=step.step_id,
            data={"human_task": step.human_task, "completed_by": by},
        )
        self.step_succeeded(unit, plan, step, dict(result), at)

    def child_started(self, unit: Unit, step: StepRow, child_execution_id: str) -> None:
        step.child_execution = f"executions/{child_execution_id}"

    def child_finished(
        self,
        unit: Unit,
        plan: Plan,
        step: StepRow,
        *,
        state: int,
        outputs: Mapping[str, Any],
        error: Mapping[str, Any] | None,
        at: datetime,
    ) -> None:
        if step.state != S.STEP_STATE_WAITING:
            return
        if state == X.EXECUTION_STATE_SUCCEEDED:
            self.step_succeeded(unit, plan, step, dict(outputs), at)
            return
        message = (error or {}).get("message", "") or X.Name(state)
        self.step_failed(
            unit,
            step,
            at,
            {
                "code": "SUBWORKFLOW_FAILED",
                "message": f"{step.child_execution} ended {X.Name(state)}: {message}",
                "non_retryable": True,
            },
        )

    # -- ending ---------------------------------------------------------------------------------

    def succeed(self, unit: Unit, plan: Plan, at: datetime) -> None:
        scope = self.scope(unit)
        outputs: dict[str, Any] = {}
        skipped = {
            step_id
            for step_id, step in unit.steps.items()
            if step.state == S.STEP_STATE_SKIPPED and not step.parent_step
        }
        for name, expression in sorted(plan.outputs.items()):
            try:
                outputs[name] = evaluate(expression, scope)
            except CelEvaluationError as exc:
                if _is_missing_key(exc) and _reads_any(expression, skipped):
                    # An output read from a step that did not run is null.
                    outputs[name] = None
                    continue
                self.end(
                    unit,
                    X.EXECUTION_STATE_FAILED,
                    at,
                    {"code": "OUTPUT_EVALUATION_FAILED", "message": f"output `{name}`: {exc}"},
                )
                return
        unit.execution.outputs = dumps(outputs)
        self.end(unit, X.EXECUTION_STATE_SUCCEEDED, at, None, outputs=outputs)

    def end(
        self,
        unit: Unit,
        state: int,
        at: datetime,
        error: Mapping[str, Any] | None,
        *,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Ends the execution: stops whatever still runs, skips what never
        started, closes human tasks, journals the terminal event."""
        execution = unit.execution
        for attempt in unit.attempts.values():
            if attempt.state in ACTIVE_ATTEMPT:
                self.cancel_attempt(unit, attempt, at)
        for step in sorted(unit.steps.values(), key=lambda s: (s.parent_step, s.loop_index)):
            if step.state == S.STEP_STATE_PENDING:
                self.skip(unit, step, at, SKIP_ENDED, "the execution ended first")
            elif step.state in ACTIVE_STEP:
                step.state = S.STEP_STATE_CANCELLED
                step.end_time = at
                step.timer_due = None
                self.emit(unit, E.EVENT_TYPE_STEP_CANCELLED, at, subject=step.step_id)
        unit.close_human_tasks = True
        execution.state = state
        execution.end_time = at
        execution.error = dumps(dict(error)) if error else None
        if state == X.EXECUTION_STATE_SUCCEEDED:
            self.emit(
                unit, E.EVENT_TYPE_EXECUTION_SUCCEEDED, at, data={"outputs": dict(outputs or {})}
            )
        elif state == X.EXECUTION_STATE_FAILED:
            self.emit(unit, E.EVENT_TYPE_EXECUTION_FAILED, at, data=dict(error or {}))
        elif state == X.EXECUTION_STATE_TIMED_OUT:
            expire = execution.expire_time.isoformat() if execution.expire_time else None
            self.emit(unit, E.EVENT_TYPE_EXECUTION_TIMED_OUT, at, data={"expire_time": expire})
        elif state == X.EXECUTION_STATE_CANCELLED:
            self.emit(
                unit,
                E.EVENT_TYPE_EXECUTION_CANCELLED,
                at,
                data={"reason": (error or {}).get("message", "")},
            )

    def cancel_attempt(self, unit: Unit, attempt: AttemptRow, at: datetime) -> None:
        attempt.state = A.ATTEMPT_STATE_CANCELLED
        attempt.end_time = at
        attempt.error = dumps({"code": "CANCELLED", "message": "the execution was cancelled"})
        step = unit.steps[attempt.step_id]
        if step.state in ACTIVE_STEP:
            step.state = S.STEP_STATE_CANCELLED
            step.end_time = at
            step.next_attempt_time = None
            self.emit(
                unit,
                E.EVENT_TYPE_STEP_CANCELLED,
                at,
                subject=step.step_id,
                attempt=attempt.attempt,
            )

    def expire(self, unit: Unit, at: datetime) -> None:
        execution = unit.execution
        if execution.state in TERMINAL_EXECUTION or execution.expire_time is None:
            return
        if execution.expire_time > at:
            return
        self.end(
            unit,
            X.EXECUTION_STATE_TIMED_OUT,
            at,
            {"code": "EXECUTION_TIMED_OUT", "message": "the execution passed its deadline"},
        )

    # -- cancel and retry -----------------------------------------------------------------------

    def cancel(self, unit: Unit, reason: str, by: str, at: datetime) -> None:
        """CANCELLING, then CANCELLED once no attempt is running. Callers check
        the state allows it."""
        execution = unit.execution
        execution.state = X.EXECUTION_STATE_CANCELLING
        execution.error = dumps({"code": "CANCELLED", "message": reason or "cancelled"})
        self.emit(
            unit,
            E.EVENT_TYPE_EXECUTION_CANCEL_REQUESTED,
            at,
            data={"reason": reason, "requested_by": by},
        )
        for attempt in unit.attempts.values():
            if attempt.state == A.ATTEMPT_STATE_SCHEDULED:
                self.cancel_attempt(unit, attempt, at)
        for step in unit.steps.values():
            if step.state == S.STEP_STATE_WAITING:
                step.state = S.STEP_STATE_CANCELLED
                step.end_time = at
                step.timer_due = None
                self.emit(unit, E.EVENT_TYPE_STEP_CANCELLED, at, subject=step.step_id)
        self.finish_cancel_if_idle(unit, at)

    def finish_cancel_if_idle(self, unit: Unit, at: datetime) -> None:
        if unit.execution.state != X.EXECUTION_STATE_CANCELLING:
            return
        if any(a.state == A.ATTEMPT_STATE_RUNNING for a in unit.attempts.values()):
            return
        error = loads(unit.execution.error) or {"code": "CANCELLED", "message": "cancelled"}
        self.end(unit, X.EXECUTION_STATE_CANCELLED, at, error)

    def retry(
        self, unit: Unit, plan: Plan, by: str, timeout: timedelta | None, at: datetime
    ) -> list[str]:
        """Resumes a FAILED, CANCELLED or TIMED_OUT execution in place; returns
        the ids of the steps that will run again."""
        execution = unit.execution
        again: list[str] = []
        retryable = (
            S.STEP_STATE_FAILED,
            S.STEP_STATE_TIMED_OUT,
            S.STEP_STATE_CANCELLED,
        )
        for step in sorted(unit.steps.values(), key=lambda s: (s.parent_step, s.loop_index)):
            resume = step.state in retryable or (
                step.state == S.STEP_STATE_SKIPPED and step.skip_reason == SKIP_ENDED
            )
            if not resume:
                continue
            again.append(step.step_id)
            is_started_loop = step.type == LOOP and any(
                s.parent_step == step.step_id for s in unit.steps.values()
            )
            step.state = S.STEP_STATE_RUNNING if is_started_loop else S.STEP_STATE_PENDING
            step.attempt_base = step.attempt_count
            step.error = None
            step.end_time = None
            step.skip_reason = ""
            step.next_attempt_time = None
        execution.state = X.EXECUTION_STATE_RUNNING
        execution.end_time = None
        execution.error = None
        execution.receipt = ""  # the next finish gets a receipt of its own
        if timeout is not None:
            execution.expire_time = at + timeout
        self.emit(
            unit, E.EVENT_TYPE_EXECUTION_RETRIED, at, data={"steps": again, "requested_by": by}
        )
        for step in unit.steps.values():
            if step.type == LOOP and step.state == S.STEP_STATE_RUNNING:
                self.loop_progress(unit, plan, step, at)
        self.advance(unit, plan, at)
        return again

    # -- compensation (saga) ------------------------------------------------------------------

    def compensable(self, unit: Unit, plan: Plan) -> list[StepRow]:
        """Steps whose compensate handler must (still) run, newest completion
        first: SUCCEEDED (or COMPENSATION_FAILED) steps that have one."""
        found = [
            step
            for step in unit.steps.values()
            if step.state in (S.STEP_STATE_SUCCEEDED, S.STEP_STATE_COMPENSATION_FAILED)
            and step.type not in (CONDITION, LOOP)
            and self.spec_of(plan, step).compensate
        ]
        found.sort(key=lambda s: s.completion_order, reverse=True)
        return found

    def compensate(self, unit: Unit, plan: Plan, reason: str, by: str, at: datetime) -> None:
        """Runs the compensate handlers of the completed steps, one at a time in
        reverse order of completion. Callers check the state allows it."""
        execution = unit.execution
        execution.state = X.EXECUTION_STATE_COMPENSATING
        execution.end_time = None
        execution.receipt = ""  # the compensation's finish gets a receipt of its own
        order = [s.step_id for s in self.compensable(unit, plan)]
        self.emit(
            unit,
            E.EVENT_TYPE_COMPENSATION_STARTED,
            at,
            data={"reason": reason, "steps": order, "requested_by": by},
        )
        self.compensate_next(unit, plan, at)

    def compensate_next(self, unit: Unit, plan: Plan, at: datetime) -> None:
        pending = self.compensable(unit, plan)
        if not pending:
            unit.execution.state = X.EXECUTION_STATE_COMPENSATED
            unit.execution.end_time = at
            self.emit(unit, E.EVENT_TYPE_EXECUTION_COMPENSATED, at)
            return
        step = pending[0]
        step.state = S.STEP_STATE_COMPENSATING
        self.schedule_compensation(unit, plan, step, at=at, visible=at)

    def schedule_compensation(
        self, unit: Unit, plan: Plan, step: StepRow, *, at: datetime, visible: datetime
    ) -> AttemptRow:
        spec = self.spec_of(plan, step)
        execution = unit.execution
        step.compensation_attempts += 1
        number = step.compensation_attempts
        key = f"{execution.execution_id}/{step.step_id}:compensate/{number}"
        attempt = AttemptRow(
            task_id=key,
            execution_id=execution.execution_id,
            step_id=step.step_id,
            attempt=number,
            kind=COMPENSATE,
            state=A.ATTEMPT_STATE_SCHEDULED,
            task_queue=spec.task_queue,
            handler=spec.compensate,
            config=dumps(dict(spec.config)),
            input=step.input or "{}",
            step_output=step.output or "{}",
            labels=dumps({**plan.workflow_labels, **spec.labels}),
            timeout_ms=int(spec.timeout_s * 1000),
            idempotency_key=key,
            schedule_time=at,
            visible_time=visible,
        )
        unit.add_attempt(attempt)
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_SCHEDULED,
            at,
            subject=step.step_id,
            attempt=number,
            data={"task_queue": spec.task_queue, "idempotency_key": key, "compensation": True},
        )
        return attempt

    def step_compensated(
        self,
        unit: Unit,
        plan: Plan,
        step: StepRow,
        output: dict[str, Any],
        *,
        at: datetime,
        attempt: int,
    ) -> None:
        step.state = S.STEP_STATE_COMPENSATED
        self.emit(
            unit,
            E.EVENT_TYPE_STEP_COMPENSATED,
            at,
            subject=step.step_id,
            attempt=attempt,
            data={"output": output},
        )
        self.compensate_next(unit, plan, at)

    def compensation_failed(
        self, unit: Unit, plan: Plan, step: StepRow, error: dict[str, Any], at: datetime
    ) -> FailOutcome:
        """Retry the compensate handler per the step's policy, or fail the
        compensation (a later CompensateExecution retries what is left)."""
        policy = self.spec_of(plan, step).retry
        used = step.compensation_attempts
        retryable = not error.get("non_retryable") and error.get("code") not in (
            policy.non_retryable_errors
        )
        if retryable and (policy.max_attempts == 0 or used < policy.max_attempts):
            when = at + timedelta(seconds=policy.backoff(used, self._rand()))
            self.emit(
                unit,
                E.EVENT_TYPE_STEP_RETRYING,
                at,
                subject=step.step_id,
                attempt=used,
                data={
                    "next_attempt": used + 1,
                    "next_attempt_time": when.isoformat(),
                    "compensation": True,
                },
            )
            self.schedule_compensation(unit, plan, step, at=at, visible=when)
            return FailOutcome(True, when)
        step.state = S.STEP_STATE_COMPENSATION_FAILED
        execution = unit.execution
        execution.state = X.EXECUTION_STATE_FAILED
        execution.end_time = at
        failure = {
            "code": "COMPENSATION_FAILED",
            "message": f"step {step.step_id}: {error.get('message', '')}",
            "step_id": step.step_id,
        }
        execution.error = dumps(failure)
        self.emit(unit, E.EVENT_TYPE_EXECUTION_FAILED, at, data=failure)
        return FailOutcome(False, None)
