"""Request body caps (enforced while the body streams in, before it is all read) and
per-client rate limits on the expensive routes, as one pure ASGI middleware."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.envelope import error_body, scope_headers
from app.i18n import pick_language

EXPENSIVE_ROUTES: tuple[str, ...] = (
    "/api/voice/synthesize", "/api/voice/profiles", "/api/image/process", "/api/image/detect",
    "/api/prosody/adjust", "/api/bgm/mix", "/api/bgm/tracks", "/api/video/generate",
    "/login",  # the Gradio login: a password check costs a PBKDF2 run
)


def rate_limited_message(retry: int, lang: str) -> str:
    """The refusal both doors give (REST's 429 body, the Gradio API's error)."""
    return (f"リクエストが多すぎます。{retry} 秒後に再試行してください。" if lang == "ja"
            else f"Too many requests. Try again in {retry} s.")


class RateLimiter:
    """A sliding one-minute window per client."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> float | None:
        """None when allowed (and counted); else seconds until the next request may pass."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits[client]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return self.window - (now - hits[0])
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                for key in [k for k, v in self._hits.items() if not v]:
                    del self._hits[key]
            return None


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, limiter: RateLimiter,
                 expensive: Iterable[str] = EXPENSIVE_ROUTES) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.limiter = limiter
        self.expensive = tuple(expensive)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        lang = pick_language(headers.get("accept-language"))
        path = scope.get("path", "")
        if scope.get("method") == "POST" and path.startswith(self.expensive):
            client = scope.get("state", {}).get("user_id") or (scope.get("client") or ("?",))[0]
            wait = self.limiter.check(str(client))
            if wait is not None:
                retry = max(1, math.ceil(wait))
                message = rate_limited_message(retry, lang)
                response = JSONResponse(
                    error_body("RATE_LIMITED", message,
                               {"limit_per_minute": self.limiter.per_minute}, retry),
                    status_code=429, headers={"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(scope, receive, send, lang)
            return
        received = 0
        state = {"started": False, "refused": False}

        async def counting_receive() -> Message:
            nonlocal received
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body and not state["started"]:
                    # Answer now and tell the app the client went away: it stops reading.
                    state["refused"] = True
                    await self._too_large(scope, receive, send, lang)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # we already answered 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, lang: str) -> None:
        mb = self.max_body / 2**20
        message = (f"リクエスト本文が大きすぎます（上限 {mb:.0f} MB）。" if lang == "ja"
                   else f"The request body is too large (limit {mb:.0f} MB).")
        response = JSONResponse(error_body("VALIDATION_TOO_LARGE", message,
                                           {"max_bytes": self.max_body}), status_code=413,
                                headers={"Connection": "close"})
        await response(scope, receive, send)
