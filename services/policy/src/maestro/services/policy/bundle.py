"""Policy bundles as files: reading a source, its revision, its data and modules.

A bundle is an OPA-style directory (or a single ``.rego`` file, or a ``.tar.gz``
of the directory): Rego modules (``*.rego``; ``*_test.rego`` hold tests), data
documents (``data.json``, mounted at their directory's path: ``maestro/catalog/
data.json`` is ``data.maestro.catalog``) and an optional ``.manifest`` (JSON:
``revision``, ``roots``). Other files (READMEs) are not part of the bundle and
do not change its revision.

Nothing here evaluates policy; see ``engine.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = ".manifest"
DATA_FILE = "data.json"
MODULE_SUFFIX = ".rego"
TEST_SUFFIX = "_test.rego"
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""Largest bundle read (all its files together)."""


class BundleLoadError(Exception):
    """A candidate bundle that cannot become active.

    Attributes:
        message: what went wrong, for example ``maestro/authz.rego:12: unexpected
            token`` or ``2 bundle tests failed``.
        revision: the candidate's revision, "" when it could not even be read.
        file: path inside the bundle where the error is, when known.
        line: 1-based line in ``file``; 0 when unknown.
        tests: the candidate's test results, when it compiled far enough to run them.
    """

    def __init__(
        self,
        message: str,
        *,
        revision: str = "",
        file: str = "",
        line: int = 0,
        tests: TestSummary | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.revision = revision
        self.file = file
        self.line = line
        self.tests = tests


@dataclass(frozen=True, slots=True)
class TestSummary:
    """Results of a bundle's tests (``BundleTestSummary``)."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failed_tests: tuple[str, ...] = ()
    duration_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class BundleFiles:
    """The bundle's files, read from its source."""

    source: str
    files: Mapping[str, bytes]
    """Bundle-relative POSIX path → content, of the files that make the bundle."""
    revision: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "revision", revision_of(self.files))

    @property
    def modules(self) -> dict[str, str]:
        """Policy modules (tests excluded): path → source."""
        return {
            path: _text(path, content)
            for path, content in sorted(self.files.items())
            if path.endswith(MODULE_SUFFIX) and not path.endswith(TEST_SUFFIX)
        }

    @property
    def test_modules(self) -> dict[str, str]:
        """Test modules (``*_test.rego``): path → source."""
        return {
            path: _text(path, content)
            for path, content in sorted(self.files.items())
            if path.endswith(TEST_SUFFIX)
        }

    def data(self) -> dict[str, Any]:
        """Every ``data.json`` merged into one document, each at its directory's path.

        Raises:
            BundleLoadError: a data file is not a JSON object, or two files
                define the same key.
        """
        merged: dict[str, Any] = {}
        for path, content in sorted(self.files.items()):
            if PurePosixPath(path).name != DATA_FILE:
                continue
            try:
                document = json.loads(content)
            except ValueError as exc:
                raise BundleLoadError(
                    f"{path}: invalid JSON: {exc}", revision=self.revision, file=path
                ) from exc
            if not isinstance(document, dict):
                raise BundleLoadError(
                    f"{path}: a data document must be a JSON object",
                    revision=self.revision,
                    file=path,
                )
            node = merged
            for part in PurePosixPath(path).parent.parts:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise BundleLoadError(
                        f"{path}: data path {part!r} is already a value",
                        revision=self.revision,
                        file=path,
                    )
                node = child
            for key, value in document.items():
                if key in node:
                    raise BundleLoadError(
                        f"{path}: data key {key!r} is defined twice",
                        revision=self.revision,
                        file=path,
                    )
                node[key] = value
        return merged

    def manifest(self) -> dict[str, Any]:
        """The ``.manifest`` document ({} without one).

        Raises:
            BundleLoadError: the manifest is not a JSON object.
        """
        content = self.files.get(MANIFEST)
        if content is None:
            return {}
        try:
            manifest = json.loads(content)
        except ValueError as exc:
            raise BundleLoadError(
                f"{MANIFEST}: invalid JSON: {exc}", revision=self.revision, file=MANIFEST
            ) from exc
        if not isinstance(manifest, dict):
            raise BundleLoadError(
                f"{MANIFEST}: must be a JSON object", revision=self.revision, file=MANIFEST
            )
        return manifest


