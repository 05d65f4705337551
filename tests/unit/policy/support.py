"""Helpers of the policy tests: principals, questions, a policy server in
process (port 0, SQLite in a temporary directory) and gates on it."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from maestro.policy.v1 import decision_pb2
from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.runtime import context
from maestro.runtime.clients import open_channel
from maestro.runtime.policy import PolicyClient, PolicyGate, classification, principal_message
from maestro.services.policy.config import DEFAULT_BUNDLE, PolicySettings
from maestro.services.policy.server import PolicyServer, create_server
from maestro.services.policy.store import DecisionRow

AUTHZ = Path("maestro/authz/authz.rego")
AUTHZ_TEST = Path("maestro/authz/authz_test.rego")
CATALOG = Path("maestro/catalog/data.json")


def principal(
    *roles: str,
    tenant: str = "acme",
    subject: str = "ana",
    clearance: str = "",
    purpose: str = "",
    legal_basis: str = "",
    reason: str = "",
) -> context.Principal:
    return context.Principal(
        tenant=tenant,
        subject=subject,
        roles=roles,
        clearance=clearance,
        purpose=purpose,
        legal_basis=legal_basis,
        reason_for_access=reason,
    )


ADMIN = principal("admin", subject="root")
AUDITOR = principal("auditor", subject="audrey")


def question(
    who: context.Principal,
    action: str,
    *,
    tenant: str = "acme",
    name: str = "workflows/payroll",
    level: str = "",
    labels: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    request_id: str = "",
) -> pb.DecideRequest:
    request = pb.DecideRequest(
        principal=principal_message(who),
        action=action,
        resource=decision_pb2.Resource(
            type=action.partition(".")[0],
            name=name,
            tenant=tenant,
            classification=classification(level),  # type: ignore[arg-type]
            labels=labels or {},
        ),
        request_id=request_id or str(uuid.uuid4()),
    )
    if extra:
        request.context.update(extra)
    return request


def decision_row(i: int, request_id: str = "", *, decision: bytes = b"") -> DecisionRow:
    """A decision-log row numbered ``i`` (decision id ``i`` zero-padded)."""
    return DecisionRow(
        decision_id=f"{i:026d}",
        request_id=request_id or f"r-{i}",
        request_hash="0" * 64,
        create_time=datetime.now(UTC),
        tenant="acme",
        subject="ana",
        action="workflow.read",
        allow=True,
        resource_type="workflow",
        resource_name=f"workflows/wf-{i}",
        resource_tenant="acme",
        bundle_revision="sha256:test",
        cached=False,
        enforcer="tests",
        decision=decision,
    )


def copy_bundle(target: Path) -> Path:
    """A writable copy of the shipped bundle."""
    shutil.copytree(DEFAULT_BUNDLE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def revoke_viewer_reads(bundle: Path) -> Callable[[], None]:
    """Edits a bundle copy so that viewers lose ``workflow.read``, adjusting
    the bundle's tests that pinned viewer reads (they read as auditors
    instead) so that the candidate still passes them and is activated.
    Returns a function that restores both files (the original revision).

    The tests are written first and restored last: they pass with either
    catalog, so the watcher never sees a candidate that fails them.
    """
    tests, catalog = bundle / AUTHZ_TEST, bundle / CATALOG
    original_tests, original_catalog = tests.read_text(), catalog.read_text()
    granted = (
        '"workflow.read": {"roles": ["admin", "author", "publisher", "operator", "viewer", '
        '"approver", "auditor"]'
    )
    assert granted in original_catalog, "the shipped catalog changed: update this edit"
    adjusted = (
        original_tests.replace('["viewer"], "workflow.read"', '["auditor"], "workflow.read"')
        .replace(
            'ask(["viewer", "author", "operator"], "workflow.read")',
            'ask(["author", "operator"], "workflow.read")',
        )
        .replace('\t\t"workflow.read is granted to role viewer",\n', "")
    )
    assert adjusted != original_tests, "the shipped bundle tests changed: update this edit"
    tests.write_text(adjusted)
    catalog.write_text(original_catalog.replace(granted, granted.replace('"viewer", ', "")))

    def restore() -> None:
        catalog.write_text(original_catalog)
        tests.write_text(original_tests)

    return restore


@dataclass
class PolicyMesh:
    """A policy server and clients of it."""

    server: PolicyServer
    client: PolicyClient
    bundle: Path
    gates: list[PolicyGate] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def gate(self, **options: Any) -> PolicyGate:
        """A gate on the mesh's client (its revision watch is stopped when the
        mesh closes; the client is the mesh's to close)."""
        gate = PolicyGate(self.client, **options)
        self.gates.append(gate)
        return gate

    def watchers(self) -> int:
        """Open WatchBundleRevision streams, as the server counts them."""
        return int(sample(self.server.registry, "maestro_policy_bundle_watchers"))

    def as_(self, who: context.Principal) -> Any:
        """Binds ``who`` as the caller of the calls made inside."""
        return context.bind(context.CallContext(principal=who))


@asynccontextmanager
async def policy_mesh(
    tmp_path: Path, *, bundle: Path | None = None, **settings: Any
) -> AsyncIterator[PolicyMesh]:
    bundle = bundle if bundle is not None else copy_bundle(tmp_path / "bundle")
    server = await create_server(
        PolicySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path / "data",
            bundle_path=bundle,
            **{"platform_tenant": "acme", **settings},  # the tests' admins run the platform
        )
    )
    address = f"127.0.0.1:{server.port}"
    channel = open_channel(address, caller="tests", services=PolicyClient.SERVICES)
    mesh = PolicyMesh(server, PolicyClient(channel, timeout=10, address=address), bundle)
    try:
        yield mesh
    finally:
        for gate in mesh.gates:
            await gate.stop_watching()
        await channel.close()
        await server.stop(0)


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, within: float, step: float = 0.02
) -> float:
    """Seconds until ``probe()`` is true; fails after ``within`` seconds."""
    started = time.monotonic()
    while True:
        if await probe():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(step)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
