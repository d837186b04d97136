"""Every API error is JSON: ``{"error": {"code": ..., "message": ..., "details": [...]}}``.

worldpool exceptions map to statuses here, in one place. Malformed JSON is a 400; a body
that parses but does not fit the model (unknown fields, wrong types) is a 422.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from worldpool.errors import (
    ArtifactError,
    BackendError,
    CancelledError,
    NotFoundError,
    ValidationError,
    WorldpoolError,
)

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a route to answer with a JSON error."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _map_worldpool(exc: WorldpoolError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, ValidationError):
        return 422, "validation_error"
    if isinstance(exc, CancelledError):
        return 409, "conflict"
    if isinstance(exc, ArtifactError):
        return 404, "artifact_unavailable"
    if isinstance(exc, BackendError):
        return 503, "backend_unavailable"
    return 500, "internal_error"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape above."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type"),
            }
            for e in errors
        ]
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(
                400, "malformed_json", "the request body is not valid JSON", details
            )
        first = details[0] if details else {"loc": [], "msg": "invalid input"}
        where = ".".join(p for p in first["loc"] if p != "body") or "body"
        return error_response(
            422, "validation_error", f"{where}: {first['msg']} (fix the field and resend)", details
        )

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    async def on_worldpool(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorldpoolError)
        status, code = _map_worldpool(exc)
        if status >= 500:
            log.warning("API request failed: %s", exc)
        return error_response(status, code, str(exc))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(WorldpoolError, on_worldpool)
