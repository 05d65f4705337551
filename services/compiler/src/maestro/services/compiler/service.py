"""Compiler domain logic: parse, validate and digest workflow documents.

Pure functions of their input; imports no grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maestro.runtime.errors import FieldViolation, InvalidArgumentError, InvalidDefinitionError
from maestro.services.compiler import digest as digests
from maestro.services.compiler.source import ParsedSource, SourceSyntaxError, parse_source
from maestro.services.compiler.validate import Finding, Report, validate


@dataclass(frozen=True, slots=True)
class Source:
    """A document as received: bytes plus what the caller said about them."""

    content: bytes
    is_json: bool | None = None
    filename: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one document."""

    parsed: ParsedSource | None
    report: Report
    digest: str

    @property
    def valid(self) -> bool:
        return self.parsed is not None and self.report.valid


class Compiler:
    """The compiler's operations."""

    def parse(self, source: Source) -> ParsedSource:
        """Parses or raises ``SourceSyntaxError``."""
        if not source.content:
            raise InvalidArgumentError(
                "source.content is empty",
                field_violations=[FieldViolation("source.content", "must not be empty")],
            )
        return parse_source(source.content, is_json=source.is_json, filename=source.filename)

    def validate(self, source: Source) -> ValidationResult:
        """Every problem of the document, a syntax error included (as a
        ``SYNTAX_ERROR`` finding at its line and column); only an empty or
        oversized source raises."""
        try:
            parsed = self.parse(source)
        except SourceSyntaxError as exc:
            finding = Finding("SYNTAX_ERROR", exc.message, "", hint="fix the YAML/JSON syntax")
            return ValidationResult(None, Report([(finding, (exc.line, exc.column))]), "")
        report = validate(parsed)
        return ValidationResult(parsed, report, digests.digest(parsed.document))

    def require_valid(self, source: Source) -> ValidationResult:
        """Like ``validate`` but raises ``InvalidDefinitionError`` when invalid."""
        result = self.validate(source)
        if not result.valid:
            errors = [(f, pos) for f, pos in result.report.findings if f.severity == "error"]
            raise InvalidDefinitionError(
                f"the definition has {len(errors)} error(s); first: {errors[0][0].message}",
                metadata={"errors": str(len(errors))},
                field_violations=[
                    FieldViolation(f.path or "/", f.message, f.code) for f, _ in errors
                ],
            )
        return result

    def digest(self, source: Source) -> tuple[str, bytes]:
        """(hex SHA-256, canonical JSON) of the document."""
        document: Any = self.parse(source).document
        canonical = digests.canonical_json(document)
        return digests.digest(document), canonical
