"""Periodic: repeats, survives failing calls, and always stops."""

from __future__ import annotations

import asyncio

from maestro.runtime.periodic import Periodic


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
