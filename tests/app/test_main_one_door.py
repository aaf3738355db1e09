"""The two doors' shared rules, fast (the gradio_client probe from another process is
``tests/security/test_gradio_door.py``): the Gradio login takes a UI password or the REST
token, REST takes the UI users' passwords when they are the only credentials, the Gradio
API lists exactly the documented endpoints, and its expensive ones share REST's limiter."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from gradio.context import LocalContext

from app.api.limits import RateLimiter
from app.auth import hash_password, issue_token
from app.main import create_app
from app.services import build_services
from app.ui import build_blocks, gate
from app.ui.owners import is_ui_admin, login_on, ui_visibility
from app.ui.text import plain

SECRET = "d" * 40
STORED = hash_password("pw-alice", iterations=1000)


def _services(settings, **update):
    return build_services(settings.model_copy(update=update))


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_no_login_without_authentication(services) -> None:
    assert gate.make_login(services) is None
    assert not login_on(services)


def test_login_takes_password_or_the_callers_own_token(settings) -> None:
    services = _services(settings, jwt_secret=SECRET, auth_users=f"alice:{STORED}")
    try:
        login = gate.make_login(services)
        assert login is not None and login_on(services)
        assert login("alice", "pw-alice")
        assert not login("alice", "pw-wrong")
        assert login("bob", issue_token(SECRET, "bob"))
        assert not login("carol", issue_token(SECRET, "bob"))  # someone else's token
        assert not login("bob", issue_token("x" * 40, "bob"))  # forged
        assert not login("bob", issue_token(SECRET, "bob", ttl=-10))  # expired
        assert not is_ui_admin(services, SimpleNamespace(username=None))
        assert is_ui_admin(services, SimpleNamespace(username="alice"))  # no admins named
        assert not is_ui_admin(services, SimpleNamespace(username="bob"))  # a plain token
        # an admin token makes its user an admin of the UI too
        assert ui_visibility(services, SimpleNamespace(username="root")) is not None
        assert login("root", issue_token(SECRET, "root", roles=["user", "admin"]))
        assert ui_visibility(services, SimpleNamespace(username="root")) is None
        assert is_ui_admin(services, SimpleNamespace(username="root"))
        assert ui_visibility(services, SimpleNamespace(username="bob")) is not None
    finally:
        services.close()


def test_jwt_only_login_refuses_passwords(settings) -> None:
    services = _services(settings, jwt_secret=SECRET)
    try:
        login = gate.make_login(services)
        assert login is not None
        assert not login("alice", "pw-alice")
        assert login("alice", issue_token(SECRET, "alice"))
    finally:
        services.close()


def test_rest_takes_ui_passwords_when_they_are_the_only_credentials(settings) -> None:
    services = _services(settings, auth_users=f"alice:{STORED}", admin_users=["alice"])
    try:
        with TestClient(create_app(services, with_ui=False)) as client:
            anonymous = client.get("/api/jobs")
            assert anonymous.status_code == 401
            assert anonymous.json()["error"]["code"] == "AUTH_REQUIRED"
            assert "Basic" in anonymous.json()["error"]["message"]
            assert "Basic" in anonymous.headers["www-authenticate"]
            for _ in range(2):  # the second answer comes from the remembered check
                assert client.get("/api/jobs", headers=_basic("alice", "pw-alice")) \
                    .status_code == 200
            wrong = client.get("/api/jobs", headers=_basic("alice", "nope"))
            assert wrong.status_code == 401
            assert wrong.json()["error"]["code"] == "AUTH_INVALID_PASSWORD"
            garbled = client.get("/api/jobs", headers={"Authorization": "Basic %%%"})
            assert garbled.status_code == 401
            no_jwt = client.get("/api/jobs", headers={
                "Authorization": f"Bearer {issue_token(SECRET, 'alice')}"})
            assert no_jwt.status_code == 401  # tokens are not enabled here
            assert client.get("/health").status_code == 200
    finally:
        services.close()


def test_only_documented_endpoints_are_public(services) -> None:
    blocks = build_blocks(services)
    assert gate.close_internal_events(blocks) == sorted(gate.DOCUMENTED_ENDPOINTS)
    named = blocks.get_api_info()["named_endpoints"]
    assert sorted(named) == sorted(gate.DOCUMENTED_ENDPOINTS)
    assert gate.EXPENSIVE_ENDPOINTS < set(gate.DOCUMENTED_ENDPOINTS)


def test_expensive_endpoints_draw_on_the_shared_limiter(services) -> None:
    blocks = build_blocks(services)
    limiter = RateLimiter(2)
    services.rate_limiter = limiter
    gate.install(blocks, services)
    fn = next(f for f in blocks.fns.values() if f.api_name == "list_tracks").fn
    for _ in range(5):
        fn()  # cheap endpoints are not limited
    limited = next(f for f in blocks.fns.values() if f.api_name == "synthesize").fn
    limiter.check("127.0.0.1")
    limiter.check("127.0.0.1")  # REST used the budget of this address up
    caller = SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"),
                             headers={"accept-language": "ja"})
    token = LocalContext.request.set(caller)  # as Gradio sets it around an event
    try:
        with pytest.raises(gr.Error) as info:
            limited("こんにちは", "", "ja", 1.0, 0.0, 1.0, 1.0, 1.0)
    finally:
        LocalContext.request.reset(token)
    assert "秒後に再試行" in str(info.value)
    assert gate.client_key(SimpleNamespace(username="alice")) == "alice"


def _gradio_call(fn, host: str, *args):
    """Call a Gradio event function as Gradio does for a request from ``host``."""
    caller = SimpleNamespace(username=None, client=SimpleNamespace(host=host),
                             headers={"accept-language": "en"})
    token = LocalContext.request.set(caller)
    try:
        return fn(*args)
    finally:
        LocalContext.request.reset(token)


def test_one_limiter_for_both_doors(settings) -> None:
    """The app as served (REST and the Gradio API mounted together) counts one budget per
    client across both doors: requests through one door use up what the other allows. Two
    limiters (one per door) would let each client twice the limit."""
    services = _services(settings, rate_limit_per_minute=2)
    try:
        app = create_app(services, with_ui=True)
        synthesize = next(f for f in app.state.blocks.fns.values()
                          if f.api_name == "synthesize").fn
        # an unknown voice is refused at once: the call costs a request, not a synthesis
        args = ("hello", "no_such_voice", "en", 1.0, 0.0, 1.0, 1.0, 1.0)

        def gradio_answer(host: str) -> str:
            with pytest.raises(gr.Error) as info:
                _gradio_call(synthesize, host, *args)
            return str(info.value.title)

        # REST first: two expensive requests spend the budget of "testclient" ...
        with TestClient(app, raise_server_exceptions=False) as rest:
            answers = [rest.post("/api/bgm/mix", json={}).status_code for _ in range(2)]
            assert 429 not in answers, answers
            assert rest.post("/api/bgm/mix", json={}).status_code == 429
        # ... and the Gradio door refuses that client too
        assert gradio_answer("testclient") == "RATE_LIMITED"
        # Gradio first: another client spends its budget on Gradio calls (each refused for
        # the unknown voice, each counted) ...
        assert [gradio_answer("10.1.2.3") for _ in range(2)] == [
            plain("error.title", "en")] * 2
        assert gradio_answer("10.1.2.3") == "RATE_LIMITED"
        # ... and REST refuses that client at once, in the envelope
        with TestClient(app, raise_server_exceptions=False, client=("10.1.2.3", 5)) as rest:
            refused = rest.post("/api/bgm/mix", json={})
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "RATE_LIMITED"
            assert refused.json()["error"]["details"]["limit_per_minute"] == 2
    finally:
        services.close()
