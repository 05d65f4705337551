"""Policy enforcement for Maestro services: ask the policy service before acting.

Every service guards its actions with a :class:`PolicyGate`::

    gate = open_policy_gate(settings.policy_address, caller="registry", ...)
    await gate.check(Action.WORKFLOW_PUBLISH, resource="workflows/payroll",
                     classification="confidential", labels={"pii": "true"})

``check`` builds the question from the principal of the call being served
(``maestro.runtime.context.current().principal``), asks ``PolicyService/Decide``
through the typed :class:`PolicyClient`, and returns the decision when it
allows. A denial raises :class:`~maestro.runtime.errors.PermissionDeniedError`
(``POLICY_DENIED``) whose ErrorInfo metadata is:

==================  ====================================================================
``decision_id``     the logged decision's id (ULID); ``decisions/{decision_id}`` in the log
``action``          the action that was denied
``bundle_revision`` the policy bundle revision that decided
``reasons``         JSON list ``[{"code": "ROLE_REQUIRED", "message": "..."}, ...]``
                    (at most 20, in the policy's order)
``appeal``          JSON object ``{"path", "grantableByRoles", "grantableBySubjects",
                    "instructions"}`` (proto JSON names); absent when the policy names
                    no appeal
==================  ====================================================================

and whose details carry the same as ``maestro.policy.v1.Reason`` messages and one
``maestro.policy.v1.Appeal``. :func:`decision_from_error` reads them back.

Fail closed: when the policy service cannot answer (unreachable, deadline, no
valid bundle), ``check`` raises ``UnavailableError`` (``DEPENDENCY_UNAVAILABLE``,
metadata ``dependency=policy``); it never allows.

Answers (allows and denials) are cached per question for ``ttl_seconds``. A
background task follows ``PolicyService/WatchBundleRevision`` and empties the
whole cache the moment another bundle revision becomes active, so a hot reload
takes effect in the callers within the stream's latency, not the TTL. While
that stream is down (the policy service restarting, say) it is reopened with
exponential backoff and jitter, and cached answers are served for at most
``disconnected_ttl_seconds`` (1 s), so staleness stays bounded; a fresh answer
from another revision than the cached ones also empties the cache. A cached
answer is not logged again (the policy service logs each evaluation; the cached
decision keeps its id).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import hashlib
import json
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings

from maestro.common.v1 import principal_pb2
from maestro.policy.v1 import decision_pb2, policy_service_pb2, policy_service_pb2_grpc
from maestro.runtime import context as call_context
from maestro.runtime.clients import ServiceClient, open_channel
from maestro.runtime.errors import (
    AlreadyExistsError,
    InternalError,
    InvalidArgumentError,
    MaestroError,
    PermissionDeniedError,
    UnavailableError,
)
from maestro.runtime.settings import default_address
from maestro.runtime.tls import TlsFiles

log = logging.getLogger("maestro.policy.gate")
_T = TypeVar("_T")

DEFAULT_TTL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_DISCONNECTED_TTL_SECONDS = 1.0
MAX_REASONS_IN_METADATA = 20
WATCH_BACKOFF_INITIAL_SECONDS = 0.1
WATCH_BACKOFF_MAX_SECONDS = 5.0


class Action(enum.StrEnum):
    """The actions the default policy bundle knows (its catalog,
    ``services/policy/.../bundles/default/maestro/catalog/data.json``, is the
    source; a test keeps this list equal to it). An action the active bundle
    does not know is denied with ``NO_MATCHING_RULE``."""

    WORKFLOW_CREATE = "workflow.create"
    WORKFLOW_READ = "workflow.read"
    WORKFLOW_UPDATE = "workflow.update"
    WORKFLOW_DELETE = "workflow.delete"
    WORKFLOW_PUBLISH = "workflow.publish"
    WORKFLOW_PROMOTE = "workflow.promote"
    EXECUTION_START = "execution.start"
    EXECUTION_READ = "execution.read"
    EXECUTION_CANCEL = "execution.cancel"
    EXECUTION_RETRY = "execution.retry"
    EXECUTION_COMPENSATE = "execution.compensate"
    HUMAN_TASK_COMPLETE = "human_task.complete"
    SIGNER_ROTATE_KEY = "signer.rotate_key"
    RECEIPT_READ = "receipt.read"
    DECISION_READ = "decision.read"
    BUNDLE_READ = "bundle.read"
    BUNDLE_RELOAD = "bundle.reload"


_CLASSIFICATION = principal_pb2.Classification


def classification(value: str | int | None) -> int:
    """A ``maestro.common.v1.Classification`` number from a number or a name
    (``confidential``, ``CONFIDENTIAL``, ``CLASSIFICATION_CONFIDENTIAL``);
    None, "" and unknown names are ``CLASSIFICATION_UNSPECIFIED``."""
    if value is None or value == "":
        return _CLASSIFICATION.CLASSIFICATION_UNSPECIFIED
    if isinstance(value, int):
        return value if value in _CLASSIFICATION.values() else 0
    name = value.strip().upper()
    if not name.startswith("CLASSIFICATION_"):
        name = "CLASSIFICATION_" + name
    return int(_CLASSIFICATION.Value(name)) if name in _CLASSIFICATION.keys() else 0  # noqa: SIM118


def served_for(services: Collection[str]) -> bool:
    """Whether the call being served comes from one of ``services``: the
    caller's service identity, from its certificate on a TLS port and from the
    typed clients' metadata on a plaintext one (as for every policy check, the
    mesh vouches for it). Services exempt such internal calls from checks
    made for people, for example the scheduler reading the version it runs."""
    return call_context.current().caller_service in services


def principal_message(principal: call_context.Principal) -> principal_pb2.Principal:
    """The ``maestro.common.v1.Principal`` of a call-context principal."""
    return principal_pb2.Principal(
        tenant=principal.tenant,
        subject=principal.subject,
        roles=list(principal.roles),
        clearance=classification(principal.clearance),  # type: ignore[arg-type]
        purpose=principal.purpose,
        legal_basis=principal.legal_basis,
        reason_for_access=principal.reason_for_access,
    )


# -- decisions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyReason:
    """One rationale of a decision: a stable code and a message."""

    code: str
    message: str
    rule: str = ""


@dataclass(frozen=True, slots=True)
class PolicyAppeal:
    """Who or what can grant a denied access."""

    path: str = ""
    grantable_by_roles: tuple[str, ...] = ()
    grantable_by_subjects: tuple[str, ...] = ()
    instructions: str = ""

    def to_json(self) -> dict[str, Any]:
        """The proto JSON form (lowerCamel names), as in error metadata and REST."""
        return {
            "path": self.path,
            "grantableByRoles": list(self.grantable_by_roles),
            "grantableBySubjects": list(self.grantable_by_subjects),
            "instructions": self.instructions,
        }


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The answer of the policy to one question.

    Attributes:
        decision_id: the logged decision's id (``decisions/{decision_id}``).
        cached: served from this gate's cache rather than asked.
    """

    decision_id: str
    allow: bool
    reasons: tuple[PolicyReason, ...]
    bundle_revision: str
    appeal: PolicyAppeal | None = None
    cached: bool = False

    @property
    def name(self) -> str:
        """The decision's resource name in the log."""
        return f"decisions/{self.decision_id}"

    @classmethod
    def from_proto(cls, decision: decision_pb2.Decision) -> PolicyDecision:
        appeal = None
        if decision.HasField("appeal"):
            appeal = PolicyAppeal(
                path=decision.appeal.path,
                grantable_by_roles=tuple(decision.appeal.grantable_by_roles),
                grantable_by_subjects=tuple(decision.appeal.grantable_by_subjects),
                instructions=decision.appeal.instructions,
            )
        return cls(
            decision_id=decision.name.removeprefix("decisions/"),
            allow=decision.allow,
            reasons=tuple(PolicyReason(r.code, r.message, r.rule) for r in decision.reasons),
            bundle_revision=decision.bundle_revision,
            appeal=appeal,
        )


