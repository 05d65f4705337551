"""The compiler's fast paths against the exact paths they shortcut.

Each fast path may only say what the exact path would say (or hand over to it):

* ``fast_validator`` accepts a document only when jsonschema finds no error;
* ``metaschema.plainly_valid`` accepts an embedded schema only when the draft
  2020-12 meta-schema does;
* ``JsonPositions`` gives the positions the YAML index gives, or declines;
* ``protomap`` builds the messages ``json_format.ParseDict`` builds, or lets
  it raise;
* expressions checked in the shared environment get the findings they get in
  their own scope;
* ``canonical_json_and_steps`` and the step digests ``diff`` is given agree
  with computing each on its own;
* a diff's second version, validated with the first one's results shared, is
  the version validated alone;
* operations pause garbage collection and restore it.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro.common.v1 import workflow_pb2
from maestro.runtime.errors import InvalidDefinitionError
from maestro.services.compiler import (
    digest,
    expressions,
    gcpause,
    metaschema,
    protomap,
    service,
)
from maestro.services.compiler.diff import diff
from maestro.services.compiler.graph import step_graph
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.plan import resolve_defaults
from maestro.services.compiler.service import Compiler, Source
from maestro.services.compiler.source import ParsedSource, SourceSyntaxError, parse_source
from maestro.services.compiler.workflow_schema import fast_validator, meta_validator, validator

from .generated import layered_workflow

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "workflows"


def _documents() -> list[Any]:
    docs = []
    for path in [*sorted(FIXTURES.glob("*.yaml")), *sorted(SAMPLES.glob("*.yaml"))]:
        try:
            docs.append(parse_source(path.read_bytes()).document)
        except Exception:  # the syntax-error fixture
            continue
    docs.append(layered_workflow(12, seed=3))
    return docs


DOCUMENTS = _documents()

# Values and expressions the mutations below put into documents.
VALUES: list[Any] = [
    None, 0, 1, -1, 1.0, 1.5, True, False, "", "x", "30s", "1h30m", "5x", "task", "loop",
    "Task", "workflows/x", "role:r", [], ["a"], {}, {"a": 1}, {"type": "object"}, 10**12,
    "a-b", "0bad", "é",
]  # fmt: skip
EXPRESSIONS = [
    "inputs.amount > 1", "steps.s0001.output", "item", "index + 1", "[1, 2]", "(", "1 + 'a'",
    "steps.nope.output", 'steps["s0001"].output', "steps.s0001-x.output", "// c\n inputs",
    "(steps).s0000.output", ".steps.s0000.output", "x.steps.s0000", "r'\\\\' + 'steps.a'",
    "steps . s0000 . output . total", "inputs.who + 1", "size(steps.s0000.output) > 0",
    "'2024-01-01T00:00:00Z'", "timestamp('2024-01-01T00:00:00Z')", "steps.a-steps.s0000.output",
    "has(steps.s0000.output.total) ? 1 : 2", "[item, index]", "null", "steps",
]  # fmt: skip
SCHEMAS: list[Any] = [
    {"type": "strin"}, {"type": ["string", "null"]}, {"type": []}, {"type": ["a", "a"]},
    {"required": ["a", "a"]}, {"required": "a"}, {"properties": {"a": 1}}, {"minimum": "1"},
    {"pattern": "("}, {"enum": []}, {"minLength": -1}, {"minLength": 1.0}, {"items": True},
    {"items": [{}]}, {"additionalProperties": {"type": "x"}}, {"$ref": "#/x"}, {"format": 1},
    {"examples": 1}, {"multipleOf": 0}, {"exclusiveMinimum": True}, {"anyOf": []},
    {"type": "object", "properties": {"total": {"type": "integer"}}}, {"unknownKeyword": 1},
]  # fmt: skip


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, (*path, i))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for token in path:
        value = value[token]
    return value


def mutated(doc: Any, rng: random.Random, times: int) -> Any:
    """``doc`` with ``times`` random edits: values replaced or deleted, keys
    added, expressions and embedded schemas swapped, steps copied or retyped."""
    doc = copy.deepcopy(doc)
    for _ in range(times):
        nodes = [(p, v) for p, v in _nodes(doc) if p]
        if not nodes:
            return doc
        path, value = rng.choice(nodes)
        parent = _at(doc, path[:-1])
        op = rng.random()
        if op < 0.25 and isinstance(value, str):
            parent[path[-1]] = rng.choice(EXPRESSIONS)
        elif op < 0.4:
            parent[path[-1]] = copy.deepcopy(rng.choice(SCHEMAS))
        elif op < 0.5 and isinstance(parent, dict):
            del parent[path[-1]]
        elif op < 0.6 and isinstance(value, dict):
            value[rng.choice(["bogus", "needs", "loop", "type", "id", "timeout"])] = rng.choice(
                VALUES
            )
        elif op < 0.7 and isinstance(doc, dict) and isinstance(doc.get("steps"), list):
            steps = doc["steps"]
            if steps and rng.random() < 0.5:
                steps.append(copy.deepcopy(rng.choice(steps)))
            elif steps and isinstance(step := rng.choice(steps), dict):
                step["type"] = rng.choice(["task", "condition", "loop", "human", "delay", "x"])
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(VALUES))
    return doc


def _mutations() -> st.SearchStrategy[Any]:
    return st.builds(
        mutated,
        st.sampled_from(DOCUMENTS),
        st.randoms(use_true_random=False),
        st.integers(min_value=1, max_value=3),
    )


# The workflow schema --------------------------------------------------------------


def _fast_accepts(doc: Any) -> bool:
    try:
        fast_validator()(doc)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_fast_validator_agrees_on_the_corpus(index: int) -> None:
    doc = DOCUMENTS[index]
    assert _fast_accepts(doc) == (not any(validator().iter_errors(doc)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_fast_validator_accepts_only_what_jsonschema_accepts(doc: Any) -> None:
    if _fast_accepts(doc):
        assert list(validator().iter_errors(doc)) == []


def test_fast_validator_rejects_a_step_without_id() -> None:
    doc = copy.deepcopy(DOCUMENTS[-1])
    del doc["steps"][1]["id"]
    assert not _fast_accepts(doc)
    assert any(validator().iter_errors(doc))


# Embedded schemas --------------------------------------------------------------------

KEYWORD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["string", "object", "number", "x", ["string", "null"], [], ["a"], 1]),
    "required": st.sampled_from([[], ["a"], ["a", "a"], "a", [1]]),
    "enum": st.sampled_from([[], [1], 1, [1, 1]]),
    "examples": st.sampled_from([[], [1], 1, "x"]),
    "const": st.sampled_from([None, 1, "x"]),
    "default": st.sampled_from([None, 1, {}]),
    "description": st.sampled_from(["d", 1, None]),
    "title": st.sampled_from(["t", 1]),
    "$comment": st.sampled_from(["c", []]),
    "format": st.sampled_from(["date", 1]),
    "pattern": st.sampled_from(["^a+$", "(", 1]),
    "minimum": st.sampled_from([0, 1.5, "1", True, float("nan")]),
    "exclusiveMaximum": st.sampled_from([0, -1, True]),
    "multipleOf": st.sampled_from([0, 1, 0.5, -1, True, float("nan")]),
    "minLength": st.sampled_from([0, 1, -1, 1.0, 1.5, True]),
    "maxItems": st.sampled_from([0, 3, -2, "3"]),
    "uniqueItems": st.sampled_from([True, 1]),
    "$ref": st.sampled_from(["#/x", 1]),
}


def _schemas() -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries({}, optional=KEYWORD_VALUES)
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(
                lambda s, p: {**s, "properties": p},
                leaf,
                st.dictionaries(
                    st.sampled_from(["a", "b"]), children | st.booleans() | st.just(1), max_size=2
                ),
            ),
            st.builds(lambda s, i: {**s, "items": i}, leaf, children | st.booleans() | st.just([])),
            st.builds(
                lambda s, a: {**s, "additionalProperties": a}, leaf, children | st.booleans()
            ),
        ),
        max_leaves=6,
    )


@settings(max_examples=400, deadline=None)
@given(_schemas())
def test_plainly_valid_schemas_satisfy_the_meta_schema(schema: Any) -> None:
    if metaschema.plainly_valid(schema):
        assert list(meta_validator().iter_errors(schema)) == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "required": ["value"], "properties": {"value": {"type": "number"}}},
        {"type": ["string", "null"], "minLength": 1, "pattern": "^[a-z]+$", "format": "email"},
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 3},
        {"enum": ["a", "b"], "description": "d", "default": "a", "examples": ["a"]},
        {"type": "object", "additionalProperties": False, "properties": {"a": True}},
    ],
)
def test_common_schemas_take_the_fast_path(schema: Any) -> None:
    assert metaschema.plainly_valid(schema)
    assert list(meta_validator().iter_errors(schema)) == []


# Positions -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=25,
)


def _spaced(text: str, rng: random.Random) -> str:
    """JSON ``text`` with random spaces, tabs and newlines between tokens."""
    out = []
    in_string = escaped = False
    for char in text:
        out.append(char)
        if in_string:
            # The character after a backslash is escaped, whatever it is; an
            # unescaped quote ends the string.
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in ",:[]{}" and rng.random() < 0.3:
            out.append(rng.choice([" ", "\n", "\t", "\n  ", " \n"]))
    return "".join(out)


def _pointers(value: Any) -> Iterator[str]:
    for path, _ in _nodes(value):
        tokens = [str(t).replace("~", "~0").replace("/", "~1") for t in path]
        pointer = "".join("/" + t for t in tokens)
        yield pointer
        yield pointer + "/missing"


@settings(max_examples=300, deadline=None)
@given(json_values, st.randoms(use_true_random=False), st.booleans(), st.sampled_from([None, 1]))
def test_json_positions_are_the_yaml_positions(
    value: Any, rng: random.Random, ascii_only: bool, indent: int | None
) -> None:
    text = _spaced(json.dumps(value, ensure_ascii=ascii_only, indent=indent), rng)
    if rng.random() < 0.2:
        text = rng.choice(["\t", " \n", "\n\t"]) + text
    fast = ParsedSource(value, text, is_json=True)
    exact = ParsedSource(value, text, is_json=False)
    for pointer in _pointers(value):
        assert fast.position(pointer) == exact.position(pointer), (pointer, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"b":[1,{"c":2}]}',
        '{"e": "\\ud83d\\ude00", "f": 1}',
        '{"a"\n: 1}',
        '{"a": "\\u007f", "b": 2}',
        "{" + '"' + "k" * 1100 + '": 1, "b": 2}',
        '{"a": 1, "a": {"x": 2}}',
        '{"a\\"b": 1, "c": {"d": 2}}',
        '{\r\n"a": 1}',
        '{"a": "\u2028", "b": 1}',
    ],
)
def test_json_positions_handle_what_yaml_reads_differently(text: str) -> None:
    value = json.loads(text)
    fast = ParsedSource(value, text, is_json=True)
    exact = ParsedSource(value, text, is_json=False)
    for pointer in ["", "/a", "/a/x", "/b", "/b/1/c", "/c/d", "/e", "/f"]:
        assert fast.position(pointer) == exact.position(pointer)


# Messages -------------------------------------------------------------------------------


def _step_like() -> st.SearchStrategy[dict[str, Any]]:
    scalar = (
        st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=4)
    )
    anything = st.recursive(
        scalar,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=8,
    )
    return st.fixed_dictionaries(
        {"id": st.text(max_size=4), "type": st.sampled_from(["task", "loop", "Task", "x"])},
        optional={
            "needs": st.lists(st.text(max_size=3), max_size=3) | anything,
            "handler": st.text(max_size=4) | anything,
            "config": anything,
            "input": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3)
            | anything,
            "timeout": st.sampled_from(["30s", "0.5s", "1.5s", "-1s", "99999999999999s", "x", 5]),
            "retry": st.fixed_dictionaries(
                {},
                optional={
                    "maxAttempts": st.integers(-(2**33), 2**33) | anything,
                    "multiplier": st.floats() | st.integers() | anything,
                    "initialBackoff": st.sampled_from(["1s", "1.000000001s", "x"]),
                    "nonRetryableErrors": st.lists(st.text(max_size=2), max_size=2) | anything,
                },
            ),
            "cache": st.fixed_dictionaries({}, optional={"enabled": anything}),
            "outputSchema": anything,
            "taskQueue": st.text(max_size=3),
            "task_queue": st.text(max_size=3),
            "[ext]": anything,
            "unknown": anything,
            "loop": st.fixed_dictionaries(
                {"items": st.text(max_size=3)},
                optional={
                    "parallelism": anything,
                    "body": st.fixed_dictionaries(
                        {"type": st.sampled_from(["task", "TASK", "nope"])},
                        optional={"handler": st.text(max_size=3)},
                    ),
                },
            ),
        },
    )


def _outcome(build: Callable[[], Any]) -> Any:
    try:
        return build().SerializeToString(deterministic=True)
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_step_like())
def test_step_messages_are_parse_dicts(step: dict[str, Any]) -> None:
    _assert_step_message_is_parse_dict(step)


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_definition_messages_are_parse_dicts(index: int) -> None:
    normal = normalize(DOCUMENTS[index])
    if not isinstance(normal, dict):
        return
    doc = dict(normal)
    if isinstance(doc.get("steps"), list):
        doc["steps"] = [protomap._step_json(s) for s in doc["steps"]]
    if isinstance(doc.get("triggers"), list):
        doc["triggers"] = [protomap._trigger_json(t) for t in doc["triggers"]]
    expected = _outcome(
        lambda: json_format.ParseDict(
            doc, workflow_pb2.WorkflowDefinition(), ignore_unknown_fields=True
        )
    )
    assert _outcome(lambda: protomap.definition_message(normal)) == expected
    for step in normal.get("steps") or ():
        if isinstance(step, dict):
            _assert_step_message_is_parse_dict(resolve_defaults(step))


def _assert_step_message_is_parse_dict(step: dict[str, Any]) -> None:
    expected = _outcome(
        lambda: json_format.ParseDict(
            protomap._step_json(step), workflow_pb2.Step(), ignore_unknown_fields=True
        )
    )
    assert _outcome(lambda: protomap.step_message(step)) == expected


# Expressions ------------------------------------------------------------------------------


def _each_in_own_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every expression checked in its own scope only (the exact path)."""
    real = expressions._scan

    def not_plain(expression: str) -> tuple[list[expressions.StepReference], bool]:
        return real(expression)[0], False

    monkeypatch.setattr(expressions, "_scan", not_plain)


