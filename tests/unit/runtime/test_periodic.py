"""Periodic: repeats, survives failing calls, and always stops; ``woken``
waits for an event or a timeout and never swallows a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from maestro.runtime.periodic import Periodic, woken


async def test_calls_repeat_and_a_failing_call_does_not_end_the_schedule() -> None:
    calls = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise RuntimeError("first call fails")

    periodic = Periodic("flaky", 0.001, flaky)
    periodic.start()
    await asyncio.wait_for(third.wait(), 5)
    await asyncio.wait_for(periodic.stop(), 5)
    stopped_at = calls
    await asyncio.sleep(0.02)
    assert calls == stopped_at  # nothing runs after stop


async def test_stop_ends_the_schedule_even_when_a_call_swallows_the_cancellation() -> None:
    # asyncio.wait_for on Python 3.11 can swallow a cancellation when what it
    # waits for completes as it is cancelled; a call doing so used to put the
    # loop back to sleep and leave stop() waiting for ever.
    running = asyncio.Event()
    calls = 0

    async def stubborn() -> None:
        nonlocal calls
        calls += 1
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return  # swallowed

    periodic = Periodic("stubborn", 0.001, stubborn)
    periodic.start()
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(periodic.stop(), 5)
    assert calls == 1


async def test_a_stopped_schedule_can_start_again() -> None:
    ran = asyncio.Event()

    async def mark() -> None:
        ran.set()

    periodic = Periodic("restart", 0.001, mark)
    periodic.start()
    await periodic.stop()
    ran.clear()
    periodic.start()
    await asyncio.wait_for(ran.wait(), 5)
    await periodic.stop()


async def test_woken_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await woken(event, 5) is True


async def test_woken_never_swallows_a_cancellation_that_meets_the_event() -> None:
    # The event set and the waiting task cancelled in the same loop turn:
    # asyncio.wait_for (Python 3.11) returns True here and the cancellation
    # is lost, which is how a cancelled background loop ran on for ever.
    for turns in range(3):
        event = asyncio.Event()
        task = asyncio.create_task(woken(event, 5))
        for _ in range(turns + 1):
            await asyncio.sleep(0)
        event.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
