"""The scheduler's domain service: executions, task queues, timers, human tasks.

Every mutation is one transaction: lock the execution(s), let the
:class:`~maestro.services.scheduler.engine.Orchestrator` change them, flush, and
only after the commit wake pollers, event streams and parents. Requests are
checked here (names, request ids, sizes); policy and identity come from the
call context (tenant, subject).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import jsonschema
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from ulid import ULID

from maestro.runtime import context, paging
from maestro.runtime.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    MaestroError,
    NotFoundError,
    PermissionDeniedError,
)
from maestro.runtime.periodic import woken
from maestro.runtime.policy import Action, PolicyGate
from maestro.runtime.timestamps import timestamp
from maestro.scheduler.v1 import execution_pb2, scheduler_service_pb2, task_pb2
from maestro.services.scheduler import receipts, views
from maestro.services.scheduler.dispatch import Dispatch
from maestro.services.scheduler.engine import (
    SUBWORKFLOW,
    TERMINAL_EXECUTION,
    FailOutcome,
    Orchestrator,
)
from maestro.services.scheduler.metrics import SchedulerMetrics
from maestro.services.scheduler.plans import Plan, Plans, Resolved
from maestro.services.scheduler.store import (
    AttemptRow,
    EventRow,
    ExecutionRow,
    HumanTaskRow,
    Store,
    Unit,
    dumps,
    loads,
    now,
)
from maestro.services.scheduler.workers import WorkerAccess

log = logging.getLogger(__name__)


class _HasExecution(Protocol):
    @property
    def execution_id(self) -> str: ...


_OfExecution = TypeVar("_OfExecution", bound=_HasExecution)
pb = scheduler_service_pb2
X = execution_pb2.ExecutionState
A = execution_pb2.AttemptState
S = execution_pb2.StepState
DEFAULT_TENANT = "default"
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
_EXECUTION_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_HUMAN_TASK_ID = _EXECUTION_ID
_WORKFLOW_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_QUEUE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
R = TypeVar("R")


def tenant_of() -> str:
    return context.current().principal.tenant or DEFAULT_TENANT


def subject_of() -> str:
    return context.current().principal.subject or "anonymous"


def request_hash(request: Message) -> str:
    """Digest of a request without its request id (a replay must match it)."""
    copy = type(request)()
    copy.CopyFrom(request)
    if hasattr(copy, "request_id"):
        copy.request_id = ""
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def parse_execution_name(name: str, field: str = "name") -> str:
    prefix, _, execution_id = name.partition("/")
    if prefix != "executions" or not _EXECUTION_ID.match(execution_id):
        raise InvalidArgumentError(
            f"{field} must look like executions/{{execution}}, got {name!r}",
            field_violations=[FieldViolation(field, "expected executions/{execution}")],
        )
    return execution_id


def parse_workflow(name: str) -> str:
    prefix, _, workflow_id = name.partition("/")
    if prefix != "workflows" or not _WORKFLOW_ID.match(workflow_id):
        raise InvalidArgumentError(
            f"workflow must look like workflows/{{workflow}}, got {name!r}",
            field_violations=[FieldViolation("workflow", "expected workflows/{workflow}")],
        )
    return workflow_id


def parse_human_task_name(name: str) -> str:
    prefix, _, task_id = name.partition("/")
    if prefix != "humanTasks" or not _HUMAN_TASK_ID.match(task_id):
        raise InvalidArgumentError(
            f"name must look like humanTasks/{{human_task}}, got {name!r}",
            field_violations=[FieldViolation("name", "expected humanTasks/{human_task}")],
        )
    return task_id


def _require_request_id(request_id: str) -> None:
    if not request_id or len(request_id) > 64:
        raise InvalidArgumentError(
            "request_id is required (a UUID, at most 64 characters)",
            field_violations=[FieldViolation("request_id", "required, at most 64 characters")],
        )


def _check_labels(labels: Mapping[str, str]) -> None:
    problems = [
        FieldViolation(f"labels[{k}]", "invalid label key or value")
        for k, v in labels.items()
        if not _LABEL_KEY.match(k) or not _LABEL_VALUE.match(v)
    ]
    if len(labels) > 64:
        problems.append(FieldViolation("labels", "at most 64 labels"))
    if problems:
        raise InvalidArgumentError("invalid labels", field_violations=problems)


def _not_found(execution_id: str) -> NotFoundError:
    return NotFoundError(
        f"execution executions/{execution_id} not found",
        reason="EXECUTION_NOT_FOUND",
        metadata={"execution": f"executions/{execution_id}"},
    )


def _state_conflict(message: str, state: int) -> FailedPreconditionError:
    return FailedPreconditionError(
        message,
        reason="EXECUTION_STATE_CONFLICT",
        metadata={"state": X.Name(state)},
    )


def _stale(task_id: str, why: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"lease is stale: {why}", reason="LEASE_STALE", metadata={"task_id": task_id}
    )


_MAX_BATCH = 256
_MAX_REPORTS = 100
_ACTIVE_ATTEMPT = frozenset({A.ATTEMPT_STATE_SCHEDULED, A.ATTEMPT_STATE_RUNNING})
"""Reports per ReportTasks call."""
_ControlRequest = (
    pb.CancelExecutionRequest | pb.RetryExecutionRequest | pb.CompensateExecutionRequest
)


@dataclass
class _Job:
    """A change waiting for the next group commit."""

    ids: list[str]
    change: Callable[[Txn], Any]
    skip_locked: bool
    must_exist: bool
    request: tuple[str, str] | None = None  # a start's (tenant, request id)
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _no_change(txn: Txn, unit: Unit, attempt: AttemptRow) -> None:
    raise AssertionError("a report without its change")


@dataclass(eq=False)
class _ReportCall:
    """One CompleteTask/FailTask report, checked, and what its transaction found."""

    task_id: str
    lease_id: str
    accepted_state: int
    """The attempt's state once this report was accepted (repeats match it)."""
    change: Callable[[Txn, Unit, AttemptRow], None] = _no_change
    """The transition, on the locked unit and its current attempt."""
    execution_id: str = ""
    inactive: bool = False
    """The attempt had already ended: a repeat, or stale."""
    outcome: FailOutcome = field(default_factory=lambda: FailOutcome(False, None))
    queue: str = ""
    ref: str = ""
    """Task queue and dispatch handle of the ended attempt, settled after commit."""

    def __post_init__(self) -> None:
        self.execution_id = self.task_id.split("/", 1)[0]


def _fail_response(outcome: FailOutcome) -> pb.FailTaskResponse:
    return pb.FailTaskResponse(
        will_retry=outcome.will_retry,
        next_attempt_time=timestamp(outcome.next_attempt_time),
    )


def _internal(error: BaseException) -> MaestroError:
    """A report's unexpected error as its caller sees it (no internals)."""
    log.error("report failed", exc_info=error)
    return InternalError("internal error; see server logs for the request id")


