"""The policy engine interface and its default Rego implementation (regopy, in-process).

The service depends only on :class:`PolicyEngine` (compile a bundle) and
:class:`CompiledPolicy` (evaluate an input, run the bundle's tests), so another
engine can sit behind the same interface: :func:`create_engine` picks one by
name, ``regopy`` (the default, below) or ``regorus`` (``regorus_engine.py``).
Both must give the same decisions for the same bundle and input:
``tests/unit/policy/test_conformance.py`` holds them to that.

The engine's contract with the bundle is the *decision document* the entry
point returns::

    {"allow": bool,
     "reasons": [{"code": "UPPER_SNAKE", "message": "...", "rule": "..."}, ...],
     "appeal": {"path": "...", "grantable_by_roles": [...],
                "grantable_by_subjects": [...], "instructions": "..."}}

Anything else fails closed: an undefined or malformed decision is a denial with
reason ``POLICY_ERROR`` (never an allow).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import regopy  # type: ignore[import-untyped]
from regopy.rego_shared import rego_get_error  # type: ignore[import-untyped]

from maestro.services.policy.bundle import BundleFiles, BundleLoadError, TestSummary

DEFAULT_ENTRYPOINT = "data.maestro.authz.decision"
MAX_FAILED_TESTS_LISTED = 50

EngineName = Literal["regopy", "regorus"]
ENGINE_NAMES: tuple[EngineName, ...] = ("regopy", "regorus")

_TESTED: dict[tuple[str, str], TestSummary] = {}
"""Passing test results by (engine and its version, bundle revision): a memo."""
_TESTED_LOCK = threading.Lock()
_TESTED_SIZE = 64


@dataclass(frozen=True, slots=True)
class Reason:
    """One rationale of a decision (``maestro.policy.v1.Reason``)."""

    code: str
    message: str
    rule: str = ""


@dataclass(frozen=True, slots=True)
class Appeal:
    """How a denial can be appealed (``maestro.policy.v1.Appeal``)."""

    path: str = ""
    grantable_by_roles: tuple[str, ...] = ()
    grantable_by_subjects: tuple[str, ...] = ()
    instructions: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy answered for one input."""

    allow: bool
    reasons: tuple[Reason, ...]
    appeal: Appeal | None = None


class CompiledPolicy(Protocol):
    """A bundle compiled by an engine, ready to decide."""

    @property
    def modules(self) -> tuple[str, ...]:
        """Names (packages) of the bundle's policy modules, sorted."""
        ...

    def evaluate(self, document: Mapping[str, Any]) -> Verdict:
        """The verdict for an input document (JSON values). Never raises for a
        policy problem: failures are denials (fail closed)."""
        ...

    def run_tests(self) -> TestSummary:
        """Runs the bundle's tests (``test_*`` rules; ``todo_test_*`` are skipped)."""
        ...


class PolicyEngine(Protocol):
    """Compiles bundles into :class:`CompiledPolicy` objects."""

    name: str

    def compile(self, bundle: BundleFiles) -> CompiledPolicy:
        """Compiles ``bundle``.

        Raises:
            BundleLoadError: a module does not parse or compile, the data is
                invalid, or the entry point is missing.
        """
        ...


def verdict_from_document(document: Any) -> Verdict:
    """Checks and converts a decision document; anything malformed is a denial."""
    if not isinstance(document, Mapping) or not isinstance(document.get("allow"), bool):
        return policy_error("the policy returned no decision document")
    raw_reasons = document.get("reasons", [])
    if not isinstance(raw_reasons, Sequence) or isinstance(raw_reasons, str):
        return policy_error("the decision's reasons are not a list")
    reasons: list[Reason] = []
    for raw in raw_reasons:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("code"), str):
            return policy_error("a reason of the decision has no code")
        reasons.append(
            Reason(str(raw["code"]), str(raw.get("message", "")), str(raw.get("rule", "")))
        )
    allow = document["allow"]
    if not allow and not reasons:
        reasons.append(Reason("NO_MATCHING_RULE", "no rule of the policy allows this"))
    appeal = None
    raw_appeal = document.get("appeal")
    if not allow and isinstance(raw_appeal, Mapping):
        appeal = Appeal(
            path=str(raw_appeal.get("path", "")),
            grantable_by_roles=_strings(raw_appeal.get("grantable_by_roles")),
            grantable_by_subjects=_strings(raw_appeal.get("grantable_by_subjects")),
            instructions=str(raw_appeal.get("instructions", "")),
        )
    return Verdict(allow=allow, reasons=tuple(reasons), appeal=appeal)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(str(v) for v in value)
    return ()


def policy_error(message: str) -> Verdict:
    """A denial for a policy (or engine) failure: reason ``POLICY_ERROR``."""
    return Verdict(allow=False, reasons=(Reason("POLICY_ERROR", message),))


