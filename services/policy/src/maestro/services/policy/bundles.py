"""The active policy bundle: loading, testing, activating and watching it.

A candidate (read from the configured source) becomes active only if it
compiles and every one of its tests passes; otherwise the previous revision
stays active and the failure is kept as ``last_error``. The source is polled
(sizes and modification times, then the content hash) every
``poll_seconds``; a new revision is loaded without a restart, and listeners
(the decision cache, metrics) hear about each activation. ``reload`` does the
same on demand (ReloadBundle).

Compiling and testing run on a worker thread, so decisions keep flowing on the
event loop while a candidate is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maestro.runtime.errors import FailedPreconditionError
from maestro.runtime.periodic import Periodic
from maestro.services.policy.bundle import (
    BundleFiles,
    BundleLoadError,
    TestSummary,
    fingerprint,
    read_source,
)
from maestro.services.policy.engine import CompiledPolicy, PolicyEngine

log = logging.getLogger("maestro.policy.bundles")


class BundleState(enum.Enum):
    """Mirrors ``maestro.policy.v1.BundleState``."""

    NOT_LOADED = 1
    ACTIVE = 2
    STALE = 3


@dataclass(frozen=True, slots=True)
class ActiveBundle:
    """A compiled, tested bundle that decisions are made with."""

    revision: str
    policy: CompiledPolicy
    data: Mapping[str, Any]
    manifest: Mapping[str, Any]
    load_time: datetime
    tests: TestSummary

    @property
    def modules(self) -> tuple[str, ...]:
        return self.policy.modules

    def config(self, *path: str) -> Any:
        """A value of the bundle's data by path (None when absent)."""
        node: Any = self.data
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node


@dataclass(frozen=True, slots=True)
class BundleFailure:
    """The most recent candidate that failed to load (``BundleError``)."""

    revision: str
    time: datetime
    message: str
    file: str = ""
    line: int = 0
    tests: TestSummary | None = None


