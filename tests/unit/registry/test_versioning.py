"""Semantic-versioning rules of publishing."""

from __future__ import annotations

import pytest

from maestro.runtime.errors import FailedPreconditionError, InvalidArgumentError
from maestro.services.registry import versioning
from maestro.services.registry.versioning import MAJOR, MINOR, PATCH, UNSPECIFIED


@pytest.mark.parametrize(
    ("latest", "required", "bump", "explicit", "expected"),
    [
        (None, UNSPECIFIED, UNSPECIFIED, "", "1.0.0"),
        (None, UNSPECIFIED, MAJOR, "", "1.0.0"),
        (None, UNSPECIFIED, UNSPECIFIED, "0.2.0", "0.2.0"),
        ("1.0.0", UNSPECIFIED, UNSPECIFIED, "", "1.0.1"),
        ("1.0.0", PATCH, UNSPECIFIED, "", "1.0.1"),
        ("1.0.3", MINOR, UNSPECIFIED, "", "1.1.0"),
        ("1.4.3", MAJOR, UNSPECIFIED, "", "2.0.0"),
        ("1.0.0", PATCH, MAJOR, "", "2.0.0"),
        ("1.0.0", MINOR, MINOR, "", "1.1.0"),
        ("1.0.0", MINOR, UNSPECIFIED, "1.5.0", "1.5.0"),
        ("1.0.0", MAJOR, UNSPECIFIED, "3.0.0", "3.0.0"),
        ("1.0.0", PATCH, UNSPECIFIED, "1.0.7", "1.0.7"),
    ],
)
def test_next_version(
    latest: str | None, required: int, bump: int, explicit: str, expected: str
) -> None:
    assert (
        versioning.next_version(latest, required=required, bump=bump, explicit=explicit) == expected
    )


@pytest.mark.parametrize(
    ("latest", "required", "bump", "explicit", "needed"),
    [
        ("1.0.0", MAJOR, MINOR, "", "SEMVER_BUMP_MAJOR"),
        ("1.0.0", MAJOR, PATCH, "", "SEMVER_BUMP_MAJOR"),
        ("1.0.0", MINOR, PATCH, "", "SEMVER_BUMP_MINOR"),
        ("1.0.0", MAJOR, UNSPECIFIED, "1.9.0", "SEMVER_BUMP_MAJOR"),
        ("1.2.0", UNSPECIFIED, UNSPECIFIED, "1.2.0", "SEMVER_BUMP_PATCH"),
        ("1.2.0", UNSPECIFIED, UNSPECIFIED, "1.1.9", "SEMVER_BUMP_PATCH"),
    ],
)
def test_too_small_bumps_need_more(
    latest: str, required: int, bump: int, explicit: str, needed: str
) -> None:
    with pytest.raises(FailedPreconditionError) as caught:
        versioning.next_version(latest, required=required, bump=bump, explicit=explicit)
    assert caught.value.reason == "SEMVER_BUMP_REQUIRED"
    assert caught.value.metadata == {"required_bump": needed, "latest_version": latest}


@pytest.mark.parametrize(
    ("bump", "explicit"),
    [
        (MINOR, "2.0.0"),
        (UNSPECIFIED, "2.0"),
        (UNSPECIFIED, "2.0.0-rc.1"),
        (UNSPECIFIED, "v2"),
        (9, ""),
    ],
)
def test_malformed_requests_are_invalid(bump: int, explicit: str) -> None:
    with pytest.raises(InvalidArgumentError):
        versioning.next_version("1.0.0", required=PATCH, bump=bump, explicit=explicit)


def test_draft_labels() -> None:
    assert versioning.draft_label(None, MAJOR) == "0.1.0-draft"
    assert versioning.draft_label("1.0.0", UNSPECIFIED) == "1.0.1-draft"
    assert versioning.draft_label("1.0.0", MINOR) == "1.1.0-draft"
    assert versioning.draft_label("1.3.2", MAJOR) == "2.0.0-draft"


def test_semver_detection_separates_versions_from_aliases() -> None:
    assert versioning.is_semver("1.2.3")
    assert not versioning.is_semver("stable")
    assert not versioning.is_semver("latest")
