"""Cross-user access: with authentication on, a user sees, uses and deletes only their own
voice profiles, uploaded music and tasks; someone else's reads as not found, and an admin
sees everything. The Gradio tabs filter the same way when the UI login is on."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.usecases.voices import voice_kit
from models.base import Audio
from models.chain import FallbackChain
from models.errors import NotFound
from pipelines.voice.kit import VoiceKit
from tests.security.conftest import ADMIN, ALICE, BOB, png, wav


class FakeEncoder:
    """A speaker encoder stand-in: the ownership rules do not depend on the embedding."""

    name = "resemblyzer"

    def available(self) -> tuple[bool, str]:
        return True, "fake"

    def embed(self, clips: list[Audio]) -> np.ndarray:
        return np.ones(256, np.float32) / 16.0

    def close(self) -> None:
        pass


def _fast_kit(services) -> VoiceKit:
    """The real profile store and pipeline, with a stand-in encoder and no calibration;
    the ``voice.profile`` jobs run on a worker thread over the same engines."""
    encoder = FallbackChain("voice_encoder", [FakeEncoder()])
    converters = FallbackChain("voice_converter", [])
    kit = VoiceKit(tts=services.chain("tts"), encoder=encoder, converters=converters,
                   store=voice_kit(services).store)
    services.voice_kit = kit
    services._chains["voice_encoder"] = encoder  # what the job's ctx.chain() hands out
    services._chains["voice_converter"] = converters
    services.queue.start_consumer(1, install_signals=False)  # stopped by services.close()
    return kit


def _speech_clip() -> bytes:
    from tests.fixtures.voice import SENTENCES, ojt_speech, wav_bytes

    return wav_bytes(np.concatenate([ojt_speech(SENTENCES[0]), ojt_speech(SENTENCES[1])]))


def _make_profile(client, services, headers: dict[str, str], name: str) -> str:
    from tests.conftest import wait_for_job

    response = client.post("/api/voice/profiles", headers=headers, data={"name": name},
                           files=[("audio_samples", ("take.wav", _speech_clip(), "audio/wav"))])
    assert response.status_code == 202, response.text
    task_id = response.json()["data"]["task_id"]
    job = wait_for_job(services, task_id)
    assert job["status"] == "completed", job
    status = client.get(f"/api/voice/status/{task_id}", headers=headers).json()["data"]
    assert status["profile"]["owner"] == job["owner"]
    return status["profile_id"]


def test_voice_profiles_are_private(secured) -> None:
    client, services = secured
    kit = _fast_kit(services)
    mine = _make_profile(client, services, ALICE, "Alice")
    theirs = _make_profile(client, services, BOB, "Bob")
    assert kit.store.get(mine).owner == "alice"  # stamped in profile.json

    listed = client.get("/api/voice/profiles", headers=ALICE).json()["data"]["profiles"]
    assert [p["id"] for p in listed] == [mine]
    everyone = client.get("/api/voice/profiles", headers=ADMIN).json()["data"]["profiles"]
    assert {p["id"] for p in everyone} == {mine, theirs}

    for method, path, body in [
        ("GET", f"/api/voice/profiles/{theirs}", None),
        ("PATCH", f"/api/voice/profiles/{theirs}", {"name": "stolen"}),
        ("DELETE", f"/api/voice/profiles/{theirs}", None),
        ("POST", "/api/voice/synthesize", {"text": "こんにちは", "voice_type": "profile",
                                           "profile_id": theirs}),
    ]:
        response = client.request(method, path, headers=ALICE, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "VOICE_PROFILE_NOT_FOUND"
    assert kit.store.get(theirs).name == "Bob"  # untouched
    assert services.storage.exists(f"voices/openvoice/{theirs}/reference.wav")

    assert client.patch(f"/api/voice/profiles/{mine}", headers=ALICE,
                        json={"name": "Mine"}).status_code == 200
    assert client.delete(f"/api/voice/profiles/{theirs}", headers=ADMIN).status_code == 200
    assert client.get(f"/api/voice/profiles/{theirs}", headers=BOB).status_code == 404


def test_profile_files_cannot_be_read_by_key(secured) -> None:
    """A profile's reference recording is not an input anyone can name."""
    client, services = secured
    _fast_kit(services)
    theirs = _make_profile(client, services, BOB, "Bob")
    key = f"voices/openvoice/{theirs}/reference.wav"
    response = client.post("/api/prosody/adjust", headers=ALICE, data={"audio_key": key})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PROSODY_AUDIO_INVALID"
    image_key = services.storage.put("inputs/images/portrait.png", png())
    response = client.post("/api/video/generate", headers=ALICE,
                           json={"image_url": image_key, "audio_url": key})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "VIDEO_INPUT_NOT_FOUND"


