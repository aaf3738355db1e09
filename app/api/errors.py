"""One place that turns errors into HTTP: the status comes from the error's ``kind``."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.envelope import error_body
from app.i18n import pick_language
from models.errors import StudioError

log = logging.getLogger("studio.api")

STATUS_BY_KIND = {
    "invalid": 400,
    "too_large": 413,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
    "auth": 401,
    "forbidden": 403,
    "insufficient_storage": 507,
}

HTTP_CODES = {
    400: "VALIDATION_ERROR", 401: "AUTH_REQUIRED", 403: "AUTH_FORBIDDEN",
    404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "VALIDATION_TOO_LARGE",
    415: "VALIDATION_UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED",
}


def studio_error_response(exc: StudioError, request: Request | None = None) -> JSONResponse:
    status = STATUS_BY_KIND.get(exc.kind, 500)
    lang = pick_language(request.headers.get("accept-language") if request else None)
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONResponse(
        error_body(exc.code, exc.localized(lang), exc.details, exc.retry_after),
        status_code=status, headers=headers,
    )


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fields = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        fields.append({
            "field": ".".join(p for p in loc if p not in ("body", "query", "path", "header"))
            or ".".join(loc),
            "location": loc[0] if loc else None,
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        })
    return fields


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StudioError)
    async def _studio(request: Request, exc: StudioError) -> JSONResponse:
        return studio_error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = pick_language(request.headers.get("accept-language"))
        fields = _field_errors(list(exc.errors()))
        bad_json = any(f["type"] == "json_invalid" for f in fields)
        if bad_json:
            message = ("リクエスト本文が正しい JSON ではありません。" if lang == "ja"
                       else "The request body is not valid JSON.")
        else:
            message = ("リクエストの内容が正しくありません。" if lang == "ja"
                       else "The request is not valid.")
        return JSONResponse(error_body("VALIDATION_ERROR", message, {"fields": fields}),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        given: object = exc.detail  # typed str, but a route may raise with any value
        detail = given if isinstance(given, str) else "error"
        return JSONResponse(error_body(code, detail), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return internal_error_response(request.headers.get("accept-language"))


def internal_error_response(accept_language: str | None) -> JSONResponse:
    """A 500 in the envelope: the request id to quote, never a traceback."""
    lang = pick_language(accept_language)
    message = ("サーバー内部でエラーが発生しました。request_id を添えてご連絡ください。"
               if lang == "ja" else
               "Internal server error. Quote the request_id when reporting it.")
    return JSONResponse(error_body("INTERNAL_ERROR", message), status_code=500)
