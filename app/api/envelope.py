"""The response envelope of DESIGN.md: every JSON answer has the same outer shape."""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

from app.config import SERVICE_NAME, VERSION
from app.logs import request_id_var


def scope_headers(scope: Any) -> dict[str, str]:
    """An ASGI scope's headers as a dict with lower-case names (the middlewares read them)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def metadata() -> dict[str, Any]:
    meta: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "service": SERVICE_NAME,
        "version": VERSION,
    }
    rid = request_id_var.get()
    if rid:
        meta["request_id"] = rid
    return meta


def ok(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "metadata": metadata()},
                        status_code=status_code, headers=headers)


def error_body(code: str, message: str, details: Any = None,
               retry_after: float | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "details": details or {}}
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"success": False, "error": error, "metadata": metadata()}
