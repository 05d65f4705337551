"""Policy domain logic: decisions, the decision log, the bundle. Imports no grpc.

Decide validates the question, evaluates it against the active bundle (or
reuses the evaluation of the same input at the same revision), writes the
decision to the log (durably, by default, before answering) and returns it.
Denials are answers, not errors. Every failure is on the side of denying: no
bundle is FAILED_PRECONDITION, a broken policy a denial with POLICY_ERROR.

The service's own RPCs (reading the log, the bundle status, reloading) are
themselves checked against the policy, for the principal of the call, and
those decisions are logged too (enforcer ``policy``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from ulid import ULID

from maestro.common.v1 import principal_pb2
from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
)
from maestro.runtime.policy import Action, PolicyDecision, denial_error, principal_message
from maestro.services.policy.bundles import ActiveBundle, BundleManager, BundleStatus, ReloadResult
from maestro.services.policy.decision_log import DecisionLog
from maestro.services.policy.engine import Verdict
from maestro.services.policy.metrics import OTHER_ACTION, PolicyMetrics
from maestro.services.policy.redaction import DEFAULT_SECRET_KEYS, Redactor
from maestro.services.policy.store import DecisionRow, DecisionStore, LoggedRequest

SELF = "policy"
"""The enforcer name of the decisions this service makes about its own RPCs."""
MAX_CONTEXT_BYTES = 64 * 1024
MAX_BATCH = 100
_LIMITS = {
    "action": 128,
    "request_id": 64,
    "principal.tenant": 255,
    "principal.subject": 255,
    "resource.type": 64,
    "resource.name": 1024,
    "resource.tenant": 255,
}
_CLASSIFICATION_NAMES = {
    number: name.removeprefix("CLASSIFICATION_").lower()
    for name, number in principal_pb2.Classification.items()
    if number
}


@dataclass(frozen=True, slots=True)
class Question:
    """A validated DecideRequest and what it takes to decide and log it."""

    request: pb.DecideRequest
    document: dict[str, Any]
    request_hash: str
    context: dict[str, Any]
    enforcer: str


class _Lru:
    """A small LRU map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: Any) -> None:
        if self._size <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class PolicyService:
    """Decisions against the active bundle, logged."""

    def __init__(
        self,
        bundles: BundleManager,
        store: DecisionStore,
        decision_log: DecisionLog,
        metrics: PolicyMetrics,
        *,
        decision_cache_size: int = 10_000,
        idempotency_cache_size: int = 10_000,
        platform_tenant: str = "default",
    ) -> None:
        """``platform_tenant`` owns the bundle (it serves every tenant): only
        its principals may read its status or reload it."""
        self.bundles = bundles
        self.platform_tenant = platform_tenant
        self.store = store
        self._log = decision_log
        self._metrics = metrics
        self._evaluations = _Lru(decision_cache_size)
        self._recent = _Lru(idempotency_cache_size)
        self._redactor = Redactor()
        self._actions: frozenset[str] = frozenset()
        # Open WatchBundleRevision streams: each holds its newest unsent bundle;
        # None ends the stream (shutdown).
        self._watches: set[asyncio.Queue[ActiveBundle | None]] = set()
        self._draining = False
        bundles.on_activate(self._activated)
        if bundles.active is not None:
            self._activated(bundles.active)

    def _activated(self, bundle: ActiveBundle) -> None:
        # Evaluations remembered under the previous revision no longer hold.
        self._evaluations.clear()
        keys = bundle.config("maestro", "config", "redaction", "secret_keys")
        self._redactor = Redactor(keys if isinstance(keys, list) else DEFAULT_SECRET_KEYS)
        actions = bundle.config("maestro", "catalog", "actions")
        self._actions = frozenset(actions) if isinstance(actions, Mapping) else frozenset()
        self._metrics.revision(bundle.revision)

    # -- Decide ---------------------------------------------------------------------

    async def decide(self, request: pb.DecideRequest) -> decision_pb2.Decision:
        """Evaluates and logs one question (see ``PolicyService.Decide``).

        Raises:
            UnauthenticatedError: the caller is not a Maestro service.
            InvalidArgumentError: a required field is missing or too long.
            AlreadyExistsError: ``request_id`` was used for another question.
            FailedPreconditionError: POLICY_BUNDLE_INVALID, no bundle has loaded.
            UnavailableError: the decision log cannot be written.
        """
        enforcer = _enforcer()
        question = self._question(request, enforcer, "")
        return (await self._decide_all([question]))[0]

    async def batch_decide(self, request: pb.BatchDecideRequest) -> list[decision_pb2.Decision]:
        """Evaluates and logs up to 100 questions, all validated first."""
        enforcer = _enforcer()
        if not request.requests:
            raise _invalid("requests", "at least one question is required")
        if len(request.requests) > MAX_BATCH:
            raise _invalid(
                "requests", f"at most {MAX_BATCH} questions, got {len(request.requests)}"
            )
        violations: list[FieldViolation] = []
        questions: list[Question] = []
        for i, item in enumerate(request.requests):
            try:
                questions.append(self._question(item, enforcer, f"requests[{i}]."))
            except InvalidArgumentError as exc:
                violations.extend(exc.field_violations)
        seen: dict[str, int] = {}
        for i, question in enumerate(questions):
            first = seen.setdefault(question.request.request_id, i)
            if first != i and questions[first].request_hash != question.request_hash:
                violations.append(
                    FieldViolation(f"requests[{i}].request_id", f"also used by requests[{first}]")
                )
        if violations:
            raise InvalidArgumentError(
                f"{len(violations)} invalid field(s) in BatchDecide", field_violations=violations
            )
        return await self._decide_all(questions)

    async def _decide_all(self, questions: Sequence[Question]) -> list[decision_pb2.Decision]:
        bundle = self.bundles.active
        if bundle is None:
            raise FailedPreconditionError(
                "no valid policy bundle has loaded: every decision is refused",
                reason="POLICY_BUNDLE_INVALID",
                metadata={"source": str(self.bundles.source)},
            )
        results: list[decision_pb2.Decision | None] = [None] * len(questions)
        waiting = []
        made: dict[str, decision_pb2.Decision] = {}
        for i, question in enumerate(questions):
            remembered = self._remembered(question)
            if remembered is not None:
                results[i] = remembered
                continue
            request_id = question.request.request_id
            if request_id in made:  # the same question twice in one batch
                results[i] = made[request_id]
                continue
            decision = self._evaluate(bundle, question)
            row = _row(question, decision)
            future = self._log.append(row)
            made[request_id] = decision
            results[i] = decision
            if future is not None:
                waiting.append((i, question, future))
            else:
                self._recent.put(request_id, (question.request_hash, decision))
        for i, question, future in waiting:
            logged = await future
            answer = results[i] if logged is None else _first_answer(question, logged)
            results[i] = answer
            self._recent.put(question.request.request_id, (question.request_hash, answer))
        return [d for d in results if d is not None]

    def _remembered(self, question: Question) -> decision_pb2.Decision | None:
        recent = self._recent.get(question.request.request_id)
        if recent is None:
            return None
        request_hash, decision = recent
        if request_hash != question.request_hash:
            raise _reused(question.request.request_id)
        return decision  # type: ignore[no-any-return]

    def _evaluate(self, bundle: ActiveBundle, question: Question) -> decision_pb2.Decision:
        started = time.perf_counter_ns()
        # Keyed by the input's digest: inputs go up to 64 KiB each.
        verdict: Verdict | None = self._evaluations.get(question.request_hash)
        cached = verdict is not None
        if verdict is None:
            verdict = bundle.policy.evaluate(question.document)
            self._evaluations.put(question.request_hash, verdict)
        elapsed = time.perf_counter_ns() - started
        request = question.request
        action = request.action if request.action in self._actions else OTHER_ACTION
        self._metrics.decided(action, verdict.allow, elapsed / 1e9)
        redacted = self._redactor.redact(question.context)
        decision = decision_pb2.Decision(
            name=f"decisions/{ULID()}",
            allow=verdict.allow,
            reasons=[
                decision_pb2.Reason(code=r.code, message=r.message, rule=r.rule)
                for r in verdict.reasons
            ],
            bundle_revision=bundle.revision,
            principal=request.principal,
            action=request.action,
            resource=request.resource,
            redacted_paths=redacted.paths,
            cached=cached,
            enforcer=question.enforcer,
        )
        if verdict.appeal is not None:
            decision.appeal.path = verdict.appeal.path
            decision.appeal.grantable_by_roles.extend(verdict.appeal.grantable_by_roles)
            decision.appeal.grantable_by_subjects.extend(verdict.appeal.grantable_by_subjects)
            decision.appeal.instructions = verdict.appeal.instructions
        if redacted.paths:
            decision.context.update(redacted.value)
        elif request.HasField("context"):
            decision.context.CopyFrom(request.context)
        # Microseconds, as the log stores it: filters on create_time see what was returned.
        decision.create_time.FromDatetime(datetime.now(UTC))
        decision.evaluation_duration.FromNanoseconds(elapsed)
        return decision

    def _question(self, request: pb.DecideRequest, enforcer: str, prefix: str) -> Question:
        violations = []
        if not request.HasField("principal"):
            violations.append(FieldViolation(prefix + "principal", "required"))
        if not request.action:
            violations.append(FieldViolation(prefix + "action", "required"))
        if not request.HasField("resource"):
            violations.append(FieldViolation(prefix + "resource", "required"))
        if not request.request_id:
            violations.append(FieldViolation(prefix + "request_id", "required"))
        values = {
            "action": request.action,
            "request_id": request.request_id,
            "principal.tenant": request.principal.tenant,
            "principal.subject": request.principal.subject,
            "resource.type": request.resource.type,
            "resource.name": request.resource.name,
            "resource.tenant": request.resource.tenant,
        }
        for name, limit in _LIMITS.items():
            if len(values[name]) > limit:
                violations.append(FieldViolation(prefix + name, f"at most {limit} characters"))
        extra = _context_of(request)
        context_json = json.dumps(extra, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(context_json.encode()) > MAX_CONTEXT_BYTES:
            violations.append(
                FieldViolation(prefix + "context", f"at most {MAX_CONTEXT_BYTES} bytes as JSON")
            )
        if violations:
            raise InvalidArgumentError(
                "; ".join(f"{v.field}: {v.description}" for v in violations),
                field_violations=violations,
            )
        document = {
            "principal": _principal_document(request.principal),
            "action": request.action,
            "resource": _resource_document(request.resource),
            "context": extra,
            "enforcer": enforcer,
        }
        input_json = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return Question(
            request=request,
            document=document,
            request_hash=hashlib.sha256(input_json.encode()).hexdigest(),
            context=extra,
            enforcer=enforcer,
        )

    # -- the service's own RPCs -----------------------------------------------------

    async def authorize(
        self, action: Action, *, name: str, resource_type: str, tenant: str | None = None
    ) -> PolicyDecision:
        """Checks the principal of the call against the policy (and logs it), on
        a resource of ``tenant`` (the caller's own when None).

        Raises:
            PermissionDeniedError: POLICY_DENIED.
            FailedPreconditionError: POLICY_BUNDLE_INVALID, no bundle.
        """
        principal = context.current().principal
        request = pb.DecideRequest(
            principal=principal_message(principal),
            action=str(action),
            resource=decision_pb2.Resource(
                type=resource_type,
                name=name,
                tenant=principal.tenant if tenant is None else tenant,
            ),
            request_id=str(uuid.uuid4()),
        )
        decision = PolicyDecision.from_proto(
            (await self._decide_all([self._question(request, SELF, "")]))[0]
        )
        if not decision.allow:
            raise denial_error(decision, action=str(action))
        return decision

    async def get_decision(self, request: pb.GetDecisionRequest) -> decision_pb2.Decision:
        """One decision of the caller's tenant (as the principal's tenant or the
        resource's); another tenant's is NOT_FOUND.

        Raises:
            InvalidArgumentError: a malformed name.
            NotFoundError: DECISION_NOT_FOUND.
            PermissionDeniedError: POLICY_DENIED (action ``decision.read``).
        """
        decision_id = parse_decision_name(request.name)
        await self.authorize(Action.DECISION_READ, name=request.name, resource_type="decision")
        tenant = context.current().principal.tenant
        pending = self._log.pending(decision_id)
        row = pending if pending is not None else await self.store.get_decision(decision_id)
        if row is None or tenant not in (row.tenant, row.resource_tenant):
            raise NotFoundError(f"decision {request.name} not found", reason="DECISION_NOT_FOUND")
        return decision_pb2.Decision.FromString(row.decision)

    async def bundle_status(self) -> BundleStatus:
        """The bundle status (checked with ``bundle.read``, a platform tenant's
        resource, once a bundle is active: without one the status is what tells
        operators why)."""
        if self.bundles.active is not None:
            await self.authorize(
                Action.BUNDLE_READ,
                name="bundle",
                resource_type="bundle",
                tenant=self.platform_tenant,
            )
        return self.bundles.status()

    async def reload_bundle(self, request: pb.ReloadBundleRequest) -> ReloadResult:
        """Reloads (or validates) the bundle now (checked with ``bundle.reload``
        once a bundle is active).

        Raises:
            FailedPreconditionError: POLICY_BUNDLE_INVALID.
            PermissionDeniedError: POLICY_DENIED.
        """
        if self.bundles.active is not None:
            await self.authorize(
                Action.BUNDLE_RELOAD,
                name="bundle",
                resource_type="bundle",
                tenant=self.platform_tenant,
            )
        return await self.bundles.reload(validate_only=request.validate_only)

    async def watch_bundle_revision(self) -> AsyncIterator[ActiveBundle | None]:
        """The active bundle now (None when none has loaded), then each bundle
        that becomes active, until the caller stops iterating.

        Not checked against the policy (a revision is an opaque hash), but the
        call must name a calling service or a principal. Each watcher holds
        at most one pending bundle: one that falls behind gets the newest only.
        An activation of the revision last sent is not sent again. Ends when
        the service drains (:meth:`end_watches`).

        Raises:
            UnauthenticatedError: neither a calling service nor a principal.
            UnavailableError: NOT_READY, the service is shutting down.
        """
        ctx = context.current()
        if not ctx.caller_service and ctx.principal.is_anonymous:
            raise UnauthenticatedError(
                "WatchBundleRevision needs a caller: a calling service (mTLS identity "
                "or x-maestro-caller) or an identified principal"
            )
        if self._draining:
            raise UnavailableError("the policy service is shutting down", reason="NOT_READY")
        pending: asyncio.Queue[ActiveBundle | None] = asyncio.Queue(maxsize=1)

        def activated(bundle: ActiveBundle) -> None:
            if pending.full():
                pending.get_nowait()  # superseded: only the newest matters
            pending.put_nowait(bundle)

        # Subscribed and read with no await in between: no activation is missed.
        unsubscribe = self.bundles.on_activate(activated)
        self._watches.add(pending)
        self._metrics.watching(1)
        try:
            current = self.bundles.active
            sent = current.revision if current is not None else ""
            yield current
            while (bundle := await pending.get()) is not None:
                if bundle.revision != sent:
                    sent = bundle.revision
                    yield bundle
        finally:
            unsubscribe()
            self._watches.discard(pending)
            self._metrics.watching(-1)

    def end_watches(self) -> None:
        """Ends every WatchBundleRevision stream and refuses new ones (shutdown:
        a stream with no end would hold the server for its whole grace period;
        its client reopens it, on another replica when there is one)."""
        self._draining = True
        for pending in self._watches:
            if pending.full():
                pending.get_nowait()
            pending.put_nowait(None)

    async def trim_log(self, retention_days: int, now: datetime | None = None) -> int:
        """Deletes decisions older than the retention period."""
        cutoff = (now or datetime.now(UTC)).timestamp() - retention_days * 86400
        return await self.store.trim(datetime.fromtimestamp(cutoff, UTC))


def parse_decision_name(name: str) -> str:
    """``decisions/{id}`` → ``{id}``.

    Raises:
        InvalidArgumentError: not a decision name.
    """
    decision_id = name.removeprefix("decisions/")
    if not name.startswith("decisions/") or len(decision_id) != 26 or not decision_id.isalnum():
        raise _invalid("name", f"expected decisions/{{decision}} (a ULID), got {name!r}")
    return decision_id.upper()


def _enforcer() -> str:
    ctx = context.current()
    if not ctx.caller_service:
        raise UnauthenticatedError(
            "Decide is for Maestro services: the call names no calling service "
            "(mTLS identity or x-maestro-caller)"
        )
    return ctx.caller_service[:255]


def _context_of(request: pb.DecideRequest) -> dict[str, Any]:
    if not request.HasField("context") or not request.context.fields:
        return {}
    return dict(json_format.MessageToDict(request.context))


def _principal_document(principal: principal_pb2.Principal) -> dict[str, Any]:
    return {
        "tenant": principal.tenant.strip(),
        "subject": principal.subject.strip(),
        "roles": [r.strip() for r in principal.roles if r.strip()],
        "clearance": _CLASSIFICATION_NAMES.get(principal.clearance, ""),
        "purpose": principal.purpose.strip(),
        "legal_basis": principal.legal_basis.strip(),
        "reason_for_access": principal.reason_for_access.strip(),
    }


def _resource_document(resource: decision_pb2.Resource) -> dict[str, Any]:
    return {
        "type": resource.type,
        "name": resource.name,
        "tenant": resource.tenant.strip(),
        "classification": _CLASSIFICATION_NAMES.get(resource.classification, ""),
        "labels": dict(resource.labels),
    }


def _row(question: Question, decision: decision_pb2.Decision) -> DecisionRow:
    request = question.request
    return DecisionRow(
        decision_id=decision.name.removeprefix("decisions/"),
        request_id=request.request_id,
        request_hash=question.request_hash,
        create_time=decision.create_time.ToDatetime(tzinfo=UTC),
        tenant=request.principal.tenant,
        subject=request.principal.subject,
        action=request.action,
        allow=decision.allow,
        resource_type=request.resource.type,
        resource_name=request.resource.name,
        resource_tenant=request.resource.tenant,
        bundle_revision=decision.bundle_revision,
        cached=decision.cached,
        enforcer=question.enforcer,
        decision=decision.SerializeToString(),
    )


def _first_answer(question: Question, logged: LoggedRequest) -> decision_pb2.Decision:
    if logged.request_hash != question.request_hash:
        raise _reused(question.request.request_id)
    return decision_pb2.Decision.FromString(logged.decision)


def _reused(request_id: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f"request_id {request_id!r} was used for another question",
        metadata={"request_id": request_id},
        field_violations=[FieldViolation("request_id", "already used for another question")],
    )


def _invalid(field: str, description: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{field}: {description}", field_violations=[FieldViolation(field, description)]
    )
