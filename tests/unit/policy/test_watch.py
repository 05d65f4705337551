"""The bundle revision watch: WatchBundleRevision sends the active revision at
once and then each new one (nothing else); a gate following it empties its
cache within a second of a bundle change on disk, with no other question
asked; the gate reopens the stream after a policy restart; and a stream its
client cancels leaves nothing subscribed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.clients import open_channel
from maestro.runtime.errors import UnauthenticatedError, UnavailableError
from maestro.runtime.policy import PolicyClient, PolicyGate, open_policy_gate
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.server import PolicyServer, create_server
from tests.conftest import free_port
from tests.unit.policy.support import (
    ADMIN,
    PolicyMesh,
    copy_bundle,
    eventually,
    policy_mesh,
    principal,
    revoke_viewer_reads,
    sample,
)

pytestmark = pytest.mark.timeout(30)

VIEWER = principal("viewer")
PAYROLL = "workflows/payroll"


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[PolicyMesh]:
    async with policy_mesh(tmp_path, bundle_poll_seconds=0.2) as mesh:
        yield mesh


async def active_revision(mesh: PolicyMesh) -> str:
    with mesh.as_(ADMIN):
        return (await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())).bundle.revision


def listeners(server: PolicyServer) -> int:
    assert server.service is not None
    return int(server.service.bundles.listener_count)


async def follow(client: PolicyClient, into: asyncio.Queue[pb.WatchBundleRevisionResponse]) -> None:
    async for message in client.watch_bundle_revision(pb.WatchBundleRevisionRequest()):
        into.put_nowait(message)


async def watching(gate: PolicyGate) -> bool:
    return gate.watching


async def not_watching(gate: PolicyGate) -> bool:
    return not gate.watching


async def viewer_may_read(gate: PolicyGate) -> bool:
    with context.bind(context.CallContext(principal=VIEWER)):
        return (await gate.decide("workflow.read", resource=PAYROLL)).allow


async def time_until(gate: PolicyGate, *, allowed: bool) -> float:
    """Seconds until the gate answers the same question with ``allowed``,
    asking nothing else in between; fails after a second."""

    async def answered() -> bool:
        return await viewer_may_read(gate) is allowed

    return await eventually(answered, within=1.0, step=0.01)


async def test_the_stream_sends_the_active_revision_first_then_each_new_one(
    mesh: PolicyMesh,
) -> None:
    received: asyncio.Queue[pb.WatchBundleRevisionResponse] = asyncio.Queue()
    task = asyncio.create_task(follow(mesh.client, received))
    try:
        first = await asyncio.wait_for(received.get(), 2)
        assert first.revision == await active_revision(mesh)
        assert first.revision.startswith("sha256:") and first.HasField("load_time")

        # A reload of unchanged content activates nothing: nothing is sent.
        with mesh.as_(ADMIN):
            assert not (await mesh.client.reload_bundle(pb.ReloadBundleRequest())).changed

        restore = revoke_viewer_reads(mesh.bundle)
        second = await asyncio.wait_for(received.get(), 2)
        assert second.revision not in ("", first.revision)
        assert second.revision == await active_revision(mesh)
        assert second.load_time.ToDatetime() > first.load_time.ToDatetime()

        restore()  # back to the first revision: a new activation, sent again
        third = await asyncio.wait_for(received.get(), 2)
        assert third.revision == first.revision

        # No filler messages: the stream is silent while the revision stays.
        await asyncio.sleep(0.6)
        assert received.empty()
    finally:
        task.cancel()


async def test_a_stream_cancelled_by_its_client_unsubscribes(mesh: PolicyMesh) -> None:
    before = listeners(mesh.server)
    received: asyncio.Queue[pb.WatchBundleRevisionResponse] = asyncio.Queue()
    tasks = [asyncio.create_task(follow(mesh.client, received)) for _ in range(3)]

    async def open_streams(count: int) -> bool:
        return mesh.watchers() == count

    await eventually(lambda: open_streams(3), within=2)
    assert listeners(mesh.server) == before + 3
    tasks[0].cancel()
    await eventually(lambda: open_streams(2), within=2)
    assert listeners(mesh.server) == before + 2
    for task in tasks[1:]:
        task.cancel()
    await eventually(lambda: open_streams(0), within=2)
    assert listeners(mesh.server) == before
    # A closed gate leaves nothing behind either.
    gate = mesh.gate(ttl_seconds=60)
    gate.start_watching()
    await eventually(lambda: watching(gate), within=2)
    assert mesh.watchers() == 1
    await gate.stop_watching()
    await eventually(lambda: open_streams(0), within=2)
    assert listeners(mesh.server) == before


async def test_a_cached_answer_changes_within_a_second_of_a_bundle_change(
    mesh: PolicyMesh,
) -> None:
    registry = CollectorRegistry()
    gate = mesh.gate(ttl_seconds=60, registry=registry)
    assert await viewer_may_read(gate)
    await eventually(lambda: watching(gate), within=2)
    assert await viewer_may_read(gate)  # from the cache, for up to 60 s
    assert sample(registry, "maestro_policy_client_cache_total", result="hit") >= 1

    restore = revoke_viewer_reads(mesh.bundle)
    denied_after = await time_until(gate, allowed=False)
    print(f"\nbundle change -> cached allow replaced by a deny: {denied_after:.3f} s")
    assert denied_after < 1.0
    assert sample(registry, "maestro_policy_client_cache_invalidations_total") == 1
    # Only that one question was ever asked: one miss before, one after.
    assert sample(registry, "maestro_policy_client_cache_total", result="miss") == 2
    assert gate.revision == await active_revision(mesh)

    restore()
    allowed_after = await time_until(gate, allowed=True)
    print(f"bundle reverted -> cached deny replaced by an allow: {allowed_after:.3f} s")
    assert allowed_after < 1.0
    assert sample(registry, "maestro_policy_client_cache_invalidations_total") == 2
    assert sample(registry, "maestro_policy_client_watch_connected") == 1


async def test_the_gate_reconnects_after_a_policy_restart_and_still_invalidates(
    tmp_path: Path,
) -> None:
    bundle = copy_bundle(tmp_path / "bundle")
    settings = PolicySettings(
        port=free_port(),
        metrics_port=None,
        data_dir=tmp_path / "data",
        bundle_path=bundle,
        bundle_poll_seconds=0.2,
    )
    server = await create_server(settings)
    registry = CollectorRegistry()
    gate = open_policy_gate(
        f"127.0.0.1:{settings.port}", caller="tests", ttl_seconds=60, registry=registry
    )
    try:
        assert await viewer_may_read(gate)
        await eventually(lambda: watching(gate), within=2)

        # A graceful stop ends the watch first, so it does not wait out the grace.
        started = time.monotonic()
        await server.stop(5)
        assert time.monotonic() - started < 2
        await eventually(lambda: not_watching(gate), within=2)
        # Disconnected: a cached answer older than the disconnected TTL (1 s)
        # is not served; the check asks, and fails closed.
        await asyncio.sleep(1.1)
        with pytest.raises(UnavailableError):
            await viewer_may_read(gate)

        server = await create_server(settings)  # same port, same bundle
        await eventually(lambda: watching(gate), within=10)
        assert sample(registry, "maestro_policy_client_watch_reconnects_total") >= 1
        assert await viewer_may_read(gate)
        assert await viewer_may_read(gate)
        hits = sample(registry, "maestro_policy_client_cache_total", result="hit")
        assert hits >= 1

        revoke_viewer_reads(bundle)
        denied_after = await time_until(gate, allowed=False)
        print(f"\nafter a policy restart, bundle change -> deny: {denied_after:.3f} s")
        assert denied_after < 1.0
        assert sample(registry, "maestro_policy_client_cache_invalidations_total") == 1
    finally:
        await gate.close()
        await server.stop(0)
    assert not gate.watching


async def test_an_anonymous_caller_may_not_watch(tmp_path: Path) -> None:
    async with policy_mesh(tmp_path, anonymous_as_local_admin=False) as mesh:
        channel = open_channel(mesh.address, caller="", services=PolicyClient.SERVICES)
        client = PolicyClient(channel, timeout=5, address=mesh.address)
        try:
            with pytest.raises(UnauthenticatedError):
                async for _ in client.watch_bundle_revision(pb.WatchBundleRevisionRequest()):
                    pass
            # A service identity is enough (no principal needed).
            received: asyncio.Queue[pb.WatchBundleRevisionResponse] = asyncio.Queue()
            task = asyncio.create_task(follow(mesh.client, received))
            assert (await asyncio.wait_for(received.get(), 2)).revision
            task.cancel()
        finally:
            await channel.close()
