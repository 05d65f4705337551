"""Task dispatch: how a worker's poll finds the attempts it may lease.

Two backends behind one interface, both an *index* over the journal's
``attempts`` table (the source of truth; a lease is always granted by a
compare-and-set on the attempt's row, whatever the backend said):

- :class:`SqlDispatch` queries the table itself (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL); long polls wake on new work from this process and re-check on a
  short interval for work from other processes, expired leases and backoffs.
- :class:`RedisDispatch` keeps one Redis Stream per task queue with a consumer
  group. New attempts go to the ``outbox`` table in the transaction that
  schedules them; a relay copies due outbox rows to the stream and deletes
  them, so a crash between the two only delivers a task twice (the second
  delivery is refused by the row's compare-and-set). Entries whose lease
  expired are taken over with ``XAUTOCLAIM``; entries of finished attempts are
  acknowledged and deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from sqlalchemy.engine import Connection

from maestro.runtime.periodic import woken
from maestro.services.scheduler.store import AttemptRow, Store, now

log = logging.getLogger(__name__)
Candidate = tuple[str, str, str]
"""``(task_id, execution_id, ref)`` of an attempt a worker might lease; ``ref``
is the backend's handle on its index entry (the Redis stream entry id), kept on
the attempt's row while it is leased so any scheduler process can settle it."""


class Dispatch(Protocol):
    """The interface both backends implement (and the contract tests check)."""

    name: str
    skip_locked: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def scheduled(self, conn: Connection, attempts: Sequence[AttemptRow]) -> None:
        """Inside the scheduling transaction (its thread): record the new attempts."""

    def committed(self, attempts: Sequence[AttemptRow]) -> None:
        """After that transaction committed: make them findable at once."""

    async def candidates(self, task_queue: str, limit: int) -> list[Candidate]:
        """Attempts that may be leasable now (to be confirmed on the row)."""

    async def wait(self, task_queue: str, timeout: float) -> None:
        """Returns when new work may be there, or after ``timeout`` seconds."""

    async def settled(self, task_queue: str, refs: Sequence[str]) -> None:
        """The attempts finished or are gone: drop their entries from the index
        (a no-op for the SQL table)."""

    async def deferred(self, task_queue: str, live: Sequence[tuple[str, datetime]]) -> None:
        """Entries found whose lease is still held (heartbeats renewed it): look
        at them again when that lease expires, not earlier or later."""

    async def depth(self, task_queue: str) -> int:
        """Entries waiting in the index, for metrics."""


class _Wakeups:
    """Per-queue events that wake long polls in this process."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def wake(self, task_queue: str) -> None:
        self._events[task_queue].set()

    async def wait(self, task_queue: str, timeout: float) -> None:
        event = self._events[task_queue]
        if event.is_set():
            event.clear()
            return
        if await woken(event, timeout):
            event.clear()


class SqlDispatch:
    """The scheduler's own ``attempts`` table as the queue."""

    name = "sql"
    skip_locked = True

    def __init__(self, store: Store, recheck_seconds: float) -> None:
        self._store = store
        self._recheck = recheck_seconds
        self._wakeups = _Wakeups()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def scheduled(self, conn: Connection, attempts: Sequence[AttemptRow]) -> None:
        return None

    def committed(self, attempts: Sequence[AttemptRow]) -> None:
        at = now()
        for queue in {a.task_queue for a in attempts if a.visible_time <= at}:
            self._wakeups.wake(queue)

    async def candidates(self, task_queue: str, limit: int) -> list[Candidate]:
        at = now()
        found = await self._store.query(
            lambda conn: self._store.leasable(conn, task_queue, at, limit)
        )
        return [(task_id, execution_id, "") for task_id, execution_id in found]

    async def wait(self, task_queue: str, timeout: float) -> None:
        await self._wakeups.wait(task_queue, min(timeout, self._recheck))

    async def settled(self, task_queue: str, refs: Sequence[str]) -> None:
        return None

    async def deferred(self, task_queue: str, live: Sequence[tuple[str, datetime]]) -> None:
        return None

    async def depth(self, task_queue: str) -> int:
        at = now()
        found = await self._store.query(
            lambda conn: self._store.leasable(conn, task_queue, at, 10_000)
        )
        return len(found)


