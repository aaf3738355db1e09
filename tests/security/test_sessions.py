"""Sessions that end and files that belong to their owner, on the Gradio door, probed from
a separate process (``session_client.py``: gradio_client and httpx against a served studio).

* A login with an API token ends when the token expires: the next call is refused (401)
  and the expired token cannot log in again. A password login ends after
  ``STUDIO_UI_SESSION_MINUTES``; logging in again works. ``/logout`` ends a session at once.
* An output served at ``/gradio_api/file=...`` is readable by the user whose call made it and
  by admins only: another user gets 403 for its exact path, for a path built from their own
  answer (``<their folder>/../<alice's folder>/audio.wav``), through the old ``/file/`` route,
  and cannot name it as an input to their own call. Uploads are their uploader's alike."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth import hash_password, issue_token
from app.services import Services, build_services
from tests.conftest import LiveServer
from tests.security.conftest import SECRET, wav

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("session_client.py")

pytestmark = pytest.mark.slow


def _studio(settings, tmp_path: Path, **update: object) -> Services:
    return build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 1,
        "tts_backends": ["openjtalk"], "rate_limit_per_minute": 0, **update}))


def _run_client(plan: dict, tmp_path: Path, name: str) -> dict:
    plan_path, out = tmp_path / f"{name}.plan.json", tmp_path / f"{name}.out.json"
    plan_path.write_text(json.dumps(plan))
    run = subprocess.run([sys.executable, str(SCRIPT), str(plan_path), str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                              "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(out.read_text())


@pytest.fixture
def token_studio(settings, tmp_path: Path) -> Iterator[LiveServer]:
    services = _studio(settings, tmp_path, jwt_secret=SECRET)
    with LiveServer(services, with_ui=True) as server:
        yield server
    services.close()


def _refused(result: dict) -> str:
    assert not result["ok"], result
    return result["error"]


def test_outputs_are_their_makers(token_studio: LiveServer, tmp_path: Path) -> None:
    speech = tmp_path / "take.wav"
    speech.write_bytes(wav(1.0))
    seen = _run_client({
        "probe": "owners", "url": token_studio.url + "/", "speech": str(speech),
        "alice": issue_token(SECRET, "alice"), "bob": issue_token(SECRET, "bob"),
        "root": issue_token(SECRET, "root", roles=["user", "admin"])}, tmp_path, "owners")
    assert seen["alice_synthesizes"]["ok"] and seen["bob_synthesizes"]["ok"], seen
    assert seen["alice_path"] != seen["bob_path"]
    assert seen["fetch"] == {
        "alice_own": 200, "bob_alices": 403, "bob_own": 200, "bob_guessed_from_own": 403,
        "bob_doubled_slash": 403, "bob_old_route": 403, "admin_alices": 200,
        "anonymous_alices": 401}
    assert "event: error" in seen["bob_uses_alices_file"]
    assert "AUTH_FORBIDDEN" in seen["bob_uses_alices_file"]
    assert seen["upload"] == {"bob_own": 200, "alice_bobs": 403, "admin_bobs": 200}
    assert "AUTH_FORBIDDEN" in seen["alice_uses_bobs_upload"]
    assert "event: complete" in seen["bob_uses_own_upload"], seen["bob_uses_own_upload"]
    # logout ends the session: no call, no file, not even the login check
    assert seen["logout"] in (200, 302, 307)
    after = seen["after_logout"]
    assert after["login_check"] == 401 and after["own_file"] == 401
    assert "401" in _refused(after["call"])


def test_token_session_ends_with_its_token(token_studio: LiveServer, tmp_path: Path) -> None:
    lasts = 12
    token = issue_token(SECRET, "alice", ttl=lasts)
    ends = time.time() + lasts
    seen = _run_client({"probe": "expiry", "url": token_studio.url + "/", "user": "alice",
                        "password": token, "ends_at": ends}, tmp_path, "token")
    assert seen["before"]["ok"] and seen["before_check"] == 200, seen
    assert "401" in _refused(seen["after"])
    assert seen["after_check"] == 401
    assert "Could not login" in _refused(seen["login_again"])  # the token itself is dead


def test_password_session_lifetime(settings, tmp_path: Path) -> None:
    lifetime_s = 15.0
    services = _studio(settings, tmp_path, ui_session_minutes=lifetime_s / 60,
                       auth_users=f"carla:{hash_password('carla-pw', iterations=1000)}")
    with LiveServer(services, with_ui=True) as server:
        seen = _run_client({"probe": "expiry", "url": server.url + "/", "user": "carla",
                            "password": "carla-pw", "lifetime_s": lifetime_s},
                           tmp_path, "password")
    services.close()
    assert seen["before"]["ok"] and seen["before_check"] == 200, seen
    assert "401" in _refused(seen["after"])
    assert seen["after_check"] == 401
    assert seen["login_again"]["ok"], seen["login_again"]  # the password still works
