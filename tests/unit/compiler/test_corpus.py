"""The fixture corpus: each document in ``fixtures/`` lints to exactly the
diagnostics its header announces, and every sample workflow is clean.

A fixture's leading comment lines carry the expectations:

    # expect: CODE /json/pointer     (one line per diagnostic; no path = root)
    # disable: RULE                  (passed as disabled_rules)
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from maestro.services.compiler.service import Compiler, Source

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "workflows"
_DIRECTIVE = re.compile(r"^#\s*(expect|disable):\s*(\S+)\s*(\S*)\s*$")


def _header(text: str) -> tuple[Counter[tuple[str, str]], list[str]]:
    expected: Counter[tuple[str, str]] = Counter()
    disabled: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = _DIRECTIVE.match(line)
        if match and match.group(1) == "expect":
            expected[(match.group(2), match.group(3))] += 1
        elif match:
            disabled.append(match.group(2))
    return expected, disabled


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_fixture_lints_to_exactly_its_expectations(fixture: Path) -> None:
    content = fixture.read_bytes()
    expected, disabled = _header(content.decode())
    assert expected, f"{fixture.name} announces no `# expect:` lines"
    result = Compiler().lint(Source(content, filename=fixture.name), disabled)
    found = Counter((f.code, f.path) for f, _ in result.report.findings)
    assert found == expected, "\n".join(
        f"{pos} {f.code} {f.path}: {f.message}" for f, pos in result.report.findings
    )
    for finding, (line, column) in result.report.findings:
        assert finding.message
        assert line > 0
        assert column > 0
        assert finding.severity in {"error", "warning"}


def test_corpus_covers_every_diagnostic_code() -> None:
    codes = set()
    for fixture in FIXTURES.glob("*.yaml"):
        codes |= {code for code, _ in _header(fixture.read_text())[0]}
    assert codes == {
        "SYNTAX_ERROR",
        "SCHEMA_VIOLATION",
        "MISSING_FIELD",
        "INVALID_NAME",
        "INVALID_STEP_ID",
        "INVALID_STEP_TYPE",
        "DUPLICATE_STEP_ID",
        "UNKNOWN_STEP_REF",
        "CYCLE",
        "UNREACHABLE_STEP",
        "TYPE_MISMATCH",
        "INVALID_EXPRESSION",
        "UNBOUNDED_RETRY",
        "FANOUT_LIMIT",
        "PLAINTEXT_SECRET",
        "MISSING_TIMEOUT",
        "ORPHANED_OUTPUT",
        "MISSING_POLICY_LABEL",
    }


SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


def test_the_samples_are_there() -> None:
    assert {p.stem for p in SAMPLE_FILES} >= {"hello", "routing", "rag", "etl", "approval"}


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_validates_and_lints_without_errors(sample: Path) -> None:
    source = Source(sample.read_bytes(), filename=sample.name)
    compiler = Compiler()
    for result in (compiler.validate(source), compiler.lint(source)):
        errors = [
            f"{pos} {f.code} {f.path}: {f.message}"
            for f, pos in result.report.findings
            if f.severity == "error"
        ]
        assert result.valid, errors
        assert not errors
