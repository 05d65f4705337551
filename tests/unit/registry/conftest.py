"""Registry domain tests: SQLite in a temporary directory and a real compiler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maestro.services.registry.clients import CompilerAdapter
from tests.unit.registry.support import Harness, compiler_adapter, registry_over


@pytest.fixture
async def compiler() -> AsyncIterator[CompilerAdapter]:
    async with compiler_adapter() as adapter:
        yield adapter


@pytest.fixture
async def harness(tmp_path: Path, compiler: CompilerAdapter) -> AsyncIterator[Harness]:
    async with registry_over(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", compiler) as h:
        yield h
