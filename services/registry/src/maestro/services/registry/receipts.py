"""Version-manifest receipts: the registry's side of the receipt relay.

Publishing a version (with receipts on) queues its receipt in the
``version_receipt_outbox`` table in the publish's own transaction (see
``store.py``). :class:`VersionManifests` is the relay's
:class:`~maestro.runtime.receipts.ReceiptOutbox` over that table: it builds
each pending version's in-toto statement when it is read, so that
``previous_receipt`` can be filled in, and only hands out a version once its
previous version has its receipt, which keeps the receipt chain unbroken.
:class:`VersionAttestor` signs a new version's receipt right after its publish
commits, within a short deadline, and otherwise leaves it to the relay.

The statement, exactly as the signer validates it::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "workflows/{w}/versions/{v}",
                  "digest": {"sha256": <definition digest>}}],
     "predicateType": "https://maestro.dev/attestations/version/v1",
     "predicate": <proto3 JSON of maestro.signer.v1.VersionPredicate>}

serialized with RFC 8785, so every read of one pending version gives the same
bytes (the signer refuses a reused request id with another statement).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from google.protobuf import json_format

from maestro.common.v1 import plan_pb2, principal_pb2
from maestro.runtime.provenance import (
    STATEMENT_TYPE,
    VERSION_PREDICATE_TYPE,
    canonical_json,
    sha256_hex,
)
from maestro.runtime.receipts import PendingReceipt, ReceiptRelay
from maestro.runtime.timestamps import timestamp
from maestro.services.registry.service import version_name, workflow_name
from maestro.services.registry.store import PendingVersionReceipt, RegistryStore
from maestro.signer.v1 import receipt_pb2

log = logging.getLogger("maestro.registry.receipts")

KIND = receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST


def receipt_key(tenant: str, workflow_id: str, version: str) -> str:
    """The outbox key of a version's receipt (its signing request id derives
    from it). The tenant is part of it: two tenants may publish the same
    workflow id and version."""
    return f"tenants/{tenant}/{version_name(workflow_id, version)}"


def version_predicate(pending: PendingVersionReceipt) -> receipt_pb2.VersionPredicate:
    """The VersionPredicate of a pending version (``compiler_version`` as
    the stored plan records it: empty for plans compiled before plans did)."""
    plan = plan_pb2.CompiledPlan.FromString(pending.plan)
    previous = pending.previous_version
    return receipt_pb2.VersionPredicate(
        workflow=workflow_name(pending.workflow_id),
        version=pending.version,
        definition_digest=pending.digest,
        plan_digest=sha256_hex(plan.SerializeToString(deterministic=True)),
        source_digest=sha256_hex(pending.source),
        previous_version=version_name(pending.workflow_id, previous) if previous else "",
        # Empty also when the previous version was published with receipts off.
        previous_receipt=pending.previous_receipt,
        published_by=json_format.ParseDict(
            json.loads(pending.entry.published_by), principal_pb2.Principal()
        ),
        publish_time=timestamp(pending.publish_time),
        policy_decision_ids=list(pending.entry.policy_decision_ids),
        policy_bundle_revision=pending.entry.policy_bundle_revision,
        compiler_version=plan.compiler_version,
    )


def version_statement(pending: PendingVersionReceipt) -> bytes:
    """The in-toto statement of a pending version, as the RFC 8785 bytes to sign."""
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [
                {
                    "name": version_name(pending.workflow_id, pending.version),
                    "digest": {"sha256": pending.digest},
                }
            ],
            "predicateType": VERSION_PREDICATE_TYPE,
            "predicate": json_format.MessageToDict(version_predicate(pending)),
        }
    )


def _pending_receipt(pending: PendingVersionReceipt) -> PendingReceipt:
    return PendingReceipt(
        key=receipt_key(pending.tenant, pending.workflow_id, pending.version),
        tenant=pending.tenant,
        kind=KIND,
        subject=version_name(pending.workflow_id, pending.version),
        statement=version_statement(pending),
    )


def _version_of(pending: PendingReceipt) -> tuple[str, str]:
    """``(workflow_id, version)`` of a receipt's subject."""
    parts = pending.subject.split("/")
    if len(parts) != 4 or parts[0] != "workflows" or parts[2] != "versions":
        raise ValueError(f"not a version receipt: {pending.subject!r}")
    return parts[1], parts[3]


class VersionManifests:
    """The registry's receipt outbox (a ``ReceiptOutbox``): pending versions,
    and where their signed receipts are recorded."""

    def __init__(self, store: RegistryStore) -> None:
        self._store = store

    async def pending_receipts(self, limit: int) -> Sequence[PendingReceipt]:
        """Up to ``limit`` pending receipts, oldest first; a version whose
        previous version is still pending is not among them."""
        return [_pending_receipt(p) for p in await self._store.pending_version_receipts(limit)]

    async def pending_receipt(
        self, tenant: str, workflow_id: str, version: str
    ) -> PendingReceipt | None:
        """The version's pending receipt; None when it was recorded already or
        must wait for its previous version's receipt."""
        found = await self._store.pending_version_receipts(1, only=(tenant, workflow_id, version))
        return _pending_receipt(found[0]) if found else None

    async def record_receipt(self, pending: PendingReceipt, receipt: str) -> None:
        """Attaches ``receipt`` to the version (unless it has one) and drops
        the outbox row, in one transaction. Shielded from cancellation: an
        inline signing that times out never leaves this half done."""
        workflow_id, version = _version_of(pending)
        record = asyncio.ensure_future(
            self._store.record_version_receipt(pending.tenant, workflow_id, version, receipt)
        )
        # Once the caller has gone, a failure here only leaves the row pending
        # (the relay retries it): retrieve it so asyncio does not report it.
        record.add_done_callback(lambda task: task.cancelled() or task.exception())
        stored = await asyncio.shield(record)
        if stored != receipt:
            # Only possible if the version was signed under another request id
            # (a changed key scheme); the first receipt stays, by design.
            log.warning(
                "version already had another receipt; kept it",
                extra={"subject": pending.subject, "receipt": stored, "ignored": receipt},
            )


class VersionAttestor:
    """Signs a new version's receipt inline (``Registry``'s ``Attestor``).

    Args:
        manifests: the outbox.
        relay: the running relay over ``manifests``; it retries whatever the
            inline attempt did not sign.
        timeout: most seconds a publish waits for its receipt.
    """

    def __init__(self, manifests: VersionManifests, relay: ReceiptRelay, *, timeout: float) -> None:
        self._manifests = manifests
        self._relay = relay
        self._timeout = timeout

    async def attest(self, tenant: str, workflow_id: str, version: str) -> str:
        """Signs and records the version's receipt now if the signer answers
        within the deadline; returns its name, or "" (the relay signs it)."""
        pending = await self._manifests.pending_receipt(tenant, workflow_id, version)
        if pending is None:
            # The previous version's receipt is still pending: the relay signs
            # both, in order.
            self._relay.kick()
            return ""
        receipt: str | None = None
        try:
            async with asyncio.timeout(self._timeout):
                receipt = await self._relay.sign(pending)
        except TimeoutError:
            log.warning(
                "receipt not signed within %.1fs; left to the relay",
                self._timeout,
                extra={"subject": pending.subject, "key": pending.key},
            )
        except Exception:
            # The version is committed: whatever went wrong here (the relay
            # logs signer errors itself) only delays its receipt.
            log.exception(
                "receipt not recorded; left to the relay",
                extra={"subject": pending.subject, "key": pending.key},
            )
        if receipt is None:
            self._relay.kick()
            return ""
        return receipt