def denial_error(decision: PolicyDecision, *, action: str) -> PermissionDeniedError:
    """The ``PERMISSION_DENIED / POLICY_DENIED`` error for a denial (see the
    module docstring for the metadata layout)."""
    reasons = decision.reasons[:MAX_REASONS_IN_METADATA]
    metadata = {
        "decision_id": decision.decision_id,
        "action": action,
        "bundle_revision": decision.bundle_revision,
        "reasons": json.dumps(
            [{"code": r.code, "message": r.message} for r in reasons],
            separators=(",", ":"),
            ensure_ascii=False,
        ),
    }
    details: list[Any] = [
        decision_pb2.Reason(code=r.code, message=r.message, rule=r.rule) for r in reasons
    ]
    if decision.appeal is not None:
        metadata["appeal"] = json.dumps(
            decision.appeal.to_json(), separators=(",", ":"), ensure_ascii=False
        )
        details.append(
            decision_pb2.Appeal(
                path=decision.appeal.path,
                grantable_by_roles=list(decision.appeal.grantable_by_roles),
                grantable_by_subjects=list(decision.appeal.grantable_by_subjects),
                instructions=decision.appeal.instructions,
            )
        )
    why = "; ".join(r.message for r in reasons) or "no rule allows it"
    return PermissionDeniedError(
        f"{action} denied by policy: {why}",
        reason="POLICY_DENIED",
        metadata=metadata,
        details=details,
    )


