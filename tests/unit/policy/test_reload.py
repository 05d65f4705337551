"""Bundles change without a restart: ReloadBundle and a file change on disk
activate a new revision within a second, empty the decision caches (the
server's and the enforcing client's), and a broken candidate never replaces a
good bundle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from maestro.policy.v1 import bundle_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime.errors import FailedPreconditionError, PermissionDeniedError
from tests.unit.policy.support import (
    ADMIN,
    AUTHZ,
    CATALOG,
    PolicyMesh,
    edit,
    eventually,
    policy_mesh,
    principal,
    sample,
)

pytestmark = pytest.mark.timeout(30)

VIEWER = principal("viewer")
# A new action for viewers: denied (unknown) before, allowed after; the
# bundle's tests still pass.
ADD_ARCHIVE = (
    '"actions": {',
    '"actions": {\n    "workflow.archive": {"roles": ["admin", "viewer"], "read": false},',
)
# Publishers may update: the bundle test pinning their rights fails.
GRANT_PUBLISHERS_UPDATE = (
    '"workflow.update": {"roles": ["admin", "author"]',
    '"workflow.update": {"roles": ["admin", "author", "publisher"]',
)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[PolicyMesh]:
    async with policy_mesh(tmp_path, bundle_poll_seconds=0.2) as mesh:
        yield mesh


async def status(mesh: PolicyMesh) -> bundle_pb2.PolicyBundle:
    with mesh.as_(ADMIN):
        return (await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())).bundle


async def test_reload_bundle_activates_a_new_revision_and_empties_the_client_cache(
    mesh: PolicyMesh,
) -> None:
    registry = CollectorRegistry()
    # Without the revision watch (tests/unit/policy/test_watch.py has it): the
    # fallback, a fresh answer from a new revision, empties the cache.
    gate = mesh.gate(ttl_seconds=60, registry=registry, watch=False)
    with mesh.as_(VIEWER):
        with pytest.raises(PermissionDeniedError):
            await gate.check("workflow.archive", resource="workflows/payroll")
        first = await gate.check("workflow.read", resource="workflows/payroll")
        assert (await gate.check("workflow.read", resource="workflows/payroll")).cached
    before = await status(mesh)
    assert before.state == bundle_pb2.BUNDLE_STATE_ACTIVE
    assert first.bundle_revision == before.revision

    # Nothing changed yet: a reload is a no-op that keeps the revision.
    with mesh.as_(ADMIN):
        unchanged = await mesh.client.reload_bundle(pb.ReloadBundleRequest())
    assert not unchanged.changed and unchanged.bundle.revision == before.revision

    edit(mesh.bundle / CATALOG, *ADD_ARCHIVE)
    edit(
        mesh.bundle / AUTHZ.with_name("authz_test.rego"),
        "test_caller_without_roles_is_told_so if {",
        "todo_test_caller_without_roles_is_told_so if {",
    )
    with mesh.as_(ADMIN):
        reloaded = await mesh.client.reload_bundle(pb.ReloadBundleRequest())
    assert reloaded.changed
    assert reloaded.bundle.revision != before.revision
    assert reloaded.bundle.tests.skipped == 1 and reloaded.bundle.tests.failed == 0

    with mesh.as_(VIEWER):
        # Cached answers are served until an answer from the new revision
        # arrives: the first question the gate has not cached brings it ...
        fresh = await gate.check("workflow.read", resource="workflows/other")
        assert fresh.bundle_revision == reloaded.bundle.revision
        # ... and empties the cache: both earlier questions are asked again.
        allowed = await gate.check("workflow.archive", resource="workflows/payroll")
        again = await gate.check("workflow.read", resource="workflows/payroll")
    assert allowed.allow and allowed.bundle_revision == reloaded.bundle.revision
    assert not again.cached and again.bundle_revision == reloaded.bundle.revision
    assert again.decision_id != first.decision_id
    assert gate.revision == reloaded.bundle.revision
    assert sample(registry, "maestro_policy_client_cache_total", result="hit") == 1
    metrics = mesh.server.registry
    assert sample(metrics, "maestro_policy_bundle_reloads_total", result="success") == 2
    assert sample(metrics, "maestro_policy_bundle_reloads_total", result="unchanged") == 1
    assert (
        sample(metrics, "maestro_policy_bundle_revision_info", revision=reloaded.bundle.revision)
        == 1
    )
    assert sample(metrics, "maestro_policy_bundle_revision_info", revision=before.revision) == 0


async def test_a_file_change_takes_effect_within_a_second(mesh: PolicyMesh) -> None:
    gate = mesh.gate(ttl_seconds=0)
    before = (await status(mesh)).revision
    edit(mesh.bundle / CATALOG, *ADD_ARCHIVE)

    async def viewers_may_archive() -> bool:
        with mesh.as_(VIEWER):
            return (await gate.decide("workflow.archive", resource="workflows/x")).allow

    took = await eventually(viewers_may_archive, within=1.0)
    assert took < 1.0
    after = await status(mesh)
    assert after.revision != before and after.state == bundle_pb2.BUNDLE_STATE_ACTIVE
    assert after.HasField("check_time") and after.HasField("load_time")


async def test_a_broken_candidate_keeps_the_active_revision(mesh: PolicyMesh) -> None:
    good = (await status(mesh)).revision
    edit(mesh.bundle / AUTHZ, "decision := decide(input)", "decision := decide(input")
    with mesh.as_(ADMIN), pytest.raises(FailedPreconditionError) as caught:
        await mesh.client.reload_bundle(pb.ReloadBundleRequest())
    assert caught.value.reason == "POLICY_BUNDLE_INVALID"
    assert caught.value.metadata["file"] == "maestro/authz/authz.rego"
    assert int(caught.value.metadata["line"]) > 0
    stale = await status(mesh)
    assert stale.state == bundle_pb2.BUNDLE_STATE_STALE
    assert stale.revision == good
    assert stale.last_error.revision == caught.value.metadata["revision"] != good
    assert stale.last_error.file == "maestro/authz/authz.rego"
    # Decisions continue with the good revision.
    with mesh.as_(VIEWER):
        assert (await mesh.gate().check("workflow.read")).bundle_revision == good

    # A bundle whose tests fail is refused too, with the failing test named.
    edit(mesh.bundle / AUTHZ, "decision := decide(input", "decision := decide(input)")
    edit(mesh.bundle / CATALOG, *GRANT_PUBLISHERS_UPDATE)

    async def refused() -> bool:
        current = await status(mesh)
        return current.last_error.tests.failed == 1

    await eventually(refused, within=2.0)
    current = await status(mesh)
    assert list(current.last_error.tests.failed_tests) == [
        "maestro.authz_test.test_publisher_publishes_and_promotes"
    ]
    assert current.revision == good
    assert (
        sample(mesh.server.registry, "maestro_policy_bundle_reloads_total", result="failure") == 2
    )


async def test_validate_only_tests_a_candidate_without_activating_it(mesh: PolicyMesh) -> None:
    active = (await status(mesh)).revision
    edit(mesh.bundle / AUTHZ, "authenticate, then retry", "sign in, then retry")
    with mesh.as_(ADMIN):
        checked = await mesh.client.reload_bundle(pb.ReloadBundleRequest(validate_only=True))
    assert not checked.changed
    assert checked.bundle.revision == active
    assert checked.candidate_revision not in ("", active)
    assert checked.candidate_tests.passed >= 25 and checked.candidate_tests.failed == 0


async def test_only_admins_reload_and_admins_and_auditors_read_the_status(
    mesh: PolicyMesh,
) -> None:
    with mesh.as_(principal("operator")):
        with pytest.raises(PermissionDeniedError):
            await mesh.client.reload_bundle(pb.ReloadBundleRequest())
        with pytest.raises(PermissionDeniedError):
            await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())
    with mesh.as_(principal("auditor")):
        bundle = (await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())).bundle
        with pytest.raises(PermissionDeniedError):
            await mesh.client.reload_bundle(pb.ReloadBundleRequest())
    assert list(bundle.modules) == ["maestro.authz"]
    assert bundle.source == str(mesh.bundle)
    assert bundle.tests.passed >= 25 and bundle.tests.duration.ToNanoseconds() > 0


async def test_the_bundle_is_the_platform_tenants_not_any_tenant_admins(tmp_path: Path) -> None:
    """The bundle decides for every tenant: an admin of another tenant may
    neither read its status nor reload it."""
    async with policy_mesh(tmp_path, platform_tenant="ops") as mesh:
        with mesh.as_(ADMIN):  # admin of acme
            with pytest.raises(PermissionDeniedError) as denied:
                await mesh.client.reload_bundle(pb.ReloadBundleRequest())
            assert "TENANT_MISMATCH" in denied.value.metadata["reasons"]
            with pytest.raises(PermissionDeniedError) as denied:
                await mesh.client.get_bundle_status(pb.GetBundleStatusRequest())
            assert "TENANT_MISMATCH" in denied.value.metadata["reasons"]
        with mesh.as_(principal("admin", tenant="ops", subject="root")):
            assert not (await mesh.client.reload_bundle(pb.ReloadBundleRequest())).changed
