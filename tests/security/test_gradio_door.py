"""One door: the Gradio API behind the same authentication and limits as REST, probed from a
separate process with gradio_client (``gradio_door_client.py``) and plain HTTP.

A studio with only ``STUDIO_JWT_SECRET``, then only UI users, then both: anonymous callers
are refused on every documented endpoint, a valid token or password works, a profile made
through REST by one user is theirs through the Gradio API and nobody else's, ``view_api()``
lists exactly the documented set, a flood gets "try again in N s" while the studio keeps
serving, an unknown mood is refused before any work, and a text file sent as a photo gets
the REST error in the caller's language with no server path."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.auth import hash_password, issue_token
from app.services import Services, build_services
from app.ui.gate import DOCUMENTED_ENDPOINTS
from models.chain import FallbackChain
from pipelines.voice.kit import VoiceKit
from pipelines.voice.profiles import ProfileStore
from tests.conftest import LiveServer
from tests.security.conftest import SECRET
from tests.security.test_ownership import FakeEncoder

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("gradio_door_client.py")
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"
PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}

pytestmark = pytest.mark.slow


def _users() -> str:
    return ",".join(f"{user}:{hash_password(pw, iterations=1000)}"
                    for user, pw in PASSWORDS.items())


def _token(user: str) -> str:
    return issue_token(SECRET, user)


# mode -> (settings, gradio credentials of alice and bob, alice's REST header)
MODES = {
    "jwt": ({"jwt_secret": SECRET},
            ["alice", _token("alice")], ["bob", _token("bob")],
            {"Authorization": f"Bearer {_token('alice')}"}),
    "users": ({"auth_users": _users()},
              ["alice", PASSWORDS["alice"]], ["bob", PASSWORDS["bob"]],
              {"Authorization": "Basic " + base64.b64encode(
                  f"alice:{PASSWORDS['alice']}".encode()).decode()}),
    "both": ({"jwt_secret": SECRET, "auth_users": _users()},
             ["alice", _token("alice")], ["bob", PASSWORDS["bob"]],
             {"Authorization": f"Bearer {_token('alice')}"}),
}


def _speech_wav(path: Path) -> Path:
    from tests.fixtures.voice import SENTENCES, ojt_speech, wav_bytes

    path.write_bytes(wav_bytes(np.concatenate([ojt_speech(SENTENCES[0]),
                                               ojt_speech(SENTENCES[1])])))
    return path


def _files(tmp_path: Path) -> dict[str, str]:
    fake_jpg, fake_wav = tmp_path / "holiday.jpg", tmp_path / "voice.wav"
    fake_jpg.write_text("these are my holiday notes, not a photo\n")
    fake_wav.write_text("not audio either\n")
    large = tmp_path / "large.jpg"
    large.write_bytes(PORTRAIT.read_bytes() + b"\0" * (2 * 2**20))
    return {"portrait": str(PORTRAIT), "speech": str(_speech_wav(tmp_path / "speech.wav")),
            "text_as_jpg": str(fake_jpg), "text_as_wav": str(fake_wav), "large": str(large)}


def _studio(settings, tmp_path: Path, consume: bool = True, **update: object) -> Services:
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 2,
        "tts_backends": ["openjtalk"], "rate_limit_per_minute": 0, **update}))
    # the real profile store and pipeline; a stand-in speaker encoder (no calibration run)
    services.voice_kit = VoiceKit(
        tts=services.chain("tts"), encoder=FallbackChain("voice_encoder", [FakeEncoder()]),
        converters=services.chain("voice_converter"),
        store=ProfileStore(services.storage))
    if consume:
        services.queue.start_consumer(2, install_signals=False)
    return services


def _run_client(plan: dict, tmp_path: Path, name: str) -> dict:
    plan_path, out = tmp_path / f"{name}.plan.json", tmp_path / f"{name}.out.json"
    plan_path.write_text(json.dumps(plan))
    run = subprocess.run([sys.executable, str(SCRIPT), str(plan_path), str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                              "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(out.read_text())


def _rest_profile(server: LiveServer, headers: dict[str, str], speech: str) -> str:
    """Alice makes a voice profile through REST (synchronously or as a queued job)."""
    response = httpx.post(f"{server.url}/api/voice/profiles", headers=headers,
                          data={"name": "REST Alice"}, timeout=120,
                          files=[("audio_samples", ("take.wav", Path(speech).read_bytes(),
                                                    "audio/wav"))])
    assert response.status_code in (201, 202), response.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}/api/voice/profiles", headers=headers).json()
        profiles = listed["data"]["profiles"]
        if profiles:
            return profiles[0]["id"]
        time.sleep(0.2)
    raise TimeoutError("the REST profile never appeared")


@pytest.fixture(params=list(MODES))
def door(request, settings, tmp_path: Path) -> Iterator[tuple[str, LiveServer, Services]]:
    services = _studio(settings, tmp_path, **MODES[request.param][0])
    with LiveServer(services, with_ui=True) as server:
        yield request.param, server, services
    services.close()


def _error(result: dict) -> str:
    assert not result["ok"], result
    return result["error"]


def test_gradio_door(door, tmp_path: Path) -> None:
    mode, server, services = door
    _, alice, bob, rest_alice = MODES[mode]
    files = _files(tmp_path)
    profile = _rest_profile(server, rest_alice, files["speech"])
    seen = _run_client({"url": server.url + "/", "alice": alice, "bob": bob, "files": files,
                        "alice_profile": profile, "every_endpoint": mode == "jwt"},
                       tmp_path, mode)

    # anonymous: refused by the client with a clear message, and on every endpoint over HTTP
    assert seen["anonymous_client"]["type"] == "AuthenticationError"
    assert "credentials were not provided" in seen["anonymous_client"]["error"]
    for name in DOCUMENTED_ENDPOINTS:
        answer = seen["anonymous_http"][name]
        assert answer["status"] == 401, (name, answer)
        assert "API token" in answer["body"] and "Not authenticated" in answer["body"]
        refused = seen["logged_out"][name]
        assert not refused["ok"] and "401" in refused["error"], (name, refused)
    assert "Could not login" in _error(seen["wrong_password"])
    assert "Could not login" in _error(seen["wrong_name"])

    # only the documented endpoints
    assert seen["view_api"] == sorted(DOCUMENTED_ENDPOINTS)

    # ownership across doors: alice's REST profile is hers on the Gradio API, not bob's
    assert profile in [row[0] for row in seen["alice_lists"]["value"]["data"]]
    assert profile not in [row[0] for row in seen["bob_lists"]["value"]["data"]]
    for attempt in ("bob_uses_in_message", "bob_uses_in_synthesize", "bob_deletes"):
        assert "VOICE_PROFILE_NOT_FOUND" in _error(seen[attempt]), attempt
    kit = services.voice_kit
    assert kit is not None and kit.store.get(profile).owner == "alice"
    alice_use = seen["alice_uses_in_synthesize"]
    assert alice_use["ok"] or "VOICE_PROFILE_NOT_FOUND" not in alice_use["error"], alice_use

    # early answers; upload errors as REST words them, in the caller's language, no paths
    assert "BGM_TRACK_NOT_FOUND" in _error(seen["unknown_mood"])
    english, japanese = _error(seen["text_as_photo_en"]), _error(seen["text_as_photo_ja"])
    assert english.endswith("(IMAGE_INVALID_FORMAT)") and "JPEG" in english
    assert japanese.endswith("(IMAGE_INVALID_FORMAT)") and "画像" in japanese
    assert "画像" in _error(seen["text_as_photo_cutout_ja"])
    assert "PROSODY_AUDIO_INVALID" in _error(seen["text_as_audio"])
    for key in ("text_as_photo_en", "text_as_photo_ja", "text_as_photo_cutout_ja",
                "text_as_audio"):
        assert "/tmp" not in seen[key]["error"] and "preprocess" not in seen[key]["error"]
    queued = [j for j in services.jobs.list() if j.kind == "message.generate"]

    if mode != "jwt":
        assert queued == []  # every refused message was refused before any work
        return
    # a valid token works on every endpoint, for real
    works = seen["works"]
    failed = {name: r["error"] for name, r in works.items() if not r["ok"]}
    assert failed == {}, failed
    video = works["/generate_message"]["value"]
    assert Path(video if isinstance(video, str) else video["video"]).suffix == ".mp4"
    assert seen["gradio_profile"] and seen["gradio_profile"] != profile
    message_jobs = [j for j in services.jobs.list() if j.kind == "message.generate"]
    assert [(j.owner, j.status) for j in message_jobs] == [("alice", "completed")]
    # what alice made through the Gradio API is hers through REST
    status = httpx.get(f"{server.url}/api/video/status/{message_jobs[0].id}",
                       headers=rest_alice).json()["data"]
    assert status["status"] == "completed"
    assert status["backend"] and status["fallback_used"] in (True, False)
    assert "fallback_method" in status
    assert {st["stage"] for st in status["stages"]} >= {"image", "voice", "video"}
    assert all(st.get("backend") for st in status["stages"] if st["status"] == "done")
    bob_rest = {"Authorization": f"Bearer {_token('bob')}"}
    assert httpx.get(f"{server.url}/api/video/status/{message_jobs[0].id}",
                     headers=bob_rest).status_code == 404


def test_gradio_flood_gets_try_again(settings, tmp_path: Path) -> None:
    """Limits on the Gradio door: the rate limit (shared with REST), the body cap, and a full
    queue (no worker runs here; three waiting jobs fill it). Two callers at a time flood, so
    Gradio's own event queue (as long as the studio's) never fills first."""
    services = _studio(settings, tmp_path, consume=False, jwt_secret=SECRET,
                       rate_limit_per_minute=3, max_body_mb=1.0, max_queued=3)
    files = _files(tmp_path)
    waiting = [services.queue.submit("diagnostics.tone", {"seconds": 0.1, "slices": 1,
                                                          "delay": 0.0}).id for _ in range(3)]
    alice_rest = {"Authorization": f"Bearer {_token('alice')}"}
    try:
        with LiveServer(services, with_ui=True) as server:
            seen = _run_client({"url": server.url + "/", "alice": ["alice", _token("alice")],
                                "bob": ["bob", _token("bob")], "files": files, "flood": 8},
                               tmp_path, "flood")
            # the same budget on the REST door: alice is still limited there
            rest = httpx.post(f"{server.url}/api/video/generate", headers=alice_rest,
                              data={"text": "こんにちは", "bgm_type": "none"},
                              files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
    finally:
        services.close()
    errors = [_error(r) for r in seen["flood"]]
    limited = [e for e in errors if "Try again in" in e]
    assert len(limited) == 5, errors  # 3 a minute: the rest wait
    assert all(e.rstrip(".").endswith(" s") for e in limited), limited
    assert sum("BGM_TRACK_NOT_FOUND" in e for e in errors) == 3, errors
    assert seen["after"]["ok"], seen["after"]  # the studio keeps serving
    assert "413" in _error(seen["too_large"])
    assert _error(seen["queue_full"]).endswith("(QUEUE_FULL)")
    assert rest.status_code == 429, rest.text
    assert rest.json()["error"]["retry_after"] >= 1
    assert sorted(j.id for j in services.jobs.list()) == sorted(waiting)  # nothing else
