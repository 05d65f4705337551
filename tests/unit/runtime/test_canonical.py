"""maestro.runtime.canonical: its fast paths write exactly rfc8785's bytes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from maestro.runtime import canonical
from maestro.runtime.canonical import SAFE_INT

plain_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT) | st.text()
)
plain_values = st.recursive(
    plain_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def _rfc8785_or_error(value: Any) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as exc:  # the error type is what must match
        return type(exc)


def _ours_or_error(value: Any) -> bytes | type[Exception]:
    try:
        return canonical.canonical_json(value)
    except Exception as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_plain_values_are_exactly_rfc8785(value: Any) -> None:
    """Arbitrary text (lone surrogates and characters above U+E000 included)
    in keys and strings: the orjson path or its fall-backs, never other bytes."""
    assert _ours_or_error(value) == _rfc8785_or_error(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code points
        {"a": "\U0001f600 in a value only", "b": "\ue000"},
        {"s": "".join(chr(c) for c in range(0x30)) + '\x7f\u2028\u2029"\\/é𝄞'},
        {"k": [1e21, 1e-7, -0.0, 5e-324, 0.1 + 0.2], "n": 2},  # floats: member by member
        [SAFE_INT, -SAFE_INT, True, False, None, "", [], {}],
    ],
)
def test_edge_cases_are_rfc8785(value: Any) -> None:
    assert canonical.canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ud800": 1},  # a lone surrogate key
        ["\udfff"],  # a lone surrogate value
        [SAFE_INT + 1],  # outside the I-JSON domain
        [float("nan")],
    ],
)
def test_what_rfc8785_refuses_fails_as_rfc8785_fails(value: Any) -> None:
    assert canonical.fast_canonical(value) is None
    assert _ours_or_error(value) == _rfc8785_or_error(value)
    assert isinstance(_ours_or_error(value), type)


def test_plain_is_exact_about_types() -> None:
    assert canonical.plain({"a": [1, "x", None, True, {"b": []}]})
    assert not canonical.plain({"a": 1.0})
    assert not canonical.plain({1: "a"})
    assert not canonical.plain([SAFE_INT + 1])
    assert not canonical.plain([("a",)])