class RedisDispatch:
    """Redis Streams with consumer groups, fed from the outbox.

    A transaction that schedules attempts writes their outbox rows; after it
    commits, this process already knows the rows, so the relay adds those
    that are due to their streams at once, wakes the pollers, then deletes
    the rows: no read of the outbox on the way to the worker (it was a third
    of the dispatch latency on PostgreSQL). The outbox stays the source of
    truth: rows added but not deleted (a crash in between) are added again,
    and the row's lease decides about the duplicate entry, as before; rows
    not yet due, rows of another process and rows whose add failed are moved
    by the sweep, which reads the outbox at least every ``relay_seconds``.
    """

    name = "redis"
    skip_locked = False
    GROUP = "maestro-scheduler"

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        consumer: str,
        lease_seconds: float,
        relay_seconds: float,
    ) -> None:
        self._store = store
        self._redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._consumer = consumer
        self._lease_ms = int(lease_seconds * 1000)
        self._relay_seconds = relay_seconds
        self._groups: set[str] = set()
        self._relay_task: asyncio.Task[None] | None = None
        self._relay_now = asyncio.Event()
        self._fresh: list[tuple[str, str]] = []
        """(task id, queue) of due rows this process committed, not moved yet."""
        self._swept = 0.0
        self._wakeups = _Wakeups()

    @staticmethod
    def stream(task_queue: str) -> str:
        return f"maestro:tasks:{task_queue}"

    async def start(self) -> None:
        await self._redis.ping()
        self._relay_task = asyncio.create_task(self._relay_loop(), name="redis-outbox-relay")

    async def close(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        await self._redis.aclose()

    async def _group(self, task_queue: str) -> str:
        stream = self.stream(task_queue)
        if task_queue not in self._groups:
            try:
                await self._redis.xgroup_create(stream, self.GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add(task_queue)
        return stream

    def scheduled(self, conn: Connection, attempts: Sequence[AttemptRow]) -> None:
        self._store.insert_outbox(conn, attempts)

    def committed(self, attempts: Sequence[AttemptRow]) -> None:
        at = now()
        due = [(a.task_id, a.task_queue) for a in attempts if a.visible_time <= at]
        if due:
            self._fresh.extend(due)
            self._relay_now.set()

    async def _relay_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await woken(self._relay_now, self._relay_seconds)
            self._relay_now.clear()
            try:
                fresh, self._fresh = self._fresh, []
                if fresh:
                    await self._move(fresh)
                if not fresh or loop.time() - self._swept >= self._relay_seconds:
                    self._swept = loop.time()
                    await self.relay()
            except Exception:  # the sweep retries; the outbox keeps the rows
                log.exception("outbox relay to Redis failed")
                await asyncio.sleep(self._relay_seconds)

    async def relay(self) -> int:
        """The sweep: copies the outbox's due rows to their streams, then
        deletes them."""
        moved = 0
        while True:
            rows = await self._store.take_outbox(now(), 500)
            if not rows:
                return moved
            if self._fresh:  # committed while the sweep read: moved here, not twice
                taken = {task_id for task_id, _ in rows}
                self._fresh = [row for row in self._fresh if row[0] not in taken]
            await self._move(rows)
            moved += len(rows)
            if len(rows) < 500:
                return moved

    async def _move(self, rows: Sequence[tuple[str, str]]) -> None:
        """Adds (task id, queue) rows to their streams, wakes the queues'
        pollers, then deletes the rows from the outbox."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id, task_queue in rows:
                pipe.xadd(await self._group(task_queue), {"task_id": task_id})
            await pipe.execute()
        for task_queue in {q for _, q in rows}:
            self._wakeups.wake(task_queue)
        await self._store.delete_outbox([task_id for task_id, _ in rows])

    async def candidates(self, task_queue: str, limit: int) -> list[Candidate]:
        stream = await self._group(task_queue)
        found: list[tuple[str, str]] = []
        # Entries whose holder has not finished them within a lease: the row
        # decides whether the lease really expired.
        reply: Any = await self._redis.xautoclaim(
            stream, self.GROUP, self._consumer, self._lease_ms, "0-0", count=limit
        )
        claimed = reply[1]
        found.extend((entry_id, fields["task_id"]) for entry_id, fields in claimed if fields)
        if len(found) < limit:
            response: Any = await self._redis.xreadgroup(
                self.GROUP, self._consumer, {stream: ">"}, count=limit - len(found)
            )
            for _, entries in response or ():
                found.extend((entry_id, fields["task_id"]) for entry_id, fields in entries)
        return [(task_id, task_id.split("/", 1)[0], entry_id) for entry_id, task_id in found]

    async def wait(self, task_queue: str, timeout: float) -> None:
        await self._wakeups.wait(task_queue, min(timeout, self._relay_seconds * 2))

    async def settled(self, task_queue: str, refs: Sequence[str]) -> None:
        entries = [r for r in refs if r]
        if entries:
            stream = await self._group(task_queue)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, self.GROUP, *entries)
                pipe.xdel(stream, *entries)
                await pipe.execute()

    async def deferred(self, task_queue: str, live: Sequence[tuple[str, datetime]]) -> None:
        # XAUTOCLAIM just reset these entries' idle time although their leases
        # (renewed by heartbeats the stream never sees) run on: set the idle
        # time so each is claimable again exactly when its lease expires.
        stream = await self._group(task_queue)
        at = now()
        async with self._redis.pipeline(transaction=False) as pipe:
            for ref, expires in live:
                remaining = max(0, int((expires - at).total_seconds() * 1000))
                pipe.xclaim(
                    stream,
                    self.GROUP,
                    self._consumer,
                    0,
                    [ref],
                    idle=max(0, self._lease_ms - remaining),
                    justid=True,
                )
            await pipe.execute()

    async def depth(self, task_queue: str) -> int:
        stream = await self._group(task_queue)
        return int(await self._redis.xlen(stream))