def _expression_findings(doc: Any) -> list[Any]:
    graph = step_graph(doc)
    return [] if graph is None else list(expressions.check_expressions(doc, graph))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_shared_environment_finds_what_each_scope_finds(doc: Any) -> None:
    fast = _expression_findings(doc)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _each_in_own_scope(monkeypatch)
        assert _expression_findings(doc) == fast


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("steps.later.output", False),  # not upstream
        ("(steps).later.output", False),  # the text scan does not see these reads
        (".steps.later.output", False),
        ("steps // comment\n.later.output", False),
        ("r'\\' + steps.later.output + 'x'", False),  # the scan reads `\'` as an escape
        ("item + 1", False),  # only in scope in a loop body
        ("steps.first.output.n + 1", True),
        ("(steps).first.output.n + 1", True),
    ],
)
def test_reads_the_text_scan_misses_are_still_checked(
    text: str, valid: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = {"properties": {"n": {"type": "integer"}}}
    doc = {
        "name": "w",
        "steps": [
            {"id": "first", "type": "task", "outputSchema": schema},
            {"id": "second", "type": "task", "needs": ["first"], "input": {"x": text}},
            {"id": "later", "type": "task", "needs": ["second"]},
        ],
    }  # fmt: skip
    found = _expression_findings(doc)
    assert (found == []) == valid
    _each_in_own_scope(monkeypatch)
    assert _expression_findings(doc) == found


def test_checks_shared_between_versions_see_changed_schemas() -> None:
    def version(kind: str) -> Source:
        doc = {
            "name": "w",
            "steps": [
                {"id": "a", "type": "task", "outputSchema": {"properties": {"n": {"type": kind}}}},
                {"id": "b", "type": "condition", "needs": ["a"], "condition": {
                    "expression": "steps.a.output.n > 1", "thenSteps": [], "elseSteps": []}},
            ],
        }  # fmt: skip
        return Source(json.dumps(doc).encode(), is_json=True)

    compiler = Compiler()
    memo = expressions.Memo(documents=2)
    assert compiler._validate(version("integer"), memo).valid
    changed = compiler._validate(version("string"), memo)  # `"x" > 1` does not check
    assert changed.report.findings == compiler.validate(version("string")).report.findings
    assert [f.code for f, _ in changed.report.findings] == ["TYPE_MISMATCH"]


# Digests and diffs --------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_canonical_json_and_steps_is_each_canonical_json(index: int) -> None:
    normal = normalize(DOCUMENTS[index])
    try:
        whole = digest.canonical_json(normal)
    except Exception as exc:
        with pytest.raises(type(exc)):
            digest.canonical_json_and_steps(normal)
        return
    canonical, steps = digest.canonical_json_and_steps(normal)
    assert canonical == whole
    if isinstance(normal, dict) and isinstance(normal.get("steps"), list):
        assert steps == [digest.canonical_json(s) for s in normal["steps"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations(), _mutations())
def test_diffs_with_step_canonicals_are_diffs(base_doc: Any, target_doc: Any) -> None:
    compiler = Compiler()
    results = []
    for doc in (base_doc, target_doc):
        steps: list[bytes] = []
        source = Source(json.dumps(doc).encode(), is_json=True)
        result = compiler._validate(source, expressions.Memo(), steps)
        if not result.valid:
            return
        results.append((result, steps))
    (old, old_steps), (new, new_steps) = results
    plain = diff(old.normal, new.normal, base_digest=old.digest, target_digest=new.digest)
    fast = diff(
        old.normal,
        new.normal,
        base_digest=old.digest,
        target_digest=new.digest,
        base_steps=old_steps,
        target_steps=new_steps,
    )
    assert fast == plain


# Lint on odd step types -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [["task"], {"type": "object"}])
def test_a_step_type_that_is_not_a_string_is_a_finding(kind: Any) -> None:
    doc = {
        "name": "w",
        "labels": {"classification": "internal"},
        "steps": [{"id": "a", "type": kind}],
    }
    result = Compiler().lint(Source(yaml.safe_dump(doc).encode()))
    assert [f.code for f, _ in result.report.findings] == ["INVALID_STEP_TYPE"]


# Garbage collection ------------------------------------------------------------------------


def test_operations_pause_collection_and_restore_it() -> None:
    seen: list[bool] = []

    @gcpause.collection_paused
    def outer() -> None:
        seen.append(gc.isenabled())
        inner()
        seen.append(gc.isenabled())

    @gcpause.collection_paused
    def inner() -> None:
        seen.append(gc.isenabled())

    @gcpause.collection_paused
    def failing() -> None:
        raise ValueError

    assert gc.isenabled()
    outer()
    assert seen == [False, False, False]
    assert gc.isenabled()
    with pytest.raises(ValueError):
        failing()
    assert gc.isenabled()
    gc.disable()
    try:
        outer()
        assert not gc.isenabled()  # a pause never enables collection that was off
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ((700, 10, 10), (gcpause.YOUNG_THRESHOLD, 10, 10)),  # raised, the others kept
        ((50_000, 5, 7), (50_000, 5, 7)),  # never lowered
        ((0, 10, 10), (0, 10, 10)),  # 0 (collection off by threshold) stays off
    ],
)
def test_a_compiler_process_raises_the_young_threshold(
    before: tuple[int, int, int], after: tuple[int, int, int]
) -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(*before)
        gcpause.tune_collection()
        assert gc.get_threshold() == after
    finally:
        gc.set_threshold(*saved)


