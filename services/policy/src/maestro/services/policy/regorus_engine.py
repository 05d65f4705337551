"""The regorus policy engine: Rego evaluated in-process by Microsoft's regorus
(Rust), through the third-party ``gordon-to-regorus`` build (module ``regorus``).

Opt-in (``MAESTRO_POLICY_ENGINE=regorus``); regopy stays the default. It is
about ten times faster per decision on the shipped bundle, and it implements the
same :class:`~maestro.services.policy.engine.PolicyEngine` contract: the same
bundle (modules, merged ``data.json`` documents), the same decision documents,
the same ``BundleLoadError`` with file and line, the same bundle tests.
``tests/unit/policy/test_conformance.py`` runs one suite on both engines.

How it differs inside, and why:

- **A regorus engine is bound to the thread that made it** (the binding is a
  pyo3 ``unsendable`` class: touching it from another thread raises, dropping
  it elsewhere leaks it). Bundles are compiled on a worker thread and evaluated
  on the event loop, so each thread builds its own engine from the policy's
  sources on first use (about a millisecond for the shipped bundle) and keeps
  it in a per-thread cache of the last few policies, which only that thread
  ever touches or frees.
- **Compile errors come at the first evaluation** (``add_policy`` only parses):
  building an engine ends with a trivial query, which runs the whole-bundle
  analysis, so a broken bundle is refused at compile time as on regopy.
- **Results are read as JSON** (``eval_rule_as_json``): regorus gives sets as
  sorted arrays there, as regopy does, and numbers beyond 64 bits survive
  (its Python conversion fails on both, and on sets of arrays or objects).
"""

from __future__ import annotations

import ctypes
import itertools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import regorus  # type: ignore[import-untyped]

from maestro.services.policy.bundle import BundleFiles, BundleLoadError, TestSummary
from maestro.services.policy.engine import (
    DEFAULT_ENTRYPOINT,
    Verdict,
    bundle_tests,
    check_probe,
    memoised_tests,
    package_of,
    policy_error,
    tests_not_compiling,
    tests_result,
    verdict_from_document,
)

DISTRIBUTION = "gordon-to-regorus"
ENGINES_PER_THREAD = 4
"""Engines a thread keeps (one per policy it evaluated, the newest): the active
bundle, and room for a reload or two in flight."""

_UNDEFINED = "<undefined>"
"""What ``eval_rule_as_json`` returns (as a JSON string) for an undefined rule."""

# regorus errors: a rustc-style report, with a Rust backtrace appended when
# RUST_BACKTRACE is set:
#   --> maestro/authz/authz.rego:291:35
#       |
#   291 | appeal_scope(denied) := ...
#       |                   ^
#   error: var `d` used before definition below
_ERROR_AT = re.compile(r"-->\s*(?P<file>\S+?):(?P<line>\d+):(?P<column>\d+)")
_ERROR_MESSAGE = re.compile(r"^error:\s*(?P<message>.+)$", re.MULTILINE)

_tokens = itertools.count(1)
_local = threading.local()


def _never_free(engine: Any) -> None:
    """Keeps ``engine`` alive for good (one more reference nobody drops).

    A regorus engine must never be dropped off its own thread, and the thread
    that clears an ended thread's locals is some other one (as is the one that
    tears the interpreter down). So the engines of an ended thread are leaked
    on purpose: bounded by threads x ENGINES_PER_THREAD, a few MB at most."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))


class _ThreadEngines:
    """One thread's engines by policy token, least recently used first."""

    def __init__(self) -> None:
        self.engines: OrderedDict[int, Any] = OrderedDict()
        self.thread = threading.get_ident()

    def __del__(self) -> None:
        if threading.get_ident() != self.thread:
            for engine in self.engines.values():
                _never_free(engine)
        self.engines.clear()


def _thread_engines() -> OrderedDict[int, Any]:
    holder: _ThreadEngines | None = getattr(_local, "holder", None)
    if holder is None:
        holder = _ThreadEngines()
        _local.holder = holder
    return holder.engines


