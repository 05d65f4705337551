"""The policy service's domain metrics (in the server's Prometheus registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OTHER_ACTION = "other"
"""The ``action`` label of actions the active bundle's catalog does not name
(keeps the label's cardinality bounded whatever callers send)."""

_DECISION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)


class PolicyMetrics:
    """Decisions, their evaluation time, bundle revision, reloads and watchers."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.decisions = Counter(
            "maestro_policy_decisions_total",
            "Decisions made, by action and result (allow or deny).",
            ["action", "result"],
            registry=registry,
        )
        self.decision_duration = Histogram(
            "maestro_policy_decision_duration_seconds",
            "Time to evaluate the policy for one decision (cached evaluations included).",
            buckets=_DECISION_BUCKETS,
            registry=registry,
        )
        self.bundle_revision = Gauge(
            "maestro_policy_bundle_revision_info",
            "1 for the revision of the active policy bundle.",
            ["revision"],
            registry=registry,
        )
        self.bundle_reloads = Counter(
            "maestro_policy_bundle_reloads_total",
            "Bundle loads, by result: success (a new revision is active), failure (the "
            "candidate was rejected) or unchanged.",
            ["result"],
            registry=registry,
        )
        self.log_pending = Gauge(
            "maestro_policy_decision_log_pending",
            "Decisions waiting to be written to the decision log.",
            registry=registry,
        )
        self.log_batches = Histogram(
            "maestro_policy_decision_log_batch_size",
            "Decisions written per decision-log transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.bundle_watchers = Gauge(
            "maestro_policy_bundle_watchers",
            "Open WatchBundleRevision streams (enforcement points following the revision).",
            registry=registry,
        )
        self._revision = ""

    def decided(self, action: str, allow: bool, seconds: float) -> None:
        self.decisions.labels(action, "allow" if allow else "deny").inc()
        self.decision_duration.observe(seconds)

    def logged(self, written: int, pending: int) -> None:
        self.log_batches.observe(written)
        self.log_pending.set(pending)

    def reloaded(self, result: str) -> None:
        self.bundle_reloads.labels(result).inc()

    def watching(self, delta: int) -> None:
        self.bundle_watchers.inc(delta)

    def revision(self, revision: str) -> None:
        if self._revision:
            self.bundle_revision.remove(self._revision)
        self.bundle_revision.labels(revision).set(1)
        self._revision = revision
