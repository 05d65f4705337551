"""Secrets out of the decision log.

The decision log keeps each question's context, but never a secret in it: the
value of any key that names a secret (the bundle's
``data.maestro.config.redaction.secret_keys``, case-insensitive substrings,
at any depth) and any string that looks like a credential (a bearer or basic
authorization value, a JWT, a private key, well-known token formats) becomes
``[REDACTED]``, and the RFC 6901 pointer of each redacted value is recorded.
``secret://`` references are names, not secrets, and are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"
DEFAULT_SECRET_KEYS = ("password", "token", "secret", "authorization", "api_key")
"""The contract's default (``Decision.context``), used when a bundle names none."""

_SECRET_REFERENCE = "secret://"  # noqa: S105 - a URI scheme, not a secret
_CREDENTIAL_VALUE = re.compile(
    r"""^\s*(?:
        (?:bearer|basic|token)\s+\S{8,}                       # authorization header values
      | eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*                    # JWT
      | -----BEGIN[ A-Z]*PRIVATE\ KEY-----                    # PEM private keys
      | (?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}            # GitHub tokens
      | xox[abposr]-[A-Za-z0-9-]{10,}                         # Slack tokens
      | (?:AKIA|ASIA)[0-9A-Z]{16}                             # AWS access key ids
      | sk-[A-Za-z0-9_-]{20,}                                 # API secret keys (sk-...)
      | glpat-[A-Za-z0-9_-]{20,}                              # GitLab tokens
    )""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Redacted:
    """A document with its secrets replaced, and where they were."""

    value: Any
    paths: tuple[str, ...]


class Redactor:
    """Redacts by key name (substrings, case-insensitive) and by value shape."""

    def __init__(self, secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> None:
        keys = sorted({k.lower() for k in secret_keys if k})
        self._key = re.compile("|".join(re.escape(k) for k in keys)) if keys else None

    def redact(self, document: Any) -> Redacted:
        """``document`` (JSON values) with secrets replaced; the input is not changed."""
        paths: list[str] = []
        value = self._walk(document, "", paths)
        return Redacted(value, tuple(paths))

    def _secret_key(self, key: str) -> bool:
        return self._key is not None and self._key.search(key.lower()) is not None

    def _walk(self, value: Any, pointer: str, paths: list[str]) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                child = f"{pointer}/{_escape(str(key))}"
                if self._secret_key(str(key)) and not _is_reference(item):
                    out[key] = REDACTED
                    paths.append(child)
                else:
                    out[key] = self._walk(item, child, paths)
            return out
        if isinstance(value, list):
            return [self._walk(item, f"{pointer}/{i}", paths) for i, item in enumerate(value)]
        if isinstance(value, str) and _CREDENTIAL_VALUE.match(value):
            paths.append(pointer)
            return REDACTED
        return value


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_SECRET_REFERENCE)


def _escape(token: str) -> str:
    """RFC 6901: ``~`` → ``~0``, ``/`` → ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")
