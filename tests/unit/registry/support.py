"""Helpers shared by the registry's unit and integration tests: a real
in-process compiler server, a registry over a database URL, sample documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from maestro.runtime import db
from maestro.runtime.clients import CompilerClient, open_channel
from maestro.runtime.context import Principal
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server as create_compiler
from maestro.services.registry.clients import CompilerAdapter
from maestro.services.registry.service import Registry, Source
from maestro.services.registry.store import RegistryStore

ANA = Principal(tenant="acme", subject="ana")
BOB = Principal(tenant="acme", subject="bob")
EVE = Principal(tenant="globex", subject="eve")


def document(
    name: str = "orders",
    *,
    steps: tuple[str, ...] = ("fetch", "store"),
    tags: tuple[str, ...] = ("orders",),
    description: str = "Moves orders along.",
    required_inputs: tuple[str, ...] = (),
) -> bytes:
    """A valid YAML definition: a chain of echo tasks over an optional input
    schema. Adding a step is a compatible change, a new required input a
    breaking one, a new description a cosmetic one."""
    lines = [f"name: {name}", f"description: {description}", f"tags: [{', '.join(tags)}]"]
    lines += [
        "inputSchema:",
        "  type: object",
        "  properties: {customer: {type: string}, amount: {type: number}}",
    ]
    if required_inputs:
        lines.append(f"  required: [{', '.join(required_inputs)}]")
    lines.append("steps:")
    for i, step in enumerate(steps):
        lines += [f"  - id: {step}", "    type: task", "    handler: echo", "    timeout: 5s"]
        if i:
            lines.append(f"    needs: [{steps[i - 1]}]")
    return ("\n".join(lines) + "\n").encode()


def source(content: bytes | None = None, **kwargs: Any) -> Source:
    """A YAML source: ``content``, else ``document(**kwargs)``."""
    return Source(content if content is not None else document(**kwargs))


@dataclass
class Harness:
    """A registry over a real store and a real compiler server."""

    registry: Registry
    store: RegistryStore


@asynccontextmanager
async def compiler_adapter() -> AsyncIterator[CompilerAdapter]:
    """A compiler server on a free port and an adapter that calls it over gRPC."""
    server = await create_compiler(CompilerSettings(port=0, metrics_port=None))
    address = f"127.0.0.1:{server.port}"
    channel = open_channel(address, caller="registry-tests", services=CompilerClient.SERVICES)
    try:
        yield CompilerAdapter(CompilerClient(channel, timeout=10, address=address))
    finally:
        await channel.close()
        await server.stop(0)


@asynccontextmanager
async def registry_over(url: str, compiler: CompilerAdapter) -> AsyncIterator[Harness]:
    """A migrated store at ``url`` and a registry using ``compiler``."""
    engine = db.create_engine(url)
    store = RegistryStore(engine)
    try:
        await store.migrate()
        yield Harness(Registry(store, compiler), store)
    finally:
        await engine.dispose()
