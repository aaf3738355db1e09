"""Sessions of the Gradio door that end, and files that belong to whoever made them.

Gradio keeps its logins in ``App.tokens``, a dict from a session cookie to a user name that
lives until logout or restart, and serves every file in its upload and cache folders
(``/gradio_api/file=...``) to any logged-in user. Here:

* :class:`SessionTokens` replaces that dict with one whose entries have a deadline: a login
  with an API token ends when the token expires, a password login after
  ``STUDIO_UI_SESSION_MINUTES``. An expired session reads as "not logged in" everywhere
  Gradio asks (page, upload, queue, file), so the next call is refused with 401. Gradio's own
  ``/logout`` removes the user's sessions from it.
* :class:`FileOwners` records who each served file belongs to: outputs of a signed-in user's
  call and their uploads are theirs; files put in the page when it was built are everyone's.
  :class:`GradioFileGuard` (an ASGI middleware in front of the mounted Gradio app) answers 403
  to a user asking for a file that is not theirs, and :func:`foreign_inputs` lets the UI
  refuse a call that names another user's file as an input. Admins see everything.

Both hold state in this process, as Gradio's logins do: a restart signs everyone out and
forgets whose files were whose, so old file links are refused rather than shown to anyone.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

import gradio as gr
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from gradio.utils import abspath
from pydantic import BaseModel
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.envelope import error_body, scope_headers
from app.i18n import pick_language

FILE_PREFIXES = ("/gradio_api/file=", "/gradio_api/file/")
UPLOAD_PATH = "/gradio_api/upload"
PUBLIC = ""  # the owner recorded for files every signed-in user may read


class SessionTokens(MutableMapping[str, str]):
    """Gradio's ``token -> user name`` map, each session with a deadline (unix time); an
    expired session reads as absent.

    The login callable announces the deadline of the session it is about to accept
    (:meth:`expect`); Gradio stores the session right after the callable returns, in the same
    thread and with no await between, and :meth:`__setitem__` takes that deadline. A session
    stored without one gets the default lifetime."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._users: dict[str, str] = {}
        self._deadlines: dict[str, float] = {}
        self._pending: tuple[str, float] | None = None
        self._lock = threading.RLock()

    def expect(self, user: str, deadline: float | None) -> None:
        """The next session stored for ``user`` ends at ``deadline`` (or sooner: the default
        lifetime caps it)."""
        cap = self.clock() + self.lifetime_s
        self._pending = (user, cap if deadline is None else min(deadline, cap))

    def __setitem__(self, token: str, user: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            now = self.clock()
            deadline = pending[1] if pending and pending[0] == user else now + self.lifetime_s
            for old in [t for t, d in self._deadlines.items() if d <= now]:
                self._drop(old)  # expired sessions do not pile up
            self._users[token] = user
            self._deadlines[token] = deadline

    def __getitem__(self, token: str) -> str:
        with self._lock:
            if self._deadlines.get(token, float("inf")) <= self.clock():
                self._drop(token)
            return self._users[token]

    def __delitem__(self, token: str) -> None:
        with self._lock:
            del self._users[token]
            self._deadlines.pop(token, None)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            now = self.clock()
            return iter([t for t in self._users if self._deadlines.get(t, now + 1) > now])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def _drop(self, token: str) -> None:
        self._users.pop(token, None)
        self._deadlines.pop(token, None)


class FileOwners:
    """Which users may read each file the Gradio door serves (by absolute path)."""

    def __init__(self, max_files: int = 200_000) -> None:
        self.max_files = max_files
        self._owners: OrderedDict[str, set[str]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(path: str) -> str:
        return str(abspath(path))  # how Gradio's file route resolves the path it is asked for

    def add(self, path: str, user: str | None) -> None:
        """``user`` may read ``path`` (None: every signed-in user may)."""
        key = self.key(path)
        with self._lock:
            owners = self._owners.setdefault(key, set())
            owners.add(PUBLIC if user is None else user)
            self._owners.move_to_end(key)
            while len(self._owners) > self.max_files:
                self._owners.popitem(last=False)  # the oldest: its link is refused from now on

    def may_read(self, path: str, user: str) -> bool:
        with self._lock:
            owners = self._owners.get(self.key(path))
        return owners is not None and (PUBLIC in owners or user in owners)


def file_paths(value: Any) -> Iterator[str]:
    """Every Gradio ``FileData`` path in a component value (nested lists and dicts too)."""
    if isinstance(value, dict):
        path, meta = value.get("path"), value.get("meta")
        if isinstance(path, str) and path and isinstance(meta, dict) \
                and meta.get("_type") == "gradio.FileData" and "://" not in path:
            yield path
        for item in value.values():
            if isinstance(item, (dict, list, tuple)):
                yield from file_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from file_paths(item)
    elif isinstance(value, BaseModel):
        yield from file_paths(value.model_dump())


def foreign_inputs(owners: FileOwners, user: str | None, inputs: Any) -> list[str]:
    """The input files of a call that are not ``user``'s to use (none for no user: the
    login then refuses the call anyway)."""
    if user is None:
        return []
    return [p for p in file_paths(inputs)
            if not p.startswith(("http://", "https://")) and not owners.may_read(p, user)]


class GradioFileGuard:
    """In front of the mounted Gradio app: a signed-in user reads only their own files (and
    the page's), an admin every file; each upload is recorded as its uploader's."""

    def __init__(self, app: ASGIApp, owners: FileOwners, sessions: Callable[[], Any],
                 cookie_id: Callable[[], str], is_admin: Callable[[str], bool]) -> None:
        self.app = app
        self.owners = owners
        self.sessions = sessions
        self.cookie_id = cookie_id
        self.is_admin = is_admin

    def user_of(self, scope: Scope) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(scope_headers(scope).get("cookie", ""))
        except Exception:  # a malformed cookie header: nobody
            return None
        name = self.cookie_id()
        for key in (f"access-token-{name}", f"access-token-unsecure-{name}"):
            if key in jar:
                user = self.sessions().get(jar[key].value)
                if isinstance(user, str):
                    return user
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith(FILE_PREFIXES):
            await self._file(scope, receive, send, path)
        elif path.rstrip("/") == UPLOAD_PATH and scope.get("method") == "POST":
            await self._upload(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _file(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        user = self.user_of(scope)
        asked = path.split("=", 1)[1] if path.startswith(FILE_PREFIXES[0]) \
            else path[len(FILE_PREFIXES[1]):]
        if user is None or self.is_admin(user) or asked.startswith(("http://", "https://")) \
                or self.owners.may_read(asked, user):
            await self.app(scope, receive, send)  # Gradio's own checks (login, folders) follow
            return
        lang = pick_language(scope_headers(scope).get("accept-language"))
        message = ("このファイルはあなたのものではありません。" if lang == "ja"
                   else "This file is not yours.")
        response = JSONResponse(error_body("AUTH_FORBIDDEN", message), status_code=403)
        await response(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = self.user_of(scope)
        if user is None:
            await self.app(scope, receive, send)
            return
        status = 0
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status == 200:
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    self._record_upload(b"".join(body), user)
            await send(message)

        await self.app(scope, receive, capture)

    def _record_upload(self, raw: bytes, user: str) -> None:
        try:
            paths = json.loads(raw)
        except ValueError:
            return
        if isinstance(paths, list):
            for path in paths:
                if isinstance(path, str):
                    self.owners.add(path, user)


class GuardedFiles:
    """What :func:`guard` fills on a Blocks that checks file ownership (``StudioBlocks`` in
    :mod:`app.ui.uploads`): defined here so that guarding needs no import of the uploads
    module, which imports this one."""

    file_owners: FileOwners | None = None
    file_admin: Callable[[str], bool] = staticmethod(lambda user: False)


def guard(app: FastAPI, blocks: gr.Blocks, tokens: SessionTokens,
          is_admin: Callable[[str], bool]) -> FileOwners:
    """Put sessions that end and files that belong to their owner on the Gradio app mounted
    on ``app`` (called right after ``gr.mount_gradio_app``, before the app serves)."""
    from gradio.routes import App

    mounted = [r.app for r in app.routes if isinstance(r, Mount) and isinstance(r.app, App)]
    if len(mounted) != 1:
        raise RuntimeError("expected one mounted Gradio app")
    gradio_app = mounted[0]
    # replaces Gradio's plain dict of sessions that never end (it reads it as a mapping)
    gradio_app.tokens = tokens  # type: ignore[assignment]
    owners = FileOwners()
    for path in file_paths(blocks.get_config_file()):
        owners.add(path, None)  # what the page was built with: everyone's
    if isinstance(blocks, GuardedFiles):
        blocks.file_owners, blocks.file_admin = owners, is_admin
    app.add_middleware(GradioFileGuard, owners=owners, sessions=lambda: gradio_app.tokens,
                       cookie_id=lambda: gradio_app.cookie_id, is_admin=is_admin)
    return owners
