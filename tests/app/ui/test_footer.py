"""The page footer names the server's data folder only to an admin (login on) or to
someone on the machine itself (login off, page asked for as localhost); the page as built
(``/config``) never names it in the footer. The footer's load event is run over HTTP as the browser runs
it (``/gradio_api/queue/join`` + the event stream), with the Host a proxy would send."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import httpx
import pytest

from app.auth import hash_password
from app.services import Services, build_services
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


def _footer_event(server: LiveServer) -> int:
    blocks = server.app.state.blocks
    return next(i for i, fn in blocks.fns.items()
                if fn.fn is not None and fn.fn.__name__ == "localized_footer")


def _footer(server: LiveServer, host: str | None = None,
            cookies: dict[str, str] | None = None) -> str:
    """The footer text the load event gives this caller."""
    session = secrets.token_hex(8)
    headers = {"Host": host} if host else {}
    with httpx.Client(base_url=server.url, headers=headers, cookies=cookies or {},
                      timeout=60) as http:
        joined = http.post("/gradio_api/queue/join", json={
            "data": [], "fn_index": _footer_event(server), "session_hash": session,
            "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    assert message["success"], message
                    return str(message["output"]["data"][0])
    raise AssertionError("the footer event never completed")


@pytest.fixture
def open_studio(services: Services) -> Iterator[LiveServer]:
    with LiveServer(services, with_ui=True) as server:
        yield server


def _built_footer(server: LiveServer) -> str:
    components = httpx.get(server.url + "/config").json()["components"]
    return next(str(c["props"]["value"]) for c in components
                if "studio-footer" in (c["props"].get("elem_classes") or []))


def test_footer_without_login(open_studio: LiveServer, services: Services) -> None:
    data_dir = str(services.settings.data_dir.resolve())
    built = _built_footer(open_studio)
    assert services.version in built and data_dir not in built
    assert data_dir in _footer(open_studio)  # 127.0.0.1, as a desktop browser asks
    assert data_dir in _footer(open_studio, host=f"localhost:{open_studio.port}")
    public = _footer(open_studio, host="studio.example.com")  # behind a proxy, or a Space
    assert data_dir not in public and services.version in public


def _login(server: LiveServer, user: str, password: str) -> dict[str, str]:
    answer = httpx.post(server.url + "/login", data={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return dict(answer.cookies)


def test_footer_with_login(settings) -> None:
    users = ",".join(f"{name}:{hash_password(name + '-pw', iterations=1000)}"
                     for name in ("root", "alice"))
    services = build_services(settings.model_copy(update={
        "auth_users": users, "admin_users": ["root"]}))
    data_dir = str(services.settings.data_dir.resolve())
    with LiveServer(services, with_ui=True) as server:
        root = _footer(server, cookies=_login(server, "root", "root-pw"))
        alice = _footer(server, cookies=_login(server, "alice", "alice-pw"))
    services.close()
    assert data_dir in root
    assert data_dir not in alice and services.version in alice  # even on localhost
