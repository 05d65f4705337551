"""The shipped bundle: its own Rego tests pass through regopy, its catalog is the
runtime's action list, and bundles load from a directory, a file or a .tar.gz
with a content revision; broken candidates are refused with a location."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from maestro.runtime.policy import Action
from maestro.services.policy.bundle import BundleLoadError, read_source, revision_of
from maestro.services.policy.config import DEFAULT_BUNDLE
from maestro.services.policy.engine import RegoEngine, verdict_from_document
from tests.unit.policy.support import AUTHZ, CATALOG, copy_bundle, edit

pytestmark = pytest.mark.timeout(30)


def test_the_shipped_bundle_passes_its_own_rego_tests() -> None:
    bundle = read_source(DEFAULT_BUNDLE)
    summary = RegoEngine().compile(bundle).run_tests()
    assert summary.failed_tests == ()
    assert summary.failed == 0
    assert summary.passed >= 25, summary


def test_the_runtime_action_list_is_the_bundle_catalog() -> None:
    catalog = json.loads((DEFAULT_BUNDLE / CATALOG).read_text())
    assert sorted(catalog["actions"]) == sorted(a.value for a in Action)
    roles = set(catalog["roles"])
    for action, spec in catalog["actions"].items():
        assert set(spec["roles"]) <= roles, action
        assert "admin" in spec["roles"], action


def test_the_bundle_readme_documents_every_action_and_role() -> None:
    readme = (DEFAULT_BUNDLE / "README.md").read_text()
    catalog = json.loads((DEFAULT_BUNDLE / CATALOG).read_text())
    for name in [*catalog["actions"], *catalog["roles"]]:
        assert f"`{name}`" in readme, name


def test_revision_is_a_content_hash_of_the_bundle_files_only(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path / "b")
    first = read_source(copy)
    assert first.revision == read_source(DEFAULT_BUNDLE).revision
    assert first.revision.startswith("sha256:") and len(first.revision) == 71
    (copy / "NOTES.txt").write_text("not part of the bundle")
    (copy / "README.md").write_text("changed")
    assert read_source(copy).revision == first.revision
    edit(copy / AUTHZ, "authenticate, then retry", "authenticate first")
    assert read_source(copy).revision != first.revision
    assert revision_of({"a": b"bc"}) != revision_of({"ab": b"c"})


def test_a_tar_gz_and_a_directory_of_the_same_files_have_one_revision(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(DEFAULT_BUNDLE, arcname=".")
    from_archive = read_source(archive)
    assert from_archive.revision == read_source(DEFAULT_BUNDLE).revision
    policy = RegoEngine().compile(from_archive)
    assert policy.modules == ("maestro.authz",)


def test_a_single_rego_file_is_a_bundle(tmp_path: Path) -> None:
    source = tmp_path / "allow_all.rego"
    source.write_text(
        "package maestro.authz\n\nimport rego.v1\n\n"
        'decision := {"allow": true, "reasons": [{"code": "OPEN", "message": "demo"}]}\n'
    )
    policy = RegoEngine().compile(read_source(source))
    verdict = policy.evaluate({"action": "anything"})
    assert verdict.allow and verdict.reasons[0].code == "OPEN"
    assert policy.run_tests().passed == 0


def test_a_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path / "b")
    edit(copy / AUTHZ, "decision := decide(input)", "decision := decide(input\n\nbroken :=")
    with pytest.raises(BundleLoadError) as caught:
        RegoEngine().compile(read_source(copy))
    error = caught.value
    assert error.file == "maestro/authz/authz.rego"
    assert error.line > 0
    assert error.message.startswith(f"maestro/authz/authz.rego:{error.line}: ")
    assert error.revision == read_source(copy).revision


def test_a_failing_bundle_test_is_named(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path / "b")
    # Publishers may now also update: the policy follows its catalog, but the
    # test that pins the publisher's rights fails.
    edit(
        copy / CATALOG,
        '"workflow.update": {"roles": ["admin", "author"]',
        '"workflow.update": {"roles": ["admin", "author", "publisher"]',
    )
    summary = RegoEngine().compile(read_source(copy)).run_tests()
    assert summary.failed == 1
    assert summary.failed_tests == ("maestro.authz_test.test_publisher_publishes_and_promotes",)


def test_a_missing_entrypoint_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "other.rego"
    source.write_text("package other\n\nimport rego.v1\n\nx := 1\n")
    with pytest.raises(BundleLoadError, match="does not return a decision document"):
        RegoEngine().compile(read_source(source))


def test_missing_and_empty_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleLoadError, match="no such file"):
        read_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleLoadError, match="no policy module"):
        read_source(tmp_path / "empty")


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (None, "POLICY_ERROR"),
        ({"allow": "yes"}, "POLICY_ERROR"),
        ({"allow": True, "reasons": "ok"}, "POLICY_ERROR"),
        ({"allow": True, "reasons": [{"message": "no code"}]}, "POLICY_ERROR"),
        ({"allow": False}, "NO_MATCHING_RULE"),
    ],
)
def test_malformed_decisions_fail_closed(document: object, code: str) -> None:
    verdict = verdict_from_document(document)
    assert not verdict.allow
    assert verdict.reasons[0].code == code
