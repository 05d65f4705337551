"""OpenAPI description of the REST API: document bodies as JSON or YAML, every
error as an RFC 9457 ``application/problem+json`` Problem, and bearer JWT
authentication (``bearerAuth``) on every API route."""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from maestro.runtime.problem import PROBLEM_CONTENT_TYPE
from maestro.services.gateway.auth import is_public
from maestro.services.gateway.bodies import JSON_MEDIA_TYPE, YAML_MEDIA_TYPES
from maestro.services.gateway.models import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, wrong types, unknown fields, invalid "
    "definition (`violations` lists every problem).",
    401: "No valid bearer token (`UNAUTHENTICATED`); `WWW-Authenticate` says why.",
    403: "The caller may not do this (`POLICY_DENIED`: `reasons`, `decisionId` and "
    "`appeal` say why and whom to ask).",
    404: "Not found (`WORKFLOW_NOT_FOUND`, `VERSION_NOT_FOUND`, `EXECUTION_NOT_FOUND`, ...).",
    409: "Conflict (`ALREADY_EXISTS`, `ETAG_MISMATCH`).",
    413: "The request body exceeds the size limit (`PAYLOAD_TOO_LARGE`).",
    415: "The body's media type is neither JSON nor YAML.",
    503: "A backend is unavailable (`DEPENDENCY_UNAVAILABLE`).",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses, as problem+json."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error."),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in statuses
    }


DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A workflow definition document (the DSL of docs/dsl.md; its JSON "
        "Schema is served at `GET /api/workflows/schema`), as JSON or as YAML "
        "(`application/yaml`, also `application/x-yaml` and `text/yaml`). Syntax "
        "errors are reported with line and column.",
        "content": {
            JSON_MEDIA_TYPE: {
                "schema": {"type": "object", "description": "The definition document."}
            },
            YAML_MEDIA_TYPES[0]: {"schema": {"type": "string", "description": "YAML text."}},
        },
    }
}
"""``openapi_extra`` of the endpoints whose body is a definition document."""


BEARER_AUTH = "bearerAuth"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A JWT from the configured issuer (EdDSA, ES256 or RS256), or in dev "
    "mode one from `maestro dev-token`. Claims: `sub`, `maestro/tenant` (or `tenant`), "
    "`roles`, `clearance`, `purpose`, `legal_basis`, `reason_for_access`.",
}


def install_openapi(app: FastAPI, *, token_required: bool = True) -> None:
    """Replaces the generated document's validation errors (the API answers
    400 problems, never 422), adds the Problem schema, and puts ``bearerAuth``
    on every non-public operation (optional when ``token_required`` is false,
    as in dev mode)."""
    security: list[dict[str, list[str]]] = [{BEARER_AUTH: []}]
    if not token_required:
        security.append({})  # anonymous allowed

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for route, path in schema.get("paths", {}).items():
            for operation in path.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", problems(400)[400])
                if not is_public(route):
                    operation["security"] = security
                    responses.setdefault("401", problems(401)[401])
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER_AUTH] = _BEARER_SCHEME
        schemas = components.setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs``, served from the ``swagger-ui-bundle`` package's
    assets so the page works with no network (FastAPI's default loads a CDN)."""
    app.mount(
        "/docs/static",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-ui-static",
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
