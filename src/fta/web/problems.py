"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from fta.errors import DomainError, RetryLater

PROBLEM_JSON = "application/problem+json"
# <, > and & only ever occur inside JSON strings: escaped, no response can be read as markup
# even by a client that ignores its content type.
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})

# The documented shape of every error (RFC 9457), referenced by each operation's 4XX answer.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong and what to do"},
        "line": {
            "type": "integer",
            "description": "a refused strategy source: the line at fault, where there is one",
        },
        "errors": {
            "type": "array",
            "description": "one entry per invalid field",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


class SafeJSONResponse(JSONResponse):
    """JSON with <, > and & escaped: tenant-supplied text never reads as HTML."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.translate(_HTML_SAFE).encode("utf-8")


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    all_headers = dict(headers or {})
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return SafeJSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers)


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declares every operation's errors as problem+json, replacing FastAPI's 422 schema."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    answer = {
        "description": "The request was refused: `detail` says why and what to do.",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = answer
    return openapi


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        where = ".".join(loc) or "body"
        kind = error.get("type", "")
        if kind == "json_invalid":
            message = "the request body is not valid JSON"
        elif kind == "extra_forbidden":
            message = f"unknown field {where!r}"
        elif where == "body" and kind in ("model_attributes_type", "missing"):
            message = "the request body must be a JSON object sent as application/json"
        elif kind == "missing":
            message = f"missing field {where!r}"
        else:
            message = f"{where}: {error.get('msg', 'invalid value')}"
        errors.append({"field": where, "message": message})
    return "; ".join(e["message"] for e in errors) or "invalid request", errors


def _allowed_methods(request: Request) -> list[str]:
    """Every method served at the request's path (Starlette's 405 names one route's only)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


class PageErrors(Protocol):
    """Answers an error of a page request as a page (None: the request is the API's)."""

    def __call__(
        self,
        request: Request,
        exc: Exception,
        status: int,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None,
    ) -> Response | None: ...


def install(app: FastAPI, page_errors: PageErrors | None = None) -> None:
    """Every error as a problem document, or as a page where `page_errors` takes it."""

    def answer(
        request: Request,
        exc: Exception,
        status: int,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        if page_errors is not None:
            page = page_errors(request, exc, status, title, detail, headers)
            if page is not None:
                return page
        return problem(status, title, detail, headers=headers, **extra)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        members = exc.problem_members()
        return answer(request, exc, exc.status, exc.title, exc.detail, None, **members)

    @app.exception_handler(RetryLater)
    async def _retry_later(request: Request, exc: RetryLater) -> Response:
        headers = {"Retry-After": str(exc.retry_after)}
        return answer(request, exc, exc.status, exc.title, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        detail, errors = _describe_validation(exc)
        return answer(request, exc, 422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such resource: see /api/v1/openapi.json for the API's routes"
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = "unreadable request body: send a JSON object encoded in UTF-8"
        headers = exc.headers
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            detail = f"this method is not allowed on this resource: use {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
        title = detail.split(":")[0].capitalize()
        return answer(request, exc, exc.status_code, title, detail, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        detail = "an unexpected error occurred; it has been logged"
        return answer(request, exc, 500, "Internal error", detail)
