"""The protos are lint-clean and formatted, and the committed generated code is
exactly what `buf generate` produces from them."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BUF = Path(sys.executable).with_name("buf")


def _buf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), f"buf not installed at {BUF}: run `make install`"
    env = {**os.environ, "BUF_CACHE_DIR": str(cwd / ".buf-cache"), "MAESTRO_PYTHON": sys.executable}
    return subprocess.run(
        [str(BUF), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_buf_lint_passes() -> None:
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format_is_clean() -> None:
    result = _buf("format", "--diff", "--exit-code")
    assert result.returncode == 0, result.stdout + result.stderr


def test_regenerating_code_changes_nothing(tmp_path: Path) -> None:
    for item in ("protos", "tools"):
        shutil.copytree(REPO / item, tmp_path / item)
    for item in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(REPO / item, tmp_path / item)
    result = _buf("generate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    committed = REPO / "libs/api/src"
    fresh = tmp_path / "libs/api/src"
    committed_files = {p.relative_to(committed) for p in committed.rglob("*_pb2*.py*")}
    fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*_pb2*.py*")}
    assert committed_files == fresh_files, "generated file set differs: run `make protos`"
    stale = [
        str(p)
        for p in sorted(fresh_files)
        if not filecmp.cmp(committed / p, fresh / p, shallow=False)
    ]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_every_service_proto_has_a_versioned_package() -> None:
    services = ("compiler", "registry", "scheduler", "executor", "policy", "signer")
    for svc in services:
        protos = list((REPO / "protos/maestro" / svc / "v1").glob("*.proto"))
        assert protos, f"no protos for {svc}"
        for proto in protos:
            assert f"package maestro.{svc}.v1;" in proto.read_text(), proto