def test_uploaded_music_is_private(secured) -> None:
    client, _ = secured
    music = wav(3.0, 44100)
    response = client.post("/api/bgm/tracks", headers=BOB, data={"title": "Bob's song"},
                           files={"file": ("song.wav", music, "audio/wav")})
    assert response.status_code == 201, response.text
    track = response.json()["data"]["track"]["id"]

    def ids(headers: dict[str, str]) -> set[str]:
        rows = client.get("/api/bgm/tracks", headers=headers).json()["data"]["tracks"]
        return {r["id"] for r in rows if not r["builtin"]}

    assert ids(BOB) == {track}
    assert ids(ALICE) == set()
    assert ids(ADMIN) == {track}
    assert client.get(f"/api/bgm/tracks/{track}/audio", headers=BOB).status_code == 200
    response = client.get(f"/api/bgm/tracks/{track}/audio", headers=ALICE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "BGM_TRACK_NOT_FOUND"
    response = client.post("/api/bgm/mix", headers=ALICE, data={"bgm_type": track},
                           files={"voice_audio": ("v.wav", wav(1.0), "audio/wav")})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "BGM_TRACK_NOT_FOUND"


@pytest.mark.parametrize(("kind", "path", "code"), [
    ("image.process", "/api/image/status/{id}", "IMAGE_TASK_NOT_FOUND"),
    ("video.render", "/api/video/status/{id}", "VIDEO_TASK_NOT_FOUND"),
    ("video.render", "/api/jobs/{id}", "QUEUE_JOB_NOT_FOUND"),
])
def test_tasks_are_private(secured, kind: str, path: str, code: str) -> None:
    client, services = secured
    job = services.jobs.create(kind, {}, [], owner="bob")
    url = path.format(id=job.id)
    assert client.get(url, headers=BOB).status_code == 200
    assert client.get(url, headers=ADMIN).status_code == 200
    response = client.get(url, headers=ALICE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == code
    missing = client.get(path.format(id="no-such-task"), headers=ALICE)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == code  # the same answer as someone else's


def test_routes_stamp_the_owner_on_queued_jobs(secured) -> None:
    client, services = secured
    response = client.post("/api/image/process", headers=ALICE,
                           files={"image": ("p.png", png((96, 96)), "image/png")},
                           data={"operations": '["framing"]'})
    assert response.status_code == 202, response.text
    assert services.jobs.get(response.json()["data"]["task_id"]).owner == "alice"
    image_key = services.storage.put("inputs/images/p.png", png())
    audio_key = services.storage.put("inputs/audio/a.wav", wav(1.0))
    response = client.post("/api/video/generate", headers=BOB,
                           json={"image_url": image_key, "audio_url": audio_key})
    assert response.status_code == 202, response.text
    assert services.jobs.get(response.json()["data"]["task_id"]).owner == "bob"
    response = client.post("/api/jobs/diagnostics", headers=BOB, json={"seconds": 0.1})
    assert services.jobs.get(response.json()["data"]["task_id"]).owner == "bob"


# ---------------------------------------------------------------------------- the UI


def _ui_services(secured):
    _, services = secured
    from app.auth import hash_password

    stored = hash_password("pw", iterations=1000)
    services.settings = services.settings.model_copy(update={
        "auth_users": f"alice:{stored},bob:{stored},root:{stored}", "admin_users": ["root"]})
    return services


def test_ui_tabs_list_only_the_users_own(secured) -> None:
    from app.ui import bgm as bgm_tab
    from app.ui import voice as voice_tab
    from app.ui import voice_desk
    from pipelines.sound import tracks as bgm_catalog

    services = _ui_services(secured)
    kit = _fast_kit(services)
    alice, bob, root = (SimpleNamespace(username=u) for u in ("alice", "bob", "root"))
    clip = [(_speech_clip(), "take.wav")]
    theirs = kit.create_profile(clip, name="Bob", owner="bob").id
    mine = kit.create_profile(clip, name="Alice", owner="alice").id

    assert [r[0] for r in voice_tab.profile_rows(voice_desk(services), alice)] == [mine]
    assert {r[0] for r in voice_tab.profile_rows(voice_desk(services), root)} == {mine, theirs}
    assert voice_tab.profile_rows(voice_desk(services), None) == []  # page build: nobody's
    values = [v for _, v in voice_tab.voice_choices(voice_desk(services), alice)]
    assert f"profile:{mine}" in values
    assert f"profile:{theirs}" not in values
    with pytest.raises(NotFound) as info:
        voice_tab.ui_profiles(voice_desk(services), alice).delete(theirs)
    assert info.value.code == "VOICE_PROFILE_NOT_FOUND"
    assert kit.store.get(theirs)

    track = bgm_catalog.save_upload(wav(3.0, 44100), "song.wav", services.storage, owner="bob")
    assert track.id not in [r[0] for r in bgm_tab.track_rows(services.storage, services, alice)]
    assert track.id in [r[0] for r in bgm_tab.track_rows(services.storage, services, bob)]
    assert bgm_tab.track_path(services.storage, services, track.id, alice) is None
    assert bgm_tab.track_path(services.storage, services, track.id, bob) is not None


def test_ui_latest_output_is_the_users_own(secured) -> None:
    from app.ui.owners import remember
    from app.ui.prosody import latest_audio

    services = _ui_services(secured)
    alice, bob = SimpleNamespace(username="alice"), SimpleNamespace(username="bob")
    key = services.storage.put("prosody/bob.wav", wav(0.5))
    remember(services, bob, key)
    assert latest_audio(services.storage, services, "prosody/", bob).endswith("bob.wav")
    assert latest_audio(services.storage, services, "prosody/", alice) is None


def test_latest_never_offers_a_profile_recording(settings) -> None:
    from app.services import build_services
    from app.ui.prosody import latest_audio

    services = build_services(settings)  # UI login off: one person's studio
    try:
        services.storage.put("voices/kokoro/out.wav", wav(0.5))
        services.storage.put("voices/openvoice/openvoice_0123abcd/reference.wav", wav(0.5))
        assert latest_audio(services.storage, services, "voices/").endswith("out.wav")
    finally:
        services.close()
