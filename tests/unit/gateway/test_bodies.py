"""Definition bodies: media types, positions and the size cap's middleware."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from maestro.common.v1 import source_pb2
from maestro.services.gateway.bodies import (
    BodyLimitMiddleware,
    BodyTooLargeError,
    line_and_column,
    media_type,
    source_format,
)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", source_pb2.SOURCE_FORMAT_JSON),
        ("application/json; charset=utf-8", source_pb2.SOURCE_FORMAT_JSON),
        ("application/vnd.maestro+json", source_pb2.SOURCE_FORMAT_JSON),
        ("application/yaml", source_pb2.SOURCE_FORMAT_YAML),
        ("Application/X-YAML", source_pb2.SOURCE_FORMAT_YAML),
        ("text/yaml", source_pb2.SOURCE_FORMAT_YAML),
        (None, source_pb2.SOURCE_FORMAT_UNSPECIFIED),
        ("text/plain", source_pb2.SOURCE_FORMAT_UNSPECIFIED),
        ("application/x-www-form-urlencoded", source_pb2.SOURCE_FORMAT_UNSPECIFIED),
    ],
)
def test_source_format_follows_the_media_type(
    content_type: str | None, expected: source_pb2.SourceFormat
) -> None:
    assert source_format(content_type) == expected


def test_other_media_types_are_415() -> None:
    with pytest.raises(HTTPException) as caught:
        source_format("image/png")
    assert caught.value.status_code == 415
    assert "image/png" in caught.value.detail


def test_media_type_lowercases_and_drops_parameters() -> None:
    assert media_type("Text/YAML; charset=UTF-8") == "text/yaml"
    assert media_type("") == ""


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, (1, 1)), (3, (1, 4)), (4, (2, 1)), (6, (2, 3)), (99, (3, 3))],
)
def test_line_and_column_are_one_based(offset: int, expected: tuple[int, int]) -> None:
    assert line_and_column("abc\nde\nfg", offset) == expected


def _echo_app(limit: int) -> BodyLimitMiddleware:
    async def echo(request: Request) -> JSONResponse:
        try:
            body = await request.body()
        except BodyTooLargeError as exc:
            return JSONResponse({"too_large": exc.limit}, status_code=413)
        return JSONResponse({"size": len(body)})

    return BodyLimitMiddleware(Starlette(routes=[Route("/", echo, methods=["POST"])]), limit)


async def test_bodies_up_to_the_limit_pass() -> None:
    transport = httpx.ASGITransport(app=_echo_app(10))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.post("/", content=b"x" * 10)).json() == {"size": 10}


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    transport = httpx.ASGITransport(app=_echo_app(10))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/", content=b"x" * 11)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["metadata"] == {"limit_bytes": "10"}


async def test_a_stream_over_the_limit_fails_while_reading() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * 5

    transport = httpx.ASGITransport(app=_echo_app(10))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.post("/", content=chunks())
    assert response.status_code == 413
    assert response.json() == {"too_large": 10}
