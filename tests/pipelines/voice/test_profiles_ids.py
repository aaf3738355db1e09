"""Profile ids: new profiles are ``voice_…`` (no engine's name; OpenVoice seldom serves them),
and profiles stored before the rename (``openvoice_…``) still load, speak and delete, and
their files stay private under either prefix."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.fetch import SafeFetcher, is_private_key
from app.storage import LocalStorage
from models.base import Audio
from models.errors import NotFound
from pipelines.voice.profiles import Profile, ProfileStore
from pipelines.voice.ref import PROFILE_ID, VoiceRef
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech

NEW, OLD = "voice_0000abcd", "openvoice_0000beef"


def test_new_profiles_get_the_neutral_prefix(tmp_path) -> None:
    store = ProfileStore(LocalStorage(tmp_path))
    made = {store.new_id() for _ in range(20)}
    assert all(PROFILE_ID.match(pid) and pid.startswith("voice_") for pid in made), made


@pytest.mark.parametrize(("spelling", "kind"), [
    (NEW, "profile"), (OLD, "profile"), ("openvoice_zzzz", "profile"),
    ("voice_matching", "builtin"), ("jf_alpha", "builtin"), ("voicevox:3", "style")])
def test_both_prefixes_read_as_a_profile(spelling: str, kind: str) -> None:
    """``voice_`` is a profile only as ``voice_`` and 8 hex digits: a name such as
    ``voice_matching`` stays what it was."""
    ref = VoiceRef.parse(spelling)
    assert ref is not None and ref.kind == kind


@pytest.mark.parametrize("pid", [NEW, OLD])
def test_profile_files_are_private_under_both_prefixes(tmp_path, pid: str) -> None:
    storage = LocalStorage(tmp_path)
    key = f"voices/openvoice/{pid}/reference.wav"
    storage.put(key, b"RIFF....")
    assert is_private_key(key) and is_private_key("/" + key)
    fetcher = SafeFetcher(storage)
    for reference in (key, f"/files/{key}"):
        with pytest.raises(NotFound) as info:
            fetcher.fetch(reference, max_bytes=10_000)
        assert info.value.code == "VIDEO_INPUT_NOT_FOUND"
    spoken = storage.put("voices/openvoice/5f0e7a.wav", b"RIFF")  # speech, not a profile
    assert not is_private_key(spoken)
    assert fetcher.fetch(spoken, max_bytes=10_000).data == b"RIFF"


def _stored(client: TestClient, pid: str, name: str) -> None:
    """A profile as the studio stores it (the quick match to OpenJTalk's mei)."""
    store = ProfileStore(client.services.storage)  # type: ignore[attr-defined]
    store.save(Profile.from_dict({
        "id": pid, "name": name, "language": "ja", "created_at": "2026-01-01T00:00:00Z",
        "matching": {"source_voice": "mei", "params": {
            "formant_ratio": 1.0, "pitch_median": 0.0, "pitch_range": 1.0}}}),
        Audio(ojt_speech(SENTENCES[0]), RATE), np.ones(256, np.float32) / 16)


def test_old_and_new_ids_load_speak_and_delete(voice_client: TestClient) -> None:
    _stored(voice_client, OLD, "Made before the rename")
    _stored(voice_client, NEW, "Made after")
    listed = voice_client.get("/api/voice/profiles").json()["data"]["profiles"]
    assert sorted(p["id"] for p in listed) == sorted([NEW, OLD])
    for pid in (OLD, NEW):
        shown = voice_client.get(f"/api/voice/profiles/{pid}")
        assert shown.status_code == 200 and shown.json()["data"]["id"] == pid
        spoken = voice_client.post("/api/voice/synthesize", json={
            "text": "ありがとうございます。", "voice_type": "profile", "profile_id": pid,
            "language": "ja", "return_base64": False})
        assert spoken.status_code == 200, spoken.text
        data = spoken.json()["data"]
        assert data["profile_id"] == pid and data["duration"] > 0.3
    for pid in (OLD, NEW):
        assert voice_client.delete(f"/api/voice/profiles/{pid}").status_code == 200
        assert voice_client.get(f"/api/voice/profiles/{pid}").status_code == 404
    assert voice_client.get("/api/voice/profiles").json()["data"]["count"] == 0