@dataclass(frozen=True, slots=True)
class BundleStatus:
    """Everything GetBundleStatus reports."""

    state: BundleState
    source: str
    active: ActiveBundle | None
    check_time: datetime | None
    last_error: BundleFailure | None


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of a successful reload."""

    status: BundleStatus
    changed: bool
    candidate_revision: str = ""
    candidate_tests: TestSummary | None = None


@dataclass
class _Candidate:
    files: BundleFiles
    policy: CompiledPolicy
    tests: TestSummary
    data: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[ActiveBundle], None]


class BundleManager:
    """Owns the active bundle of one policy service."""

    def __init__(
        self,
        source: Path,
        engine: PolicyEngine,
        *,
        poll_seconds: float = 0.5,
        on_reload: Callable[[str], None] | None = None,
    ) -> None:
        self._source = source
        self._engine = engine
        self._active: ActiveBundle | None = None
        self._last_error: BundleFailure | None = None
        self._check_time: datetime | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._failed_revision = ""
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._on_reload = on_reload or (lambda _result: None)
        self._watcher = Periodic("policy-bundle-watch", poll_seconds, self.poll)

    @property
    def source(self) -> Path:
        return self._source

    @property
    def active(self) -> ActiveBundle | None:
        """The bundle decisions are made with, None until one has loaded."""
        return self._active

    def on_activate(self, listener: Listener) -> Callable[[], None]:
        """Calls ``listener`` with every bundle that becomes active (on the event
        loop, synchronously: a listener must not block). Returns a function that
        removes the listener again (calling it twice is harmless)."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    @property
    def listener_count(self) -> int:
        """Listeners currently registered (tests: a closed watch leaves none)."""
        return len(self._listeners)

    def status(self) -> BundleStatus:
        if self._active is None:
            state = BundleState.NOT_LOADED
        elif self._last_error is not None:
            state = BundleState.STALE
        else:
            state = BundleState.ACTIVE
        return BundleStatus(
            state, str(self._source), self._active, self._check_time, self._last_error
        )

    async def start(self) -> None:
        """Loads the bundle once (a failure is logged and kept, not raised:
        decisions fail closed until a good revision appears) and starts watching."""
        try:
            await self.reload()
        except FailedPreconditionError as exc:
            log.error(
                "policy bundle not loaded: %s", exc.message, extra={"source": str(self._source)}
            )
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def poll(self) -> None:
        """One check of the source: reload when its files changed."""
        current = await asyncio.to_thread(fingerprint, self._source)
        self._check_time = datetime.now(UTC)
        if current == self._fingerprint:
            return
        # A failure is kept as last_error and logged; the active revision stays.
        with contextlib.suppress(FailedPreconditionError):
            await self.reload(from_watch=True)

    async def reload(
        self, *, validate_only: bool = False, from_watch: bool = False
    ) -> ReloadResult:
        """Reads, compiles and tests the source; activates it when it is a new
        revision (unless ``validate_only``).

        Raises:
            FailedPreconditionError: POLICY_BUNDLE_INVALID when the candidate
                does not load or a test fails (metadata ``revision``, ``file``,
                ``line``); the active revision is unchanged.
        """
        async with self._lock:
            fingerprint_before = await asyncio.to_thread(fingerprint, self._source)
            self._check_time = datetime.now(UTC)
            try:
                files = await asyncio.to_thread(read_source, self._source)
                if from_watch and files.revision == self._failed_revision:
                    # The candidate that failed already: not tested again.
                    self._fingerprint = fingerprint_before
                    return ReloadResult(self.status(), changed=False)
                if from_watch and files.revision == self._active_revision:
                    # Touched but unchanged, or reverted to the active revision.
                    self._fingerprint = fingerprint_before
                    self._last_error = None
                    return ReloadResult(self.status(), changed=False)
                if (
                    not validate_only
                    and self._active is not None
                    and files.revision == self._active.revision
                ):
                    self._fingerprint = fingerprint_before
                    self._last_error = None
                    self._failed_revision = ""
                    self._on_reload("unchanged")
                    return ReloadResult(self.status(), changed=False)
                candidate = await asyncio.to_thread(self._load, files)
            except BundleLoadError as exc:
                if not validate_only:
                    self._fingerprint = fingerprint_before
                    self._record_failure(exc)
                raise _invalid(exc) from exc
            if validate_only:
                return ReloadResult(
                    self.status(),
                    changed=False,
                    candidate_revision=candidate.files.revision,
                    candidate_tests=candidate.tests,
                )
            self._fingerprint = fingerprint_before
            self._activate(candidate)
            return ReloadResult(self.status(), changed=True)

    @property
    def _active_revision(self) -> str:
        return self._active.revision if self._active is not None else ""

    def _load(self, files: BundleFiles) -> _Candidate:
        manifest = files.manifest()
        data = files.data()
        _check_roots(files, manifest)
        policy = self._engine.compile(files)
        tests = policy.run_tests()
        if tests.failed:
            names = ", ".join(tests.failed_tests[:5])
            raise BundleLoadError(
                f"{tests.failed} bundle test{'s' if tests.failed > 1 else ''} failed: {names}",
                revision=files.revision,
                tests=tests,
            )
        return _Candidate(files, policy, tests, data, manifest)

    def _activate(self, candidate: _Candidate) -> None:
        previous = self._active_revision
        active = ActiveBundle(
            revision=candidate.files.revision,
            policy=candidate.policy,
            data=candidate.data,
            manifest=candidate.manifest,
            load_time=datetime.now(UTC),
            tests=candidate.tests,
        )
        self._active = active
        self._last_error = None
        self._failed_revision = ""
        log.info(
            "policy bundle %s active",
            active.revision,
            extra={
                "previous_revision": previous,
                "engine": self._engine.name,
                "source": str(self._source),
                "manifest_revision": str(candidate.manifest.get("revision", "")),
                "tests_passed": candidate.tests.passed,
            },
        )
        self._on_reload("success")
        # A copy: a listener may remove itself (or another) while being called.
        for listener in tuple(self._listeners):
            listener(active)

    def _record_failure(self, exc: BundleLoadError) -> None:
        self._failed_revision = exc.revision
        self._last_error = BundleFailure(
            revision=exc.revision,
            time=datetime.now(UTC),
            message=exc.message,
            file=exc.file,
            line=exc.line,
            tests=exc.tests,
        )
        log.warning(
            "policy bundle candidate rejected: %s",
            exc.message,
            extra={"revision": exc.revision, "active_revision": self._active_revision},
        )
        self._on_reload("failure")


def _check_roots(files: BundleFiles, manifest: Mapping[str, Any]) -> None:
    """With manifest ``roots``, every package and data path must be under one."""
    roots = manifest.get("roots")
    if roots is None:
        return
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise BundleLoadError(".manifest: roots must be a list of strings", revision=files.revision)
    prefixes = [r.strip("/").replace("/", ".") for r in roots]

    def covered(name: str) -> bool:
        return any(not p or name == p or name.startswith(p + ".") for p in prefixes)

    for path, source in {**files.modules, **files.test_modules}.items():
        for line in source.splitlines():
            if line.startswith("package "):
                package = line.removeprefix("package ").strip()
                if not covered(package):
                    raise BundleLoadError(
                        f"{path}: package {package} is outside the manifest roots {roots}",
                        revision=files.revision,
                        file=path,
                    )
                break
    for key in files.data():
        if not covered(key) and not any(p.startswith(key + ".") or p == key for p in prefixes):
            raise BundleLoadError(
                f"data {key!r} is outside the manifest roots {roots}", revision=files.revision
            )


def _invalid(exc: BundleLoadError) -> FailedPreconditionError:
    metadata = {"revision": exc.revision, "file": exc.file, "line": str(exc.line)}
    if exc.tests is not None and exc.tests.failed_tests:
        metadata["failed_tests"] = ",".join(exc.tests.failed_tests[:20])
    return FailedPreconditionError(
        f"policy bundle invalid: {exc.message}",
        reason="POLICY_BUNDLE_INVALID",
        metadata=metadata,
    )
