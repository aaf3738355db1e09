"""The Gradio door's guard: who may log in, which events are API endpoints, and the
per-client rate limit of the expensive ones.

The studio has two doors for scripts, REST (``/api/*``) and the Gradio API
(``gradio_client``). Both take the same credentials and the same limits:

* **Login.** Whenever any authentication is configured (``STUDIO_JWT_SECRET`` or
  ``STUDIO_AUTH_USERS``/``_FILE``) the Gradio app is mounted with a login, so Gradio itself
  refuses every page, upload, file and queue call of an anonymous caller (its
  ``login_check``). The login accepts a UI user's password, or, with ``STUDIO_JWT_SECRET``
  set, the caller's REST bearer token as the password with the token's ``user_id`` as the
  user name: ``Client(url, auth=("alice", token))``. Either way the session's user name is
  the owner stamped on what it makes, the same name REST stamps from the token, so ownership
  holds across doors.
* **Endpoints.** Only :data:`DOCUMENTED_ENDPOINTS` are public; every other event (page
  loads, pickers, callable component values) is made private after the tabs are built, so a
  new internal event cannot become an API endpoint by accident.
* **Limits.** The expensive endpoints draw on the REST rate limiter (one budget per user, or
  per address when anonymous), and refuse with "try again in N s" as a ``gr.Error``, which
  ``gradio_client`` raises as an ``AppError`` with that message.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Protocol

import gradio as gr
from gradio.context import LocalContext

from app.api.limits import RateLimiter, rate_limited_message
from app.auth import AuthError, check_password, load_users, token_expires_at, verify_token
from app.ui.owners import UiState, login_on
from app.ui.sessions import SessionTokens
from app.ui.text import request_language

DOCUMENTED_ENDPOINTS: tuple[str, ...] = (
    "/generate_message", "/synthesize", "/create_profile", "/list_profiles",
    "/delete_profile", "/detect_people", "/cutout", "/adjust_prosody", "/mix_bgm",
    "/list_tracks", "/generate_video",
)
EXPENSIVE_ENDPOINTS: frozenset[str] = frozenset({
    "/generate_message", "/synthesize", "/create_profile", "/detect_people", "/cutout",
    "/adjust_prosody", "/mix_bgm", "/generate_video",
})
AUTH_MESSAGE = ("Sign in with your studio user name and password, or with your user id and "
                "API token (the REST bearer token) as the password. / "
                "ユーザー名とパスワード、またはユーザー ID と API トークンでログインしてください。")


def auth_configured(state: UiState) -> bool:
    """Any authentication configured: the UI needs a login (:func:`login_on`)."""
    return login_on(state)


def make_login(services: UiState, sessions: SessionTokens | None = None
               ) -> Callable[[str, str], bool] | None:
    """Gradio's ``auth`` callable, or None when no authentication is configured. With
    ``sessions`` (Gradio's session map, :class:`app.ui.sessions.SessionTokens`) each accepted
    login says when its session ends: a token's expiry, or the password session lifetime."""
    if not auth_configured(services):
        return None
    settings = services.settings
    users = load_users(settings.auth_users, settings.auth_users_file)
    admins = services.ui.token_admins
    services.ui.password_users = frozenset(users)

    def login(username: str, password: str) -> bool:
        stored = users.get(username)
        if stored is not None and check_password(password, stored):
            if sessions is not None:
                sessions.expect(username, None)
            return True
        if not settings.jwt_secret or password.count(".") != 2:
            return False
        try:
            who = verify_token(settings.jwt_secret, password)
        except AuthError:
            return False
        if who.user_id != username:
            return False
        if who.is_admin:
            admins.add(username)
        else:
            admins.discard(username)  # an admin token once is not admin for good
        if sessions is not None:
            sessions.expect(username, token_expires_at(password))
        return True

    return login


def close_internal_events(blocks: gr.Blocks) -> list[str]:
    """Make every event that is not a documented endpoint private; returns the public set."""
    public = []
    for fn in blocks.fns.values():
        name = f"/{fn.api_name}" if fn.api_name else None
        if name in DOCUMENTED_ENDPOINTS:
            public.append(name)
        else:
            fn.api_visibility = "private"
    return sorted(public)


def limit_expensive_events(blocks: gr.Blocks, limiter: RateLimiter) -> None:
    """Wrap each expensive endpoint's function with the shared per-client rate limit."""
    for fn in blocks.fns.values():
        if fn.fn is not None and f"/{fn.api_name}" in EXPENSIVE_ENDPOINTS:
            fn.fn = _limited(fn.fn, limiter)


def client_key(request: Any) -> str:
    """The budget a call draws on: the signed-in user (as REST keys by user id), else the
    caller's address."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return str(user)
    client = getattr(request, "client", None) if request is not None else None
    return str(getattr(client, "host", None) or "?")


def _limited(fn: Callable[..., Any], limiter: RateLimiter) -> Callable[..., Any]:
    @functools.wraps(fn)  # Gradio reads the wrapped signature to inject request/progress
    def guarded(*args: Any, **kwargs: Any) -> Any:
        request = LocalContext.request.get(None)
        wait = limiter.check(client_key(request))
        if wait is not None:
            raise gr.Error(rate_limited_message(max(1, math.ceil(wait)),
                                                request_language(request)),
                           title="RATE_LIMITED")
        return fn(*args, **kwargs)

    return guarded


class Limited(Protocol):
    """What :func:`install` reads: the limiter both doors share."""

    @property
    def rate_limiter(self) -> RateLimiter: ...


def install(blocks: gr.Blocks, services: Limited) -> None:
    """Close internal events and put the rate limit on the expensive endpoints."""
    close_internal_events(blocks)
    limit_expensive_events(blocks, services.rate_limiter)
