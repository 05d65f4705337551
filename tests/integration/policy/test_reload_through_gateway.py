"""Hot reload through the real gateway and services: a bundle change on disk
changes the answer a caller gets from the gateway within a second, although
the registry's policy gate had cached the previous answer for a minute (its
revision watch empties the cache; expiry cannot be what does it).

The registry asks the policy before it changes a workflow, not before it
reads one, so the cached answer exercised here is an author's
``workflow.update`` of an unchanged draft (a no-op that is still checked); the
bundle copy then takes ``workflow.update`` away from authors, and gives it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from maestro.runtime.server import GrpcServer
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.server import create_server as create_policy
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server as create_registry
from tests.devgateway import DevGateway, dev_gateway
from tests.unit.policy.support import CATALOG, copy_bundle, edit, eventually, sample

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

GREETER = """
name: greeter
labels: {classification: public}
steps:
  - {id: hi, type: task, handler: echo, timeout: 5s, input: {who: '"you"'}}
"""
YAML = {"content-type": "application/yaml"}
AUTHORS_UPDATE = '"workflow.update": {"roles": ["admin", "author"]'
ADMINS_UPDATE = '"workflow.update": {"roles": ["admin"]'


@dataclass
class Stack:
    gateway: DevGateway
    bundle: Path
    policy: GrpcServer
    registry: GrpcServer

    @property
    def http(self) -> httpx.AsyncClient:
        return self.gateway.http

    def gate_metric(self, name: str) -> float:
        return sample(self.registry.registry, name)

    def cache(self, result: str) -> float:
        """The registry gate's cache hits or misses."""
        return sample(self.registry.registry, "maestro_policy_client_cache_total", result=result)

    def evaluated(self, result: str) -> float:
        """workflow.update decisions the policy service made (each one logged)."""
        return sample(
            self.policy.registry,
            "maestro_policy_decisions_total",
            action="workflow.update",
            result=result,
        )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    bundle = copy_bundle(tmp_path / "bundle")
    policy = await create_policy(
        PolicySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path / "policy",
            bundle_path=bundle,
            bundle_poll_seconds=0.2,
        )
    )
    compiler = await create_compiler(CompilerSettings(port=0, metrics_port=None))
    registry = await create_registry(
        RegistrySettings(
            port=0,
            metrics_port=None,
            data_dir=tmp_path / "registry",
            compiler_address=f"127.0.0.1:{compiler.port}",
            policy_address=f"127.0.0.1:{policy.port}",
            signer_address="",
            # Far longer than the test: only an invalidation can change an answer.
            policy_cache_ttl_seconds=60,
        )
    )
    try:
        async with dev_gateway(
            tmp_path / "gateway",
            compiler=f"127.0.0.1:{compiler.port}",
            registry=f"127.0.0.1:{registry.port}",
            policy=f"127.0.0.1:{policy.port}",
        ) as gateway:
            yield Stack(gateway, bundle, policy, registry)
    finally:
        await registry.stop(0)
        await compiler.stop(0)
        await policy.stop(0)


def assert_denied(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["reason"] == "POLICY_DENIED"
    assert len(problem["decisionId"]) == 26
    assert "ROLE_REQUIRED" in {r["code"] for r in problem["reasons"]}, problem["reasons"]
    assert all(r["message"] for r in problem["reasons"])
    return problem


async def test_a_bundle_change_reaches_cached_answers_through_the_gateway_within_a_second(
    stack: Stack,
) -> None:
    author = stack.gateway.token("acme", "ana", "author")
    created = await stack.http.post(
        "/api/workflows?workflowId=greeter", headers={**author, **YAML}, content=GREETER
    )
    assert created.status_code == 201, created.text

    async def update() -> httpx.Response:
        # The same draft again: changes nothing, but is checked (workflow.update).
        return await stack.http.put(
            "/api/workflows/greeter", headers={**author, **YAML}, content=GREETER
        )

    first = await update()
    assert first.status_code == 200, first.text

    async def watching() -> bool:
        return stack.gate_metric("maestro_policy_client_watch_connected") == 1

    # The registry's gate follows the revision (opened by its first check).
    await eventually(watching, within=2)
    hits = stack.cache("hit")
    second = await update()
    assert second.status_code == 200, second.text
    assert second.json()["etag"] == first.json()["etag"]
    # Answered from the registry's cache: the policy service was asked once.
    assert stack.cache("hit") == hits + 1
    assert stack.evaluated("allow") == 1

    edit(stack.bundle / CATALOG, AUTHORS_UPDATE, ADMINS_UPDATE)
    denials: list[httpx.Response] = []

    async def denied() -> bool:
        response = await update()
        if response.status_code == 403:
            denials.append(response)
            return True
        assert response.status_code == 200, response.text
        return False

    took = await eventually(denied, within=1.0, step=0.01)
    print(f"\nbundle change -> 403 through the gateway: {took:.3f} s")
    assert took < 1.0
    problem = assert_denied(denials[0])
    assert problem["decisionId"] != ""
    assert stack.evaluated("allow") == 1 and stack.evaluated("deny") == 1

    edit(stack.bundle / CATALOG, ADMINS_UPDATE, AUTHORS_UPDATE)

    async def allowed() -> bool:
        response = await update()
        if response.status_code == 200:
            return True
        assert_denied(response)  # the cached denial, until the revision changes
        return False

    took = await eventually(allowed, within=1.0, step=0.01)
    print(f"bundle reverted -> 200 through the gateway: {took:.3f} s")
    assert took < 1.0
    assert stack.evaluated("allow") == 2 and stack.evaluated("deny") == 1
    assert stack.gate_metric("maestro_policy_client_cache_invalidations_total") == 2
