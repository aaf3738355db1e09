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
from pipelines.voice import evolved as voice_evolved
from pipelines.voice.profiles import Profile, ProfileStore
from tests.fixtures.voice import make_services

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
    # Praat matching alone: a 3-second search can then beat the quick match, so the evolved
    # voice serves and the route that speaks with it is exercised (frame matching rebuilds
    # either voice from the same recorded frames: see the test below)
    services = make_services(settings, tts_backends=["kokoro", "piper"],
                             voice_converter_backends=["voice_matching"])
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


def test_the_evolved_voice_is_matched_to_the_recordings_like_the_quick_match(
        tmp_path: Any) -> None:
    """An evolved voice that serves goes through the converter chain too: frame matching
    rebuilds it from the person's recorded frames, and the report names both."""
    from app.storage import LocalStorage
    from models.chain import FallbackChain
    from models.speech.kokoro import KokoroSpeech
    from models.voice.frame_matching import FrameMatcher
    from models.voice.matching import VoiceMatcher
    from pipelines.voice.ref import VoiceRef
    from pipelines.voice.speech import VoiceChoice, synthesize

    settings = EngineSettings(cache_dir=tmp_path / "cache")
    kokoro = KokoroSpeech(settings)
    gap = np.zeros(7200, np.float32)
    pieces: list[np.ndarray] = []
    for text in ("今日は良い天気ですね。", "明日は十時に会いましょう。", "週末は海へ出かけます。"):
        pieces += [kokoro.synthesize(SpeechRequest(text, voice="jm_kumo")).audio.samples, gap]
    store = ProfileStore(LocalStorage(tmp_path / "store"))
    pid = "openvoice_0000beef"
    store.save(Profile.from_dict({"id": pid, "name": "Kumo", "language": "ja"}),
               Audio(np.concatenate(pieces), 24000), np.ones(256, np.float32) / 16)
    voice_evolved.ProfileFiles(store, pid).save_voice("jf_alpha", np.zeros(256, np.float32))
    store.set_evolution(pid, {"status": "done", "serves": {"ja": "evolved"}},
                        voice_source="evolved")
    converters = FallbackChain("voice_converter", [FrameMatcher(settings),
                                                   VoiceMatcher(settings)])
    speech, report = synthesize("ありがとうございます。", tts=FallbackChain("tts", [kokoro]),
                                choice=VoiceChoice.of(VoiceRef("profile", pid)), language="ja",
                                profiles=store, converters=converters)
    data = report.as_dict()
    assert data["method"] == "evolved_voice" and data["voice_source"] == "evolved"
    assert data["conversion"]["backend"] == "frame_matching"
    assert data["timings"]["convert_s"] > 0 and speech.audio.duration > 0.5
    # the evolved voice started from jf_alpha; matched to jm_kumo's frames, it speaks lower
    from models.voice.matching import pitch_median

    raw = kokoro.synthesize(SpeechRequest("ありがとうございます。", voice="jf_alpha")).audio
    assert pitch_median(speech.audio) < 0.8 * pitch_median(raw)