def create_engine(name: EngineName, entrypoint: str = DEFAULT_ENTRYPOINT) -> PolicyEngine:
    """The engine called ``name`` (``MAESTRO_POLICY_ENGINE``), deciding with ``entrypoint``."""
    if name == "regopy":
        return RegoEngine(entrypoint)
    if name == "regorus":
        # Imported on demand: a service on the default engine never loads it.
        from maestro.services.policy.regorus_engine import RegorusEngine  # noqa: PLC0415

        return RegorusEngine(entrypoint)
    raise ValueError(f"unknown policy engine {name!r}; one of {', '.join(ENGINE_NAMES)}")


# -- shared by the engines -------------------------------------------------------------

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_TEST_RULE = re.compile(r"^((?:todo_)?test_\w+)\b", re.MULTILINE)


def package_of(source: str) -> str:
    """The package a module declares ("" when none)."""
    found = _PACKAGE.search(source)
    return found.group(1) if found else ""


def bundle_tests(bundle: BundleFiles) -> tuple[list[str], int]:
    """The bundle's tests as rule paths without ``data.`` (``maestro.authz_test.
    test_x``), in file order, and how many are skipped (``todo_test_*``)."""
    tests: list[str] = []
    skipped = 0
    for source in bundle.test_modules.values():
        package = package_of(source)
        if not package:
            continue
        for name in dict.fromkeys(_TEST_RULE.findall(source)):
            if name.startswith("todo_"):
                skipped += 1
            else:
                tests.append(f"{package}.{name}")
    return tests, skipped


def memoised_tests(engine: str, revision: str, run: Callable[[], TestSummary]) -> TestSummary:
    """``run()``, unless this engine (name and version) already passed this revision.

    Test results are a function of the bundle's content and the engine: a
    revision tested once in this process is not tested again (servers restarted
    in one process, validate-only reloads of the same files). Failures are not
    remembered.
    """
    key = (engine, revision)
    with _TESTED_LOCK:
        known = _TESTED.get(key)
    if known is not None:
        return known
    summary = run()
    if not summary.failed:
        with _TESTED_LOCK:
            _TESTED[key] = summary
            while len(_TESTED) > _TESTED_SIZE:
                _TESTED.pop(next(iter(_TESTED)))
    return summary


def tests_not_compiling(
    exc: BundleLoadError, tests: Sequence[str], skipped: int, started: float, revision: str
) -> BundleLoadError:
    """The error for test modules that do not compile: every test failed."""
    return BundleLoadError(
        f"the bundle tests do not compile: {exc.message}",
        revision=revision,
        file=exc.file,
        line=exc.line,
        tests=TestSummary(
            failed=len(tests),
            skipped=skipped,
            failed_tests=tuple(tests[:MAX_FAILED_TESTS_LISTED]),
            duration_seconds=time.perf_counter() - started,
        ),
    )


def tests_result(
    tests: Sequence[str], failed: Sequence[str], skipped: int, started: float
) -> TestSummary:
    return TestSummary(
        passed=len(tests) - len(failed),
        failed=len(failed),
        skipped=skipped,
        failed_tests=tuple(failed[:MAX_FAILED_TESTS_LISTED]),
        duration_seconds=time.perf_counter() - started,
    )


def check_probe(policy: CompiledPolicy, entrypoint: str, revision: str) -> None:
    """Refuses a bundle whose entry point gives no decision document for ``{}``."""
    probe = policy.evaluate({})
    if any(r.code == "POLICY_ERROR" for r in probe.reasons):
        raise BundleLoadError(
            f"the entry point {entrypoint} does not return a decision document "
            '({"allow": bool, "reasons": [...]}) for an empty input',
            revision=revision,
        )


# -- regopy ---------------------------------------------------------------------------

# rego-cpp errors: `(error 24:maestro/authz.rego|7184|60 (errormsg 18:Invalid collection)`
# (length-prefixed strings; the location is a byte offset and a length).
_ERROR_AT = re.compile(r"\(error \d+:(?P<file>[^|\s]+)\|(?P<offset>\d+)\|\d+")
_ERROR_MESSAGE = re.compile(r"\(errormsg \d+:(?P<message>[^\n]*?)\)\s*(?:\n|$)")


def _new_interpreter() -> Any:
    interpreter = regopy.Interpreter()
    # rego-cpp prints compile errors itself unless told not to; we report them.
    interpreter.log_level = regopy.LogLevel.NONE
    return interpreter


def _load_error(exc: Exception, sources: Mapping[str, str], revision: str) -> BundleLoadError:
    """A readable BundleLoadError (``file:line: message``) from a rego-cpp error."""
    text = str(exc.args[0]) if exc.args else str(exc)
    where = _ERROR_AT.search(text)
    what = _ERROR_MESSAGE.search(text)
    message = what.group("message").strip() if what else text.strip().splitlines()[0]
    if where is None:
        return BundleLoadError(message, revision=revision)
    file = where.group("file")
    source = sources.get(file, "")
    offset = int(where.group("offset"))
    line = source.encode()[:offset].count(b"\n") + 1 if source else 0
    return BundleLoadError(
        f"{file}:{line}: {message}" if line else f"{file}: {message}",
        revision=revision,
        file=file,
        line=line,
    )


