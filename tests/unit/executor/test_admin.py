"""ExecutorAdminService through a real server: handlers (built-in and entry
points), worker status and draining."""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from maestro.executor.v1 import executor_service_pb2 as pb
from maestro.executor.v1 import worker_pb2
from maestro.runtime.clients import probe_health
from maestro.runtime.errors import InvalidArgumentError
from maestro.services.executor.handlers import (
    HandlerRegistry,
    HandlerSource,
    HandlerSpec,
    load_handlers,
)
from maestro.services.executor.handlers.builtin import noop
from tests.unit.executor.conftest import Executor, Scheduler, StartExecutor
from tests.unit.executor.support import eventually, make_task

ACME_MODULE = '''
from maestro.services.executor.handlers import HandlerSpec


async def charge(ctx):
    """Charges a card.

    More words that are not the description.
    """
    return {"charged": ctx.input["amount"], "key": ctx.idempotency_key}


async def _refund(ctx):
    return {"refunded": True}


REFUND = HandlerSpec(
    name="refund",
    fn=_refund,
    description="Refunds a charge.",
    config_schema={"type": "object", "properties": {"reason": {"type": "string"}}},
)


def not_async(ctx):
    return {}
'''

ACME_ENTRY_POINTS = """
[maestro.handlers]
team.billing/charge = acme_handlers:charge
team.billing/refund = acme_handlers:REFUND
echo = acme_handlers:charge
team.billing/broken = acme_missing_module:nothing
team.billing/sync = acme_handlers:not_async
"""


