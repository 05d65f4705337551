"""Domain → proto for the bundle status and the revision watch (decisions are
proto messages already)."""

from __future__ import annotations

from maestro.policy.v1 import bundle_pb2, policy_service_pb2
from maestro.services.policy.bundle import TestSummary
from maestro.services.policy.bundles import ActiveBundle, BundleState, BundleStatus

_STATES = {
    BundleState.NOT_LOADED: bundle_pb2.BUNDLE_STATE_NOT_LOADED,
    BundleState.ACTIVE: bundle_pb2.BUNDLE_STATE_ACTIVE,
    BundleState.STALE: bundle_pb2.BUNDLE_STATE_STALE,
}


def test_summary_message(summary: TestSummary) -> bundle_pb2.BundleTestSummary:
    message = bundle_pb2.BundleTestSummary(
        passed=summary.passed,
        failed=summary.failed,
        skipped=summary.skipped,
        failed_tests=list(summary.failed_tests),
    )
    message.duration.FromNanoseconds(int(summary.duration_seconds * 1e9))
    return message


def bundle_message(status: BundleStatus) -> bundle_pb2.PolicyBundle:
    message = bundle_pb2.PolicyBundle(state=_STATES[status.state], source=status.source)
    if status.active is not None:
        message.revision = status.active.revision
        message.load_time.FromDatetime(status.active.load_time)
        message.modules.extend(status.active.modules)
        message.tests.CopyFrom(test_summary_message(status.active.tests))
    if status.check_time is not None:
        message.check_time.FromDatetime(status.check_time)
    failure = status.last_error
    if failure is not None:
        message.last_error.revision = failure.revision
        message.last_error.time.FromDatetime(failure.time)
        message.last_error.message = failure.message
        message.last_error.file = failure.file
        message.last_error.line = failure.line
        if failure.tests is not None:
            message.last_error.tests.CopyFrom(test_summary_message(failure.tests))
    return message


def revision_message(bundle: ActiveBundle | None) -> policy_service_pb2.WatchBundleRevisionResponse:
    """One WatchBundleRevision message: the active bundle's revision, or an
    empty one while no bundle has loaded."""
    message = policy_service_pb2.WatchBundleRevisionResponse()
    if bundle is not None:
        message.revision = bundle.revision
        message.load_time.FromDatetime(bundle.load_time)
    return message