def _error_text(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.split("Stack backtrace:", 1)[0].strip()


def _is_panic(exc: BaseException) -> bool:
    # pyo3 turns a Rust panic into pyo3_runtime.PanicException (a BaseException
    # subclass that is not importable by name).
    return type(exc).__name__ == "PanicException"


def _load_error(exc: BaseException, revision: str) -> BundleLoadError:
    """A readable BundleLoadError (``file:line: message``) from a regorus error."""
    text = _error_text(exc)
    what = _ERROR_MESSAGE.search(text)
    message = what.group("message").strip() if what else (text.splitlines() or ["error"])[0]
    where = _ERROR_AT.search(text)
    if where is None:
        return BundleLoadError(message, revision=revision)
    file, line = where.group("file"), int(where.group("line"))
    return BundleLoadError(f"{file}:{line}: {message}", revision=revision, file=file, line=line)


def _build(modules: Mapping[str, str], data: Mapping[str, Any], revision: str) -> Any:
    """A regorus engine holding ``modules`` and ``data``, analysed (compile
    errors raised as BundleLoadError). Bound to the calling thread."""
    engine = regorus.Engine()
    try:
        for path, source in modules.items():
            engine.add_policy(path, source)
        engine.add_data_json(json.dumps(data))  # JSON: numbers beyond 64 bits too
        # The whole-bundle analysis (rule ordering, variable safety) runs at the
        # first evaluation of anything.
        engine.eval_query("true")
        return engine
    except (RuntimeError, ValueError, TypeError) as exc:
        error = _load_error(exc, revision)
    except BaseException as exc:
        if not _is_panic(exc):
            del engine  # not left to the traceback (see below)
            raise
        error = BundleLoadError(f"regorus failed: {_error_text(exc)}", revision=revision)
    # The engine is dropped here, on its own thread. The error carries text
    # only: a chained regorus exception's traceback would keep this frame, and
    # the engine, alive until whichever thread drops the error (the bundle
    # manager keeps the last one), which regorus refuses.
    del engine
    raise error


def _evaluate(engine: Any, rule: str) -> tuple[bool, Any]:
    """(defined, value) of ``rule``, as plain JSON values."""
    value = json.loads(engine.eval_rule_as_json(rule))
    if value == _UNDEFINED:
        return False, None
    return True, value


class RegorusPolicy:
    """A bundle compiled by regorus.

    Thread safety: any thread may call ``evaluate`` and ``run_tests``,
    concurrently: each thread evaluates on its own engine (see the module
    docstring), so no lock is taken on the decision path.
    """

    def __init__(self, bundle: BundleFiles, entrypoint: str) -> None:
        self._bundle = bundle
        self._entrypoint = entrypoint
        self._data = bundle.data()
        self._sources = bundle.modules
        self._token = next(_tokens)
        packages = {package_of(source) for source in self._sources.values()}
        self._modules = tuple(sorted(p for p in packages if p))
        self._engine()  # compiles here, in the compiling thread: errors are raised now
        check_probe(self, entrypoint, bundle.revision)

    @property
    def modules(self) -> tuple[str, ...]:
        return self._modules

    @property
    def data(self) -> Mapping[str, Any]:
        """The bundle's merged data documents."""
        return self._data

    def _engine(self) -> Any:
        """This thread's engine for this policy, built on first use."""
        engines = _thread_engines()
        engine = engines.get(self._token)
        if engine is None:
            engine = _build(self._sources, self._data, self._bundle.revision)
            engines[self._token] = engine
            while len(engines) > ENGINES_PER_THREAD:
                engines.popitem(last=False)  # freed here, by the thread that made it
        else:
            engines.move_to_end(self._token)
        return engine

    def evaluate(self, document: Mapping[str, Any]) -> Verdict:
        try:
            engine = self._engine()
            engine.set_input(document)
            defined, value = _evaluate(engine, self._entrypoint)
        except (BundleLoadError, RuntimeError, ValueError, TypeError) as exc:
            return policy_error(f"the policy failed to evaluate: {_error_text(exc)}")
        except BaseException as exc:
            if not _is_panic(exc):
                raise
            return policy_error(f"the policy failed to evaluate: {_error_text(exc)}")
        if not defined:
            return policy_error(f"{self._entrypoint} is undefined for this input")
        return verdict_from_document(value)

    def run_tests(self) -> TestSummary:
        return memoised_tests(
            f"regorus {RegorusEngine.version()}", self._bundle.revision, self._run_tests
        )

    def _run_tests(self) -> TestSummary:
        started = time.perf_counter()
        tests, skipped = bundle_tests(self._bundle)
        if not tests:
            return TestSummary(skipped=skipped, duration_seconds=time.perf_counter() - started)
        modules = {**self._sources, **self._bundle.test_modules}
        try:
            engine = _build(modules, self._data, self._bundle.revision)
        except BundleLoadError as exc:
            raise tests_not_compiling(exc, tests, skipped, started, self._bundle.revision) from exc
        failed: list[str] = []
        try:
            for test in tests:
                try:
                    defined, value = _evaluate(engine, f"data.{test}")
                except (RuntimeError, ValueError, TypeError):
                    defined, value = False, None
                except BaseException as exc:
                    if not _is_panic(exc):
                        raise
                    defined, value = False, None
                if not (defined and value is True):
                    failed.append(test)
        finally:
            del engine  # dropped on this thread, whatever is raised
        return tests_result(tests, failed, skipped, started)


class RegorusEngine:
    """Rego evaluated in-process by regorus (``gordon-to-regorus``; opt-in).

    Policies are plain Rego v1, also usable by OPA and by regopy. A regorus gap
    the default bundle avoids (see its README): a comprehension in a rule's head
    reusing a variable the rule's body declares is refused.
    """

    name = "regorus"

    def __init__(self, entrypoint: str = DEFAULT_ENTRYPOINT) -> None:
        self.entrypoint = entrypoint

    def compile(self, bundle: BundleFiles) -> RegorusPolicy:
        return RegorusPolicy(bundle, self.entrypoint)

    @staticmethod
    def version() -> str:
        """The version of the regorus build."""
        try:
            return metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            return "unknown"
