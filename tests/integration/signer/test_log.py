"""The transparency log on SQLite and PostgreSQL: its schema is the migrated
one, it survives restarts, the database refuses to rewrite it, and a signer
whose KEK or stored log is wrong refuses to start."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import Engine, delete, inspect, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError

from maestro.runtime import context, db, provenance
from maestro.runtime.errors import FailedPreconditionError
from maestro.services.signer.keys import KekError
from maestro.services.signer.log import LogIntegrityError
from maestro.services.signer.policy import InterimPolicyGate
from maestro.services.signer.server import create_server
from maestro.services.signer.store import (
    ALEMBIC_VERSION_TABLE,
    checkpoints,
    log_leaves,
    metadata,
    receipts,
    signing_keys,
)
from maestro.signer.v1 import receipt_pb2
from maestro.signer.v1 import signer_service_pb2 as pb
from tests.integration.signer.conftest import settings, signer_client
from tests.unit.signer.support import ANA, execution_statement, sign_request

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _request(i: int) -> pb.SignReceiptRequest:
    execution = f"executions/01J{i:023d}"
    return sign_request(execution_statement(execution), execution, f"req-{i}")


def _engine(database_url: str) -> Engine:
    return db.create_sync_engine(database_url, pool_size=1)


async def _sign(
    database_url: str, data_dir: Path, first: int, count: int
) -> list[pb.SignReceiptResponse]:
    server = await create_server(settings(database_url, data_dir), policy=InterimPolicyGate())
    try:
        async with signer_client(server) as client:
            with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
                return [await client.SignReceipt(_request(i)) for i in range(first, first + count)]
    finally:
        await server.stop(0)


async def test_migrations_build_the_store_schema(database_url: str, tmp_path: Path) -> None:
    await _sign(database_url, tmp_path, 0, 0)
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            context_ = MigrationContext.configure(
                conn, opts={"version_table": ALEMBIC_VERSION_TABLE, "compare_type": True}
            )
            drift = compare_metadata(context_, metadata)
    finally:
        engine.dispose()
    assert tables == {t.name for t in metadata.sorted_tables} | {ALEMBIC_VERSION_TABLE}
    assert drift == []


async def test_the_log_survives_restarts(database_url: str, tmp_path: Path) -> None:
    first = await _sign(database_url, tmp_path, 0, 3)
    old_checkpoint = first[-1].checkpoint
    server = await create_server(settings(database_url, tmp_path), policy=InterimPolicyGate())
    try:
        async with signer_client(server) as client:
            with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
                latest = (await client.GetCheckpoint(pb.GetCheckpointRequest())).checkpoint
                assert latest == old_checkpoint
                got = await client.GetReceipt(pb.GetReceiptRequest(name=first[0].receipt.name))
                assert got.receipt.envelope == first[0].receipt.envelope
                assert (await client.SignReceipt(_request(1))).receipt == first[1].receipt
                more = await client.SignReceipt(_request(3))
                assert more.receipt.log_index == 3
                proof = await client.GetConsistencyProof(
                    pb.GetConsistencyProofRequest(first_size=3)
                )
                provenance.verify_consistency(
                    3,
                    4,
                    old_checkpoint.root_hash,
                    more.checkpoint.root_hash,
                    proof.consistency_proof.hashes,
                )
    finally:
        await server.stop(0)


def _refused(conn: Connection, statement: object) -> str:
    with pytest.raises(DatabaseError) as refused, conn.begin_nested():
        conn.execute(statement)  # type: ignore[call-overload]
    return str(refused.value.orig)


async def test_the_database_refuses_to_rewrite_the_log(database_url: str, tmp_path: Path) -> None:
    signed = await _sign(database_url, tmp_path, 0, 2)
    receipt_id = signed[0].receipt.name.split("/")[1]
    engine = _engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            message = _refused(conn, update(log_leaves).values(leaf_data=b"{}"))
            assert "the transparency log is append-only" in message
            assert "append-only" in _refused(conn, delete(log_leaves))
            assert "append-only" in _refused(conn, update(checkpoints).values(timestamp=0))
            assert "append-only" in _refused(conn, delete(checkpoints))
            assert "immutable" in _refused(
                conn, update(receipts).values(subject="executions/forged")
            )
            assert "immutable" in _refused(conn, delete(receipts))
            assert "never deleted" in _refused(conn, delete(signing_keys))
            assert "never deleted" in _refused(conn, update(signing_keys).values(public_key=b"x"))
            if engine.dialect.name == "postgresql":
                assert "append-only" in _refused(conn, text("TRUNCATE log_leaves CASCADE"))
            # The cached verification is the one thing that may change.
            conn.execute(
                update(receipts).where(receipts.c.receipt_id == receipt_id).values(verified=False)
            )
    finally:
        engine.dispose()


async def test_a_wrong_kek_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    await _sign(database_url, tmp_path, 0, 1)
    other = SecretStr(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KekError, match="wrong MAESTRO_SIGNER_KEK"):
        await create_server(settings(database_url, tmp_path, kek=other), policy=InterimPolicyGate())


def _drop_log_triggers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER log_leaves_append_only ON log_leaves"))
    else:
        conn.execute(text("DROP TRIGGER log_leaves_no_update"))


async def test_an_altered_log_is_caught_on_read_and_at_start(
    database_url: str, tmp_path: Path
) -> None:
    signed = await _sign(database_url, tmp_path, 0, 2)
    forged = receipt_pb2.Envelope()
    forged.CopyFrom(signed[0].receipt.envelope)
    forged.payload = forged.payload.replace(b"SUCCEEDED", b"CANCELLED")
    server = await create_server(
        settings(database_url, tmp_path, verify_cache_seconds=0), policy=InterimPolicyGate()
    )
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:  # someone with database access, bypassing the triggers
            _drop_log_triggers(conn)
            conn.execute(
                update(log_leaves)
                .where(log_leaves.c.leaf_index == 0)
                .values(leaf_data=provenance.envelope_json(forged))
            )
        async with signer_client(server) as client:
            with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
                with pytest.raises(FailedPreconditionError) as failed:
                    await client.GetReceipt(pb.GetReceiptRequest(name=signed[0].receipt.name))
                assert failed.value.reason == "VERIFICATION_FAILED"
                assert failed.value.metadata == {
                    "check": "SIGNATURE",
                    "receipt": signed[0].receipt.name,
                }
                ok = await client.GetReceipt(pb.GetReceiptRequest(name=signed[1].receipt.name))
                assert ok.receipt.verified
        # Forging the leaf hash too breaks the signed checkpoints: start-up refuses.
        with engine.begin() as conn:
            conn.execute(
                update(log_leaves)
                .where(log_leaves.c.leaf_index == 0)
                .values(leaf_hash=provenance.receipt_leaf_hash(forged))
            )
    finally:
        engine.dispose()
        await server.stop(0)
    with pytest.raises(LogIntegrityError, match="the log was altered"):
        await create_server(settings(database_url, tmp_path), policy=InterimPolicyGate())