def revision_of(files: Mapping[str, bytes]) -> str:
    """``sha256:`` + the hex SHA-256 over the sorted (path, content) pairs, each
    framed by its length so that no two bundles share a digest by concatenation."""
    digest = hashlib.sha256()
    for path, content in sorted(files.items()):
        name = path.encode()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return "sha256:" + digest.hexdigest()


def is_bundle_file(path: str) -> bool:
    """Whether a bundle-relative path is part of the bundle."""
    name = PurePosixPath(path).name
    return name.endswith(MODULE_SUFFIX) or name == DATA_FILE or path == MANIFEST


def read_source(source: Path) -> BundleFiles:
    """Reads a bundle from a directory, a ``.rego`` file or a ``.tar.gz``.

    Raises:
        BundleLoadError: the source is missing, unreadable, too large or holds
            no policy module.
    """
    try:
        if source.is_dir():
            files = _read_directory(source)
        elif source.name.endswith((".tar.gz", ".tgz")):
            files = _read_archive(source.read_bytes())
        elif source.suffix == MODULE_SUFFIX:
            files = {source.name: source.read_bytes()}
        elif source.exists():
            raise BundleLoadError(
                f"{source}: not a bundle (a directory, a .rego file or a .tar.gz)"
            )
        else:
            raise BundleLoadError(f"{source}: no such file or directory")
    except OSError as exc:
        raise BundleLoadError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if sum(len(c) for c in files.values()) > MAX_BUNDLE_BYTES:
        raise BundleLoadError(f"{source}: larger than {MAX_BUNDLE_BYTES} bytes")
    bundle = BundleFiles(str(source), files)
    if not bundle.modules:
        raise BundleLoadError(f"{source}: no policy module (*.rego)", revision=bundle.revision)
    return bundle


def fingerprint(source: Path) -> tuple[tuple[str, int, int], ...]:
    """A cheap change detector: (path, size, mtime) of each bundle file. Equal
    fingerprints mean no reload is needed; different ones mean read and compare
    revisions (a touched but unchanged file is not a new revision)."""
    try:
        if source.is_dir():
            entries = []
            for path in sorted(source.rglob("*")):
                relative = path.relative_to(source).as_posix()
                if path.is_file() and is_bundle_file(relative) and not _hidden(relative):
                    stat = path.stat()
                    entries.append((relative, stat.st_size, stat.st_mtime_ns))
            return tuple(entries)
        stat = source.stat()
        return ((source.name, stat.st_size, stat.st_mtime_ns),)
    except OSError:
        return ()


def _hidden(relative: str) -> bool:
    # Editors' and VCS's dot files are not bundle content; the manifest is.
    return relative != MANIFEST and any(part.startswith(".") for part in relative.split("/"))


def _read_directory(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and is_bundle_file(relative) and not _hidden(relative):
            files[relative] = path.read_bytes()
    return files


def _read_archive(raw: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile():
                    continue
                relative = PurePosixPath(member.name.lstrip("/"))
                parts = [p for p in relative.parts if p != "."]
                if not parts or ".." in parts:
                    raise BundleLoadError(f"archive member {member.name!r} escapes the bundle")
                name = "/".join(parts)
                if not is_bundle_file(name) or _hidden(name):
                    continue
                extracted = archive.extractfile(member)
                if extracted is not None:
                    files[name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleLoadError(f"not a readable .tar.gz bundle: {exc}") from exc
    return files


def _text(path: str, content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleLoadError(f"{path}: not UTF-8 text", file=path) from exc
