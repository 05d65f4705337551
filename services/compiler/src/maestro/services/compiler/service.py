"""Compiler domain logic: parse, validate, digest, compile, diff and simulate
workflow documents.

Pure functions of their input; imports no grpc. Each operation runs with
automatic garbage collection paused (``gcpause``).

What the operations work out for a document (its parse, analysis, normal form,
canonical JSON, reports and plan) is kept in a small LRU keyed by the whole
source (bytes, format and filename), so that validating, compiling, digesting
and diffing the same document (which editors do on every keystroke) share one
computation. Every result is a function of that key alone, so a hit is exactly
what recomputing would give; mutable results (plans) are handed out as copies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro.common.v1 import diff_pb2, plan_pb2
from maestro.compiler.v1 import compiler_service_pb2, simulation_pb2
from maestro.runtime.errors import FieldViolation, InvalidArgumentError, InvalidDefinitionError
from maestro.services.compiler import digest as digests
from maestro.services.compiler.diff import diff as diff_normal
from maestro.services.compiler.expressions import Memo
from maestro.services.compiler.findings import locate
from maestro.services.compiler.gcpause import collection_paused
from maestro.services.compiler.lint import check_disabled_rules, lint_analysis
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.plan import compile_plan
from maestro.services.compiler.simulate import simulate as simulate_plan
from maestro.services.compiler.source import ParsedSource, SourceSyntaxError, parse_source
from maestro.services.compiler.validate import Analysis, Finding, Report, analyse
from maestro.services.compiler.workflow_schema import SCHEMA_ID, schema_json


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
    normal: Any = None
    """The normal form (docs/dsl.md) when the document is valid, else None."""

    @property
    def valid(self) -> bool:
        return self.parsed is not None and self.report.valid


@dataclass(frozen=True)
class Compilation:
    """A compiled definition: its validation, normal form and plan."""

    result: ValidationResult
    normal: dict[str, Any]
    plan: plan_pb2.CompiledPlan


@dataclass
class _StepShare:
    """Results for steps of valid documents, shared by the documents of one
    call (the two versions a diff compares share most steps): that the step
    satisfies the workflow schema, its normal form and its canonical JSON, each
    a function of the step alone. Steps are matched by ``repr`` of the step as
    parsed, or in JSON by their text: the same ``repr`` (or text) is the same
    value (the same types, the same keys in the same order), so every such
    result carries over."""

    valid: set[str] = field(default_factory=set)
    normal: dict[str, Any] = field(default_factory=dict)
    canonical: dict[str, bytes] = field(default_factory=dict)

    def keys(self, parsed: ParsedSource) -> list[str] | None:
        document = parsed.document
        steps = document.get("steps") if isinstance(document, dict) else None
        if not isinstance(steps, list):
            return None
        texts = parsed.item_texts("steps")
        if texts is not None and len(texts) == len(steps):
            return ["json:" + text for text in texts]
        return ["repr:" + repr(step) for step in steps]

    def known(self, keys: list[str]) -> tuple[list[bool], list[Any | None], list[bytes | None]]:
        """Per step (``keys``): whether it is known to be valid, its normal form
        and canonical JSON where known."""
        return (
            [key in self.valid for key in keys],
            [self.normal.get(key) for key in keys],
            [self.canonical.get(key) for key in keys],
        )

    def record(self, keys: list[str], normal: dict[str, Any], canonical: list[bytes]) -> None:
        """Records a valid document's steps (``keys``), their normal forms
        (``normal["steps"]``) and canonical JSON."""
        self.valid.update(keys)
        self.normal.update(zip(keys, normal["steps"], strict=True))
        self.canonical.update(zip(keys, canonical, strict=True))


DEFAULT_DOCUMENT_CACHE_SIZE = 2
"""Documents whose work a ``Compiler`` keeps by default (see the module doc):
an editor's document and the version it is diffed against. Few, because the
garbage collector scans every object kept (about 3,500 for a 200-step
document): each collection of the young generations pays for all of them."""


class _Document:
    """The work on one parsed document, each part computed at most once and
    shared by every operation on the same source. Two threads may compute a
    part at the same time; both get the same value."""

    __slots__ = ("analysis", "canonical", "lint", "normal", "parsed", "plan", "steps", "validation")

    def __init__(self, parsed: ParsedSource) -> None:
        self.parsed = parsed
        self.analysis: Analysis | None = None
        self.validation: ValidationResult | None = None
        self.normal: dict[str, Any] | None = None
        """The normal form, once computed (valid documents only)."""
        self.canonical: tuple[str, bytes] | None = None
        """(digest, canonical JSON) of the normal form, or of the document as
        written when it does not validate."""
        self.steps: list[bytes] | None = None
        """The canonical JSON of each step of a valid document."""
        self.lint: Report | None = None
        """Validation plus every lint rule (``compile``'s report)."""
        self.plan: plan_pb2.CompiledPlan | None = None
        """The plan, never handed out (callers get copies)."""

    def release(self) -> None:
        """Drops the analysis once every result made from it is kept: cached
        objects are scanned by every garbage collection of their generation,
        and the analysis holds a third of them (a ``lint`` with disabled rules
        analyses again)."""
        if self.validation is not None and self.lint is not None and self.plan is not None:
            self.analysis = None


def _valid_or_raise(result: ValidationResult) -> ValidationResult:
    if not result.valid:
        raise _invalid_definition(result.report)
    return result


def _invalid_definition(report: Report) -> InvalidDefinitionError:
    errors = [f for f, _ in report.findings if f.severity == "error"]
    return InvalidDefinitionError(
        f"the definition has {len(errors)} error(s); first: {errors[0].message}",
        metadata={"errors": str(len(errors))},
        field_violations=[FieldViolation(f.path or "/", f.message, f.code) for f in errors],
    )


def _syntax_error_result(exc: SourceSyntaxError) -> ValidationResult:
    finding = Finding("SYNTAX_ERROR", exc.message, "", hint="fix the YAML/JSON syntax")
    return ValidationResult(None, Report([(finding, (exc.line, exc.column))]), "")


class Compiler:
    """The compiler's operations.

    ``cache_size``: how many documents' work to keep (see the module doc); 0
    keeps none.
    """

    def __init__(self, cache_size: int = DEFAULT_DOCUMENT_CACHE_SIZE) -> None:
        self._cache_size = cache_size
        self._documents: OrderedDict[tuple[bytes, bool | None, str], _Document] = OrderedDict()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forgets every document's work (benchmarks measure cold runs so)."""
        with self._lock:
            self._documents.clear()

    def parse(self, source: Source) -> ParsedSource:
        """Parses or raises ``SourceSyntaxError``."""
        if not source.content:
            raise InvalidArgumentError(
                "source.content is empty",
                field_violations=[FieldViolation("source.content", "must not be empty")],
            )
        return parse_source(source.content, is_json=source.is_json, filename=source.filename)

    def _document(self, source: Source) -> _Document:
        """The work on ``source``, from the cache or new; raises as ``parse``
        (failures are not kept)."""
        content = source.content
        if type(content) is not bytes or self._cache_size <= 0:
            return _Document(self.parse(source))
        key = (content, source.is_json, source.filename)
        with self._lock:
            document = self._documents.get(key)
            if document is not None:
                self._documents.move_to_end(key)
                return document
        document = _Document(self.parse(source))
        with self._lock:
            self._documents[key] = document
            while len(self._documents) > self._cache_size:
                self._documents.popitem(last=False)
        return document

    @staticmethod
    def _analysis(document: _Document) -> Analysis:
        if document.analysis is None:
            document.analysis = analyse(document.parsed.document)
        return document.analysis

    def _normal(self, document: _Document) -> dict[str, Any]:
        """The normal form of a document whose analysis found no error."""
        if document.normal is None:
            document.normal = normalize(document.parsed.document)
        return document.normal

    def _canonical(self, document: _Document) -> tuple[str, bytes]:
        if document.canonical is None:
            if self._analysis(document).valid:
                canonical, document.steps = digests.canonical_json_and_steps(self._normal(document))
            else:
                canonical = digests.canonical_json(document.parsed.document)
            document.canonical = (digests.sha256_hex(canonical), canonical)
        return document.canonical

    @collection_paused
    def validate(self, source: Source) -> ValidationResult:
        """Every problem of the document, a syntax error included (as a
        ``SYNTAX_ERROR`` finding at its line and column); only an empty or
        oversized source raises."""
        return self._validate(source, Memo())

    def _validate(
        self,
        source: Source,
        memo: Memo,
        steps: list[bytes] | None = None,
        share: _StepShare | None = None,
    ) -> ValidationResult:
        """``validate`` (``memo``: see ``expressions.Memo``; ``share``: see
        ``_StepShare``); for a valid document, ``steps`` receives the canonical
        JSON of each step."""
        try:
            document = self._document(source)
        except SourceSyntaxError as exc:
            return _syntax_error_result(exc)
        parsed = document.parsed
        result = document.validation
        if result is not None:
            if result.valid and (steps is not None or share is not None):
                parts = document.steps
                assert parts is not None  # set with the digest of a valid document
                if steps is not None:
                    steps[:] = parts
                keys = share.keys(parsed) if share is not None else None
                if share is not None and keys is not None:
                    share.record(keys, self._normal(document), parts)
            return result
        keys = share.keys(parsed) if share is not None else None
        known = share.known(keys) if share is not None and keys is not None else None
        if document.analysis is None:
            document.analysis = analyse(parsed.document, memo, known and known[0])
        report = locate(parsed, document.analysis.findings)
        if report.valid and document.normal is None:
            document.normal = normalize(parsed.document, known and known[1])
        if report.valid and document.canonical is None:
            canonical, document.steps = digests.canonical_json_and_steps(
                document.normal, known and known[2]
            )
            document.canonical = (digests.sha256_hex(canonical), canonical)
        digest, _ = self._canonical(document)
        result = document.validation = ValidationResult(
            parsed, report, digest, document.normal if report.valid else None
        )
        if report.valid:
            assert document.steps is not None
            if steps is not None:
                steps[:] = document.steps
            if share is not None and keys is not None:
                share.record(keys, self._normal(document), document.steps)
        document.release()
        return result

    @collection_paused
    def lint(self, source: Source, disabled_rules: Collection[str] = ()) -> ValidationResult:
        """Validation plus lint findings (docs/dsl.md), without the codes in
        ``disabled_rules``; a syntax error is a ``SYNTAX_ERROR`` finding as in
        ``validate``. The result carries no digest.

        Raises:
            InvalidArgumentError: the source is empty or oversized, or a disabled
                rule is not a lint rule.
        """
        check_disabled_rules(disabled_rules)
        try:
            document = self._document(source)
        except SourceSyntaxError as exc:
            return _syntax_error_result(exc)
        if disabled_rules:
            report = locate(
                document.parsed,
                lint_analysis(self._analysis(document), document.parsed.document, disabled_rules),
            )
        else:
            report = self._lint(document)
        return ValidationResult(document.parsed, report, "")

    def _lint(self, document: _Document) -> Report:
        if document.lint is None:
            parsed = document.parsed
            document.lint = locate(parsed, lint_analysis(self._analysis(document), parsed.document))
        return document.lint

    def workflow_schema(self) -> tuple[bytes, str]:
        """(UTF-8 JSON, ``$id``) of the JSON Schema of workflow documents."""
        return schema_json(), SCHEMA_ID

    @collection_paused
    def require_valid(self, source: Source) -> ValidationResult:
        """Like ``validate`` but raises ``InvalidDefinitionError`` when invalid."""
        return _valid_or_raise(self._validate(source, Memo()))

    @collection_paused
    def digest(self, source: Source) -> tuple[str, bytes]:
        """(hex SHA-256, canonical JSON) of the document's normal form, or of the
        document as written when it does not validate."""
        return self._canonical(self._document(source))

    @collection_paused
    def compile(self, source: Source) -> Compilation:
        """The plan of a document that passes validation and every lint rule of
        severity error (a compiled definition has no errors); the compilation's
        report holds the lint warnings.

        Raises:
            SourceSyntaxError: the document does not parse.
            InvalidDefinitionError: validation or lint found an error.
        """
        document = self._document(source)
        report = self._lint(document)
        if not report.valid:
            raise _invalid_definition(report)
        normal = self._normal(document)
        digest, _ = self._canonical(document)
        if document.plan is None:
            steps = document.steps
            assert steps is not None  # set with the digest of a valid document
            reads: dict[str, set[str]] = {step["id"]: set() for step in normal["steps"]}
            for scanned in self._analysis(document).expressions:
                if scanned.expression.step is not None:
                    reads[normal["steps"][scanned.expression.step]["id"]] |= scanned.step_ids
            document.plan = compile_plan(
                normal,
                digest,
                config_digests=[digests.sha256_hex(c) for c in steps],
                reads=reads,
            )
            document.release()
        plan = plan_pb2.CompiledPlan()
        plan.CopyFrom(document.plan)
        return Compilation(ValidationResult(document.parsed, report, digest, normal), normal, plan)

    @collection_paused
    def diff(self, base: Source, target: Source) -> diff_pb2.WorkflowDiff:
        """How ``target`` differs from ``base``; raises ``InvalidDefinitionError``
        when either is invalid."""
        memo, share = Memo(documents=2), _StepShare()  # versions share most of their steps
        old_steps: list[bytes] = []
        new_steps: list[bytes] = []
        old = _valid_or_raise(self._validate(base, memo, old_steps, share))
        new = _valid_or_raise(self._validate(target, memo, new_steps, share))
        return diff_normal(
            old.normal,
            new.normal,
            base_digest=old.digest,
            target_digest=new.digest,
            base_steps=old_steps,
            target_steps=new_steps,
        )

    @collection_paused
    def simulate(
        self,
        source: Source,
        inputs: Mapping[str, Any],
        mocks: Mapping[str, simulation_pb2.StepMock],
        cost_table: Mapping[str, float],
        default_task_duration: float | None = None,
    ) -> compiler_service_pb2.SimulateWorkflowResponse:
        """A dry run of the compiled document with mocked step results
        (``default_task_duration`` in seconds, None for the default).

        Raises:
            InvalidDefinitionError: the document is invalid.
            InvalidArgumentError: a mock names a step the workflow does not have.
        """
        compiled = self.compile(source)
        known = {step.step.id for step in compiled.plan.steps}
        unknown = sorted(set(mocks) - known)
        if unknown:
            raise InvalidArgumentError(
                f"mocks name unknown step(s): {', '.join(unknown)}",
                field_violations=[
                    FieldViolation(f"mocks[{step_id}]", "no step has this id", "UNKNOWN_STEP")
                    for step_id in unknown
                ],
            )
        return simulate_plan(
            compiled.normal, compiled.plan, inputs, mocks, cost_table, default_task_duration
        )
