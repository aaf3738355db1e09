"""Authentication at the edge: who is calling each request, as one pure ASGI middleware.

With ``STUDIO_JWT_SECRET`` unset (the localhost default) everyone is the anonymous owner of
everything. With it set, ``/api/*`` needs a bearer JWT or an ``X-Service-Token``;
``/files/*`` needs a signed link (or an admin); ``/metrics`` needs ``STUDIO_METRICS_TOKEN``
when that is set. ``/health``, the docs and the UI shell stay public (the UI has its own
login).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.envelope import error_body, scope_headers
from app.auth import (
    ANONYMOUS,
    AuthError,
    Principal,
    verify_file_signature,
    verify_service_token,
    verify_token,
)
from app.config import Settings
from app.i18n import pick_language


def principal(request: Request) -> Principal:
    """The caller of this request (anonymous admin when authentication is off)."""
    return getattr(request.state, "principal", ANONYMOUS)


def owner_of(request: Request) -> str | None:
    """The owner to stamp on new records: the user id, or None when auth is off."""
    p = principal(request)
    return None if p.kind == "anonymous" else p.user_id


def visibility(request: Request) -> Callable[[str | None], bool] | None:
    """The record filter for this caller: None (sees everything: admins, service tokens,
    auth off) or a check ``owner -> bool`` that passes only the caller's own records."""
    p = principal(request)
    return None if p.is_admin else p.owns


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = scope_headers(scope)
        try:
            who = self._identify(path, headers, scope)
        except AuthError as exc:
            lang = pick_language(headers.get("accept-language"))
            response = JSONResponse(error_body(exc.code, exc.localized(lang)), status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = who
        scope["state"]["user_id"] = None if who.kind == "anonymous" else who.user_id
        await self.app(scope, receive, send)

    def _bearer(self, headers: dict[str, str]) -> str | None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _identify(self, path: str, headers: dict[str, str], scope: Scope) -> Principal:
        s = self.settings
        if path == "/metrics" and s.metrics_token:
            token = self._bearer(headers) or ""
            if not hmac.compare_digest(token, s.metrics_token):
                raise AuthError("/metrics needs its token.", code="AUTH_REQUIRED",
                                message_ja="/metrics にはトークンが必要です。")
            return ANONYMOUS
        if not s.jwt_secret:
            return ANONYMOUS
        protected_api = path.startswith("/api/")
        if path.startswith("/files/"):
            query = _query(scope)
            key = path[len("/files/"):]
            if verify_file_signature(s.jwt_secret, key, query.get("exp"), query.get("sig")):
                return ANONYMOUS
            who = self._from_headers(headers, required=True)
            if not who.is_admin:
                raise AuthError("This file link is missing, expired or not yours.",
                                code="AUTH_FILE_LINK_INVALID",
                                message_ja="ファイルのリンクが無効か期限切れです。")
            return who
        if not protected_api:
            return ANONYMOUS
        return self._from_headers(headers, required=True)

    def _from_headers(self, headers: dict[str, str], required: bool) -> Principal:
        s = self.settings
        service = headers.get("x-service-token")
        if service:
            if not s.service_secret:
                raise AuthError("Service tokens are not enabled.",
                                code="AUTH_SERVICE_TOKEN_INVALID",
                                message_ja="サービストークンは無効化されています。")
            return verify_service_token(s.service_secret, service)
        token = self._bearer(headers)
        if token is None:
            raise AuthError("Authentication required: send 'Authorization: Bearer <token>'.",
                            code="AUTH_REQUIRED",
                            message_ja="認証が必要です（Authorization: Bearer <token>）。")
        assert s.jwt_secret
        return verify_token(s.jwt_secret, token)


def _query(scope: Scope) -> dict[str, Any]:
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw).items()}