def test_after_an_operation_no_young_collection_scans_the_cached_document() -> None:
    """With the compiler's threshold, validating new documents one after
    another (each cached, an older one evicted) runs no collection at all."""
    compiler = Compiler(cache_size=2)
    documents = [layered_workflow(60, seed=s) for s in range(8)]
    sources = [Source(yaml.safe_dump(d).encode(), is_json=False) for d in documents]
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    saved = gc.get_threshold()
    gc.collect()
    try:
        gcpause.tune_collection()
        gc.callbacks.append(count)
        for source in sources:
            assert compiler.validate(source).valid
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*saved)
    assert collections == []


def test_a_step_without_id_that_needs_a_non_string_is_validated() -> None:
    doc = {
        "name": "w",
        "steps": [
            {"id": "work", "type": "task", "handler": "echo"},
            {"type": "condition", "needs": [{"a": 1}], "condition": {"expression": "1 + 'a'"}},
        ],
    }
    result = Compiler().validate(Source(json.dumps(doc).encode(), is_json=True))
    assert "TYPE_MISMATCH" in {f.code for f, _ in result.report.findings}


def _version_pairs() -> st.SearchStrategy[tuple[Any, Any]]:
    """A document and a next version of it (sharing most steps)."""

    def pair(doc: Any, rng: random.Random, times: int) -> tuple[Any, Any]:
        base = mutated(doc, rng, times)
        return base, mutated(base, rng, rng.randint(1, 2))

    return st.builds(
        pair,
        st.sampled_from(DOCUMENTS),
        st.randoms(use_true_random=False),
        st.integers(min_value=0, max_value=1),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_version_pairs(), st.booleans(), st.booleans())