@dataclass
class Txn:
    """One transaction's view: its connection, the locked units and their plans."""

    conn: Connection
    units: dict[str, Unit]
    plans: dict[str, Plan]
    started: frozenset[tuple[str, str]] = frozenset()
    """The (tenant, request id) of this batch's starts that made an execution
    before it (one read for the whole batch)."""


class Scheduler:
    """Executions and task queues on one store and one dispatch backend."""

    def __init__(
        self,
        store: Store,
        plans: Plans,
        dispatch: Dispatch,
        metrics: SchedulerMetrics,
        *,
        lease_seconds: float,
        timer_interval: float,
        max_poll_wait: float,
        gate: PolicyGate | None,
        workers: WorkerAccess,
        on_pending_receipts: Callable[[], None] | None = None,
    ) -> None:
        """``gate`` None skips policy checks: only for domain unit tests; the
        server always passes one (and fails closed without the policy service).
        ``workers`` says who may use the worker protocol, on which queues.
        ``on_pending_receipts`` is called after a commit that left receipts to
        sign (once per commit; the receipt relay's ``kick``)."""
        self.store = store
        self.plans = plans
        self.dispatch = dispatch
        self.metrics = metrics
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = lease_seconds / 3
        self.timer_interval = timer_interval
        self.max_poll_wait = max_poll_wait
        self.engine = Orchestrator(lease_seconds=lease_seconds)
        self.gate = gate
        self.workers = workers
        self._on_pending_receipts = on_pending_receipts
        self._watchers: dict[str, set[asyncio.Queue[EventRow | None]]] = defaultdict(set)
        self._background: list[asyncio.Task[None]] = []
        self._kicks: set[asyncio.Task[Any]] = set()
        self._subworkflow_wake = asyncio.Event()
        self._jobs: list[_Job] = []
        self._batcher: asyncio.Task[None] | None = None
        self._queues: set[str] = {"default"}
        """Task queues seen (polled or scheduled on), for the depth gauge."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.dispatch.start()
        self._background = [
            asyncio.create_task(self._timer_loop(), name="scheduler-timers"),
            asyncio.create_task(self._subworkflow_loop(), name="scheduler-subworkflows"),
        ]

    async def stop(self) -> None:
        for task in [*self._background, *self._kicks]:
            task.cancel()
        await asyncio.gather(*self._background, *self._kicks, return_exceptions=True)
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.put_nowait(None)
        await self.dispatch.close()

    # -- transactions -----------------------------------------------------------------------

    async def _transact(
        self,
        execution_ids: Iterable[str],
        change: Callable[[Txn], R],
        *,
        skip_locked: bool = False,
        must_exist: bool = False,
        request: tuple[str, str] | None = None,
    ) -> R:
        """Runs ``change`` on the locked units in a write transaction, then
        tells pollers, streams and parents what happened.

        Group commit: changes submitted while a transaction runs are applied
        together in the next one (each to the same in-memory units, in
        submission order), so under load one commit and one batch of
        statements serve many transitions. A change that raises a
        ``MaestroError`` before touching anything fails alone; any other
        error fails the batch, whose changes are then retried one by one.
        """
        result: R = await self._submit(
            execution_ids, change, skip_locked=skip_locked, must_exist=must_exist, request=request
        )
        return result

    def _submit(
        self,
        execution_ids: Iterable[str],
        change: Callable[[Txn], Any],
        *,
        skip_locked: bool = False,
        must_exist: bool = False,
        request: tuple[str, str] | None = None,
    ) -> asyncio.Future[Any]:
        """Queues ``change`` for the next group commit (see :meth:`_transact`);
        changes submitted without an ``await`` in between share one commit.
        A start names its ``request`` (see :attr:`Txn.started`)."""
        job = _Job(sorted(set(execution_ids)), change, skip_locked, must_exist, request)
        self._jobs.append(job)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._run_jobs(), name="scheduler-group-commit")
        return job.future

    async def _run_jobs(self) -> None:
        while self._jobs:
            jobs, self._jobs = self._jobs[:_MAX_BATCH], self._jobs[_MAX_BATCH:]
            try:
                await self._commit(jobs)
            except Exception as exc:  # a failed batch: retry its jobs alone
                if len(jobs) == 1:
                    if not jobs[0].future.done():
                        jobs[0].future.set_exception(exc)
                    continue
                for job in jobs:
                    try:
                        await self._commit([job])
                    except Exception as alone:
                        if not job.future.done():
                            job.future.set_exception(alone)

    async def _commit(self, jobs: list[_Job]) -> None:
        ids = sorted({i for job in jobs for i in job.ids})
        skip_locked = all(job.skip_locked for job in jobs)

        def work(
            conn: Connection,
        ) -> tuple[
            list[tuple[bool, Any]], list[tuple[Unit, list[Any], int]], list[AttemptRow], int
        ]:
            units = self.store.load_units(
                conn, ids, skip_locked=skip_locked, with_active_attempts=True
            )
            plans: dict[str, Plan] = {}
            for unit in units.values():
                plan = self.plans.by_digest_in(conn, unit.execution.definition_digest)
                if plan is None:
                    raise RuntimeError(
                        f"plan {unit.execution.definition_digest} of "
                        f"{unit.execution.execution_id} is missing"
                    )
                plans[unit.execution.execution_id] = plan
            requests = {job.request for job in jobs if job.request is not None}
            started = self.store.started_requests(conn, requests) if requests else frozenset()
            txn = Txn(conn, units, plans, started)
            outcomes: list[tuple[bool, Any]] = []
            for job in jobs:
                missing = set(job.ids) - set(units)
                if job.must_exist and missing:
                    outcomes.append((False, _not_found(min(missing))))
                    continue
                try:
                    outcomes.append((True, job.change(txn)))
                except MaestroError as error:
                    outcomes.append((False, error))
            everything = list(txn.units.values())
            new = [u.attempts[t] for u in everything for t in u.new_attempts]
            self.dispatch.scheduled(conn, new)
            snapshot = [(u, list(u.events), u.execution.state) for u in everything]
            finishes = self.store.flush(conn, everything)
            return outcomes, snapshot, new, finishes

        outcomes, snapshot, new, finishes = await self.store.write(work)
        self._after_commit(snapshot, new)
        if finishes and self._on_pending_receipts is not None:
            self._on_pending_receipts()
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _after_commit(
        self, snapshot: Sequence[tuple[Unit, list[Any], int]], attempts: Sequence[AttemptRow]
    ) -> None:
        if attempts:
            self.dispatch.committed(attempts)
        for unit, events, state in snapshot:
            if not events:
                continue
            self.metrics.observe_events(unit.execution, events)
            for watcher in self._watchers.get(unit.execution.execution_id, ()):
                for event in events:
                    watcher.put_nowait(event)
            if state in TERMINAL_EXECUTION and unit.execution.parent_execution_id:
                self._subworkflow_wake.set()
        if any(
            s.type == SUBWORKFLOW and s.state == S.STEP_STATE_WAITING and not s.child_execution
            for unit, _, _ in snapshot
            for s in unit.steps.values()
        ):
            self._subworkflow_wake.set()

    async def _authorize(
        self,
        action: Action,
        resource: str,
        labels: Mapping[str, str],
        *,
        principal: context.Principal | None = None,
    ) -> list[str]:
        """Asks the policy service about ``principal`` (the caller's by
        default); returns the allowing decision's id (for receipts) or raises
        POLICY_DENIED / DEPENDENCY_UNAVAILABLE."""
        if self.gate is None:
            return []
        decision = await self.gate.check(
            action,
            resource=resource,
            classification=labels.get("classification"),
            labels=labels,
            principal=principal,
        )
        return [decision.decision_id] if decision.decision_id else []

    async def _authorize_on(self, action: Action, row: ExecutionRow) -> list[str]:
        labels = await self.labels_of(row)
        return await self._authorize(action, f"executions/{row.execution_id}", labels)

    # -- StartExecution ------------------------------------------------------------------------

    async def start_execution(
        self,
        request: pb.StartExecutionRequest,
        *,
        parent: tuple[str, str] | None = None,
        started_by: str | None = None,
        starter: context.Principal | None = None,
    ) -> pb.StartExecutionResponse:
        """Starts an execution (idempotently by request id). A child passes
        ``parent`` (execution id, step id), ``started_by`` (the parent's
        starter as recorded) and ``starter``, that principal: the child is
        started on the starter's permission, checked with the child's own
        labels, so a sub-workflow never runs what its starter could not."""
        workflow_id = parse_workflow(request.workflow)
        _require_request_id(request.request_id)
        if len(request.correlation_id) > 128:
            raise InvalidArgumentError(
                "correlation_id is at most 128 characters",
                field_violations=[FieldViolation("correlation_id", "at most 128 characters")],
            )
        _check_labels(request.labels)
        tenant = tenant_of()
        digest = request_hash(request)
        # A repeated request id is found by the write below, which returns the
        # first execution: a new one costs no read before its write. A repeat
        # whose workflow, inputs or permission no longer pass gets the first
        # execution too, if the caller may read it (or ALREADY_EXISTS).
        try:
            resolved, inputs, decisions = await self._admit(
                request, tenant, workflow_id, child=parent is not None, starter=starter
            )
        except MaestroError:
            existing = await self._replay_start(
                tenant, request.request_id, digest, check_read=parent is None
            )
            if existing is not None:
                return existing
            raise
        at = now()
        timeout = request.timeout.ToTimedelta() if request.HasField("timeout") else None
        if timeout is not None and timeout <= timedelta(0):
            raise InvalidArgumentError(
                "timeout must be positive",
                field_violations=[FieldViolation("timeout", "must be positive")],
            )
        execution_id = str(ULID())
        row = ExecutionRow(
            execution_id=execution_id,
            tenant=tenant,
            workflow_id=workflow_id,
            version=resolved.version,
            alias=resolved.alias,
            definition_digest=resolved.plan.digest,
            creator=subject_of(),
            state=X.EXECUTION_STATE_PENDING,
            inputs=dumps(inputs),
            outputs=None,
            error=None,
            create_time=at,
            start_time=None,
            end_time=None,
            update_time=at,
            expire_time=at + timeout if timeout else None,
            timeout_ms=int(timeout.total_seconds() * 1000) if timeout else None,
            request_id=request.request_id,
            request_hash=digest,
            correlation_id=request.correlation_id,
            parent_execution_id=parent[0] if parent else "",
            parent_step_id=parent[1] if parent else "",
            labels=dumps(dict(sorted(request.labels.items()))),
            last_event_sequence=0,
            completions=0,
            etag=ULID().hex[:16],
            started_by=(
                started_by
                if started_by is not None
                else receipts.principal_json(context.current().principal)
            ),
        )
        plan = resolved.plan
        created: list[Unit] = []

        def create(txn: Txn) -> None:
            # Runs inside a group commit; a batch retried alone runs it again,
            # so the unit is built here, fresh each time.
            created.clear()
            for other in txn.units.values():
                if other.is_new and (other.execution.tenant, other.execution.request_id) == (
                    tenant,
                    request.request_id,
                ):
                    return  # a concurrent duplicate in this very batch: replayed below
            if (tenant, request.request_id) in txn.started:
                return
            unit = Unit(replace(row), {}, is_new=True)
            unit.remember()
            self.engine.record_decisions(unit, decisions, before=0)
            self.engine.start(unit, plan, at)
            txn.units[execution_id] = unit
            created.append(unit)

        try:
            await self._transact([], create, request=(tenant, request.request_id))
        except IntegrityError:
            created.clear()  # another scheduler replica took the request id first
        if not created:
            existing = await self._replay_start(
                tenant, request.request_id, digest, check_read=parent is None
            )
            if existing is None:
                raise _not_found(execution_id)
            return existing
        unit = created[0]
        self.metrics.started(workflow_id)
        order = {step_id: i for i, step_id in enumerate(plan.order)}
        execution = views.execution_message(
            unit.execution, list(unit.steps.values()), list(unit.attempts.values()), order
        )
        log.info(
            "execution started",
            extra={
                "execution_id": execution_id,
                "workflow": workflow_id,
                "version": resolved.version,
            },
        )
        return pb.StartExecutionResponse(execution=execution, created=True)

    async def _admit(
        self,
        request: pb.StartExecutionRequest,
        tenant: str,
        workflow_id: str,
        *,
        child: bool,
        starter: context.Principal | None,
    ) -> tuple[Resolved, dict[str, Any], list[str]]:
        """The version a start runs, its inputs (valid against the version's
        schema) and the allowing decision ids. A caller's roles are checked
        before anything is resolved, so one who may not start learns nothing
        of versions or schemas; a child is checked for its ``starter`` (none:
        an execution from before starters were recorded, on its parent's
        authorisation)."""
        if not child:
            await self.authorize_collection(Action.EXECUTION_START, "workflows/-")
        resolved = await self.plans.resolve(tenant, workflow_id, request.version)
        inputs = json_format.MessageToDict(request.inputs) if request.HasField("inputs") else {}
        resolved.plan.validate_inputs(inputs)
        if child and starter is None:
            return resolved, inputs, []
        decisions = await self._authorize(
            Action.EXECUTION_START,
            f"workflows/{workflow_id}",
            resolved.plan.workflow_labels,
            principal=starter,
        )
        return resolved, inputs, decisions

    async def _replay_start(
        self, tenant: str, request_id: str, digest: str, *, check_read: bool
    ) -> pb.StartExecutionResponse | None:
        """The execution a repeated request id started (ALREADY_EXISTS if the
        request differs). The reply shows the execution, so a caller gets it
        only if it may read it (``check_read``; a child is started by its
        parent's step, not by a caller)."""
        row = await self.store.query(
            lambda conn: self.store.find_execution_by_request(conn, tenant, request_id)
        )
        if row is None:
            return None
        if row.request_hash != digest:
            raise AlreadyExistsError(
                f"request_id {request_id} was used for a different StartExecution request",
                metadata={"request_id": request_id},
            )
        if check_read:
            await self._authorize_on(Action.EXECUTION_READ, row)
        return pb.StartExecutionResponse(
            execution=await self.full_view(tenant, row.execution_id), created=False
        )

    # -- reads -------------------------------------------------------------------------------------

    async def full_view(self, tenant: str, execution_id: str) -> execution_pb2.Execution:
        row = await self.store.get_execution(tenant, execution_id)
        if row is None:
            raise _not_found(execution_id)
        steps, attempts = await self.store.get_timeline(execution_id)
        plan = await self.plans.by_digest(row.definition_digest)
        order = {step_id: i for i, step_id in enumerate(plan.order)} if plan else None
        return views.execution_message(row, steps, attempts, order)

    async def get_execution(self, request: pb.GetExecutionRequest) -> execution_pb2.Execution:
        execution_id = parse_execution_name(request.name)
        row = await self._readable(execution_id)
        if request.view == execution_pb2.EXECUTION_VIEW_BASIC:
            return views.execution_message(row)
        return await self.full_view(row.tenant, execution_id)

    async def _existing(self, execution_id: str) -> ExecutionRow:
        row = await self.store.get_execution(tenant_of(), execution_id)
        if row is None:
            raise _not_found(execution_id)
        return row

    async def _readable(self, execution_id: str) -> ExecutionRow:
        """The caller's tenant's execution, once the policy lets the caller
        read it (``execution.read``, with its workflow's classification and
        labels: a sensitive one needs a reason for access)."""
        row = await self._existing(execution_id)
        await self._authorize_on(Action.EXECUTION_READ, row)
        return row

    async def authorize_collection(self, action: Action, collection: str) -> None:
        """``action`` on a whole collection (``executions/-``): the caller's
        roles and tenant, before a list."""
        await self._authorize(action, collection, {})

    async def readable_rows(self, rows: Sequence[ExecutionRow]) -> list[ExecutionRow]:
        """The executions of a list page the caller may read."""
        return await self._readable_page(rows, {row.execution_id: row for row in rows})

    async def readable_tasks(self, rows: Sequence[HumanTaskRow]) -> list[HumanTaskRow]:
        """The human tasks of a list page whose executions the caller may
        read (a task is read as part of its execution)."""
        if self.gate is None:
            return list(rows)
        ids = {row.execution_id for row in rows}
        return await self._readable_page(rows, await self.store.get_executions(tenant_of(), ids))

    async def _readable_page(
        self, items: Sequence[_OfExecution], executions: Mapping[str, ExecutionRow]
    ) -> list[_OfExecution]:
        """The ``items`` whose execution (in ``executions``) the caller may
        read, one decision per distinct label set (``PolicyGate.readable``)."""
        if self.gate is None:
            return list(items)
        labels = {i: await self.labels_of(execution) for i, execution in executions.items()}
        kept = [item for item in items if item.execution_id in labels]
        return await self.gate.readable(
            Action.EXECUTION_READ, "executions/-", kept, lambda item: labels[item.execution_id]
        )

    async def labels_of(self, row: ExecutionRow) -> Mapping[str, str]:
        """The policy labels of an execution: its workflow's, from its plan."""
        plan = await self.plans.by_digest(row.definition_digest)
        return plan.workflow_labels if plan is not None else {}

    # -- cancel / retry ----------------------------------------------------------------------------

    async def _replayed(self, method: str, request_id: str, digest: str) -> str | None:
        if not request_id:
            return None
        tenant = tenant_of()
        found = await self.store.query(
            lambda conn: self.store.find_request(conn, tenant, method, request_id)
        )
        if found is None:
            return None
        if found[0] != digest:
            raise AlreadyExistsError(
                f"request_id {request_id} was used for a different {method} request",
                metadata={"request_id": request_id},
            )
        return found[1]

    async def _control(
        self,
        request: pb.CancelExecutionRequest
        | pb.RetryExecutionRequest
        | pb.CompensateExecutionRequest,
        action: Action,
        apply: Callable[[Unit, Plan, str], None],
    ) -> execution_pb2.Execution:
        """Cancel, retry and compensate: replay by request id, check the etag,
        ask policy, then ``apply(unit, plan, requested_by)`` in one transaction
        (it raises EXECUTION_STATE_CONFLICT or returns without changing anything
        when the execution is already where it was asked to go)."""
        execution_id = parse_execution_name(request.name)
        method = type(request).__name__.removesuffix("Request")
        tenant = tenant_of()
        digest = request_hash(request)
        if await self._replayed(method, request.request_id, digest):
            await self._readable(execution_id)  # a repeat shows the execution
            return await self.full_view(tenant, execution_id)
        decisions = await self._authorize_on(action, await self._existing(execution_id))
        by = subject_of()

        def change(txn: Txn) -> None:
            unit = txn.units[execution_id]
            _check_etag(request.etag, unit.execution.etag)
            before = unit.execution.last_event_sequence
            apply(unit, txn.plans[execution_id], by)
            self.engine.record_decisions(unit, decisions, before=before)
            if request.request_id:
                self.store.record_request(
                    txn.conn,
                    tenant=tenant,
                    method=method,
                    request_id=request.request_id,
                    request_hash=digest,
                    execution_id=execution_id,
                )

        await self._transact([execution_id], change, must_exist=True)
        return await self.full_view(tenant, execution_id)

    async def cancel_execution(self, request: pb.CancelExecutionRequest) -> execution_pb2.Execution:
        _check_reason(request.reason)

        def cancel(unit: Unit, plan: Plan, by: str) -> None:
            state = unit.execution.state
            if state in (X.EXECUTION_STATE_CANCELLING, X.EXECUTION_STATE_CANCELLED):
                return
            if state not in (X.EXECUTION_STATE_PENDING, X.EXECUTION_STATE_RUNNING):
                raise _state_conflict(
                    f"execution executions/{unit.execution.execution_id} is {X.Name(state)}; "
                    "only a pending or running execution can be cancelled",
                    state,
                )
            self.engine.cancel(unit, request.reason, by, now())

        return await self._control(request, Action.EXECUTION_CANCEL, cancel)

    async def retry_execution(self, request: pb.RetryExecutionRequest) -> execution_pb2.Execution:
        _require_request_id(request.request_id)

        def retry(unit: Unit, plan: Plan, by: str) -> None:
            state = unit.execution.state
            name = f"executions/{unit.execution.execution_id}"
            if state not in (
                X.EXECUTION_STATE_FAILED,
                X.EXECUTION_STATE_CANCELLED,
                X.EXECUTION_STATE_TIMED_OUT,
            ):
                raise _state_conflict(
                    f"execution {name} is {X.Name(state)}; only a failed, cancelled or "
                    "timed-out execution can be retried",
                    state,
                )
            if (loads(unit.execution.error) or {}).get("code") == "COMPENSATION_FAILED":
                raise _state_conflict(
                    f"execution {name} failed compensating; call CompensateExecution to "
                    "finish the compensation instead",
                    state,
                )
            ms = unit.execution.timeout_ms
            timeout = timedelta(milliseconds=ms) if ms else None
            self.engine.retry(unit, plan, by, timeout, now())

        return await self._control(request, Action.EXECUTION_RETRY, retry)

    async def compensate_execution(
        self, request: pb.CompensateExecutionRequest
    ) -> execution_pb2.Execution:
        _check_reason(request.reason)

        def compensate(unit: Unit, plan: Plan, by: str) -> None:
            state = unit.execution.state
            if state in (X.EXECUTION_STATE_COMPENSATING, X.EXECUTION_STATE_COMPENSATED):
                return
            if state not in (
                X.EXECUTION_STATE_SUCCEEDED,
                X.EXECUTION_STATE_FAILED,
                X.EXECUTION_STATE_CANCELLED,
                X.EXECUTION_STATE_TIMED_OUT,
            ):
                raise _state_conflict(
                    f"execution executions/{unit.execution.execution_id} is {X.Name(state)}; "
                    "cancel it before compensating",
                    state,
                )
            self.engine.compensate(unit, plan, request.reason, by, now())

        return await self._control(request, Action.EXECUTION_COMPENSATE, compensate)

    # -- events ----------------------------------------------------------------------------------

    async def list_events(
        self, request: pb.ListExecutionEventsRequest
    ) -> pb.ListExecutionEventsResponse:
        execution_id = parse_execution_name(request.name)
        if request.page_size < 0 or request.after_sequence < 0:
            raise InvalidArgumentError(
                "page_size and after_sequence must not be negative",
                field_violations=[FieldViolation("page_size", "must be >= 0")],
            )
        await self._readable(execution_id)
        query = paging.query_hash("events", tenant_of(), execution_id)
        after = request.after_sequence
        if request.page_token:
            key = paging.decode_page_token(request.page_token, query)
            if not key or not isinstance(key[0], int):
                raise paging.bad_page_token()
            after = max(after, key[0])
        size = paging.page_size(request.page_size, default=100, maximum=1000)
        rows = await self.store.list_events(execution_id, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return pb.ListExecutionEventsResponse(
            events=[views.event_message(r) for r in rows],
            next_page_token=paging.encode_page_token([rows[-1].sequence], query) if more else "",
        )

    async def stream_events(
        self, request: pb.StreamExecutionEventsRequest
    ) -> AsyncIterator[execution_pb2.ExecutionEvent]:
        execution_id = parse_execution_name(request.name)
        if request.after_sequence < 0:
            raise InvalidArgumentError(
                "after_sequence must not be negative",
                field_violations=[FieldViolation("after_sequence", "must be >= 0")],
            )
        await self._readable(execution_id)
        after = request.after_sequence
        # Subscribe first, then read the journal: events committed in between
        # arrive both ways and the sequence numbers drop the repeats. Events
        # committed by this process arrive pushed (no database read); a gap or
        # a quiet second (a change made by another scheduler replica) reads
        # the journal.
        watcher: asyncio.Queue[EventRow | None] = asyncio.Queue()
        self._watchers[execution_id].add(watcher)
        try:
            backlog = True
            while True:
                rows, backlog = await self._next_events(execution_id, after, watcher, backlog)
                if rows is None:
                    return  # shutting down: the client resumes elsewhere
                for row in rows:
                    yield views.event_message(row)
                    after = row.sequence
                    if request.follow and _is_terminal_event(row.type):
                        return
                if not request.follow and not backlog:
                    return
        finally:
            self._watchers[execution_id].discard(watcher)
            if not self._watchers[execution_id]:
                self._watchers.pop(execution_id, None)

    async def _next_events(
        self,
        execution_id: str,
        after: int,
        watcher: asyncio.Queue[EventRow | None],
        backlog: bool,
    ) -> tuple[list[EventRow] | None, bool]:
        """The next events after ``after`` and whether more wait in the journal:
        read from it when behind, else the next pushed event."""
        if backlog:
            rows = await self.store.list_events(execution_id, after, 500)
            return rows, len(rows) == 500
        try:
            async with asyncio.timeout(1.0):  # not wait_for: see periodic.woken
                pushed = await watcher.get()
        except TimeoutError:
            return [], True
        if pushed is None:
            return None, False
        if pushed.sequence <= after:
            return [], False
        if pushed.sequence > after + 1:
            return [], True
        return [pushed], False

    # -- task queue --------------------------------------------------------------------------------

    async def poll_tasks(
        self, request: pb.PollTasksRequest, *, abandoned: Callable[[], bool] = lambda: False
    ) -> list[task_pb2.StepTask]:
        queue = request.task_queue or "default"
        self.workers.check(queue)
        if not _QUEUE.match(queue):
            raise InvalidArgumentError(
                f"task_queue {queue!r} is not a valid queue name",
                field_violations=[FieldViolation("task_queue", "lowercase, digits, '-', '.'")],
            )
        if not request.worker_identity or len(request.worker_identity) > 256:
            raise InvalidArgumentError(
                "worker_identity is required (at most 256 characters)",
                field_violations=[FieldViolation("worker_identity", "required")],
            )
        if not 0 <= request.max_tasks <= 100:
            raise InvalidArgumentError(
                "max_tasks must be within 1-100",
                field_violations=[FieldViolation("max_tasks", "1-100")],
            )
        limit = request.max_tasks or 1
        self._queues.add(queue)
        wait = min(request.wait.ToTimedelta().total_seconds(), self.max_poll_wait)
        deadline = asyncio.get_running_loop().time() + max(0.0, wait)
        while not abandoned():
            candidates = await self.dispatch.candidates(queue, limit)
            if candidates:
                tasks = await self._lease(queue, request.worker_identity, candidates)
                if tasks:
                    self.metrics.polled(queue, len(tasks))
                    return tasks
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                self.metrics.polled(queue, 0)
                return []
            await self.dispatch.wait(queue, remaining)
        return []

    async def _lease(
        self, queue: str, worker: str, candidates: Sequence[tuple[str, str, str]]
    ) -> list[task_pb2.StepTask]:
        seen: dict[str, tuple[str, str]] = {}
        for task_id, execution_id, ref in candidates:
            seen.setdefault(task_id, (execution_id, ref))
        leased: list[tuple[AttemptRow, ExecutionRow]] = []
        settle: list[str] = []
        live: list[tuple[str, datetime]] = []

        def change(txn: Txn) -> None:
            at = now()
            for task_id, (execution_id, ref) in seen.items():
                unit = txn.units.get(execution_id)
                if unit is None:
                    continue  # locked by another transaction: someone else has it
                attempt = unit.attempts.get(task_id)
                if attempt is None:
                    settle.append(ref)  # finished meanwhile
                    continue
                expired = (
                    attempt.state == A.ATTEMPT_STATE_RUNNING
                    and attempt.lease_expire_time is not None
                    and attempt.lease_expire_time < at
                )
                visible = attempt.state == A.ATTEMPT_STATE_SCHEDULED and attempt.visible_time <= at
                if not (expired or visible):
                    if attempt.lease_expire_time is not None:
                        live.append((ref, attempt.lease_expire_time))
                    continue
                if expired:
                    self.metrics.lease_expired(queue)
                if not _may_run(unit, attempt):
                    self.engine.cancel_attempt(unit, attempt, at)
                    self.engine.finish_cancel_if_idle(unit, at)
                    settle.append(ref)
                    continue
                if attempt.deadline is not None and attempt.deadline < at:
                    self.engine.timed_out(unit, txn.plans[execution_id], attempt, at)
                    settle.append(ref)
                    continue
                self.engine.leased(unit, attempt, worker, ULID().hex, at)
                attempt.dispatch_ref = ref
                self.metrics.dispatched(queue, attempt, at)
                leased.append((attempt, unit.execution))

        await self._transact(
            {e for e, _ in seen.values()}, change, skip_locked=self.dispatch.skip_locked
        )
        await self.dispatch.settled(queue, settle)
        if live:
            await self.dispatch.deferred(queue, live)
        return [views.task_message(a, e, self.heartbeat_seconds) for a, e in leased]

    async def heartbeat(self, request: pb.HeartbeatTaskRequest) -> pb.HeartbeatTaskResponse:
        self.workers.check()
        _require_task(request.task_id, request.lease_id)
        at = now()
        expire = at + timedelta(seconds=self.lease_seconds)
        progress = None
        if request.HasField("progress"):
            progress = dumps(json_format.MessageToDict(request.progress))
            if len(progress) > 64 * 1024:
                raise InvalidArgumentError(
                    "progress is at most 64 KiB as JSON",
                    field_violations=[FieldViolation("progress", "at most 64 KiB")],
                )
        state = await self.store.heartbeat(request.task_id, request.lease_id, at, expire, progress)
        if state is None:
            raise _stale(
                request.task_id, "the lease expired or was superseded, or the attempt ended"
            )
        return pb.HeartbeatTaskResponse(
            lease_expire_time=timestamp(expire),
            cancel_requested=state == X.EXECUTION_STATE_CANCELLING,
        )

    async def complete_task(self, request: pb.CompleteTaskRequest) -> None:
        """CompleteTask: one report (see :meth:`_report_all`)."""
        self.workers.check()
        result = (await self._report_all([self._completion(request)]))[0]
        if isinstance(result, BaseException):
            raise result

    async def fail_task(self, request: pb.FailTaskRequest) -> pb.FailTaskResponse:
        """FailTask: one report (see :meth:`_report_all`)."""
        self.workers.check()
        result = (await self._report_all([self._failure(request)]))[0]
        if isinstance(result, BaseException):
            raise result
        return _fail_response(result)

    async def report_tasks(self, request: pb.ReportTasksRequest) -> pb.ReportTasksResponse:
        """ReportTasks: each report exactly a CompleteTask or FailTask,
        answered on its own, all submitted to the same group commit."""
        self.workers.check()
        reports = request.reports
        if not 1 <= len(reports) <= _MAX_REPORTS:
            raise InvalidArgumentError(
                f"reports must hold 1-{_MAX_REPORTS} reports",
                field_violations=[FieldViolation("reports", f"1-{_MAX_REPORTS} reports")],
            )
        calls: list[_ReportCall | MaestroError] = []
        seen: set[str] = set()
        for index, report in enumerate(reports):
            kind = report.WhichOneof("result")
            if kind is None:
                raise InvalidArgumentError(
                    f"reports[{index}] has neither complete nor fail",
                    field_violations=[FieldViolation(f"reports[{index}]", "complete or fail")],
                )
            task_id = report.complete.task_id if kind == "complete" else report.fail.task_id
            if task_id in seen:
                raise InvalidArgumentError(
                    f"reports[{index}] repeats task_id {task_id!r}",
                    field_violations=[FieldViolation(f"reports[{index}]", "task_id repeated")],
                )
            seen.add(task_id)
            try:
                calls.append(
                    self._completion(report.complete)
                    if kind == "complete"
                    else self._failure(report.fail)
                )
            except MaestroError as invalid:  # this report's own validation
                calls.append(invalid)
        valid = [c for c in calls if isinstance(c, _ReportCall)]
        outcomes = iter(await self._report_all(valid))
        response = pb.ReportTasksResponse()
        for report, call in zip(reports, calls, strict=True):
            kind = report.WhichOneof("result")
            item = response.results.add(
                task_id=report.complete.task_id if kind == "complete" else report.fail.task_id
            )
            result = call if isinstance(call, MaestroError) else next(outcomes)
            if isinstance(result, BaseException):
                refused = result if isinstance(result, MaestroError) else _internal(result)
                item.code = int(refused.code)
                item.reason = refused.reason
                item.message = refused.message
                item.metadata.update(refused.metadata)
            elif kind == "fail":
                item.fail.CopyFrom(_fail_response(result))
        return response

    def _completion(self, request: pb.CompleteTaskRequest) -> _ReportCall:
        """Checks a CompleteTask report; the transition it will make."""
        _require_task(request.task_id, request.lease_id)
        output = json_format.MessageToDict(request.output) if request.HasField("output") else {}
        if request.output.ByteSize() > MAX_OUTPUT_BYTES:
            raise InvalidArgumentError(
                "output is larger than 4 MiB",
                field_violations=[FieldViolation("output", "at most 4 MiB serialized")],
            )
        call = _ReportCall(request.task_id, request.lease_id, A.ATTEMPT_STATE_SUCCEEDED)

        def change(txn: Txn, unit: Unit, attempt: AttemptRow) -> None:
            self.engine.completed(unit, txn.plans[call.execution_id], attempt, output, now())
            self.metrics.attempt_finished(attempt, "succeeded")

        call.change = change
        return call

    def _failure(self, request: pb.FailTaskRequest) -> _ReportCall:
        """Checks a FailTask report; the transition it will make."""
        _require_task(request.task_id, request.lease_id)
        if not request.code:
            raise InvalidArgumentError(
                "code is required", field_violations=[FieldViolation("code", "required")]
            )
        error: dict[str, Any] = {
            "code": request.code,
            "message": request.message[:4096],
            "non_retryable": request.non_retryable,
        }
        if request.HasField("details"):
            error["details"] = json_format.MessageToDict(request.details)
        call = _ReportCall(request.task_id, request.lease_id, A.ATTEMPT_STATE_FAILED)

        def change(txn: Txn, unit: Unit, attempt: AttemptRow) -> None:
            call.outcome = self.engine.failed(
                unit, txn.plans[call.execution_id], attempt, error, now()
            )
            self.metrics.attempt_finished(attempt, "failed")

        call.change = change
        return call

    @staticmethod
    def _current_attempt(unit: Unit | None, task_id: str, lease_id: str) -> AttemptRow | None:
        if unit is None:
            raise _stale(task_id, "unknown task")
        attempt = unit.attempts.get(task_id)
        if attempt is None:
            return None  # not active: _report_all decides between repeat and stale
        if attempt.state != A.ATTEMPT_STATE_RUNNING or attempt.lease_id != lease_id:
            raise _stale(task_id, "the lease was superseded by another delivery")
        if attempt.deadline is not None and attempt.deadline < now():
            raise _stale(task_id, "the attempt passed its deadline")
        return attempt

    async def _report_all(self, calls: Sequence[_ReportCall]) -> list[FailOutcome | BaseException]:
        """Runs Complete/Fail transitions, all submitted to the same group
        commit; per call its outcome or its error. The one code path of
        CompleteTask, FailTask and ReportTasks.

        An attempt that is no longer active is either an accepted repeat (same
        lease, same outcome: the FailOutcome it had) or stale."""
        pending: list[asyncio.Future[Any] | None] = []
        for call in calls:
            if not _EXECUTION_ID.match(call.execution_id):
                pending.append(None)
                continue
            pending.append(self._submit([call.execution_id], self._guarded(call)))
        results: list[FailOutcome | BaseException] = []
        settle: dict[str, list[str]] = defaultdict(list)
        for call, future in zip(calls, pending, strict=True):
            try:
                if future is None:
                    raise _stale(call.task_id, "unknown task")
                await future
                if call.inactive:
                    results.append(await self._repeat(call))
                    continue
                settle[call.queue].append(call.ref)
                results.append(call.outcome)
            except Exception as error:  # answered per report
                results.append(error)
        for queue, refs in settle.items():
            await self.dispatch.settled(queue, refs)
        return results

    def _guarded(self, call: _ReportCall) -> Callable[[Txn], None]:
        def guarded(txn: Txn) -> None:
            call.inactive = False  # a batch that failed is retried job by job
            unit = txn.units.get(call.execution_id)
            ended = unit is not None and (
                call.task_id not in unit.attempts
                # ended earlier in this same group commit (a concurrent repeat)
                or unit.attempts[call.task_id].state not in _ACTIVE_ATTEMPT
            )
            if ended:
                call.inactive = True
                return
            attempt = self._current_attempt(unit, call.task_id, call.lease_id)
            assert unit is not None and attempt is not None
            call.change(txn, unit, attempt)
            call.queue, call.ref = attempt.task_queue, attempt.dispatch_ref

        return guarded

    async def _repeat(self, call: _ReportCall) -> FailOutcome:
        """The answer to a report of an attempt that already ended: its first
        outcome if this is a repeat of the accepted report, else LEASE_STALE."""
        task_id = call.task_id
        rows = await self.store.query(lambda conn: self.store.attempt_rows(conn, [task_id]))
        row = rows[0] if rows else None
        if row is None:
            raise _stale(task_id, "unknown task")
        if row.lease_id == call.lease_id and row.state == call.accepted_state:
            steps, _ = await self.store.get_timeline(call.execution_id)
            step = next((s for s in steps if s.step_id == row.step_id), None)
            if step is not None and step.attempt_count > row.attempt and step.next_attempt_time:
                return FailOutcome(True, step.next_attempt_time)
            return FailOutcome(False, None)
        if row.state == A.ATTEMPT_STATE_CANCELLED:
            raise _stale(task_id, "the execution was cancelled or ended")
        raise _stale(task_id, f"the attempt already ended ({A.Name(row.state)})")

    # -- human tasks -----------------------------------------------------------------------------

    async def get_human_task(self, request: pb.GetHumanTaskRequest) -> execution_pb2.HumanTask:
        task_id = parse_human_task_name(request.name)
        row = await self.store.get_human_task(tenant_of(), task_id)
        if row is None:
            raise NotFoundError(
                f"human task {request.name} not found", reason="HUMAN_TASK_NOT_FOUND"
            )
        await self._readable(row.execution_id)  # a task is read as part of its execution
        return views.human_task_message(row)

    async def complete_human_task(
        self, request: pb.CompleteHumanTaskRequest
    ) -> execution_pb2.HumanTask:
        task_id = parse_human_task_name(request.name)
        _require_request_id(request.request_id)
        tenant = tenant_of()
        principal = context.current().principal
        digest = request_hash(request)
        row = await self.store.get_human_task(tenant, task_id)
        if row is None:
            raise NotFoundError(
                f"human task {request.name} not found", reason="HUMAN_TASK_NOT_FOUND"
            )
        if row.request_id == request.request_id and row.state == 3:
            if row.request_hash != digest:
                raise AlreadyExistsError(
                    f"request_id {request.request_id} was used for a different request",
                    metadata={"request_id": request.request_id},
                )
            await self._readable(row.execution_id)  # a repeat shows the task
            return views.human_task_message(row)
        if row.state not in (1, 2):
            raise _task_closed(request.name, row.state)
        execution = await self.store.get_execution(tenant, row.execution_id)
        decisions: list[str] = []
        if execution is not None:
            decisions = await self._authorize_on(Action.HUMAN_TASK_COMPLETE, execution)
        assignees = loads(row.assignees) or []
        allowed = {principal.subject, *(f"role:{r}" for r in principal.roles)}
        if assignees and not allowed & set(assignees) and "admin" not in principal.roles:
            raise PermissionDeniedError(
                f"{principal.subject or 'anonymous'} is not an assignee of {request.name}",
                reason="POLICY_DENIED",
                metadata={"assignees": ",".join(assignees)},
            )
        result = json_format.MessageToDict(request.result) if request.HasField("result") else {}
        schema = loads(row.form_schema) or {}
        errors = sorted(
            jsonschema.Draft202012Validator(schema).iter_errors(result), key=lambda e: list(e.path)
        )
        if errors:
            raise InvalidArgumentError(
                f"result does not satisfy the form schema: {errors[0].message}",
                reason="INPUT_SCHEMA_VIOLATION",
                field_violations=[
                    FieldViolation("result" + "".join(f".{p}" for p in e.path), e.message)
                    for e in errors[:20]
                ],
            )
        by = principal.subject or "anonymous"

        def change(txn: Txn) -> None:
            unit = txn.units[row.execution_id]
            self.store.load_human_task(txn.conn, unit, task_id)
            task = unit.human_tasks[task_id]
            _check_etag(request.etag, task.etag)
            if task.state not in (1, 2):
                raise _task_closed(request.name, task.state)
            task.request_id = request.request_id
            task.request_hash = digest
            before = unit.execution.last_event_sequence
            self.engine.complete_human_task(
                unit, txn.plans[row.execution_id], task, result=result, by=by, at=now()
            )
            self.engine.record_decisions(unit, decisions, before=before, step_id=task.step_id)

        await self._transact([row.execution_id], change, must_exist=True)
        done = await self.store.get_human_task(tenant, task_id)
        assert done is not None
        return views.human_task_message(done)

    # -- timers ------------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_depth = 0.0
        while True:
            await asyncio.sleep(self.timer_interval)
            try:
                await self.run_timers()
                if loop.time() >= next_depth:
                    next_depth = loop.time() + 1.0
                    for queue in sorted(self._queues):
                        self.metrics.queue_depth.labels(queue).set(await self.dispatch.depth(queue))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer round failed; retrying next round")

    async def run_timers(self) -> None:
        """Fires due delays, times out attempts past their deadline, expires
        executions past theirs, and ends leases that expired on executions no
        longer running."""
        at = now()
        due = await self.store.due_work(at, 200)
        ids = set().union(*due.values())
        for execution_id in sorted(ids):
            await self._run_timers_of(execution_id)

    async def _run_timers_of(self, execution_id: str) -> None:
        def change(txn: Txn) -> None:
            unit = txn.units.get(execution_id)
            if unit is None:
                return
            plan = txn.plans[execution_id]
            when = now()
            self.engine.expire(unit, when)
            self.engine.fire_timers(unit, plan, when)
            for attempt in list(unit.attempts.values()):
                if attempt.state != A.ATTEMPT_STATE_RUNNING:
                    continue
                if attempt.deadline is not None and attempt.deadline < when:
                    self.engine.timed_out(unit, plan, attempt, when)
                    self.metrics.attempt_finished(attempt, "timed_out")
                elif (
                    not _may_run(unit, attempt)
                    and attempt.lease_expire_time is not None
                    and attempt.lease_expire_time < when
                ):
                    self.engine.cancel_attempt(unit, attempt, when)
            self.engine.finish_cancel_if_idle(unit, when)

        await self._transact([execution_id], change)

    # -- sub-workflows ----------------------------------------------------------------------

    async def _subworkflow_loop(self) -> None:
        while True:
            await woken(self._subworkflow_wake, 1.0)
            self._subworkflow_wake.clear()
            try:
                await self.run_subworkflows()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sub-workflow round failed; retrying next round")

    async def run_subworkflows(self) -> None:
        """Starts the children of waiting SUBWORKFLOW steps and finishes the
        steps whose child ended."""
        for parent_id, step_id, child in await self.store.waiting_subworkflows(200):
            try:
                if not child:
                    await self._start_child(parent_id, step_id)
                    continue
                child_id = child.removeprefix("executions/")
                child_row = await self.store.execution_by_id(child_id)
                if child_row is None or child_row.state not in TERMINAL_EXECUTION:
                    continue
                await self._finish_child(parent_id, step_id, child_row)
            except MaestroError as exc:  # e.g. the policy service is down: next round
                log.warning(
                    "sub-workflow step not advanced; retrying next round: %s",
                    exc.message,
                    extra={"execution_id": parent_id, "step_id": step_id, "reason": exc.reason},
                )

    async def _finish_child(self, parent_id: str, step_id: str, child: ExecutionRow) -> None:
        def change(txn: Txn) -> None:
            unit = txn.units.get(parent_id)
            if unit is None or unit.execution.state != X.EXECUTION_STATE_RUNNING:
                return
            step = unit.steps.get(step_id)
            if step is None:
                return
            self.engine.child_finished(
                unit,
                txn.plans[parent_id],
                step,
                state=child.state,
                outputs=loads(child.outputs) or {},
                error=loads(child.error),
                at=now(),
            )

        await self._transact([parent_id], change)

    async def _start_child(self, parent_id: str, step_id: str) -> None:
        parent = await self.store.execution_by_id(parent_id)
        if parent is None or parent.state != X.EXECUTION_STATE_RUNNING:
            return
        plan = await self.plans.by_digest(parent.definition_digest)
        if plan is None:
            return
        spec = plan.steps.get(step_id) or (
            plan.steps[step_id.split("[", 1)[0]].body if "[" in step_id else None
        )
        if spec is None:
            return
        steps, _ = await self.store.get_timeline(parent_id)
        step = next((s for s in steps if s.step_id == step_id), None)
        if step is None:
            return
        request = pb.StartExecutionRequest(
            workflow=spec.subworkflow,
            version=spec.subworkflow_version,
            request_id=f"{parent_id}/{step_id}/{step.attempt_count + 1}",
            correlation_id=parent.correlation_id,
        )
        request.inputs.update(loads(step.input) or {})
        principal = context.Principal(tenant=parent.tenant, subject=f"system:{parent.creator}")
        ctx = replace(context.current(), principal=principal, request_id=request.request_id)
        error: dict[str, Any] | None = None
        child_id = ""
        with context.bind(ctx):
            try:
                started = await self.start_execution(
                    request,
                    parent=(parent_id, step_id),
                    started_by=parent.started_by,
                    # Executions from before starters were recorded run their
                    # children on the parent's authorisation, as they always did.
                    starter=(
                        receipts.started_by(parent.tenant, parent.creator, parent.started_by)
                        if parent.started_by
                        else None
                    ),
                )
                child_id = started.execution.name.removeprefix("executions/")
            except (NotFoundError, InvalidArgumentError) as exc:
                error = {"code": "SUBWORKFLOW_FAILED", "message": exc.message}
            except PermissionDeniedError as exc:  # the starter may not run the child
                error = {"code": "SUBWORKFLOW_DENIED", "message": exc.message}

        def change(txn: Txn) -> None:
            unit = txn.units.get(parent_id)
            if unit is None or unit.execution.state != X.EXECUTION_STATE_RUNNING:
                return
            row = unit.steps.get(step_id)
            if row is None or row.state != S.STEP_STATE_WAITING or row.child_execution:
                return
            if error is not None:
                self.engine.step_failed(unit, row, now(), {**error, "non_retryable": True})
            else:
                row.attempt_count += 1
                self.engine.child_started(unit, row, child_id)

        await self._transact([parent_id], change)
        if child_id:
            self._subworkflow_wake.set()


def _may_run(unit: Unit, attempt: AttemptRow) -> bool:
    """Whether the execution's state lets this attempt be leased or go on."""
    state = unit.execution.state
    if attempt.kind == task_pb2.TASK_KIND_COMPENSATE:
        return state == X.EXECUTION_STATE_COMPENSATING
    return state == X.EXECUTION_STATE_RUNNING


def _check_etag(expected: str, actual: str) -> None:
    if expected and expected != actual:
        raise AbortedError(
            "etag does not match: the resource changed since it was read",
            reason="ETAG_MISMATCH",
            metadata={"etag": actual},
        )


def _task_closed(name: str, state: int) -> FailedPreconditionError:
    label = execution_pb2.HumanTaskState.Name(state)
    return FailedPreconditionError(
        f"human task {name} is {label}",
        reason="EXECUTION_STATE_CONFLICT",
        metadata={"state": label},
    )


def _check_reason(reason: str) -> None:
    if len(reason) > 1024:
        raise InvalidArgumentError(
            "reason is at most 1024 characters",
            field_violations=[FieldViolation("reason", "at most 1024 characters")],
        )


def _require_task(task_id: str, lease_id: str) -> None:
    if not task_id or not lease_id:
        raise InvalidArgumentError(
            "task_id and lease_id are required",
            field_violations=[FieldViolation("task_id", "required")],
        )


def _is_terminal_event(kind: int) -> bool:
    return kind in (
        execution_pb2.EVENT_TYPE_EXECUTION_SUCCEEDED,
        execution_pb2.EVENT_TYPE_EXECUTION_FAILED,
        execution_pb2.EVENT_TYPE_EXECUTION_CANCELLED,
        execution_pb2.EVENT_TYPE_EXECUTION_TIMED_OUT,
        execution_pb2.EVENT_TYPE_EXECUTION_COMPENSATED,
    )
