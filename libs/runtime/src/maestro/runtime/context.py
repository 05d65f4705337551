"""Call context: request id and caller identity for the current RPC.

Set by the server interceptor from incoming metadata, read by domain code and
logging, and copied onto outgoing calls by the client interceptor, so a request id
and the caller's identity follow a request across services. Identity travels as
plain metadata keys (grpcurl-friendly); only the gateway creates it from a
verified token, and in production Envoy's mTLS keeps outsiders from forging it.

The calling *service* is verified when the call came over mTLS: from the peer
certificate's SPIFFE URI with native gRPC TLS, or from the
``x-forwarded-client-cert`` header that the Envoy sidecar sets (SANITIZE_SET:
Envoy drops any client-supplied value) after verifying the caller's
certificate. Otherwise it is what the caller claims in ``x-maestro-caller``.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

REQUEST_ID_KEY = "x-request-id"
CALLER_SERVICE_KEY = "x-maestro-caller"
TENANT_KEY = "x-maestro-tenant"
SUBJECT_KEY = "x-maestro-subject"
ROLES_KEY = "x-maestro-roles"
CLEARANCE_KEY = "x-maestro-clearance"
PURPOSE_KEY = "x-maestro-purpose"
LEGAL_BASIS_KEY = "x-maestro-legal-basis"
REASON_KEY = "x-maestro-reason"
XFCC_KEY = "x-forwarded-client-cert"

TRUST_DOMAIN = "maestro.local"
"""Certificates name a service as DNS ``<svc>.maestro.local`` and URI
``spiffe://maestro.local/<svc>`` (deploy/mesh/topology.yaml says the same)."""

IDENTITY_KEYS = (
    TENANT_KEY,
    SUBJECT_KEY,
    ROLES_KEY,
    CLEARANCE_KEY,
    PURPOSE_KEY,
    LEGAL_BASIS_KEY,
    REASON_KEY,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller (mirrors ``maestro.common.v1.Principal``)."""

    tenant: str = ""
    subject: str = ""
    roles: tuple[str, ...] = ()
    clearance: str = ""
    purpose: str = ""
    legal_basis: str = ""
    reason_for_access: str = ""

    @property
    def is_anonymous(self) -> bool:
        return not self.subject

    def to_metadata(self) -> list[tuple[str, str]]:
        """Metadata pairs for an outgoing call; empty fields are left out."""
        pairs = [
            (TENANT_KEY, self.tenant),
            (SUBJECT_KEY, self.subject),
            (ROLES_KEY, ",".join(self.roles)),
            (CLEARANCE_KEY, self.clearance),
            (PURPOSE_KEY, self.purpose),
            (LEGAL_BASIS_KEY, self.legal_basis),
            (REASON_KEY, self.reason_for_access),
        ]
        return [(k, v) for k, v in pairs if v]

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """Reads the identity keys from incoming metadata; others are ignored."""
        values = {k: v.decode() if isinstance(v, bytes) else v for k, v in metadata}
        roles = tuple(r.strip() for r in values.get(ROLES_KEY, "").split(",") if r.strip())
        return cls(
            tenant=values.get(TENANT_KEY, ""),
            subject=values.get(SUBJECT_KEY, ""),
            roles=roles,
            clearance=values.get(CLEARANCE_KEY, ""),
            purpose=values.get(PURPOSE_KEY, ""),
            legal_basis=values.get(LEGAL_BASIS_KEY, ""),
            reason_for_access=values.get(REASON_KEY, ""),
        )


LOCAL_ADMIN = Principal(
    tenant="default",
    subject="local-admin",
    roles=("admin",),
    clearance="restricted",
    purpose="operations",
    legal_basis="legitimate-interests",
    reason_for_access="local development",
)
"""Who a call that names no subject acts as in the embedded default (``maestro
up``, the gateway's dev mode): an admin cleared for every classification, with
a declared purpose and legal basis, so the samples (confidential, restricted)
run without tokens. Production turns this off (``anonymous_as_local_admin``)."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """What is known about the call being served."""

    request_id: str = ""
    principal: Principal = field(default_factory=Principal)
    caller_service: str = ""
    caller_verified: bool = False
    """True when ``caller_service`` comes from a verified client certificate."""
    method: str = ""
    execution_id: str = ""
    step_id: str = ""


def spiffe_id(service: str) -> str:
    """The SPIFFE-style URI SAN of a service's certificate."""
    return f"spiffe://{TRUST_DOMAIN}/{service}"


def service_from_spiffe_id(uri: str) -> str:
    """``registry`` for ``spiffe://maestro.local/registry``; "" for anything else."""
    prefix = f"spiffe://{TRUST_DOMAIN}/"
    if not uri.startswith(prefix):
        return ""
    service = uri[len(prefix) :]
    return service if service and "/" not in service else ""


def _xfcc_elements(value: str) -> list[list[str]]:
    """Splits an XFCC value into elements (``,``) of pairs (``;``), honouring
    double-quoted values, which may contain either separator."""
    elements: list[list[str]] = [[]]
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in ",;" and not quoted:
            elements[-1].append("".join(current).strip())
            current = []
            if char == ",":
                elements.append([])
        else:
            current.append(char)
    elements[-1].append("".join(current).strip())
    return elements


def service_from_xfcc(value: str) -> str:
    """The calling service named by an ``x-forwarded-client-cert`` value.

    Envoy (SANITIZE_SET) sets one element for the client certificate it just
    verified, e.g. ``By=spiffe://maestro.local/compiler;Hash=...;
    URI=spiffe://maestro.local/registry;DNS=registry.maestro.local``; the last
    element is the nearest hop. Returns "" when no ``URI`` in the trust domain
    is present.
    """
    if not value:
        return ""
    for pair in _xfcc_elements(value)[-1]:
        key, _, item = pair.partition("=")
        if key.strip().lower() == "uri":
            service = service_from_spiffe_id(item.strip())
            if service:
                return service
    return ""


# CallContext is a frozen dataclass: sharing one default instance is safe.
_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar(
    "maestro_call_context",
    default=CallContext(),  # noqa: B039
)


def current() -> CallContext:
    """The context of the call being served (an empty one outside any call)."""
    return _current.get()


def new_request_id() -> str:
    """A fresh request id (UUID4, hex with dashes)."""
    return str(uuid.uuid4())


@contextmanager
def bind(ctx: CallContext) -> Iterator[CallContext]:
    """Makes ``ctx`` current inside the ``with`` block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        # A streaming handler cancelled by its client is finalised in another
        # context: there is nothing of ours left to restore there.
        with contextlib.suppress(ValueError):
            _current.reset(token)


@contextmanager
def bind_step(execution_id: str, step_id: str = "") -> Iterator[CallContext]:
    """Binds the current context with the execution (and step) being worked on,
    so every log record inside names them."""
    with bind(replace(current(), execution_id=execution_id, step_id=step_id)) as ctx:
        yield ctx


def outgoing_metadata(service_name: str) -> list[tuple[str, str]]:
    """Metadata an outgoing call carries: request id, caller service, identity."""
    ctx = current()
    pairs = [
        (REQUEST_ID_KEY, ctx.request_id or new_request_id()),
        (CALLER_SERVICE_KEY, service_name),
    ]
    pairs.extend(ctx.principal.to_metadata())
    return pairs
