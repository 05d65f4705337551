"""The append path on SQLite and PostgreSQL: how many statements one append
costs (a regression guard for SignReceipt latency), and that the optimistic
append falls back correctly when another process wrote to the log, rotated
the key, or a request id is replayed, and survives a lost connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection

from maestro.runtime import context, provenance
from maestro.runtime.errors import AlreadyExistsError
from maestro.services.signer.service import Signer
from maestro.signer.v1 import signer_service_pb2 as pb
from tests.servers import PostgresServer, fresh_database
from tests.unit.signer.support import ANA, ORIGIN, execution_statement, sign_request, signer_over

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STATEMENTS_PER_APPEND = {
    # BEGIN with the advisory lock (one round trip); one statement inserting
    # leaf, checkpoint and receipt and reading the key state back. COMMIT is
    # the driver's, not a cursor statement: three round trips in all.
    "postgresql": 2,
    # three inserts (no data-modifying CTEs in SQLite) and the key state.
    "sqlite": 4,
}


@pytest.fixture(autouse=True)
def identity() -> Iterator[None]:
    with context.bind(context.CallContext(principal=ANA, caller_service="scheduler")):
        yield


def _request(i: int, request_id: str | None = None) -> pb.SignReceiptRequest:
    execution = f"executions/01J{i:023d}"
    return sign_request(execution_statement(execution), execution, request_id or f"req-{i}")


@contextmanager
def _recorded(engine: Engine) -> Iterator[dict[str, list[Any]]]:
    seen: dict[str, list[Any]] = {"statements": [], "checkouts": []}

    def on_statement(*args: Any) -> None:
        seen["statements"].append(args[2])

    def on_checkout(*args: Any) -> None:
        seen["checkouts"].append(args[0])

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "checkout", on_checkout)


def _engine(signer: Signer) -> Engine:
    return signer._store.engine


async def test_an_append_costs_a_fixed_number_of_statements(database_url: str) -> None:
    async with signer_over(database_url) as signer:
        await signer.sign_receipt(_request(0))  # warm: the writer's connection is open
        with _recorded(_engine(signer)) as seen:
            for i in range(1, 6):
                await signer.sign_receipt(_request(i))
        dialect = _engine(signer).dialect.name
        assert len(seen["statements"]) == 5 * STATEMENTS_PER_APPEND[dialect], seen["statements"]
        # No pool checkout (and so no pre-ping) on the writer's path.
        assert seen["checkouts"] == []
        # Nothing is read before it is written.
        assert not any(s.lstrip().upper().startswith("SELECT RECEIPTS") for s in seen["statements"])


async def test_replays_fall_back_to_the_stored_receipt(database_url: str) -> None:
    async with signer_over(database_url) as signer:
        first = await signer.sign_receipt(_request(0))
        again = await signer.sign_receipt(_request(0))
        assert again == first
        with pytest.raises(AlreadyExistsError):
            await signer.sign_receipt(_request(1, request_id="req-0"))
        after = await signer.sign_receipt(_request(2))
        assert after.receipt.log_index == 1
        assert signer.log.size == 2


async def test_two_signers_on_one_database_keep_one_log(database_url: str) -> None:
    async with signer_over(database_url) as a, signer_over(database_url) as b:
        responses = [await a.sign_receipt(_request(0))]
        responses.append(await b.sign_receipt(_request(1)))  # b's tree was stale
        responses.append(await a.sign_receipt(_request(2)))  # and now a's
        rotated = await b.rotate_key(pb.RotateKeyRequest(reason="test", request_id="rot-1"))
        # a still holds the retired key: its append must notice and use the new one.
        responses.append(await a.sign_receipt(_request(3)))
        responses.append(await a.sign_receipt(_request(1)))  # b's request id, replayed by a
        assert [r.receipt.log_index for r in responses] == [0, 1, 2, 3, 1]
        assert responses[4] == responses[1]
        new_key = rotated.active_key.key_id
        assert responses[3].receipt.envelope.signatures[0].keyid == new_key
        assert responses[3].checkpoint.signatures[0].keyid == new_key
        keys = a.log.public_keys
        assert set(keys) == set(b.log.public_keys)
        latest = (await b.get_checkpoint(pb.GetCheckpointRequest())).checkpoint
        assert latest.tree_size == 3  # b has not caught up with a's last append
        for response in responses[:4]:
            assert provenance.check_checkpoint_signature(response.checkpoint, keys, ORIGIN).passed
            assert provenance.check_inclusion(
                response.receipt.leaf_hash, response.inclusion_proof, response.checkpoint
            ).passed
    async with signer_over(database_url) as reopened:  # the stored log checks out
        assert reopened.log.size == 4


async def test_a_connection_lost_between_appends_is_replaced(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL only: an embedded SQLite database has no connection to lose.
    async with signer_over(fresh_database(postgres)) as signer:
        await signer.sign_receipt(_request(0))
        with _engine(signer).connect() as admin:  # as a database restart would
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            admin.commit()
        response = await signer.sign_receipt(_request(1))
        assert response.receipt.log_index == 1
        assert signer.log.size == 2
        # Replaced when its transaction began: the append itself ran once.
        assert "appending again" not in caplog.text


async def test_an_append_whose_connection_is_lost_is_appended_again(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with signer_over(fresh_database(postgres)) as signer:
        await signer.sign_receipt(_request(0))
        store = signer._store
        append = store.append
        calls = 0

        def lose_connection_once(conn: Connection, *args: Any) -> bool:
            nonlocal calls
            calls += 1
            if calls == 1:  # mid-transaction, after BEGIN and the lock
                conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            return append(conn, *args)

        monkeypatch.setattr(store, "append", lose_connection_once)
        response = await signer.sign_receipt(_request(1))
        assert calls == 2
        assert response.receipt.log_index == 1
        assert signer.log.size == 2
        assert "connection lost; appending again" in caplog.text
