"""End to end through REST and a real worker: ask for a profile's evolved voice, follow
the search on the status route, then speak with the profile and get the evolved voice."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from models.base import Audio, EngineSettings, SpeechRequest
from pipelines import voice_evolved
from pipelines.voice_profiles import Profile, ProfileStore
from tests.voice.conftest import make_services

pytestmark = pytest.mark.slow


def test_evolve_through_rest_then_speak_with_it(settings: Any, tmp_path: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from models.speech.kokoro import KokoroSpeech

    monkeypatch.setattr(voice_evolved, "SEARCH_SENTENCES",
                        (("ja", "こんにちは。"), ("en", "Hello there.")))
    kokoro = KokoroSpeech(EngineSettings(cache_dir=tmp_path / "cache"))
    gap = np.zeros(7200, np.float32)
    pieces: list[np.ndarray] = []
    for text in ("今日は良い天気ですね。", "明日は十時に会いましょう。", "週末は海へ出かけます。"):
        pieces += [kokoro.synthesize(SpeechRequest(text, voice="jm_kumo:0.7+jf_nezumi:0.3")
                                     ).audio.samples, gap]
    reference = Audio(np.concatenate(pieces[:-1]), 24000)
    services = make_services(settings, tts_backends=["kokoro", "piper"])
    ProfileStore(services.storage).save(Profile.from_dict(
        {"id": "openvoice_0000abcd", "name": "Target", "language": "ja",
         "matching": {"source_voice": "jf_alpha", "params": {
             "formant_ratio": 1.0, "pitch_median": 0.0, "pitch_range": 1.0}}}),
        reference, np.ones(256, np.float32) / 16)
    services.queue.start_consumer(1, install_signals=False)
    try:
        with TestClient(create_app(services, with_ui=False)) as client:
            answer = client.post("/api/voice/profiles/openvoice_0000abcd/evolve",
                                 json={"budget_s": 3}).json()["data"]
            seen: list[dict[str, Any]] = []
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                status = client.get(answer["status_url"]).json()["data"]
                seen.append(status)
                if status["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.5)
            assert status["status"] == "completed", status
            assert status["progress"] == 100.0
            evolution = status["evolution"]
            assert evolution["status"] == "done" and evolution["serves"]["ja"] == "evolved"
            assert status["voice_source"] == "evolved" == status["result"]["voice_source"]
            assert "not a cloned recording" in status["label"]
            spoken = client.post("/api/voice/synthesize", json={
                "text": "ありがとうございます。", "voice_type": "profile",
                "profile_id": "openvoice_0000abcd", "language": "ja"}).json()["data"]
            assert spoken["method"] == "evolved_voice" and spoken["backend"] == "kokoro"
            assert spoken["voice_source"] == "evolved" and spoken["duration"] > 0.5
            assert spoken["scores"]["held_out"] > spoken["scores"]["quick_match_held_out"]
            profile = client.get("/api/voice/profiles/openvoice_0000abcd").json()["data"]
            assert profile["voice_source"] == "evolved"
            assert profile["evolution"]["label"] == voice_evolved.LABEL
    finally:
        services.close()
