"""Findings: diagnostics of a workflow document before they become protos."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from maestro.services.compiler.source import ParsedSource


@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnostic before positions are attached.

    ``code`` is a stable UPPER_SNAKE code (docs/dsl.md), ``path`` an RFC 6901
    JSON Pointer into the document, ``severity`` ``error``, ``warning`` or
    ``info``.
    """

    code: str
    message: str
    path: str
    severity: str = "error"
    hint: str = ""
    related_steps: tuple[str, ...] = ()


@dataclass
class Report:
    """All findings for one document, each with its (line, column)."""

    findings: list[tuple[Finding, tuple[int, int]]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(f.severity == "error" for f, _ in self.findings)


def locate(parsed: ParsedSource, findings: Iterable[Finding]) -> Report:
    """Attaches positions, drops repeats (the same code at the same path) and
    sorts by position, then code, then path."""
    seen: set[tuple[str, str]] = set()
    located = []
    for finding in findings:
        if (finding.code, finding.path) not in seen:
            seen.add((finding.code, finding.path))
            located.append((finding, parsed.position(finding.path)))
    located.sort(key=lambda item: (item[1], item[0].code, item[0].path))
    return Report(located)
