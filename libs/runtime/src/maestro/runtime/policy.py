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

Answers (allows and denials) are cached per question for ``ttl_seconds``; the
whole cache is dropped as soon as a fresh answer comes from another bundle
revision than the cached ones. A cached answer is not logged again (the
policy service logs each evaluation; the cached decision keeps its id).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
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

DEFAULT_TTL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_ENTRIES = 10_000
MAX_REASONS_IN_METADATA = 20


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


# -- the gate -------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    decision: PolicyDecision
    expires: float


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


class PolicyGate:
    """Asks the policy service before acting, with a TTL cache of its answers.

    Args:
        client: the policy service.
        ttl_seconds: how long an answer is reused for the same question; 0
            disables the cache.
        max_entries: most cached answers (least recently used go first).
        registry: where to count cache hits/misses and check results; None: not
            counted.
        clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        client: PolicyClient,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[PolicyDecision]] = {}
        self._revision = ""
        self._metrics = _GateMetrics(registry) if registry is not None else None

    @property
    def client(self) -> PolicyClient:
        return self._client

    @property
    def revision(self) -> str:
        """The bundle revision of the newest answer ("" before the first)."""
        return self._revision

    def __len__(self) -> int:
        return len(self._cache)

    def invalidate(self) -> None:
        """Drops every cached answer."""
        self._cache.clear()

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
            if entry is not None and entry.expires > self._clock():
                self._cache.move_to_end(key)
                self._count_cache("hit")
                return entry.decision
            self._count_cache("miss")
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
            self._inflight.pop(key, None)

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
        self._cache[key] = _Entry(cached, self._clock() + self._ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def _count_cache(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.cache.labels(result).inc()

    def _count_check(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.checks.labels(result).inc()

    async def close(self) -> None:
        """Closes the client's channel."""
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
        "the cache. A new bundle revision empties it.",
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
) -> PolicyGate:
    """A gate on a new channel to the policy service at ``address``
    (``gate.close()`` closes it)."""
    channel = open_channel(
        address,
        caller=caller,
        services=PolicyClient.SERVICES,
        tracer_provider=tracer_provider,
        tls=tls,
    )
    client = PolicyClient(channel, timeout=timeout, address=address)
    return PolicyGate(client, ttl_seconds=ttl_seconds, max_entries=max_entries, registry=registry)


def reasons_of(details: Sequence[Any]) -> list[decision_pb2.Reason]:
    """The ``Reason`` messages among an error's raw ``Any`` details."""
    found = []
    for detail in details:
        if detail.Is(decision_pb2.Reason.DESCRIPTOR):
            reason = decision_pb2.Reason()
            detail.Unpack(reason)
            found.append(reason)
    return found
