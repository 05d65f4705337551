"""Property tests of the definition digest: SHA-256 of RFC 8785 of the normal form."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import rfc8785
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro.runtime.errors import InvalidArgumentError
from maestro.services.compiler import digest
from maestro.services.compiler.normalize import duration_nanos, normalize
from maestro.services.compiler.service import Compiler, Source

from .generated import layered_workflow

SAFE_INT = 2**53 - 1
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_canonical_json_is_exactly_rfc8785(value: Any) -> None:
    assert digest.canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code points
        {"k": [1e21, 1e-7, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]},
        {"s": '\x00\x1f\x7f\u2028"\\/é𝄞'},
        [SAFE_INT, -SAFE_INT],
    ],
)
def test_canonical_json_edge_cases(value: Any) -> None:
    assert digest.canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 2**53, {"x": [-(2**53)]}, "\ud800", {"\udfff": 1}]
)
def test_values_outside_rfc8785_are_refused(value: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        digest.canonical_json(value)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _respell(text: str, rng: random.Random) -> str:
    """Another spelling of the same duration."""
    nanos = duration_nanos(text)
    spellings = [f"{nanos // 10**9}.{nanos % 10**9:09d}s"]
    if nanos % 1_000_000 == 0:
        spellings.append(f"{nanos // 1_000_000}ms")
    if nanos % 1_000_000_000 == 0:
        minutes, secs = divmod(nanos // 1_000_000_000, 60)
        spellings.append(f"{minutes}m{secs}s")
        hours, minutes = divmod(minutes, 60)
        spellings.append(f"{hours}h{minutes}m{secs}s")
    return rng.choice(spellings)


def _variant(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same workflow written differently."""
    variant = copy.deepcopy(doc)
    for step in variant["steps"]:
        if "timeout" in step:
            step["timeout"] = _respell(step["timeout"], rng)
        if "needs" in step:
            needs = step["needs"] + rng.sample(step["needs"], rng.randint(0, len(step["needs"])))
            rng.shuffle(needs)
            step["needs"] = needs
        if rng.random() < 0.3:
            step.setdefault("taskQueue", "default")
        if "retry" in step and rng.random() < 0.5:
            step["retry"].setdefault("maxBackoff", "1m")
    variant["tags"] = list(reversed(variant["tags"])) + variant["tags"][:1]
    shuffled: dict[str, Any] = _shuffled(variant, rng)
    return shuffled


def _encode(doc: dict[str, Any], rng: random.Random) -> Source:
    if rng.random() < 0.5:
        return Source(json.dumps(doc, indent=rng.choice([None, 2])).encode(), is_json=True)
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=rng.choice([False, None]))
    return Source(text.encode(), is_json=False)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=1, max_value=15),
    st.integers(min_value=0, max_value=10**6),
    st.randoms(use_true_random=False),
)
def test_digest_ignores_key_order_syntax_and_spelling(
    steps: int, seed: int, rng: random.Random
) -> None:
    doc = layered_workflow(steps, seed=seed, width=5)
    compiler = Compiler()
    expected, canonical = compiler.digest(_encode(doc, rng))
    assert expected == digest.digest(normalize(doc))
    assert canonical == digest.canonical_json(normalize(doc))
    for _ in range(3):
        assert compiler.digest(_encode(_variant(doc, rng), rng))[0] == expected
    result = compiler.validate(_encode(_variant(doc, rng), rng))
    assert result.valid
    assert result.digest == expected


def _edits() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def later_timeout(step: dict[str, Any]) -> None:
        step["timeout"] = f"{duration_nanos(step.get('timeout', '1s')) + 1_000_000}ns"

    return [
        ("id", lambda s: s.update(id=s["id"] + "x")),
        ("type", lambda s: s.update(type="delay" if s["type"] != "delay" else "task")),
        ("handler", lambda s: s.update(handler=str(s.get("handler")) + "-v2")),
        ("timeout", later_timeout),
        ("config", lambda s: s.setdefault("config", {}).update(extra=None)),
        ("config value", lambda s: s.update(config={**s.get("config", {}), "n": -1})),
        ("input", lambda s: s.setdefault("input", {}).update(y="inputs.y")),
        ("needs", lambda s: s.update(needs=[*s.get("needs", []), "zzz"])),
        ("retry", lambda s: s.update(retry={"maxAttempts": 7})),
        ("queue", lambda s: s.update(taskQueue="gpu")),
        ("labels", lambda s: s.update(labels={"tier": "1"})),
        ("compensate", lambda s: s.update(compensate="undo")),
        ("cache", lambda s: s.update(cache={"enabled": True})),
    ]


EDITS = _edits()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=25),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(EDITS),
    st.randoms(use_true_random=False),
)
def test_any_step_edit_changes_the_digest(
    steps: int,
    seed: int,
    edit: tuple[str, Callable[[dict[str, Any]], None]],
    rng: random.Random,
) -> None:
    doc = layered_workflow(steps, seed=seed, width=4)
    changed = copy.deepcopy(doc)
    edit[1](rng.choice(changed["steps"]))
    assert digest.digest(normalize(changed)) != digest.digest(normalize(doc)), edit[0]


def test_invalid_documents_digest_as_written() -> None:
    invalid: dict[str, Any] = {
        "name": "Not A Name",
        "steps": [{"id": "a", "type": "task", "timeout": "2m"}],
    }
    value, canonical = Compiler().digest(Source(json.dumps(invalid).encode()))
    assert canonical == rfc8785.dumps(invalid)
    assert value == digest.digest(invalid)
