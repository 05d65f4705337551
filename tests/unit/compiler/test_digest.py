"""Canonical digest: independent of syntax, key order and whitespace."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any

import pytest
import yaml

from maestro.services.compiler import digest
from maestro.services.compiler.normalize import normalize
from maestro.services.compiler.service import Compiler, Source

DEFINITION: dict[str, Any] = {
    "name": "order-flow",
    "description": "Charge, then ship",
    "labels": {"classification": "internal", "team": "billing"},
    "steps": [
        {
            "id": "charge",
            "type": "task",
            "handler": "team.billing/charge",
            "timeout": "30s",
            "retry": {"maxAttempts": 3, "initialBackoff": "1s", "multiplier": 2.5},
            "config": {"amount": 1200, "currency": "EUR", "live": True, "note": None},
        },
        {"id": "ship", "type": "task", "needs": ["charge"], "input": {"to": "inputs.address"}},
        {"id": "notify", "type": "human", "needs": ["ship"], "human": {"assignees": ["ops"]}},
    ],
}


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same value with every mapping's keys in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def as_json(document: Any, rng: random.Random) -> bytes:
    indent = rng.choice([None, 1, 2, 4, "\t"])
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,  ", " : ")])
    text = json.dumps(
        document, indent=indent, separators=separators, ensure_ascii=rng.random() < 0.5
    )
    return ("\n" * rng.randint(0, 2) + text + " " * rng.randint(0, 3)).encode()


def as_yaml(document: Any, rng: random.Random) -> bytes:
    text = yaml.safe_dump(
        document,
        sort_keys=False,
        default_flow_style=rng.choice([False, None]),
        indent=rng.choice([2, 4]),
        allow_unicode=True,
    )
    return ("# a comment\n" * rng.randint(0, 1) + text).encode()


def source_digest(content: bytes, *, is_json: bool | None = None) -> str:
    return Compiler().digest(Source(content, is_json))[0]


def test_digest_is_sha256_of_the_canonical_json() -> None:
    canonical = digest.canonical_json({"b": 1, "a": [True, None, "é"]})
    assert canonical == '{"a":[true,null,"é"],"b":1}'.encode()
    assert digest.digest({"b": 1, "a": [True, None, "é"]}) == hashlib.sha256(canonical).hexdigest()


def test_same_definition_in_yaml_and_json_has_the_same_digest() -> None:
    expected = digest.digest(normalize(DEFINITION))  # a valid document digests normalised
    rng = random.Random(20240501)
    for _ in range(25):
        variant = shuffled(DEFINITION, rng)
        assert source_digest(as_json(variant, rng)) == expected
        assert source_digest(as_yaml(variant, rng), is_json=False) == expected


def test_handwritten_yaml_and_json_agree() -> None:
    yaml_text = b"""\
# order flow
name: tiny
steps:
  - type: task
    id: a
    timeout: 30s
  - {needs: [a], id: b, type: delay}
"""
    json_text = (
        b'{ "steps" : [ {"id":"a","timeout":"30s","type":"task"},\n'
        b'   {"type":"delay","id":"b","needs":["a"]} ],\n "name":"tiny" }\n'
    )
    assert source_digest(yaml_text) == source_digest(json_text)
    digest_value, canonical = Compiler().digest(Source(json_text))
    assert canonical.startswith(b'{"name":"tiny","steps":[{"id":"a"')
    assert digest_value == hashlib.sha256(canonical).hexdigest()


def _step_mutations() -> list[tuple[str, Any]]:
    return [
        ("id", "charge2"),
        ("type", "condition"),
        ("handler", "team.billing/refund"),
        ("timeout", "31s"),
        ("retry", {"maxAttempts": 4, "initialBackoff": "1s", "multiplier": 2.5}),
        ("config", {"amount": 1201, "currency": "EUR", "live": True, "note": None}),
        ("config", {"amount": 1200, "currency": "EUR", "live": False, "note": None}),
        ("config", {"amount": 1200, "currency": "EUR", "live": True}),
        ("needs", []),
        ("compensate", "team.billing/refund"),
    ]


@pytest.mark.parametrize(("field", "value"), _step_mutations())
def test_any_step_field_change_changes_the_digest(field: str, value: Any) -> None:
    changed = copy.deepcopy(DEFINITION)
    changed["steps"][0][field] = value
    assert changed != DEFINITION
    assert digest.digest(changed) != digest.digest(DEFINITION)


def test_step_order_and_list_values_matter() -> None:
    reordered = copy.deepcopy(DEFINITION)
    reordered["steps"].reverse()
    assert digest.digest(reordered) != digest.digest(DEFINITION)
    as_string = copy.deepcopy(DEFINITION)
    as_string["steps"][0]["config"]["amount"] = "1200"
    assert digest.digest(as_string) != digest.digest(DEFINITION)


def test_random_value_changes_change_the_digest() -> None:
    rng = random.Random(7)
    base = digest.digest(DEFINITION)
    for _ in range(30):
        changed = copy.deepcopy(DEFINITION)
        step = rng.choice(changed["steps"])
        key = rng.choice(sorted(step))
        step[key] = {"changed": rng.randint(0, 10**6)}
        assert digest.digest(changed) != base, key


def test_integral_float_and_int_are_the_same_number() -> None:
    # RFC 8785 serialises numbers as ECMAScript does: 1.0 is 1.
    assert source_digest(b'{"n": 1.0}') == source_digest(b'{"n": 1}')
    assert source_digest(b"n: 1.0\n") == source_digest(b'{"n": 1}')
