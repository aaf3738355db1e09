"""Authentication at the edge: who is calling each request, as one pure ASGI middleware.

With no authentication configured (the localhost default) everyone is the anonymous owner
of everything. With ``STUDIO_JWT_SECRET`` set, ``/api/*`` needs a bearer JWT or an
``X-Service-Token``, and ``/files/*`` needs a signed link (or an admin). With UI users
(``STUDIO_AUTH_USERS``/``_FILE``) ``/api/*`` is closed too and also takes those users'
passwords as HTTP Basic credentials, so turning on any authentication closes both doors
(the Gradio API's login is ``app.ui.gate``). ``/metrics`` needs ``STUDIO_METRICS_TOKEN``
when that is set. ``/health``, the docs and the UI shell stay public (the UI has its own
login).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
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
    check_password,
    load_users,
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


class PasswordCheck:
    """UI users' passwords for HTTP Basic on REST. A PBKDF2 check costs ~0.1 s of CPU, so a
    verified pair is remembered (by a digest, never the password) for five minutes."""

    TTL = 300.0

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._ok: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        stored = self.users.get(user)
        if stored is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0{stored}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            if self._ok.get(key, 0.0) > now:
                return True
        if not check_password(password, stored):
            return False
        with self._lock:
            if len(self._ok) > 1000:
                self._ok = {k: t for k, t in self._ok.items() if t > now}
            self._ok[key] = now + self.TTL
        return True


class AuthMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        users = (load_users(settings.auth_users, settings.auth_users_file)
                 if settings.auth_users or settings.auth_users_file else {})
        self.passwords = PasswordCheck(users) if users else None
        self.challenge = "Bearer" + (', Basic realm="studio"' if users else "")

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
                                    headers={"WWW-Authenticate": self.challenge})
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
        if not s.jwt_secret and self.passwords is None:
            return ANONYMOUS
        protected_api = path.startswith("/api/")
        if path.startswith("/files/") and s.jwt_secret:
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
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and self.passwords is not None:
            return self._basic(credentials.strip())
        token = self._bearer(headers)
        if token is None or not s.jwt_secret:
            how = " or ".join(([] if not s.jwt_secret else ["'Authorization: Bearer <token>'"])
                              + ([] if self.passwords is None
                                 else ["HTTP Basic with a studio user's password"]))
            raise AuthError(f"Authentication required: send {how}.", code="AUTH_REQUIRED",
                            message_ja=f"認証が必要です（{how}）。")
        return verify_token(s.jwt_secret, token)

    def _basic(self, credentials: str) -> Principal:
        assert self.passwords is not None
        try:
            user, sep, password = base64.b64decode(credentials, validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user, password = "", "", ""
        if not sep or not self.passwords(user, password):
            raise AuthError("The user name or password is wrong.", code="AUTH_INVALID_PASSWORD",
                            message_ja="ユーザー名またはパスワードが違います。")
        roles = ("user", "admin") if user in self.settings.admin_users else ("user",)
        return Principal(user, roles=roles)


def _query(scope: Scope) -> dict[str, Any]:
    from urllib.parse import parse_qs

    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[0] for k, v in parse_qs(raw).items()}
