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
from typing import Any

from app.fetch import is_private_key
from app.services import Services

OwnerCheck = Callable[[str | None], bool]
RECENT_PER_USER = 50
_lock = threading.Lock()


def login_on(services: Services) -> bool:
    """Whether the UI (and so the Gradio API) needs a login: any authentication configured."""
    s = services.settings
    return bool(s.jwt_secret or s.auth_users or s.auth_users_file)


def is_ui_admin(services: Services, request: Any) -> bool:
    """A user named in ``STUDIO_ADMIN_USERS``, or one who logged in with an admin token;
    with no admins named, also every UI password user (the Jobs tab's documented default),
    but not a plain token holder."""
    user = ui_user(request)
    if user is None:
        return False
    named = set(services.settings.admin_users)
    if user in named or user in services.ui.token_admins:
        return True
    return not named and user in services.ui.password_users


def ui_user(request: Any) -> str | None:
    """The signed-in user name (None with the login off)."""
    return getattr(request, "username", None) if request is not None else None


def ui_owner(services: Services, request: Any) -> str | None:
    """The owner to stamp on what this user makes (None with the login off)."""
    return ui_user(request) if login_on(services) else None


def ui_visibility(services: Services, request: Any) -> OwnerCheck | None:
    """None (sees everything) or a check that passes only this user's records."""
    if not login_on(services):
        return None
    user = ui_user(request)
    if user is not None and (user in set(services.settings.admin_users)
                             or user in services.ui.token_admins):
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


def remember(services: Services, request: Any, key: str) -> None:
    """Note an output this user (or browser session) made: "use latest" offers only these."""
    user = _maker(request)
    if user is None:
        return
    with _lock:
        recent = services.ui.recent
        recent.setdefault(user, deque(maxlen=RECENT_PER_USER)).append(key)


def latest_key(services: Services, request: Any, prefixes: tuple[str, ...],
               extensions: tuple[str, ...]) -> str | None:
    """The newest stored key under ``prefixes`` this user may take: one they (with the login
    off: this browser session) made in this process; the newest in storage only for a call
    with no session at all. Never a voice profile's private recording."""
    def fits(key: str) -> bool:
        return (key.startswith(prefixes) and key.rsplit(".", 1)[-1] in extensions
                and not is_private_key(key))

    user = ui_user(request) if login_on(services) else _maker(request)
    if login_on(services) or user is not None:
        with _lock:
            mine = list(services.ui.recent.get(user, ())) if user is not None else []
        for key in reversed(mine):
            if fits(key) and services.storage.exists(key):
                return key
        return None
    newest = None
    for prefix in prefixes:
        for item in services.storage.list(prefix):
            if fits(item.key) and (newest is None or item.modified > newest.modified):
                newest = item
    return newest.key if newest else None
