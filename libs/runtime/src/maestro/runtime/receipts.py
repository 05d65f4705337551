"""Signing provenance receipts from a durable outbox: the one way the registry
(published versions) and the scheduler (finished executions) get theirs.

The pattern is a transactional outbox. A service writes a *pending receipt*
in the same transaction as the change it attests (the publish, the terminal
state), so a crash can never leave a change without its receipt or a receipt
without its change. A :class:`ReceiptRelay` then signs pending receipts with
the signer's ``SignReceipt`` and hands each receipt name back to the service
to record (again one transaction, which also drops the pending row).

Signing is idempotent end to end: the request id is derived from the
outbox key (:func:`receipt_request_id`), and the signer answers a repeated
request id with the receipt it already made, so a crash between signing and
recording, a retry after a timeout, or two relays racing never append a
second log entry for one event. A signer outage only delays receipts: the
relay retries with backoff until they are signed.

The relay signs on its interval and whenever it is :meth:`~ReceiptRelay.kick`-ed
(right after a commit that created pending receipts), and
:meth:`~ReceiptRelay.sign` signs one receipt inline, for callers that want the
receipt in their response when the signer is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings

from maestro.runtime import context
from maestro.runtime.clients import SignerClient, open_channel
from maestro.runtime.errors import Code, MaestroError
from maestro.runtime.periodic import woken
from maestro.runtime.settings import default_address
from maestro.runtime.tls import TlsFiles
from maestro.signer.v1 import receipt_pb2, signer_service_pb2

log = logging.getLogger("maestro.receipts")

_NAMESPACE = uuid.UUID("6f1d2c9e-5b0a-4c7e-9a3f-2d8e1b7c4a55")
MAX_BACKOFF_SECONDS = 30.0

# Errors that a retry cannot fix: the pending receipt itself is wrong. The
# relay reports them loudly and keeps them pending (an operator must look),
# but moves on to the others.
_PERMANENT = frozenset(
    {Code.INVALID_ARGUMENT, Code.ALREADY_EXISTS, Code.PERMISSION_DENIED, Code.FAILED_PRECONDITION}
)


@dataclass(frozen=True, slots=True)
class PendingReceipt:
    """A receipt a service owes, as written to its outbox.

    Attributes:
        key: unique per attested event, for example
            ``workflows/payroll/versions/1.2.0`` or
            ``executions/01J.../finish/42``; the signing request id derives
            from it.
        tenant: tenant of the attested resource (the receipt's tenant).
        kind: ``signer.v1.ReceiptKind`` value.
        subject: the resource the receipt is about (a statement subject).
        statement: the in-toto Statement v1, as the exact JSON bytes to sign.
    """

    key: str
    tenant: str
    kind: int
    subject: str
    statement: bytes


class ReceiptOutbox(Protocol):
    """A service's side of the relay: its pending receipts and where a signed
    receipt is recorded."""

    async def pending_receipts(self, limit: int) -> Sequence[PendingReceipt]:
        """Up to ``limit`` pending receipts, oldest first."""
        ...

    async def record_receipt(self, pending: PendingReceipt, receipt: str) -> None:
        """Records ``receipt`` (``receipts/{receipt}``) for ``pending`` and
        drops it from the outbox; a no-op when it was recorded already."""
        ...


def receipt_request_id(kind: int, key: str) -> str:
    """The SignReceipt request id of an outbox entry: a UUIDv5 of its kind
    and key, so every retry of one event asks for the same receipt."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


class ReceiptSettings(BaseSettings):
    """Where a service's receipts are signed; mix into the service's settings
    to read them with its prefix (``MAESTRO_REGISTRY_SIGNER_ADDRESS``, ...)."""

    signer_address: str = Field(
        default_address("signer"),
        description="host:port of the signer, which signs this service's provenance "
        "receipts; empty turns receipts off (nothing is attested).",
    )
    receipt_interval_seconds: float = Field(
        2.0,
        gt=0,
        description="How often pending receipts are retried (they are also signed right "
        "after the change they attest).",
    )
    receipt_timeout_seconds: float = Field(
        5.0, gt=0, description="Deadline of one SignReceipt call."
    )


class _RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.signed = Counter(
            "maestro_receipts_signed_total",
            "Receipts signed for this service's outbox, by kind.",
            ["kind"],
            registry=registry,
        )
        self.failures = Counter(
            "maestro_receipt_failures_total",
            "Failed attempts to sign a pending receipt, by gRPC code.",
            ["code"],
            registry=registry,
        )
        self.oldest = Gauge(
            "maestro_receipt_oldest_pending_seconds",
            "How long the oldest receipt the relay failed to sign has been failing "
            "(0 when none is).",
            registry=registry,
        )


class ReceiptRelay:
    """Signs a service's pending receipts (see the module docstring).

    Args:
        outbox: the service's pending receipts.
        signer: the signer's client; ``None`` turns signing off.
        service: the calling service's name (the receipt creator policy
            checks it), for logs and the principal's subject.
        interval: seconds between retries of pending receipts.
        timeout: deadline of one SignReceipt call.
        batch: most receipts read per pass.
        registry: where to count signed receipts and failures.
    """

    def __init__(
        self,
        outbox: ReceiptOutbox,
        signer: SignerClient | None,
        *,
        service: str,
        interval: float = 2.0,
        timeout: float = 5.0,
        batch: int = 100,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._outbox = outbox
        self._signer = signer
        self._service = service
        self._interval = interval
        self._timeout = timeout
        self._batch = batch
        self._metrics = _RelayMetrics(registry) if registry is not None else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self._signer is not None

    def start(self) -> None:
        if self._signer is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._service}-receipts")
            self._wake.set()  # whatever a previous process left pending

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._signer is not None:
            await self._signer.close()

    def kick(self) -> None:
        """Signs pending receipts now rather than at the next interval."""
        self._wake.set()

    async def sign(self, pending: PendingReceipt) -> str | None:
        """Signs and records one pending receipt; returns its name, or None
        when signing failed (logged; the relay retries it later)."""
        if self._signer is None:
            return None
        try:
            receipt = await self._sign(pending)
            await self._outbox.record_receipt(pending, receipt)
        except MaestroError as exc:
            self._failed(pending, exc)
            return None
        return receipt

    async def drain(self) -> int:
        """Signs everything pending now; returns how many were signed.

        Raises:
            MaestroError: the first transient failure (the rest stay pending).
        """
        signed = 0
        skip: set[str] = set()
        while self._signer is not None:
            batch = [
                p
                for p in await self._outbox.pending_receipts(self._batch + len(skip))
                if p.key not in skip
            ]
            if not batch:
                break
            for pending in batch:
                try:
                    receipt = await self._sign(pending)
                except MaestroError as exc:
                    if exc.code not in _PERMANENT:
                        raise
                    self._failed(pending, exc)
                    skip.add(pending.key)
                    continue
                await self._outbox.record_receipt(pending, receipt)
                signed += 1
        return signed

    async def _sign(self, pending: PendingReceipt) -> str:
        assert self._signer is not None
        principal = context.Principal(tenant=pending.tenant, subject=f"system:{self._service}")
        call = context.CallContext(
            request_id=context.new_request_id(),
            principal=principal,
            caller_service=self._service,
        )
        request = signer_service_pb2.SignReceiptRequest(
            kind=pending.kind,  # type: ignore[arg-type]
            subject=pending.subject,
            statement_json=pending.statement,
            request_id=receipt_request_id(pending.kind, pending.key),
        )
        with context.bind(call):
            response = await self._signer.sign_receipt(request, timeout=self._timeout)
        receipt = response.receipt.name
        if self._metrics is not None:
            kind = receipt_pb2.ReceiptKind.Name(pending.kind)
            self._metrics.signed.labels(kind.removeprefix("RECEIPT_KIND_")).inc()
        log.info(
            "receipt signed",
            extra={"receipt": receipt, "subject": pending.subject, "key": pending.key},
        )
        return receipt

    def _failed(self, pending: PendingReceipt, exc: MaestroError) -> None:
        if self._metrics is not None:
            self._metrics.failures.labels(exc.code.name).inc()
        level = logging.ERROR if exc.code in _PERMANENT else logging.WARNING
        log.log(
            level,
            "receipt not signed: %s",
            exc,
            extra={"subject": pending.subject, "key": pending.key, "reason": exc.reason},
        )

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            await woken(self._wake, backoff)
            self._wake.clear()
            try:
                await self.drain()
            except MaestroError as exc:
                now = time.monotonic()
                self._failing_since = self._failing_since or now
                if self._metrics is not None:
                    self._metrics.failures.labels(exc.code.name).inc()
                    self._metrics.oldest.set(now - self._failing_since)
                log.warning("signing pending receipts failed, retrying: %s", exc)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            except Exception:
                log.exception("signing pending receipts failed")
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            self._failing_since = None
            if self._metrics is not None:
                self._metrics.oldest.set(0)
            backoff = self._interval


def open_receipt_relay(
    settings: ReceiptSettings,
    outbox: ReceiptOutbox,
    *,
    service: str,
    tls: TlsFiles | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
) -> ReceiptRelay:
    """A relay on a new channel to the signer at ``settings.signer_address``
    (``relay.stop()`` closes it); signing is off when the address is empty."""
    signer = None
    if settings.signer_address:
        channel = open_channel(
            settings.signer_address,
            caller=service,
            services=SignerClient.SERVICES,
            tracer_provider=tracer_provider,
            tls=tls,
        )
        signer = SignerClient(
            channel, timeout=settings.receipt_timeout_seconds, address=settings.signer_address
        )
    return ReceiptRelay(
        outbox,
        signer,
        service=service,
        interval=settings.receipt_interval_seconds,
        timeout=settings.receipt_timeout_seconds,
        registry=registry,
    )