def test_diffs_sharing_work_between_versions_are_diffs(
    pair: tuple[Any, Any], base_json: bool, target_json: bool
) -> None:
    base, target = (
        Source(json.dumps(doc).encode(), is_json=True)
        if as_json
        else Source(yaml.safe_dump(doc).encode(), is_json=False)
        for doc, as_json in zip(pair, (base_json, target_json), strict=True)
    )
    compiler = Compiler()
    old, new = compiler.validate(base), compiler.validate(target)
    # The target validated after the base, sharing work, is the target validated alone.
    share, memo = service._StepShare(), expressions.Memo(documents=2)
    compiler._validate(base, memo, [], share)
    shared = compiler._validate(target, memo, [], share)
    assert (shared.report, shared.digest, shared.normal) == (new.report, new.digest, new.normal)
    if not (old.valid and new.valid):
        with pytest.raises(InvalidDefinitionError):
            compiler.diff(base, target)
        return
    expected = diff(old.normal, new.normal, base_digest=old.digest, target_digest=new.digest)
    assert compiler.diff(base, target) == expected


json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and the infinities too: only the standard library reads them
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)


def _same_json(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(json_documents, st.booleans())
def test_json_sources_read_as_the_standard_library_reads_them(value: Any, ascii_only: bool) -> None:
    """The orjson path, its guard and its fall-back give json.loads's value."""
    text = json.dumps({"name": "w", "value": value}, ensure_ascii=ascii_only)
    assert _same_json(parse_source(text.encode()).document, json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 123456789012345678901234567890}',  # orjson would read a float
        '{"a": -9223372036854775809, "b": 18446744073709551616}',
        '{"a": 1e400, "b": -0, "c": -0.0, "d": 5e-324}',
        '{"a": NaN, "b": -Infinity}',
        '{"a": "\\udc00"}',  # an escaped lone surrogate
        '{"a": 1, "b": 2, "a": 3}',  # a repeated key: the last value, the first place
    ],
)
def test_json_sources_orjson_reads_differently_or_refuses(text: str) -> None:
    assert _same_json(parse_source(text.encode()).document, json.loads(text))


@pytest.mark.parametrize("text", ['{"a": 1,}', '{"a": "\x01"}', '{"a": 1} x', "\ufeff{}"])
def test_malformed_json_sources_get_the_standard_librarys_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(SourceSyntaxError) as raised:
        parse_source(text.encode(), is_json=True)
    assert (raised.value.line, raised.value.column) == (expected.value.lineno, expected.value.colno)
