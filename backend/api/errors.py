"""One error body everywhere: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

_log = logging.getLogger(__name__)

_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine code, a human message and optional data."""

    code: str = Field(description="stable machine-readable code, e.g. not_found")
    message: str = Field(description="human-readable explanation")
    details: dict[str, Any] = Field(default_factory=dict, description="extra data, may be empty")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error the API answers with its status code and the common error body."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}


def not_found(kind: str, ident: object) -> ApiError:
    """The 404 every route answers for a missing or out-of-scope resource."""
    return ApiError(404, "not_found", f"{kind} {ident} not found", {"kind": kind, "id": str(ident)})


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details or {}))
    return JSONResponse(
        status_code=status_code,
        content=body.model_dump(),
        headers=dict(headers) if headers is not None else None,
    )


def _json_safe_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    safe: list[dict[str, Any]] = []
    for err in exc.errors():
        safe.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return safe


def _api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422,
        "invalid_request",
        "the request is not valid",
        {"errors": _json_safe_validation_errors(exc)},
    )


def _http_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


def _data_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.DataError)
    return error_response(
        422,
        "invalid_request",
        "a value in the request cannot be stored or compared (out of range or not text)",
    )


def _integrity_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.IntegrityError)
    constraint = exc.diag.constraint_name if exc.diag is not None else None
    return error_response(
        409,
        "conflict",
        "the request conflicts with existing data",
        {"constraint": constraint} if constraint else None,
    )


#: Seconds a client is told to wait before retrying while the database is unavailable.
RETRY_AFTER_S = 5


def _unavailable_page(method: str) -> str:
    """A browser's 503: a page that reloads itself, or, after a form, says to send it again
    (reloading would turn the form's POST into a GET)."""
    if method in ("GET", "HEAD"):
        refresh = f'<meta http-equiv="refresh" content="{RETRY_AFTER_S}">'
        advice = f"This page tries again in {RETRY_AFTER_S} seconds."
    else:
        refresh = ""
        advice = "What you just sent may not be saved: go back and send it again in a few seconds."
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"{refresh}<title>fleetcare: waiting for the database</title></head><body>"
        "<h1>Waiting for the database</h1><p>fleetcare cannot reach its database just now "
        f"(a restart, or a failover). {advice}</p></body></html>"
    )


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def _database_unavailable_handler(request: Request, exc: Exception) -> Response:
    """The database is down, restarting or unreachable (no connection within the pool's
    wait, or the connection broke): 503 and when to retry; a browser gets a page that
    reloads itself. The transaction did not commit, unless the connection broke during the
    commit itself; a retried command with the same ``Idempotency-Key`` is never queued
    twice."""
    assert isinstance(exc, psycopg.OperationalError)
    _log.warning("database unavailable for an API request: %s", str(exc).strip() or type(exc))
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if _wants_html(request):
        page = _unavailable_page(request.method)
        return HTMLResponse(page, status_code=503, headers=headers)
    return error_response(
        503, "unavailable", "the database is unavailable; retry shortly", headers=headers
    )


def _unexpected_handler(_: Request, exc: Exception) -> JSONResponse:
    _log.error("unhandled error in API request", exc_info=exc)
    return error_response(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the common error body."""
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(psycopg.DataError, _data_error_handler)
    app.add_exception_handler(psycopg.IntegrityError, _integrity_error_handler)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error body for these codes."""
    descriptions = {
        400: "bad request",
        401: "missing, invalid or revoked API key",
        403: "the key's role may not do this",
        404: "not found or outside the caller's scope",
        409: "conflicts with the current state",
        422: "invalid request (code invalid_request)",
    }
    return {
        code: {"model": ErrorBody, "description": descriptions.get(code, "error")}
        for code in status_codes
    }


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_DESCRIPTIONS = {
    400: "the body is not parseable (code bad_request)",
    401: "missing, invalid or revoked API key",
    403: "the key's role may not do this",
    422: "invalid request (code invalid_request)",
    503: "the database is unavailable (code unavailable); retry after `Retry-After` seconds",
}


def document_common_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the errors every operation can answer to an OpenAPI document, with our body.

    400 where there is a body, 401 and 403 where a key is required, 422 (replacing FastAPI's
    default validation schema, which is not what the API sends) where there are parameters or
    a body, and 503 everywhere (every operation needs the database). Responses an operation
    documents itself are kept.
    """
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        components["ErrorBody"] = ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["ErrorBody"].pop("$defs", {}))
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes: list[int] = []
            if "requestBody" in operation:
                codes.append(400)
            if operation.get("security"):
                codes += [401, 403]
            if "requestBody" in operation or operation.get("parameters"):
                codes.append(422)
            codes.append(503)
            responses = operation["responses"]
            for code in codes:
                current = responses.get(str(code))
                schema = (current or {}).get("content", {}).get("application/json", {})
                if current is None or schema.get("schema", {}).get("$ref", "").endswith(
                    "/HTTPValidationError"
                ):
                    responses[str(code)] = {
                        "description": _DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": dict(_ERROR_REF)}},
                    }
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(spec, f"#/components/schemas/{unused}", skip=unused):
            components.pop(unused, None)
    return spec


def _referenced(spec: dict[str, Any], ref: str, *, skip: str) -> bool:
    def walk(node: Any, key: str | None) -> bool:
        if key == skip:
            return False
        if isinstance(node, dict):
            return node.get("$ref") == ref or any(walk(v, k) for k, v in node.items())
        if isinstance(node, list):
            return any(walk(v, None) for v in node)
        return False

    return walk(spec, None)
