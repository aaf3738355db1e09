"""Who is using the UI, and what they may see, when the Gradio login is on.

With the login off (no ``STUDIO_JWT_SECRET``, no ``STUDIO_AUTH_USERS``) the UI is one
person's studio: everything is visible. With it on, a user sees their own voice profiles, uploaded music and recent outputs;
the users named in ``STUDIO_ADMIN_USERS`` see everything. A request-less call while the login
is on (the page being built) sees nothing of anyone's.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.config import Settings
from app.fetch import is_private_key
from app.services import UiSessions
from app.storage import Storage

OwnerCheck = Callable[[str | None], bool]
RECENT_PER_USER = 50
_lock = threading.Lock()


class UiState(Protocol):
    """What the owner checks read: the login settings and what the login learned about its
    users (a tab gets a :class:`UiAccess`, never the whole app)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ui(self) -> UiSessions: ...


@dataclass(frozen=True)
class UiAccess:
    """The UI session state a tab is handed: the settings the login reads and the sessions
    it fills in (shared by reference, so a sign-in is seen at once)."""

    settings: Settings
    ui: UiSessions


def login_on(state: UiState) -> bool:
    """Whether the UI (and so the Gradio API) needs a login: any authentication configured."""
    s = state.settings
    return bool(s.jwt_secret or s.auth_users or s.auth_users_file)


def is_ui_admin(state: UiState, request: Any) -> bool:
    """A user named in ``STUDIO_ADMIN_USERS``, or one who logged in with an admin token;
    with no admins named, also every UI password user (the Jobs tab's documented default),
    but not a plain token holder."""
    user = ui_user(request)
    if user is None:
        return False
    named = set(state.settings.admin_users)
    if user in named or user in state.ui.token_admins:
        return True
    return not named and user in state.ui.password_users


def ui_user(request: Any) -> str | None:
    """The signed-in user name (None with the login off)."""
    return getattr(request, "username", None) if request is not None else None


def ui_owner(state: UiState, request: Any) -> str | None:
    """The owner to stamp on what this user makes (None with the login off)."""
    return ui_user(request) if login_on(state) else None


def ui_visibility(state: UiState, request: Any) -> OwnerCheck | None:
    """None (sees everything) or a check that passes only this user's records."""
    if not login_on(state):
        return None
    user = ui_user(request)
    if user is not None and (user in set(state.settings.admin_users)
                             or user in state.ui.token_admins):
        return None
    return lambda owner: user is not None and owner == user


def _maker(request: Any) -> str | None:
    """Whose outputs "use latest" offers: the signed-in user, else this browser session (with
    the login off another person's page must not hand over their voice)."""
    user = ui_user(request)
    if user is not None:
        return user
    session = getattr(request, "session_hash", None) if request is not None else None
    return f"session:{session}" if session else None


def remember(state: UiState, request: Any, key: str) -> None:
    """Note an output this user (or browser session) made: "use latest" offers only these."""
    user = _maker(request)
    if user is None:
        return
    with _lock:
        recent = state.ui.recent
        recent.setdefault(user, deque(maxlen=RECENT_PER_USER)).append(key)


def latest_key(storage: Storage, state: UiState, request: Any,
               prefixes: tuple[str, ...],
               extensions: tuple[str, ...]) -> str | None:
    """The newest stored key under ``prefixes`` this user may take: one they (with the login
    off: this browser session) made in this process; the newest in storage only for a call
    with no session at all. Never a voice profile's private recording."""
    def fits(key: str) -> bool:
        return (key.startswith(prefixes) and key.rsplit(".", 1)[-1] in extensions
                and not is_private_key(key))

    user = ui_user(request) if login_on(state) else _maker(request)
    if login_on(state) or user is not None:
        with _lock:
            mine = list(state.ui.recent.get(user, ())) if user is not None else []
        for key in reversed(mine):
            if fits(key) and storage.exists(key):
                return key
        return None
    newest = None
    for prefix in prefixes:
        for item in storage.list(prefix):
            if fits(item.key) and (newest is None or item.modified > newest.modified):
                newest = item
    return newest.key if newest else None