def _build(
    modules: Mapping[str, str],
    data: Mapping[str, Any],
    revision: str,
    *,
    query: str | None,
    entrypoints: Sequence[str] = (),
) -> tuple[Any, Any]:
    interpreter = _new_interpreter()
    try:
        for path, source in modules.items():
            interpreter.add_module(path, source)
        interpreter.add_data_json(json.dumps(data))
        compiled = interpreter.build(query, list(entrypoints))
    except regopy.RegoError as exc:
        raise _load_error(exc, modules, revision) from exc
    if not compiled.ok():
        raise BundleLoadError(
            _error_text(interpreter) or "the bundle did not compile", revision=revision
        )
    return interpreter, compiled


def _error_text(interpreter: Any) -> str:
    try:
        return str(rego_get_error(interpreter._impl)).strip()  # no public API for it
    except Exception:  # best effort diagnostics
        return ""


def _first_result(output: Any) -> tuple[bool, Any]:
    """(defined, value) of a query's first expression. ``Output`` parses its
    JSON eagerly; rego-cpp's ``Node`` accessors are not used (a Node outliving
    its Output crashes the process)."""
    if not output.ok() or not output.results:
        return False, None
    expressions = output.results[0].expressions
    if not expressions:
        return False, None
    return True, expressions[0]


class RegoPolicy:
    """A bundle compiled by rego-cpp: one interpreter and compiled plan for
    decisions, built from the policy modules only (tests excluded).

    Thread safety: any thread may call it. ``evaluate`` must not run
    concurrently with itself (the interpreter holds the input); calls are
    serialised by a lock, which the event loop never contends for in practice
    since evaluation runs on it.
    """

    def __init__(self, bundle: BundleFiles, entrypoint: str) -> None:
        self._bundle = bundle
        self._entrypoint = entrypoint
        self._data = bundle.data()
        modules = bundle.modules
        self._interpreter, self._compiled = _build(
            modules, self._data, bundle.revision, query=entrypoint
        )
        self._lock = threading.Lock()
        packages = {package_of(source) for source in modules.values()}
        self._modules = tuple(sorted(p for p in packages if p))
        check_probe(self, entrypoint, bundle.revision)

    @property
    def modules(self) -> tuple[str, ...]:
        return self._modules

    @property
    def data(self) -> Mapping[str, Any]:
        """The bundle's merged data documents."""
        return self._data

    def evaluate(self, document: Mapping[str, Any]) -> Verdict:
        with self._lock:
            try:
                # Built through the C API: several times cheaper than having
                # rego-cpp parse the same document as JSON text.
                self._interpreter.set_input(regopy.Input(document))
                output = self._interpreter.query_bundle(self._compiled)
                defined, value = _first_result(output)
            except (regopy.RegoError, ValueError) as exc:
                return policy_error(f"the policy failed to evaluate: {exc}")
        if not defined:
            return policy_error(f"{self._entrypoint} is undefined for this input")
        return verdict_from_document(value)

    def run_tests(self) -> TestSummary:
        return memoised_tests(
            f"regopy {RegoEngine.version()}", self._bundle.revision, self._run_tests
        )

    def _run_tests(self) -> TestSummary:
        started = time.perf_counter()
        tests, skipped = bundle_tests(self._bundle)
        if not tests:
            return TestSummary(skipped=skipped, duration_seconds=time.perf_counter() - started)
        modules = {**self._bundle.modules, **self._bundle.test_modules}
        failed: list[str] = []
        try:
            interpreter, compiled = _build(
                modules,
                self._data,
                self._bundle.revision,
                query=None,
                entrypoints=[t.replace(".", "/") for t in tests],
            )
        except BundleLoadError as exc:
            raise tests_not_compiling(exc, tests, skipped, started, self._bundle.revision) from exc
        for test in tests:
            try:
                output = interpreter.query_bundle_entrypoint(compiled, test.replace(".", "/"))
                defined, value = _first_result(output)
            except (regopy.RegoError, ValueError):
                defined, value = False, None
            if not (defined and value is True):
                failed.append(test)
        return tests_result(tests, failed, skipped, started)


class RegoEngine:
    """Rego evaluated in-process by rego-cpp (``regopy``, Microsoft's binding).

    Policies are plain Rego v1, also usable by OPA. Known rego-cpp 1.5 gaps the
    default bundle avoids (see its README): ``with input as`` in some rules,
    ``sprintf("%s", [concat(...)])``, ``sort(set)`` compared to an array,
    recursive ``object.union``.
    """

    name = "regopy"

    def __init__(self, entrypoint: str = DEFAULT_ENTRYPOINT) -> None:
        self.entrypoint = entrypoint

    def compile(self, bundle: BundleFiles) -> RegoPolicy:
        return RegoPolicy(bundle, self.entrypoint)

    @staticmethod
    def version() -> str:
        """The rego-cpp version."""
        return str(regopy.__version__)