def decision_from_error(error: MaestroError) -> PolicyDecision | None:
    """The denial carried by a ``POLICY_DENIED`` error (from its metadata), or
    None for any other error."""
    if error.reason != "POLICY_DENIED" or "decision_id" not in error.metadata:
        return None
    try:
        raw_reasons = json.loads(error.metadata.get("reasons", "[]"))
        raw_appeal = json.loads(error.metadata["appeal"]) if "appeal" in error.metadata else None
    except ValueError:
        raw_reasons, raw_appeal = [], None
    reasons = tuple(
        PolicyReason(str(r.get("code", "")), str(r.get("message", "")))
        for r in raw_reasons
        if isinstance(r, dict)
    )
    appeal = None
    if isinstance(raw_appeal, dict):
        appeal = PolicyAppeal(
            path=str(raw_appeal.get("path", "")),
            grantable_by_roles=tuple(raw_appeal.get("grantableByRoles", ())),
            grantable_by_subjects=tuple(raw_appeal.get("grantableBySubjects", ())),
            instructions=str(raw_appeal.get("instructions", "")),
        )
    return PolicyDecision(
        decision_id=error.metadata["decision_id"],
        allow=False,
        reasons=reasons,
        bundle_revision=error.metadata.get("bundle_revision", ""),
        appeal=appeal,
    )


# -- the client -----------------------------------------------------------------------


