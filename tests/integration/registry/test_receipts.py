"""Publishing a version produces a signed version-manifest receipt: real
registry, compiler, policy and signer servers (no mocks), the registry on
SQLite and PostgreSQL.

Receipts are checked from the signer's side (GetReceipt verifies on read,
VerifyReceipt, the log's checkpoint) and the statement's predicate against
values the test computes itself (digests of the uploaded source, of the
compiler's canonical JSON, of the deterministic plan; the policy decision in
the policy service's log).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from sqlalchemy import func, insert, select

from maestro.common.v1 import principal_pb2, source_pb2
from maestro.compiler.v1 import compiler_service_pb2 as compiler_pb
from maestro.policy.v1 import policy_service_pb2
from maestro.registry.v1 import registry_service_pb2 as pb
from maestro.registry.v1 import workflow_pb2 as resources
from maestro.runtime import context, db
from maestro.runtime.clients import CompilerClient, RegistryClient, SignerClient, open_channel
from maestro.runtime.policy import PolicyClient
from maestro.runtime.provenance import (
    STATEMENT_TYPE,
    VERSION_PREDICATE_TYPE,
    parse_json,
    sha256_hex,
)
from maestro.runtime.receipts import ReceiptSettings, open_receipt_relay, receipt_request_id
from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.plan import COMPILER_VERSION
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.clients import CompilerAdapter
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.receipts import KIND, VersionAttestor, VersionManifests
from maestro.services.registry.server import create_server as create_registry
from maestro.services.registry.service import Registry
from maestro.services.registry.store import RegistryStore, version_receipt_outbox
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.server import create_server as create_signer
from maestro.signer.v1 import receipt_pb2
from maestro.signer.v1 import signer_service_pb2 as signer_pb
from tests.conftest import free_port, start_policy
from tests.integration.signer.conftest import SignerTestClient, signer_client
from tests.unit.registry.support import ANA, document, source

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WORKFLOW = "workflows/orders-flow"
# An admin of tenant acme, with everything a Principal can say about a call:
# the receipt must carry all of it.
ADMIN = context.Principal(
    tenant="acme",
    subject="ana",
    roles=("admin",),
    clearance="confidential",
    purpose="release",
    legal_basis="contract",
    reason_for_access="ship orders-flow",
)
SIGNER_AS_REGISTRY = context.CallContext(
    principal=context.Principal(tenant="acme", subject="system:registry"),
    caller_service="registry",
)
WAIT_SECONDS = 45.0


# -- servers -------------------------------------------------------------------


@pytest.fixture
async def policy(tmp_path: Path) -> AsyncIterator[GrpcServer]:
    server = await start_policy(tmp_path)
    try:
        yield server
    finally:
        await server.stop(0)


@pytest.fixture
async def compiler_server() -> AsyncIterator[GrpcServer]:
    server = await create_compiler(CompilerSettings(port=0, metrics_port=None))
    try:
        yield server
    finally:
        await server.stop(0)


async def _start_signer(tmp_path: Path, policy: GrpcServer, port: int = 0) -> GrpcServer:
    data_dir = tmp_path / "signer"
    data_dir.mkdir(exist_ok=True)
    return await create_signer(
        SignerSettings(
            port=port,
            metrics_port=None,
            data_dir=data_dir,
            policy_address=f"127.0.0.1:{policy.port}",
        )
    )


@pytest.fixture
async def signer(tmp_path: Path, policy: GrpcServer) -> AsyncIterator[GrpcServer]:
    server = await _start_signer(tmp_path, policy)
    try:
        yield server
    finally:
        await server.stop(0)


@asynccontextmanager
async def _registry(
    database_url: str,
    tmp_path: Path,
    policy: GrpcServer,
    compiler: GrpcServer,
    signer_address: str,
) -> AsyncIterator[RegistryClient]:
    """A registry server and a client calling it as ``ADMIN``."""
    server = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path,
            database_url=database_url,
            compiler_address=f"127.0.0.1:{compiler.port}",
            policy_address=f"127.0.0.1:{policy.port}",
            signer_address=signer_address,
            receipt_interval_seconds=0.1,
        )
    )
    address = f"127.0.0.1:{server.port}"
    channel = open_channel(address, caller="tests", services=RegistryClient.SERVICES)
    try:
        with context.bind(context.CallContext(principal=ADMIN)):
            yield RegistryClient(channel, timeout=10, address=address)
    finally:
        await channel.close()
        await server.stop(0)


@asynccontextmanager
async def _signer_reader(signer: GrpcServer) -> AsyncIterator[SignerTestClient]:
    """A SignerService client reading as ``ADMIN`` (receipts are tenant-scoped)."""
    async with signer_client(signer, caller="tests") as client:
        with context.bind(context.CallContext(principal=ADMIN)):
            yield client


# -- helpers -------------------------------------------------------------------


def _source(content: bytes) -> source_pb2.WorkflowSource:
    return source_pb2.WorkflowSource(content=content, format=source_pb2.SOURCE_FORMAT_YAML)


async def _publish(
    registry: RegistryClient, content: bytes, *, create: bool = True
) -> resources.WorkflowVersion:
    if create:
        await registry.create_workflow(
            pb.CreateWorkflowRequest(source=_source(content), workflow_id="orders-flow")
        )
    else:
        await registry.update_workflow(
            pb.UpdateWorkflowRequest(name=WORKFLOW, source=_source(content))
        )
    response = await registry.publish_workflow(pb.PublishWorkflowRequest(name=WORKFLOW))
    return response.version


async def _version(registry: RegistryClient, version: str) -> resources.WorkflowVersion:
    response = await registry.get_workflow_version(
        pb.GetWorkflowVersionRequest(name=f"{WORKFLOW}/versions/{version}")
    )
    return response.version


def _statement(receipt: receipt_pb2.Receipt) -> dict[str, Any]:
    statement = parse_json(receipt.envelope.payload, "statement")
    assert isinstance(statement, dict)
    return statement


def _predicate(receipt: receipt_pb2.Receipt) -> receipt_pb2.VersionPredicate:
    return json_format.ParseDict(_statement(receipt)["predicate"], receipt_pb2.VersionPredicate())


async def _receipt(signer: SignerTestClient, name: str) -> receipt_pb2.Receipt:
    response = await signer.GetReceipt(signer_pb.GetReceiptRequest(name=name))
    receipt: receipt_pb2.Receipt = response.receipt
    return receipt


async def _tree_size(signer: SignerTestClient) -> int:
    response = await signer.GetCheckpoint(signer_pb.GetCheckpointRequest())
    return int(response.checkpoint.tree_size)


async def _outbox_rows(database_url: str) -> int:
    engine = db.create_engine(database_url)
    try:
        async with engine.connect() as conn:
            count = (
                await conn.execute(select(func.count()).select_from(version_receipt_outbox))
            ).scalar()
    finally:
        await engine.dispose()
    return int(count or 0)


async def _definition_digest(compiler: GrpcServer, content: bytes) -> str:
    """The canonical definition digest, recomputed: SHA-256 of the compiler's
    RFC 8785 form of the document."""
    address = f"127.0.0.1:{compiler.port}"
    channel = open_channel(address, caller="tests", services=CompilerClient.SERVICES)
    try:
        client = CompilerClient(channel, timeout=10, address=address)
        response = await client.digest_workflow(
            compiler_pb.DigestWorkflowRequest(source=_source(content))
        )
    finally:
        await channel.close()
    assert sha256_hex(response.canonical_json) == response.digest
    return response.digest


# -- publish → receipt -----------------------------------------------------------


async def test_publish_returns_a_verified_receipt_attesting_the_version(
    database_url: str,
    tmp_path: Path,
    policy: GrpcServer,
    compiler_server: GrpcServer,
    signer: GrpcServer,
) -> None:
    content = document()
    async with _registry(
        database_url, tmp_path, policy, compiler_server, f"127.0.0.1:{signer.port}"
    ) as registry:
        published = await _publish(registry, content)
        stored = await _version(registry, "1.0.0")

    assert published.receipt.startswith("receipts/")
    assert stored.receipt == published.receipt
    assert await _outbox_rows(database_url) == 0

    async with _signer_reader(signer) as reader:
        receipt = await _receipt(reader, published.receipt)
        verified = await reader.VerifyReceipt(
            signer_pb.VerifyReceiptRequest(envelope=receipt.envelope)
        )
        assert await _tree_size(reader) == 1
    assert receipt.verified
    assert verified.verified
    assert (receipt.kind, receipt.subject, receipt.tenant) == (
        receipt_pb2.RECEIPT_KIND_VERSION_MANIFEST,
        f"{WORKFLOW}/versions/1.0.0",
        "acme",
    )
    assert receipt.statement_digest == sha256_hex(receipt.envelope.payload)

    definition_digest = await _definition_digest(compiler_server, content)
    statement = _statement(receipt)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == VERSION_PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": f"{WORKFLOW}/versions/1.0.0", "digest": {"sha256": definition_digest}}
    ]
    predicate = _predicate(receipt)
    assert predicate.workflow == WORKFLOW
    assert predicate.version == "1.0.0"
    assert predicate.definition_digest == definition_digest == stored.digest
    assert predicate.plan_digest == sha256_hex(stored.plan.SerializeToString(deterministic=True))
    assert predicate.source_digest == sha256_hex(content)
    assert (predicate.previous_version, predicate.previous_receipt) == ("", "")
    assert predicate.published_by == principal_pb2.Principal(
        tenant="acme",
        subject="ana",
        roles=["admin"],
        clearance=principal_pb2.CLASSIFICATION_CONFIDENTIAL,
        purpose="release",
        legal_basis="contract",
        reason_for_access="ship orders-flow",
    )
    assert predicate.publish_time == stored.publish_time
    # The compiler that produced the stored plan, as the plan records it.
    assert predicate.compiler_version == stored.plan.compiler_version == COMPILER_VERSION
    assert predicate.compiler_version == metadata.version("maestro-compiler")

    # The decision that allowed the publish is in the policy service's log.
    assert len(predicate.policy_decision_ids) == 1
    address = f"127.0.0.1:{policy.port}"
    channel = open_channel(address, caller="tests", services=PolicyClient.SERVICES)
    try:
        with context.bind(context.CallContext(principal=ADMIN)):
            decision = (
                await PolicyClient(channel, timeout=10, address=address).get_decision(
                    policy_service_pb2.GetDecisionRequest(
                        name=f"decisions/{predicate.policy_decision_ids[0]}"
                    )
                )
            ).decision
    finally:
        await channel.close()
    assert decision.allow
    assert (decision.action, decision.resource.name) == ("workflow.publish", WORKFLOW)
    assert (decision.principal.tenant, decision.principal.subject) == ("acme", "ana")
    assert predicate.policy_bundle_revision == decision.bundle_revision != ""


async def test_next_version_chains_to_the_previous_receipt(
    database_url: str,
    tmp_path: Path,
    policy: GrpcServer,
    compiler_server: GrpcServer,
    signer: GrpcServer,
) -> None:
    async with _registry(
        database_url, tmp_path, policy, compiler_server, f"127.0.0.1:{signer.port}"
    ) as registry:
        first = await _publish(registry, document())
        changed = document(steps=("fetch", "store", "notify"))
        second = await _publish(registry, changed, create=False)

    assert second.version == "1.1.0"
    assert first.receipt and second.receipt and first.receipt != second.receipt
    async with _signer_reader(signer) as reader:
        predicate = _predicate(await _receipt(reader, second.receipt))
        assert await _tree_size(reader) == 2
    assert predicate.previous_version == f"{WORKFLOW}/versions/1.0.0"
    assert predicate.previous_receipt == first.receipt
    assert predicate.source_digest == sha256_hex(changed)
    assert predicate.definition_digest == second.digest != first.digest


# -- signer outages ----------------------------------------------------------------


async def test_publish_without_a_signer_succeeds_and_receipts_follow_in_order(
    database_url: str,
    tmp_path: Path,
    policy: GrpcServer,
    compiler_server: GrpcServer,
) -> None:
    port = free_port()  # nothing listens here until the signer starts below
    async with _registry(
        database_url, tmp_path, policy, compiler_server, f"127.0.0.1:{port}"
    ) as registry:
        started = time.monotonic()
        first = await _publish(registry, document())
        second = await _publish(
            registry, document(steps=("fetch", "store", "notify")), create=False
        )
        elapsed = time.monotonic() - started
        # Each publish waits at most the inline deadline (1 s) for its receipt.
        assert elapsed < 2 * RegistrySettings().receipt_inline_timeout_seconds + 3
        assert (first.version, first.receipt) == ("1.0.0", "")
        assert (second.version, second.receipt) == ("1.1.0", "")
        assert await _outbox_rows(database_url) == 2

        signer = await _start_signer(tmp_path, policy, port)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while not (await _version(registry, "1.1.0")).receipt:
                assert time.monotonic() < deadline, "the relay never attached the receipt"
                await asyncio.sleep(0.1)
            first_receipt = (await _version(registry, "1.0.0")).receipt
            second_receipt = (await _version(registry, "1.1.0")).receipt
            async with _signer_reader(signer) as reader:
                listed = await reader.ListReceipts(signer_pb.ListReceiptsRequest())
                predicate = _predicate(await _receipt(reader, second_receipt))
                tree_size = await _tree_size(reader)
        finally:
            await signer.stop(0)

    assert first_receipt.startswith("receipts/")
    assert await _outbox_rows(database_url) == 0
    # Exactly one log entry per version, and the chain is unbroken.
    assert tree_size == 2
    assert sorted((r.subject, r.name) for r in listed.receipts) == [
        (f"{WORKFLOW}/versions/1.0.0", first_receipt),
        (f"{WORKFLOW}/versions/1.1.0", second_receipt),
    ]
    assert predicate.previous_receipt == first_receipt


async def test_signing_off_queues_nothing_and_publishes_as_before(
    database_url: str, tmp_path: Path, policy: GrpcServer, compiler_server: GrpcServer
) -> None:
    async with _registry(database_url, tmp_path, policy, compiler_server, "") as registry:
        published = await _publish(registry, document())
        stored = await _version(registry, "1.0.0")
    assert (published.version, published.receipt) == ("1.0.0", "")
    assert stored.receipt == ""
    assert stored.digest == published.digest != ""
    assert await _outbox_rows(database_url) == 0


# -- the outbox itself ---------------------------------------------------------------


@dataclass
class Outbox:
    """A registry domain over a real store whose inline signing always fails
    (its signer address is dead), so every publish leaves its receipt pending."""

    registry: Registry
    store: RegistryStore
    manifests: VersionManifests


@pytest.fixture
async def outbox(database_url: str, compiler: CompilerAdapter) -> AsyncIterator[Outbox]:
    engine = db.create_engine(database_url)
    store = RegistryStore(engine)
    manifests = VersionManifests(store)
    dead = open_receipt_relay(
        ReceiptSettings(signer_address=f"127.0.0.1:{free_port()}"), manifests, service="registry"
    )
    try:
        await store.migrate()
        attestor = VersionAttestor(manifests, dead, timeout=0.5)
        yield Outbox(Registry(store, compiler, attestor=attestor), store, manifests)
    finally:
        await dead.stop()
        await engine.dispose()


async def _sign_directly(signer: GrpcServer, key: str, subject: str, statement: bytes) -> str:
    """SignReceipt as the registry would, outside the registry: a receipt the
    signer made but the registry never recorded."""
    address = f"127.0.0.1:{signer.port}"
    channel = open_channel(address, caller="registry", services=SignerClient.SERVICES)
    try:
        with context.bind(SIGNER_AS_REGISTRY):
            response = await SignerClient(channel, timeout=10, address=address).sign_receipt(
                signer_pb.SignReceiptRequest(
                    kind=KIND,
                    subject=subject,
                    statement_json=statement,
                    request_id=receipt_request_id(KIND, key),
                )
            )
    finally:
        await channel.close()
    return response.receipt.name


async def test_a_version_waits_for_the_previous_versions_receipt(
    outbox: Outbox, signer: GrpcServer
) -> None:
    await outbox.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    first = await outbox.registry.publish_workflow(ANA, WORKFLOW)
    await outbox.registry.update_workflow(ANA, WORKFLOW, source(steps=("fetch", "store", "x")))
    second = await outbox.registry.publish_workflow(ANA, WORKFLOW)
    assert (first.version.receipt, second.version.receipt) == ("", "")

    # Only the first is handed out: the second's statement needs its receipt.
    pending = await outbox.manifests.pending_receipts(10)
    assert [p.subject for p in pending] == [f"{WORKFLOW}/versions/1.0.0"]
    assert (
        await outbox.manifests.pending_receipt("acme", "orders-flow", second.version.version)
    ) is None

    relay = open_receipt_relay(
        ReceiptSettings(signer_address=f"127.0.0.1:{signer.port}"),
        outbox.manifests,
        service="registry",
    )
    try:
        assert await relay.drain() == 2  # in order, within one drain
    finally:
        await relay.stop()
    first_version = await outbox.store.get_version("acme", "orders-flow", "1.0.0")
    second_version = await outbox.store.get_version("acme", "orders-flow", "1.1.0")
    assert first_version is not None and second_version is not None
    assert await outbox.manifests.pending_receipts(10) == []
    async with _signer_reader(signer) as reader:
        first_predicate = _predicate(await _receipt(reader, first_version.receipt))
        predicate = _predicate(await _receipt(reader, second_version.receipt))
    assert first_predicate.previous_receipt == ""
    assert predicate.previous_version == f"{WORKFLOW}/versions/1.0.0"
    assert predicate.previous_receipt == first_version.receipt
    # Without a policy gate (domain only) there is no decision to name.
    assert (list(predicate.policy_decision_ids), predicate.policy_bundle_revision) == ([], "")
    assert predicate.published_by.tenant == "acme"


async def test_signing_a_pending_receipt_twice_logs_it_once(
    outbox: Outbox, signer: GrpcServer
) -> None:
    await outbox.registry.create_workflow(ANA, source(), workflow_id="orders-flow")
    await outbox.registry.publish_workflow(ANA, WORKFLOW)
    [pending] = await outbox.manifests.pending_receipts(10)
    # The statement is built the same way on every read (the request id is
    # reused on retries, and the signer refuses it with another statement).
    assert (await outbox.manifests.pending_receipts(10))[0] == pending
    assert json.loads(pending.statement)["predicate"]["sourceDigest"] == sha256_hex(document())

    async with outbox.store.engine.connect() as conn:
        [queued] = (await conn.execute(select(version_receipt_outbox))).mappings().all()
        queued_row = dict(queued)

    # The signer signed, but the registry lost the answer (crash, timeout).
    lost = await _sign_directly(signer, pending.key, pending.subject, pending.statement)

    relay = open_receipt_relay(
        ReceiptSettings(signer_address=f"127.0.0.1:{signer.port}"),
        outbox.manifests,
        service="registry",
    )
    try:
        assert await relay.drain() == 1
        assert await relay.sign(pending) == lost  # a stale retry: same receipt, no-op
        # The outbox row comes back as it was (as if its delete had been
        # lost): signing it again returns the same receipt, recorded as a no-op.
        async with outbox.store.engine.begin() as conn:
            await conn.execute(insert(version_receipt_outbox).values(**queued_row))
        assert await relay.drain() == 1
    finally:
        await relay.stop()
    # Another receipt never replaces the one a version has.
    await outbox.manifests.record_receipt(pending, "receipts/01JZZZZZZZZZZZZZZZZZZZZZZZ")

    stored = await outbox.store.get_version("acme", "orders-flow", "1.0.0")
    assert stored is not None and stored.receipt == lost
    assert await outbox.manifests.pending_receipts(10) == []
    async with _signer_reader(signer) as reader:
        listed = await reader.ListReceipts(signer_pb.ListReceiptsRequest())
        assert await _tree_size(reader) == 1
    assert [r.name for r in listed.receipts] == [lost]
