"""The signer's policy gate: the one question it asks before policy-checked
operations (``receipts.create``, ``receipts.get``, ``receipts.list``,
``keys.rotate``).

The domain (:class:`~maestro.services.signer.service.Signer`) calls
:meth:`PolicyGate.authorize` from exactly one place, ``Signer._authorize``;
the server injects the implementation. The principal is the caller's, read by
the gate from the call context (never from a request body).

:class:`InterimPolicyGate` is the default until the policy service's client is
wired in: the fixed rules the contract states, nothing more.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from maestro.runtime import context
from maestro.runtime.errors import PermissionDeniedError
from maestro.runtime.policy import Action
from maestro.runtime.policy import PolicyGate as RuntimePolicyGate

RECEIPT_CREATORS = frozenset({"registry", "scheduler"})
"""Services whose identity may create receipts (SignReceipt)."""
ADMIN_ROLE = "admin"


class PolicyGate(Protocol):
    """Decides whether the current caller may do ``action`` on a resource."""

    async def authorize(
        self, action: str, *, resource_type: str, resource_name: str, tenant: str
    ) -> None:
        """Returns when allowed.

        Raises:
            PermissionDeniedError: POLICY_DENIED (metadata ``decision_id`` when
                the decision was logged).
            UnavailableError: the policy service cannot be reached.
        """
        ...


class InterimPolicyGate:
    """Fixed rules until the policy service is wired in:

    - ``receipts.create``: the calling service is the registry or the
      scheduler (they sign what they did; no person, admin included, may
      sign a statement of their own making);
    - ``keys.rotate``: the principal has role ``admin``;
    - ``receipts.get`` / ``receipts.list``: allowed (the signer scopes both to
      the caller's tenant itself).
    """

    async def authorize(
        self, action: str, *, resource_type: str, resource_name: str, tenant: str
    ) -> None:
        call = context.current()
        admin = ADMIN_ROLE in call.principal.roles
        if action == "receipts.create":
            allowed = call.caller_service in RECEIPT_CREATORS
        elif action == "keys.rotate":
            allowed = admin
        else:
            allowed = action in ("receipts.get", "receipts.list")
        if not allowed:
            raise PermissionDeniedError(
                f"{action} on {resource_name} is not allowed for "
                f"{call.principal.subject or call.caller_service or 'anonymous callers'}",
                metadata={"action": action},
            )


class ServicePolicyGate:
    """The policy service's answers, through the runtime's cached client:
    ``keys.rotate`` is ``signer.rotate_key`` and ``receipts.get``/``list`` are
    ``receipt.read`` in the policy bundle. ``receipts.create`` is asked by the
    registry and the scheduler on their own behalf, so it stays the service
    identity rule of :class:`InterimPolicyGate` (the bundle decides about
    principals, not services)."""

    _ACTIONS: ClassVar[dict[str, Action]] = {
        "keys.rotate": Action.SIGNER_ROTATE_KEY,
        "receipts.get": Action.RECEIPT_READ,
        "receipts.list": Action.RECEIPT_READ,
    }

    def __init__(self, gate: RuntimePolicyGate) -> None:
        self._gate = gate
        self._services = InterimPolicyGate()

    async def authorize(
        self, action: str, *, resource_type: str, resource_name: str, tenant: str
    ) -> None:
        mapped = self._ACTIONS.get(action)
        if mapped is None:
            await self._services.authorize(
                action, resource_type=resource_type, resource_name=resource_name, tenant=tenant
            )
            return
        await self._gate.check(
            mapped, resource=resource_name, resource_type=resource_type, tenant=tenant
        )
