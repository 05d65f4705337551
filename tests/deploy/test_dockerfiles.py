"""deploy/docker/<service>.Dockerfile, checked without a Docker engine: each is
multi-stage, builds the service's wheels with constraints.txt in a builder,
runs as a numeric non-root user on python:3.11-slim with no build tools,
starts ``python -m maestro.services.<service>``, and copies only paths that
exist and that .dockerignore lets through."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from tests.deploy.manifests import REPO, SERVICES, app_port, metrics_port

pytestmark = pytest.mark.timeout(30)

DOCKER = REPO / "deploy" / "docker"
FINAL_BASE = "python:3.11-slim"
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|make|build-essential|pip)\b")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile: instructions with continuations joined,
    comments and parser directives dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "FROM":
            words = rest.split()
            image = next(w for w in words if not w.startswith("--"))
            name = words[words.index("AS") + 1] if "AS" in words else None
            stages.append(Stage(image, name))
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


def copy_sources(stage: Stage) -> list[str]:
    """Build-context paths the stage's COPY/ADD instructions read (not --from)."""
    sources = []
    for keyword in ("COPY", "ADD"):
        for args in stage.args(keyword):
            words = args.split()
            if any(w.startswith("--from") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            sources.extend(words[:-1])
    return sources


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (Docker's
    rules: the last matching pattern wins, ``!`` re-includes, a pattern that
    matches a directory matches everything under it, ``**`` any depth)."""

    def matches(pattern: str, candidate: str) -> bool:
        return re.fullmatch(_glob_regex(pattern.strip("/")), candidate) is not None

    parts = PurePosixPath(path.strip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if any(matches(pattern, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> str:
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + pattern[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return regex


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def workspace_closure(distribution: str) -> set[Path]:
    """Directories of the workspace distributions ``distribution`` needs
    (itself included), from the pyproject.toml dependencies."""
    by_name = {}
    for pyproject in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]:
        project = tomllib.loads(pyproject.read_text())["project"]
        by_name[project["name"]] = (pyproject.parent, project.get("dependencies", []))
    needed: set[Path] = set()
    todo = [distribution]
    while todo:
        directory, dependencies = by_name[todo.pop()]
        if directory in needed:
            continue
        needed.add(directory)
        todo.extend(
            d for d in (re.split(r"[<>=\[; ]", dep)[0] for dep in dependencies) if d in by_name
        )
    return needed


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_is_multi_stage_and_pins_its_base_images(service: str) -> None:
    stages = parse(DOCKER / f"{service}.Dockerfile")
    assert len(stages) >= 2
    names = {s.name for s in stages}
    for stage in stages:
        if stage.image in names:
            continue  # FROM an earlier stage
        repository, _, tag = stage.image.rpartition(":")
        assert repository and tag and "/" not in tag, f"{stage.image}: no tag"
        assert tag != "latest" and not tag.endswith("-latest"), stage.image
    assert stages[-1].image == FINAL_BASE


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_runs_the_service_as_a_numeric_non_root_user(service: str) -> None:
    final = parse(DOCKER / f"{service}.Dockerfile")[-1]
    (user,) = final.args("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, user  # numeric: runAsNonRoot can check it
    assert not gid or (gid.isdigit() and int(gid) > 0)
    (entrypoint,) = final.args("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", f"maestro.services.{service}"]
    main = REPO / "services" / service / "src" / "maestro" / "services" / service / "__main__.py"
    assert main.is_file()
    (expose,) = final.args("EXPOSE")
    expected = {app_port(service)} | ({metrics_port(service)} if service != "gateway" else set())
    assert {int(p) for p in expose.split()} == expected


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_has_no_build_tools_and_only_the_builders_venv(service: str) -> None:
    stages = parse(DOCKER / f"{service}.Dockerfile")
    final = stages[-1]
    for run in final.args("RUN"):
        assert not BUILD_TOOLS.search(run), run
    copies = final.args("COPY")
    assert copies == [f"--from={stages[0].name} /opt/maestro /opt/maestro"]
    assert any("PATH=/opt/maestro/bin:$PATH" in env for env in final.args("ENV"))


@pytest.mark.parametrize("service", SERVICES)
def test_builder_installs_the_service_wheels_with_the_constraints(service: str) -> None:
    builder = parse(DOCKER / f"{service}.Dockerfile")[0]
    needed = {p.relative_to(REPO).as_posix() for p in workspace_closure(f"maestro-{service}")}
    copied = {s.rstrip("/") for s in copy_sources(builder)}
    assert copied == needed | {"constraints.txt"}
    (run,) = builder.args("RUN")
    wheel = re.search(r"pip wheel --no-deps --wheel-dir /wheels ([^&]+)", run)
    assert wheel is not None and set(wheel.group(1).split()) == needed
    assert "python -m venv /opt/maestro" in run
    assert "/opt/maestro/bin/pip install --constraint constraints.txt /wheels/*.whl" in run


@pytest.mark.parametrize("service", SERVICES)
def test_copied_paths_exist_and_are_in_the_build_context(service: str) -> None:
    patterns = dockerignore()
    for stage in parse(DOCKER / f"{service}.Dockerfile"):
        for source in copy_sources(stage):
            path = REPO / source
            assert path.exists(), source
            assert not dockerignore_excludes(source, patterns), source
            if path.is_dir():
                for pyproject in path.glob("pyproject.toml"):
                    assert not dockerignore_excludes(str(pyproject.relative_to(REPO)), patterns)
                sources = [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
                assert sources
                for module in sources:
                    assert not dockerignore_excludes(str(module.relative_to(REPO)), patterns)


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = dockerignore()
    for kept in ("constraints.txt", "libs/api/pyproject.toml", "services/registry/src/x.py"):
        assert not dockerignore_excludes(kept, patterns), kept
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "libs/cli/pyproject.toml",
        "services/registry/src/maestro/__pycache__/x.cpython-311.pyc",
        "services/registry/src/maestro/services/registry/store.pyc",
        ".maestro/data/registry.db",
    ):
        assert dockerignore_excludes(dropped, patterns), dropped


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("*", "a/b", True),
        ("**/__pycache__", "a/b/__pycache__/c.pyc", True),
        ("**/*.py[cod]", "x.pyc", True),
        ("libs/*", "libs/api/x", True),
        ("libs/*", "libsx", False),
        ("build", "a/build", False),
        ("*", "a", True),
        ("!a", "a", False),
    ],
)
def test_dockerignore_matching(pattern: str, path: str, excluded: bool) -> None:
    assert dockerignore_excludes(path, [pattern]) is excluded
