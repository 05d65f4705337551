"""Secrets never reach the decision log, and the log writer loses no accepted
decision: group commit, failures, and the flush on shutdown (with a store
double standing in for the database)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maestro.runtime.errors import UnavailableError
from maestro.services.policy.decision_log import DecisionLog
from maestro.services.policy.redaction import DEFAULT_SECRET_KEYS, REDACTED, Redactor
from maestro.services.policy.store import DecisionRow, LoggedRequest
from tests.unit.policy.support import decision_row

pytestmark = pytest.mark.timeout(10)


def test_keys_that_name_secrets_are_redacted_at_any_depth() -> None:
    document = {
        "user": "ana",
        "API_KEY": "k-1",
        "nested": {"db_password": "hunter2", "list": [{"refresh_token": "r"}, "plain"]},
        "client_secret": {"whole": "object"},
        "vault": "secret://payroll/db",
        "a/b~c": {"token": "t"},
    }
    redacted = Redactor(DEFAULT_SECRET_KEYS).redact(document)
    assert redacted.value == {
        "user": "ana",
        "API_KEY": REDACTED,
        "nested": {"db_password": REDACTED, "list": [{"refresh_token": REDACTED}, "plain"]},
        "client_secret": REDACTED,
        "vault": "secret://payroll/db",
        "a/b~c": {"token": REDACTED},
    }
    assert redacted.paths == (
        "/API_KEY",
        "/nested/db_password",
        "/nested/list/0/refresh_token",
        "/client_secret",
        "/a~1b~0c/token",
    )
    assert document["API_KEY"] == "k-1"  # the input is left alone


@pytest.mark.parametrize(
    "value",
    [
        "Bearer eyJhbGciOi.abc.def",
        "basic dXNlcjpwYXNzd29yZA==",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2ln",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
        "ghp_0123456789abcdefghij0123",
        "xoxb-1234567890-abcdef",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-proj-0123456789abcdefghijkl",
    ],
)
def test_values_that_look_like_credentials_are_redacted(value: str) -> None:
    assert Redactor().redact({"note": value}).value == {"note": REDACTED}


def test_ordinary_values_and_a_bundles_own_keys() -> None:
    plain = {"note": "bearer of bad news", "ip": "10.0.0.1", "n": 3, "ok": True}
    assert Redactor().redact(plain).value == plain
    custom = Redactor(["ssn"]).redact({"SSN": "123", "password": "kept: not a key here"})
    assert custom.value == {"SSN": REDACTED, "password": "kept: not a key here"}


class SlowStore:
    """Writes take a while and can be made to fail."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.failures = 0
        self.batches: list[list[str]] = []

    async def insert_decisions(self, rows: list[DecisionRow]) -> dict[str, LoggedRequest]:
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise OSError("database down")
        self.batches.append([r.decision_id for r in rows])
        return {}


def _log(store: SlowStore, **options: Any) -> DecisionLog:
    return DecisionLog(store, **options)  # type: ignore[arg-type]


async def test_concurrent_decisions_share_a_commit() -> None:
    store = SlowStore()
    log = _log(store, durable=True)
    log.start()
    futures = [log.append(decision_row(i)) for i in range(50)]
    assert all(f is not None for f in futures)
    assert await asyncio.gather(*(f for f in futures if f is not None)) == [None] * 50
    await log.close()
    assert len(store.batches) <= 2
    assert sum(len(b) for b in store.batches) == 50


async def test_a_failed_commit_fails_the_durable_decisions() -> None:
    store = SlowStore()
    store.failures = 1
    log = _log(store, durable=True)
    log.start()
    future = log.append(decision_row(1))
    assert future is not None
    with pytest.raises(UnavailableError):
        await future
    later = log.append(decision_row(2))
    assert later is not None and await later is None
    await log.close()
    assert store.batches == [[f"{2:026d}"]]


async def test_non_durable_decisions_are_retried_and_flushed_on_close() -> None:
    store = SlowStore(delay=0.01)
    store.failures = 2
    log = _log(store, durable=False, batch_size=7)
    log.start()
    for i in range(30):
        assert log.append(decision_row(i)) is None
    assert log.pending(f"{0:026d}") is not None
    await log.close(timeout=5)
    written = [d for batch in store.batches for d in batch]
    assert sorted(written) == [f"{i:026d}" for i in range(30)]
    assert log.pending(f"{0:026d}") is None
    with pytest.raises(UnavailableError):
        log.append(decision_row(99))


async def test_a_full_queue_pushes_back() -> None:
    log = _log(SlowStore(), durable=False, max_pending=3)
    for i in range(3):
        log.append(decision_row(i))
    with pytest.raises(UnavailableError, match="behind"):
        log.append(decision_row(3))
