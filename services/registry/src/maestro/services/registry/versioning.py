"""Semantic-versioning rules of publishing (pure functions).

Published versions are plain ``MAJOR.MINOR.PATCH`` releases (no pre-release or
build suffix) and strictly increase. The first publish is ``1.0.0`` unless an
explicit version is given. A change needs at least the bump its diff requires
(breaking: major; compatible: minor; otherwise patch). The draft is labelled
with the version it would get by default, plus ``-draft``.
"""

from __future__ import annotations

import semver

from maestro.common.v1 import diff_pb2
from maestro.runtime.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError

FIRST_VERSION = "1.0.0"
FIRST_DRAFT_VERSION = "0.1.0-draft"
DRAFT_SUFFIX = "-draft"

PATCH = diff_pb2.SEMVER_BUMP_PATCH
MINOR = diff_pb2.SEMVER_BUMP_MINOR
MAJOR = diff_pb2.SEMVER_BUMP_MAJOR
UNSPECIFIED = diff_pb2.SEMVER_BUMP_UNSPECIFIED
_RANK: dict[int, int] = {UNSPECIFIED: 0, PATCH: 1, MINOR: 2, MAJOR: 3}


def bump_name(bump: int) -> str:
    """The enum value name, for example ``SEMVER_BUMP_MAJOR`` (error metadata)."""
    return str(diff_pb2.SemverBump.Name(bump))


def parse_release(text: str, field: str = "version") -> semver.Version:
    """A ``MAJOR.MINOR.PATCH`` version, or InvalidArgumentError."""
    try:
        version = semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"{field} {text!r} is not a semantic version like 1.2.3",
            field_violations=[FieldViolation(field, "expected MAJOR.MINOR.PATCH")],
        ) from exc
    if version.prerelease or version.build:
        raise InvalidArgumentError(
            f"{field} {text!r}: published versions are releases, without `-` or `+` parts",
            field_violations=[FieldViolation(field, "expected MAJOR.MINOR.PATCH")],
        )
    return version


def is_semver(text: str) -> bool:
    return bool(semver.Version.is_valid(text))


def apply_bump(version: semver.Version, bump: int) -> semver.Version:
    if bump == MAJOR:
        return version.bump_major()
    if bump == MINOR:
        return version.bump_minor()
    return version.bump_patch()


def implied_bump(previous: semver.Version, new: semver.Version) -> int:
    """The bump that leads from ``previous`` to the greater ``new``."""
    if new.major != previous.major:
        return MAJOR
    if new.minor != previous.minor:
        return MINOR
    return PATCH


def effective(required: int) -> int:
    """Every publish after the first is at least a patch."""
    return required if _RANK.get(required, 0) > _RANK[PATCH] else PATCH


def next_version(latest: str | None, *, required: int, bump: int, explicit: str) -> str:
    """The version a publish gets.

    Args:
        latest: the newest published version; None before the first publish.
        required: the diff's ``required_bump`` against ``latest``.
        bump: the requested bump; UNSPECIFIED picks ``required``.
        explicit: an explicit version instead of a bump; empty for none.

    Raises:
        InvalidArgumentError: both ``bump`` and ``explicit`` given, or
            ``explicit`` is not a release version.
        FailedPreconditionError: SEMVER_BUMP_REQUIRED (metadata
            ``required_bump``) when the requested bump or explicit version is
            smaller than the change requires or not greater than ``latest``.
    """
    if bump not in _RANK:
        raise InvalidArgumentError(
            f"unknown bump {bump}",
            field_violations=[FieldViolation("bump", "expected PATCH, MINOR or MAJOR")],
        )
    if explicit and bump != UNSPECIFIED:
        raise InvalidArgumentError(
            "give either a bump or an explicit version, not both",
            field_violations=[FieldViolation("version", "conflicts with bump")],
        )
    needed = effective(required)
    if explicit:
        version = parse_release(explicit)
        if latest is None:
            return str(version)
        previous = semver.Version.parse(latest)
        if version <= previous:
            raise _bump_required(
                f"version {version} must be greater than the latest published {previous}",
                needed,
                latest,
            )
        if _RANK[implied_bump(previous, version)] < _RANK[needed]:
            raise _bump_required(
                f"version {version} is a {_short(implied_bump(previous, version))} bump of "
                f"{previous}, but the changes require a {_short(needed)} bump",
                needed,
                latest,
            )
        return str(version)
    if latest is None:
        return FIRST_VERSION
    if bump != UNSPECIFIED and _RANK.get(bump, 0) < _RANK[needed]:
        raise _bump_required(
            f"a {_short(bump)} bump is not enough: the changes require a {_short(needed)} bump",
            needed,
            latest,
        )
    chosen = needed if bump == UNSPECIFIED else bump
    return str(apply_bump(semver.Version.parse(latest), chosen))


def draft_label(latest: str | None, required: int) -> str:
    """``{next}-draft``: before the first publish ``0.1.0-draft``, after it the
    version a default publish of the draft would get."""
    if latest is None:
        return FIRST_DRAFT_VERSION
    return f"{apply_bump(semver.Version.parse(latest), effective(required))}{DRAFT_SUFFIX}"


def _short(bump: int) -> str:
    return bump_name(bump).removeprefix("SEMVER_BUMP_").lower()


def _bump_required(message: str, needed: int, latest: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        message,
        reason="SEMVER_BUMP_REQUIRED",
        metadata={"required_bump": bump_name(needed), "latest_version": latest},
    )