class PolicyClient(ServiceClient):
    """Typed client of ``maestro.policy.v1.PolicyService``: one method per RPC,
    named after it, taking and returning the RPC's messages. Every RPC is
    IDEMPOTENT or NO_SIDE_EFFECTS, so the channel retries transient failures."""

    SERVICES: tuple[ServiceDescriptor, ...] = (
        policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"],
    )

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float, address: str = "") -> None:
        super().__init__(channel, timeout=timeout, address=address)
        self._stub = policy_service_pb2_grpc.PolicyServiceStub(channel)

    @property
    def address(self) -> str:
        """The policy service's address as configured (for logs)."""
        return self._address

    async def decide(
        self, request: policy_service_pb2.DecideRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.DecideResponse:
        response: policy_service_pb2.DecideResponse = await self._unary(
            self._stub.Decide, request, timeout=timeout
        )
        return response

    async def batch_decide(
        self, request: policy_service_pb2.BatchDecideRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.BatchDecideResponse:
        response: policy_service_pb2.BatchDecideResponse = await self._unary(
            self._stub.BatchDecide, request, timeout=timeout
        )
        return response

    async def get_decision(
        self, request: policy_service_pb2.GetDecisionRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.GetDecisionResponse:
        response: policy_service_pb2.GetDecisionResponse = await self._unary(
            self._stub.GetDecision, request, timeout=timeout
        )
        return response

    async def list_decisions(
        self, request: policy_service_pb2.ListDecisionsRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.ListDecisionsResponse:
        response: policy_service_pb2.ListDecisionsResponse = await self._unary(
            self._stub.ListDecisions, request, timeout=timeout
        )
        return response

    async def get_bundle_status(
        self, request: policy_service_pb2.GetBundleStatusRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.GetBundleStatusResponse:
        response: policy_service_pb2.GetBundleStatusResponse = await self._unary(
            self._stub.GetBundleStatus, request, timeout=timeout
        )
        return response

    async def reload_bundle(
        self, request: policy_service_pb2.ReloadBundleRequest, *, timeout: float | None = None
    ) -> policy_service_pb2.ReloadBundleResponse:
        response: policy_service_pb2.ReloadBundleResponse = await self._unary(
            self._stub.ReloadBundle, request, timeout=timeout
        )
        return response

    def watch_bundle_revision(
        self,
        request: policy_service_pb2.WatchBundleRevisionRequest,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[policy_service_pb2.WatchBundleRevisionResponse]:
        """The active revision, then each new one; the stream has no deadline
        unless ``timeout`` bounds the whole of it."""
        return self._stream(self._stub.WatchBundleRevision, request, timeout=timeout)


# -- the gate -------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    decision: PolicyDecision
    stored: float


class _GateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.cache = Counter(
            "maestro_policy_client_cache_total",
            "Policy checks answered from the gate's cache (hit) or asked (miss).",
            ["result"],
            registry=registry,
        )
        self.checks = Counter(
            "maestro_policy_client_checks_total",
            "Policy checks, by result: allow, deny, or error (failed closed).",
            ["result"],
            registry=registry,
        )
        self.invalidations = Counter(
            "maestro_policy_client_cache_invalidations_total",
            "Times the gate's cache was emptied because the revision watch reported a "
            "new active bundle revision.",
            registry=registry,
        )
        self.reconnects = Counter(
            "maestro_policy_client_watch_reconnects_total",
            "Times the bundle revision watch was reopened after an error or the stream "
            "ending (the policy service restarting, a proxy closing an idle stream).",
            registry=registry,
        )
        self.watching = Gauge(
            "maestro_policy_client_watch_connected",
            "1 while the bundle revision watch is open (cached answers last the full TTL), "
            "0 while it is down (they last at most the disconnected TTL).",
            registry=registry,
        )


class PolicyGate:
    """Asks the policy service before acting, with a TTL cache of its answers
    that a new bundle revision empties.

    With ``watch`` (and a cache), the first check that asks the policy service
    (or :meth:`start_watching`) starts a background task following
    ``WatchBundleRevision``; ``close()`` stops it. Cached answers last
    ``ttl_seconds`` while that stream is open and at most
    ``disconnected_ttl_seconds`` while it is not (before it first opens too).

    Args:
        client: the policy service.
        ttl_seconds: how long an answer is reused for the same question; 0
            disables the cache (and the watch).
        max_entries: most cached answers (least recently used go first).
        registry: where to count cache hits/misses, check results, cache
            invalidations and watch reconnects; None: not counted.
        clock: monotonic seconds (tests).
        watch: follow the active bundle revision; False: a cached answer is
            dropped only by its TTL or by a fresh answer from a new revision.
        disconnected_ttl_seconds: the TTL (capped by ``ttl_seconds``) while
            the watch is not open.
    """

    def __init__(
        self,
        client: PolicyClient,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch: bool = True,
        disconnected_ttl_seconds: float = DEFAULT_DISCONNECTED_TTL_SECONDS,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[PolicyDecision]] = {}
        self._revision = ""
        self._metrics = _GateMetrics(registry) if registry is not None else None
        self._watch = watch and ttl_seconds > 0
        self._disconnected_ttl = min(ttl_seconds, disconnected_ttl_seconds)
        # The TTL the fast path applies: the full one only while the watch is open.
        self._effective_ttl = self._disconnected_ttl if self._watch else ttl_seconds
        # The revision the open watch reports active; None while it is not open.
        self._watched: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def client(self) -> PolicyClient:
        return self._client

    @property
    def revision(self) -> str:
        """The newest bundle revision the gate knows of, from the watch or from
        an answer ("" before either)."""
        return self._revision

    @property
    def watching(self) -> bool:
        """True while the revision watch is open (its first message arrived)."""
        return self._watched is not None

    def __len__(self) -> int:
        return len(self._cache)

    def invalidate(self) -> None:
        """Drops every cached answer (and lets no later check join a question
        already being asked)."""
        self._cache.clear()
        self._inflight.clear()

    def start_watching(self) -> None:
        """Starts following the active bundle revision now rather than at the
        first check (no-op when already started, closed, or ``watch`` is off).
        Needs a running event loop."""
        if self._watcher is not None or not self._watch or self._closed:
            return
        # A context of its own: the task outlives the call that started it, and
        # must not carry that call's principal, request id or trace.
        self._watcher = asyncio.get_running_loop().create_task(
            self._follow_revision(), name="policy-gate-watch", context=contextvars.Context()
        )

    async def stop_watching(self) -> None:
        """Stops the revision watch (cached answers then last at most the
        disconnected TTL); ``start_watching``, or the next check that asks the
        policy service, starts it again (not after ``close``)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self._disconnected()

    async def check(
        self,
        action: str,
        *,
        resource: str = "",
        resource_type: str = "",
        tenant: str | None = None,
        classification: str | int | None = None,
        labels: Mapping[str, str] | None = None,
        context: Mapping[str, Any] | None = None,
        principal: call_context.Principal | None = None,
    ) -> PolicyDecision:
        """Raises unless the policy allows ``action`` on the resource for the
        principal of the call being served; returns the allowing decision.

        Args:
            action: ``<type>.<verb>``, for example ``workflow.publish``
                (:class:`Action`).
            resource: the resource's name, for example ``workflows/payroll``.
            resource_type: defaults to the action's type (``workflow``).
            tenant: the resource's tenant; defaults to the principal's (the
                tenant a tenant-scoped service is serving).
            classification: the resource's classification (name or
                ``Classification`` number); unset is PUBLIC.
            labels: the resource's policy labels, for example ``{"pii": "true"}``.
            context: extra attributes for the policy (logged with secrets
                redacted).
            principal: who is asking; defaults to the current call's principal.

        Raises:
            PermissionDeniedError: POLICY_DENIED, with the decision id, reasons
                and appeal (see the module docstring).
            UnavailableError: DEPENDENCY_UNAVAILABLE when the policy service
                could not answer.
        """
        decision = await self.decide(
            action,
            resource=resource,
            resource_type=resource_type,
            tenant=tenant,
            classification=classification,
            labels=labels,
            context=context,
            principal=principal,
        )
        if not decision.allow:
            raise denial_error(decision, action=action)
        return decision

    async def decide(
        self,
        action: str,
        *,
        resource: str = "",
        resource_type: str = "",
        tenant: str | None = None,
        classification: str | int | None = None,
        labels: Mapping[str, str] | None = None,
        context: Mapping[str, Any] | None = None,
        principal: call_context.Principal | None = None,
    ) -> PolicyDecision:
        """The policy's answer, allow or deny (``check`` raises on a denial).

        Raises:
            UnavailableError: DEPENDENCY_UNAVAILABLE when the policy service
                could not answer.
        """
        request = self._request(
            action=action,
            resource=resource,
            resource_type=resource_type,
            tenant=tenant,
            level=classification,
            labels=labels,
            extra=context,
            principal=principal,
        )
        key = hashlib.blake2b(
            request.SerializeToString(deterministic=True), digest_size=16
        ).digest()
        if self._ttl > 0:
            entry = self._cache.get(key)
            if entry is not None and self._clock() - entry.stored < self._effective_ttl:
                self._cache.move_to_end(key)
                self._count_cache("hit")
                return entry.decision
            self._count_cache("miss")
            if self._watcher is None and self._watch:
                self.start_watching()
            pending = self._inflight.get(key)
            if pending is not None:
                try:
                    return await asyncio.shield(pending)
                except asyncio.CancelledError:
                    if not pending.cancelled():
                        raise  # this caller was cancelled
                    # The caller that was asking was cancelled: ask ourselves.
        future: asyncio.Future[PolicyDecision] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            decision = await self._ask(request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(decision)
            self._remember(key, decision)
            return decision
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    async def readable(
        self,
        action: str,
        collection: str,
        items: Sequence[_T],
        labels_of: Callable[[_T], Mapping[str, str]],
        *,
        principal: call_context.Principal | None = None,
    ) -> list[_T]:
        """The ``items`` of a page whose classification and labels the policy
        lets the caller read: one question per distinct label set, about the
        ``collection`` (``workflows/-``) with those labels, so a page of
        similar items costs one decision (the cache answers the rest). The
        caller checks the collection itself first (``check``), which a denial
        here does not raise: the item is left out. ``principal``: as in
        ``check``.

        Raises:
            UnavailableError: DEPENDENCY_UNAVAILABLE (as ``decide``).
        """
        allowed: dict[tuple[tuple[str, str], ...], bool] = {}
        kept = []
        for item in items:
            labels = labels_of(item)
            key = tuple(sorted(labels.items()))
            if key not in allowed:
                decision = await self.decide(
                    action,
                    resource=collection,
                    classification=labels.get("classification"),
                    labels=labels,
                    principal=principal,
                )
                allowed[key] = decision.allow
            if allowed[key]:
                kept.append(item)
        return kept

    def _request(
        self,
        *,
        action: str,
        resource: str,
        resource_type: str,
        tenant: str | None,
        level: str | int | None,
        labels: Mapping[str, str] | None,
        extra: Mapping[str, Any] | None,
        principal: call_context.Principal | None,
    ) -> policy_service_pb2.DecideRequest:
        who = principal if principal is not None else call_context.current().principal
        request = policy_service_pb2.DecideRequest(
            principal=principal_message(who),
            action=str(action),
            resource=decision_pb2.Resource(
                type=resource_type or str(action).partition(".")[0],
                name=resource,
                tenant=who.tenant if tenant is None else tenant,
                classification=classification(level),  # type: ignore[arg-type]
                labels=dict(labels or {}),
            ),
        )
        if extra:
            request.context.update(dict(extra))
        return request

    async def _ask(self, request: policy_service_pb2.DecideRequest) -> PolicyDecision:
        request.request_id = str(uuid.uuid4())
        try:
            response = await self._client.decide(request)
        except (InvalidArgumentError, AlreadyExistsError) as exc:
            self._count_check("error")
            raise InternalError(
                f"policy check rejected by the policy service: {exc.message}"
            ) from exc
        except MaestroError as exc:
            self._count_check("error")
            raise UnavailableError(
                f"policy service could not decide ({exc.reason}): {exc.message}",
                metadata={"dependency": "policy", "cause": exc.reason},
            ) from exc
        decision = PolicyDecision.from_proto(response.decision)
        self._count_check("allow" if decision.allow else "deny")
        return decision

    def _remember(self, key: bytes, decision: PolicyDecision) -> None:
        if self._watched is not None and decision.bundle_revision != self._watched:
            # Decided by a revision the watch does not report active: asked
            # before a reload (stale), or the watch is about to report it.
            return
        if decision.bundle_revision != self._revision:
            # A new revision decides now: nothing cached under the old one holds.
            self._cache.clear()
            self._revision = decision.bundle_revision
        if self._ttl <= 0 or self._max_entries <= 0:
            return
        cached = PolicyDecision(
            decision.decision_id,
            decision.allow,
            decision.reasons,
            decision.bundle_revision,
            decision.appeal,
            cached=True,
        )
        self._cache[key] = _Entry(cached, self._clock())
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def _count_cache(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.cache.labels(result).inc()

    def _count_check(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.checks.labels(result).inc()

    # -- the revision watch --------------------------------------------------------

    async def _follow_revision(self) -> None:
        """Follows WatchBundleRevision until cancelled (or its channel is
        closed), reopening it with exponential backoff and jitter whenever it
        fails or ends. However it stops, the gate is left disconnected."""
        try:
            await self._follow_revision_until_cancelled()
        except grpc.aio.UsageError:
            # The channel was closed under the gate: nothing to watch with.
            log.debug("policy revision watch stopped: channel closed")
        finally:
            self._disconnected()

    async def _follow_revision_until_cancelled(self) -> None:
        failures = 0
        while True:
            try:
                async for message in self._client.watch_bundle_revision(
                    policy_service_pb2.WatchBundleRevisionRequest()
                ):
                    if self._watched is None:
                        failures = 0
                        log.info(
                            "policy revision watch open",
                            extra={"revision": message.revision, "address": self._client.address},
                        )
                    self._observe(message.revision)
                outcome, cause = "ended", "OK"
            except MaestroError as exc:
                outcome, cause = "failed", exc.reason
            except grpc.aio.UsageError:
                raise
            except Exception:
                # Never let the watch die silently: the cache would stay on the
                # short disconnected TTL for good.
                log.exception("policy revision watch failed unexpectedly")
                outcome, cause = "failed", "INTERNAL"
            was_open = self._watched is not None
            self._disconnected()
            failures += 1
            delay = min(
                WATCH_BACKOFF_MAX_SECONDS, WATCH_BACKOFF_INITIAL_SECONDS * 2 ** (failures - 1)
            ) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)
            log.log(
                logging.WARNING if was_open or failures == 1 else logging.DEBUG,
                "policy revision watch %s; reopening in %.2f s",
                outcome,
                delay,
                extra={
                    "cause": cause,
                    "attempt": failures,
                    "address": self._client.address,
                    "cache_ttl_seconds": self._effective_ttl,
                },
            )
            if self._metrics is not None:
                self._metrics.reconnects.inc()
            await asyncio.sleep(delay)

    def _observe(self, revision: str) -> None:
        """One message of the watch: ``revision`` is active now."""
        if self._watched is None:
            self._effective_ttl = self._ttl
            if self._metrics is not None:
                self._metrics.watching.set(1)
        self._watched = revision
        if revision == self._revision:
            return
        previous, self._revision = self._revision, revision
        dropped = len(self._cache)
        self.invalidate()
        if previous:
            if self._metrics is not None:
                self._metrics.invalidations.inc()
            log.info(
                "policy bundle revision %s active: %d cached answers dropped",
                revision,
                dropped,
                extra={"revision": revision, "previous_revision": previous, "dropped": dropped},
            )

    def _disconnected(self) -> None:
        self._watched = None
        self._effective_ttl = self._disconnected_ttl if self._watch else self._ttl
        if self._metrics is not None:
            self._metrics.watching.set(0)

    async def close(self) -> None:
        """Stops the revision watch and closes the client's channel."""
        self._closed = True
        await self.stop_watching()
        await self._client.close()


class PolicyGateSettings(BaseSettings):
    """Settings of a service's policy gate; mix into the service's settings
    (``class RegistrySettings(ServiceSettings, PolicyGateSettings)``) to read them
    with its prefix (``MAESTRO_REGISTRY_POLICY_ADDRESS``, ...)."""

    policy_address: str = Field(
        default_address("policy"), description="host:port of the policy service."
    )
    policy_timeout_seconds: float = Field(
        DEFAULT_TIMEOUT_SECONDS, gt=0, description="Deadline of each policy decision call."
    )
    policy_cache_ttl_seconds: float = Field(
        DEFAULT_TTL_SECONDS,
        ge=0,
        description="How long a policy answer is reused for the same question; 0 disables "
        "the cache. A new bundle revision empties it at once (the gate follows the "
        "policy service's revision stream; while that is down, answers last at most 1 s).",
    )
    policy_cache_max_entries: int = Field(
        DEFAULT_MAX_ENTRIES, ge=0, description="Most policy answers cached."
    )


def open_policy_gate(
    address: str,
    *,
    caller: str,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    tls: TlsFiles | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    watch: bool = True,
    disconnected_ttl_seconds: float = DEFAULT_DISCONNECTED_TTL_SECONDS,
) -> PolicyGate:
    """A gate on a new channel to the policy service at ``address``, following
    the active bundle revision (see :class:`PolicyGate`); ``gate.close()`` stops
    that and closes the channel."""
    channel = open_channel(
        address,
        caller=caller,
        services=PolicyClient.SERVICES,
        tracer_provider=tracer_provider,
        tls=tls,
    )
    client = PolicyClient(channel, timeout=timeout, address=address)
    return PolicyGate(
        client,
        ttl_seconds=ttl_seconds,
        max_entries=max_entries,
        registry=registry,
        watch=watch,
        disconnected_ttl_seconds=disconnected_ttl_seconds,
    )


def reasons_of(details: Sequence[Any]) -> list[decision_pb2.Reason]:
    """The ``Reason`` messages among an error's raw ``Any`` details."""
    found = []
    for detail in details:
        if detail.Is(decision_pb2.Reason.DESCRIPTOR):
            reason = decision_pb2.Reason()
            detail.Unpack(reason)
            found.append(reason)
    return found