@pytest.fixture
def acme_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real module plus ``*.dist-info`` on sys.path: the ``acme-handlers`` distribution."""
    (tmp_path / "acme_handlers.py").write_text(textwrap.dedent(ACME_MODULE))
    dist = tmp_path / "acme_handlers-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-handlers\nVersion: 1.2.0\n")
    (dist / "entry_points.txt").write_text(ACME_ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_handlers", None)


async def test_entry_point_handlers_are_discovered_and_listed(
    scheduler: Scheduler,
    start_executor: StartExecutor,
    acme_distribution: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="maestro.executor.handlers")
    executor = await start_executor()
    response = await executor.admin.list_handlers(pb.ListHandlersRequest(page_size=1000))
    names = [h.name for h in response.handlers]
    handlers = {h.name: h for h in response.handlers}
    # Other installed distributions may add handlers too: check ours, and the order.
    assert names == sorted(set(names))
    assert {
        "echo",
        "http",
        "noop",
        "sleep",
        "team.billing/charge",
        "team.billing/refund",
    } <= set(names)
    assert "team.billing/broken" not in names  # failed to import: skipped
    assert "team.billing/sync" not in names  # not async: skipped
    assert response.next_page_token == ""

    charge = handlers["team.billing/charge"]
    assert charge.source == worker_pb2.HANDLER_SOURCE_ENTRY_POINT
    assert (charge.entry_point, charge.distribution) == (
        "acme_handlers:charge",
        "acme-handlers 1.2.0",
    )
    assert charge.description == "Charges a card."
    refund = handlers["team.billing/refund"]
    assert refund.description == "Refunds a charge."
    assert json_format.MessageToDict(refund.config_schema) == {
        "type": "object",
        "properties": {"reason": {"type": "string"}},
    }
    # The clash with a built-in: the built-in wins.
    assert handlers["echo"].source == worker_pb2.HANDLER_SOURCE_BUILTIN
    assert handlers["echo"].entry_point == ""
    assert handlers["http"].config_schema.fields["required"].list_value.values[0].string_value == (
        "url"
    )
    logged = caplog.text
    assert "team.billing/broken" in logged  # broken entry point: logged, skipped
    assert "team.billing/sync" in logged  # not async: logged, skipped
    assert "name is taken" in logged

    # And the worker runs it.
    task = make_task("team.billing/charge", input={"amount": 12})
    scheduler.queue.add(task)
    assert await scheduler.queue.completed(task.task_id) == {
        "charged": 12,
        "key": task.idempotency_key,
    }


async def test_list_handlers_pages_by_name(
    start_executor: StartExecutor, acme_distribution: None
) -> None:
    executor = await start_executor()
    everything = await executor.admin.list_handlers(pb.ListHandlersRequest(page_size=1000))
    pages: list[list[str]] = []
    token = ""
    while True:
        response = await executor.admin.list_handlers(
            pb.ListHandlersRequest(page_size=4, page_token=token)
        )
        pages.append([h.name for h in response.handlers])
        token = response.next_page_token
        if not token:
            break
    assert len(pages) > 1
    assert all(len(page) == 4 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 4
    assert [name for page in pages for name in page] == [h.name for h in everything.handlers]


async def test_list_handlers_rejects_bad_page_size_and_token(executor: Executor) -> None:
    with pytest.raises(InvalidArgumentError) as negative:
        await executor.admin.list_handlers(pb.ListHandlersRequest(page_size=-1))
    assert negative.value.reason == "INVALID_ARGUMENT"
    for token in ("%%%", "bm90LWEtdG9rZW4", "===="):
        with pytest.raises(InvalidArgumentError) as bad:
            await executor.admin.list_handlers(pb.ListHandlersRequest(page_token=token))
        assert bad.value.reason == "INVALID_PAGE_TOKEN", token


def test_registry_pages_cap_at_1000_and_tokens_resume_after_the_last_name() -> None:
    assert len(load_handlers([], group="maestro.handlers.none-installed")) == 0
    many = HandlerRegistry(HandlerSpec(f"h{i:04d}", noop) for i in range(1200))
    first = many.list_handlers(page_size=5000)
    assert len(first.items) == 1000
    rest = many.list_handlers(page_token=first.next_page_token)
    assert [s.name for s in rest.items][:2] == ["h1000", "h1001"]
    assert len(rest.items) == 100
    assert many.list_handlers().items[0].source is HandlerSource.BUILTIN


async def test_worker_status_shows_in_flight_tasks(
    scheduler: Scheduler, executor: Executor
) -> None:
    task = make_task("sleep", input={"seconds": 30}, step_id="wait", attempt=2)
    scheduler.queue.add(task)
    await eventually(lambda: len(scheduler.queue.heartbeats) >= 1)
    response = await executor.admin.get_worker_status(pb.GetWorkerStatusRequest())
    status = response.status
    assert status.identity.startswith("executor-")
    assert status.version == "0.1.0"
    assert list(status.task_queues) == ["default"]
    assert status.concurrency_limit == 4
    assert not status.draining
    assert not status.HasField("drain_time")
    assert status.start_time.seconds > 0
    (flight,) = status.in_flight_tasks
    assert (flight.task_id, flight.execution, flight.step_id, flight.attempt) == (
        task.task_id,
        "executions/e1",
        "wait",
        2,
    )
    assert (flight.handler, flight.task_queue, flight.cancel_requested) == (
        "sleep",
        "default",
        False,
    )
    assert flight.start_time.seconds > 0
    # Renewed by the heartbeat: 30 s from the last one, later than the original lease.
    assert flight.lease_expire_time.ToDatetime() >= task.lease_expire_time.ToDatetime()


async def test_drain_stops_polling_and_turns_health_not_serving(
    scheduler: Scheduler, start_executor: StartExecutor
) -> None:
    executor = await start_executor(poll_wait_seconds=0.3)
    assert await probe_health(executor.address) == "SERVING"
    task = make_task("sleep", input={"seconds": 0.3})
    scheduler.queue.add(task)
    # Leased, and the worker is back at the scheduler asking for more.
    await eventually(lambda: task.task_id in scheduler.queue.leased)
    await eventually(lambda: len(scheduler.queue.polls) >= 2 and scheduler.queue.active_polls)

    drained = await executor.admin.drain_worker(pb.DrainWorkerRequest(reason="scale-down"))
    assert drained.status.draining
    assert drained.status.HasField("drain_time")
    assert [t.task_id for t in drained.status.in_flight_tasks] == [task.task_id]
    assert await probe_health(executor.address) == "NOT_SERVING"
    assert await probe_health(executor.address, service="liveness") == "SERVING"

    # The poll already waiting is not abandoned: what it leases still runs.
    caught = make_task("echo", input={"late": True})
    scheduler.queue.add(caught)
    assert await scheduler.queue.completed(caught.task_id) == {"late": True}
    assert await scheduler.queue.completed(task.task_id) == {"slept": 0.3}

    # Then nothing new is polled for or leased.
    await eventually(lambda: scheduler.queue.active_polls == 0)
    polls = len(scheduler.queue.polls)
    later = make_task("echo")
    scheduler.queue.add(later)
    await asyncio.sleep(0.5)
    assert len(scheduler.queue.polls) == polls
    assert later.task_id not in scheduler.queue.leased

    again = await executor.admin.drain_worker(pb.DrainWorkerRequest())
    assert again.status.drain_time == drained.status.drain_time
    assert list(again.status.in_flight_tasks) == []
    assert again.status.completed_total == 2
