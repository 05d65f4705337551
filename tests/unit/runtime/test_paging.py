"""Page sizes and opaque page tokens shared by every List RPC."""

from __future__ import annotations

import base64

import pytest

from maestro.runtime import paging
from maestro.runtime.errors import InvalidArgumentError


@pytest.mark.parametrize(("requested", "effective"), [(0, 50), (1, 1), (500, 500), (501, 500)])
def test_page_size_defaults_to_50_and_caps_at_500(requested: int, effective: int) -> None:
    assert paging.page_size(requested) == effective


@pytest.mark.parametrize(("requested", "effective"), [(0, 100), (7, 7), (5000, 1000)])
def test_page_size_takes_the_services_default_and_maximum(requested: int, effective: int) -> None:
    assert paging.page_size(requested, default=100, maximum=1000) == effective


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        paging.page_size(-1)
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert caught.value.message == "page_size must not be negative, got -1"
    assert [v.field for v in caught.value.field_violations] == ["page_size"]


def test_query_hash_is_stable_and_tells_queries_apart() -> None:
    assert paging.query_hash("executions", "acme", {"b": 1, "a": 2}) == paging.query_hash(
        "executions", "acme", {"a": 2, "b": 1}
    )
    assert paging.query_hash("executions", "acme") != paging.query_hash("executions", "umbrella")
    assert len(paging.query_hash()) == 16


def test_token_round_trips_its_key() -> None:
    token = paging.encode_page_token(["2025-09-01T00:00:00+00:00", "01J", 3], "q1")
    assert "=" not in token
    assert paging.decode_page_token(token, "q1") == ["2025-09-01T00:00:00+00:00", "01J", 3]


def test_token_of_another_query_is_rejected() -> None:
    token = paging.encode_page_token([1], "q1")
    with pytest.raises(InvalidArgumentError) as caught:
        paging.decode_page_token(token, "q2")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert "another query" in caught.value.message
    assert [v.field for v in caught.value.field_violations] == ["page_token"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "a",
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(b'{"q": "q"}'),
        _b64(b'{"k": "not a list", "q": "q"}'),
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        paging.decode_page_token(token, "q")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    assert caught.value.message == "page_token is malformed"


def test_bad_page_token_for_keys_a_service_cannot_use() -> None:
    error = paging.bad_page_token()
    assert error.reason == "INVALID_PAGE_TOKEN"
    assert error.field_violations[0].field == "page_token"
    assert error.field_violations[0].description == "page_token is malformed"
