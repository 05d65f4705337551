"""The decision log writer: group commit of decisions.

Decide hands its decision to :meth:`DecisionLog.append`, which queues it; one
writer task takes everything queued (up to ``batch_size``) and commits it in a
single transaction (see :class:`DecisionStore` for where that runs), so
concurrent decisions share one commit and Decide never runs SQL itself.

Durable mode (the contract) awaits the commit before the decision is returned,
so every answer an enforcement point acts on is in the log; a failed commit
fails those Decide calls (UNAVAILABLE; callers retry with the same request id).
Non-durable mode returns at once; failed batches are retried with backoff and
:meth:`close` writes everything still queued before the service stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from maestro.runtime.errors import UnavailableError
from maestro.services.policy.store import DecisionRow, DecisionStore, LoggedRequest

log = logging.getLogger("maestro.policy.log")

_MAX_BACKOFF_SECONDS = 2.0


@dataclass(slots=True)
class _Entry:
    row: DecisionRow
    future: asyncio.Future[LoggedRequest | None] | None


class DecisionLog:
    """Queues decisions and writes them in batches."""

    def __init__(
        self,
        store: DecisionStore,
        *,
        durable: bool = True,
        batch_size: int = 500,
        max_pending: int = 100_000,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self._store = store
        self._durable = durable
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._queue: deque[_Entry] = deque()
        self._pending: dict[str, DecisionRow] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._on_batch = on_batch or (lambda _written, _pending: None)

    @property
    def durable(self) -> bool:
        return self._durable

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="policy-decision-log")

    def pending(self, decision_id: str) -> DecisionRow | None:
        """A decision queued but not yet written (non-durable mode)."""
        return self._pending.get(decision_id)

    def append(self, row: DecisionRow) -> asyncio.Future[LoggedRequest | None] | None:
        """Queues ``row``. Durable mode returns a future that resolves once the
        row is committed: to None, or to the decision logged earlier under the
        same request id (then ``row`` was not inserted).

        Raises:
            UnavailableError: the log is closing, or too far behind.
        """
        if self._closing:
            raise UnavailableError("the policy service is shutting down", reason="NOT_READY")
        if len(self._queue) >= self._max_pending:
            raise UnavailableError(
                "the decision log is behind; retry with backoff",
                metadata={"pending": str(len(self._queue))},
                retry_after_seconds=1.0,
            )
        future: asyncio.Future[LoggedRequest | None] | None = None
        if self._durable:
            future = asyncio.get_running_loop().create_future()
            # A caller that stopped waiting (cancelled) must not leave an
            # unretrieved exception behind.
            future.add_done_callback(_retrieve)
        else:
            self._pending[row.decision_id] = row
        self._queue.append(_Entry(row, future))
        self._wake.set()
        return future

    async def close(self, timeout: float = 10.0) -> None:
        """Stops accepting decisions and writes everything queued (waiting at most
        ``timeout`` seconds for a failing database)."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see periodic.woken
                await asyncio.shield(self._task)
        except TimeoutError:
            log.error(
                "decision log: %d decisions not written at shutdown (database unavailable)",
                len(self._queue),
            )
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
            try:
                duplicates = await self._store.insert_decisions([e.row for e in batch])
            except asyncio.CancelledError:
                self._fail(batch, UnavailableError("the decision log was stopped"))
                raise
            except Exception as exc:
                log.warning("decision log write failed: %s", exc, extra={"decisions": len(batch)})
                if self._durable:
                    self._fail(
                        batch,
                        UnavailableError(
                            "the decision log is unavailable; retry with backoff",
                            retry_after_seconds=backoff,
                        ),
                    )
                else:
                    self._queue.extendleft(reversed(batch))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.05
            for entry in batch:
                self._pending.pop(entry.row.decision_id, None)
                duplicate = duplicates.get(entry.row.decision_id)
                if entry.future is not None and not entry.future.done():
                    entry.future.set_result(duplicate)
                elif duplicate is not None:
                    log.warning(
                        "decision log: request id %s was logged before; %s was not logged",
                        entry.row.request_id,
                        entry.row.decision_id,
                    )
            self._on_batch(len(batch), len(self._queue))

    @staticmethod
    def _fail(batch: list[_Entry], error: Exception) -> None:
        for entry in batch:
            if entry.future is not None and not entry.future.done():
                entry.future.set_exception(error)


def _retrieve(future: asyncio.Future[LoggedRequest | None]) -> None:
    if not future.cancelled():
        future.exception()
