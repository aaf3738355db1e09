"""Request id, timing headers, access log and metrics, as one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so Gradio's streaming responses pass through untouched
and the request id's context variable is visible to every log line of the request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.envelope import scope_headers
from app.api.errors import internal_error_response
from app.config import SERVICE_NAME, VERSION
from app.logs import request_id_var
from app.metrics import Metrics

log = logging.getLogger("studio.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    raw = scope.get("path", "")
    if raw.startswith("/files/"):
        return "/files/{key}"
    if raw.startswith("/api/"):
        return "/api/unmatched"
    return "/ui"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                elapsed = (time.perf_counter() - started) * 1000
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-service-name", SERVICE_NAME.encode()),
                    (b"x-service-version", VERSION.encode()),
                    (b"x-response-time", f"{elapsed:.1f}ms".encode()),
                ]
                existing = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in existing]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Answer here, inside the request's context, so the 500 carries the request id
            # and its headers; Starlette's outer handler would answer without them.
            if "started" in status_holder:
                raise
            log.exception("unhandled error", extra={"path": scope.get("path"),
                                                     "request_id": request_id})
            response = internal_error_response(headers.get("accept-language"))
            await response(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            route = route_label(scope)
            method = scope.get("method", "GET")
            status = status_holder["status"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(duration)
            if route != "/ui" or status >= 400:
                log.info("%s %s %s", method, scope.get("path"), status,
                         extra={"duration_ms": round(duration * 1000, 1), "status": status,
                                "route": route, "request_id": request_id})
            request_id_var.reset(token)
